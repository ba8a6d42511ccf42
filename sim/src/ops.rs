//! The verbs on stored objects (get, list, create, update, patch, delete) with the checks a real
//! API server makes, and the controllers' reactions to writes.

use serde_json::{json, Value};

use super::kubevirt;
use super::launcher::name_suffix;
use super::patch::{json_patch, merge_patch};
use super::resources::{
    ResourceType, KUBEVIRTS, NAMESPACES, PODS, SETTINGS, VIRTUAL_MACHINES,
    VIRTUAL_MACHINE_INSTANCES,
};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::meta_str;
use super::world::{Scheduled, World};

/// The object a request names.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: &'static ResourceType,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// How a PATCH body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<PatchType, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            _ => Err(ApiError::unsupported_media_type()),
        }
    }
}

pub fn get(w: &World, t: &Target) -> Result<Value, ApiError> {
    w.store
        .get(t.rt, t.ns(), t.name())
        .cloned()
        .ok_or_else(|| ApiError::not_found(t.rt, t.name()))
}

/// Matching objects (each with kind and apiVersion) and the list's resourceVersion.
pub fn list(
    w: &World,
    rt: &ResourceType,
    ns: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> (Vec<Value>, u64) {
    let items = w
        .store
        .list(rt, ns)
        .filter(|o| labels.matches(o) && fields.matches(o))
        .cloned()
        .collect();
    (items, w.store.resource_version())
}

fn require_namespace(w: &World, t: &Target) -> Result<(), ApiError> {
    if t.rt.namespaced && w.store.get(&NAMESPACES, "", t.ns()).is_none() {
        return Err(ApiError::not_found(&NAMESPACES, t.ns()));
    }
    Ok(())
}

pub fn create(w: &mut World, t: &Target, mut obj: Value, dry_run: bool) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    super::schema::check(t.rt, &obj)?;
    require_namespace(w, t)?;
    if t.rt.namespaced {
        let body_ns = meta_str(&obj, "namespace");
        if !body_ns.is_empty() && body_ns != t.ns() {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
        obj["metadata"]["namespace"] = json!(t.ns());
    }
    if meta_str(&obj, "name").is_empty() {
        let gen = meta_str(&obj, "generateName").to_string();
        if gen.is_empty() {
            return Err(ApiError::invalid(
                t.rt,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        obj["metadata"]["name"] = json!(format!("{gen}{}", name_suffix()));
    }
    for f in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove(f);
        }
    }
    if t.rt == &PODS {
        let scheduled = obj["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| w.nodes.contains_key(n));
        let kubelet_down = obj["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| w.faults.kubelet_down(n));
        obj["status"] = if kubelet_down {
            // No kubelet picks it up: what a real API server without kubelets stores.
            json!({"phase": "Pending", "qosClass": qos_of(&obj)})
        } else if scheduled {
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}], "qosClass": qos_of(&obj)})
        } else {
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}], "qosClass": qos_of(&obj)})
        };
    } else if t.rt.custom && t.rt != &SETTINGS {
        obj["status"] = json!({});
    }
    if dry_run {
        let mut o = obj;
        if t.rt == &VIRTUAL_MACHINES {
            kubevirt::admit(w, &mut o, None)?;
        }
        return Ok(o);
    }
    if t.rt == &VIRTUAL_MACHINES {
        return kubevirt::create_vm(w, obj);
    }
    let now = w.timestamp();
    let stored = w.store.create(t.rt, obj, &now)?;
    if t.rt == &PODS && stored["status"]["conditions"][0]["status"] == json!("True") {
        let delay = w.pod_start_delay;
        w.schedule(
            delay,
            Scheduled::PodRunning {
                ns: t.ns().into(),
                name: meta_str(&stored, "name").into(),
            },
        );
    }
    after_config_write(w, t.rt);
    Ok(stored)
}

fn qos_of(pod: &Value) -> &'static str {
    let cs = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let any = cs
        .iter()
        .any(|c| c["resources"]["requests"].is_object() || c["resources"]["limits"].is_object());
    if !any {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        let r = &c["resources"];
        ["cpu", "memory"].iter().all(|k| {
            !r["limits"][k].is_null()
                && (r["requests"][k].is_null() || r["requests"][k] == r["limits"][k])
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Check a client's resourceVersion precondition against the stored object.
fn check_rv(t: &Target, current: &Value, new: &Value) -> Result<(), ApiError> {
    let want = meta_str(new, "resourceVersion");
    if !want.is_empty() && want != meta_str(current, "resourceVersion") {
        return Err(ApiError::conflict(t.rt, t.name()));
    }
    Ok(())
}

/// Write `new` (a full object) as the main resource or its status, with checks and reactions.
fn write(
    w: &mut World,
    t: &Target,
    current: Value,
    mut new: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    super::schema::check(t.rt, &new)?;
    if meta_str(&new, "name") != t.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            meta_str(&new, "name"),
            t.name()
        )));
    }
    match t.sub.as_deref() {
        Some("status") => {
            let mut merged = current.clone();
            merged["status"] = new["status"].clone();
            new = merged;
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "subresource {other} does not support this verb"
            )))
        }
        None if t.rt != &SETTINGS && t.rt != &NAMESPACES => {
            new["status"] = current["status"].clone();
        }
        None => {}
    }
    if t.rt == &VIRTUAL_MACHINES && t.sub.is_none() {
        kubevirt::admit(w, &mut new, Some(&current))?;
    }
    if dry_run {
        return Ok(new);
    }
    let stored = w.store.replace(t.rt, new)?;
    if t.rt == &VIRTUAL_MACHINES && t.sub.is_none() {
        kubevirt::on_vm_written(w, t.ns(), t.name());
        return get(w, t);
    }
    after_config_write(w, t.rt);
    Ok(stored)
}

/// PUT: replace the object (or its status).
pub fn update(w: &mut World, t: &Target, new: Value, dry_run: bool) -> Result<Value, ApiError> {
    super::schema::check(t.rt, &new)?;
    let current = get(w, t)?;
    if meta_str(&new, "resourceVersion").is_empty() && t.rt.custom {
        return Err(ApiError::invalid(
            t.rt,
            t.name(),
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
        ));
    }
    check_rv(t, &current, &new)?;
    write(w, t, current, new, dry_run)
}

/// PATCH with merge, JSON, strategic-merge (built-in types only) or apply patches.
pub fn patch(
    w: &mut World,
    t: &Target,
    kind: PatchType,
    body: &[u8],
    dry_run: bool,
) -> Result<Value, ApiError> {
    let current = get(w, t)?;
    let patch: Value = match kind {
        PatchType::Apply => crate::yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    let mut new = current.clone();
    match kind {
        PatchType::Merge | PatchType::Apply => merge_patch(&mut new, &patch),
        PatchType::Strategic if t.rt.custom => return Err(ApiError::unsupported_media_type()),
        PatchType::Strategic => merge_patch(&mut new, &patch),
        PatchType::Json => json_patch(&mut new, &patch)?,
    }
    check_rv(t, &current, &new)?;
    write(w, t, current, new, dry_run)
}

pub fn delete(w: &mut World, t: &Target, dry_run: bool) -> Result<Value, ApiError> {
    let current = get(w, t)?;
    if dry_run {
        return Ok(current);
    }
    let (ns, name) = (t.ns().to_string(), t.name().to_string());
    if t.rt == &VIRTUAL_MACHINES {
        kubevirt::stop_vmi(w, &ns, &name);
    }
    let deleted = w
        .store
        .delete(t.rt, &ns, &name)
        .ok_or_else(|| ApiError::not_found(t.rt, &name))?;
    if t.rt == &VIRTUAL_MACHINE_INSTANCES {
        let uid = meta_str(&deleted, "uid").to_string();
        let pods: Vec<String> = w
            .launchers
            .values()
            .filter(|l| l.vmi_uid == uid)
            .map(|l| l.pod_name.clone())
            .collect();
        for p in pods {
            if let Some(pod) = w.store.delete(&PODS, &ns, &p) {
                w.launchers.remove(meta_str(&pod, "uid"));
            }
        }
        kubevirt::reconcile_vm(w, &ns, &name);
    }
    if t.rt == &PODS {
        let uid = meta_str(&deleted, "uid").to_string();
        if let Some(l) = w.launchers.remove(&uid) {
            if w.pod_gone_notice > 0.0 {
                let what = Scheduled::PodGone {
                    ns: l.namespace.clone(),
                    name: l.vm_name.clone(),
                    vmi_uid: l.vmi_uid.clone(),
                };
                w.schedule(w.pod_gone_notice, what);
            } else {
                kubevirt::vmi_failed(w, &l.namespace, &l.vm_name, "PodDeleted");
            }
        }
    }
    Ok(deleted)
}

/// DELETE on a collection: every matching object; returns them as a list.
pub fn delete_collection(
    w: &mut World,
    rt: &'static ResourceType,
    ns: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Result<Vec<Value>, ApiError> {
    let (items, _) = list(w, rt, ns, labels, fields);
    let mut out = Vec::new();
    for o in items {
        let t = Target {
            rt,
            ns: Some(meta_str(&o, "namespace").to_string()),
            name: Some(meta_str(&o, "name").to_string()),
            sub: None,
        };
        out.push(delete(w, &t, false)?);
    }
    Ok(out)
}

/// Settings and the KubeVirt CR feed the overhead ratio and the webhook.
fn after_config_write(w: &mut World, rt: &ResourceType) {
    if rt == &SETTINGS {
        if let Some(h) = w.config.harvester.as_mut() {
            if let Some(s) = w
                .store
                .get(&SETTINGS, "", "additional-guest-memory-overhead-ratio")
            {
                let v = s["value"]
                    .as_str()
                    .or(s["default"].as_str())
                    .unwrap_or("")
                    .to_string();
                h.ratio = v.clone();
                let kv_ns = w.config.kubevirt_namespace.clone();
                if let Some(mut kv) = w.store.get(&KUBEVIRTS, &kv_ns, "kubevirt").cloned() {
                    kv["spec"]["configuration"]["additionalGuestMemoryOverheadRatio"] =
                        if v.is_empty() || v == "0" {
                            Value::Null
                        } else {
                            json!(v)
                        };
                    if let Some(c) = kv["spec"]["configuration"].as_object_mut() {
                        c.retain(|_, v| !v.is_null());
                    }
                    let _ = w.store.replace(&KUBEVIRTS, kv);
                }
            }
        }
    }
    if rt == &SETTINGS || rt == &KUBEVIRTS {
        let kv_ns = w.config.kubevirt_namespace.clone();
        if let Some(kv) = w.store.get(&KUBEVIRTS, &kv_ns, "kubevirt") {
            w.config.ratio = kv["spec"]["configuration"]["additionalGuestMemoryOverheadRatio"]
                .as_str()
                .map(str::to_string)
                .filter(|r| !r.trim().is_empty());
        }
    }
}
