//! Kubernetes manifests as text (YAML, multi-document, or JSON; single objects or `kind: List`
//! as `kubectl get -o yaml|json` writes them) → typed objects. Pure: the caller reads files.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::model::inventory::Inventory;
use crate::model::objects::{
    exact_vec, null_default, Condition, Container, ContainerStatus, DomainSpec, HarvesterSetting,
    KubeVirt, KubeVirtConfiguration, KubeVirtSpec, KubeVirtStatus, MigrationState, Namespace, Node,
    NodeInfo, NodeStatus, ObjectMeta, Pod, PodSpec, PodStatus, Probe, ResourceList, ResourceQuota,
    ResourceQuotaSpec, StringMap, VirtualMachine, VirtualMachineInstance, VmSpec, VmStatus,
    VmTemplate, VmiMemoryStatus, VmiSpec, VmiStatus, Volume,
};
use crate::model::objects::{
    Instancetype, InstancetypeMatcher, InstancetypeMemory, InstancetypeSpec,
    VirtualMachineClusterInstancetype, VirtualMachineInstancetype,
};
use crate::model::phase::{PodPhase, VmPhase};
use crate::units::Quantity;

/// An object the tool understands.
#[derive(Debug, Clone)]
pub enum Object {
    Vm(Box<VirtualMachine>),
    Vmi(Box<VirtualMachineInstance>),
    Pod(Box<Pod>),
    Node(Box<Node>),
    KubeVirt(Box<KubeVirt>),
    HarvesterSetting(Box<HarvesterSetting>),
    ResourceQuota(Box<ResourceQuota>),
    Namespace(Box<Namespace>),
    Instancetype(Box<Instancetype>),
}

/// Put parsed objects where an [`Inventory`] keeps them.
pub fn add_to_inventory(objects: Vec<Object>, inv: &mut Inventory) {
    for obj in objects {
        match obj {
            Object::Vm(v) => inv.vms.push(Arc::from(v)),
            Object::Vmi(v) => inv.vmis.push(Arc::from(v)),
            Object::Pod(p) => inv.pods.push(Arc::from(p)),
            Object::Node(n) => inv.nodes.push(*n),
            Object::KubeVirt(k) => inv.kubevirts.push(*k),
            Object::HarvesterSetting(s) => {
                inv.harvester_settings.get_or_insert_with(Vec::new).push(*s)
            }
            Object::ResourceQuota(q) => inv.resource_quotas.push(*q),
            Object::Namespace(n) => inv.namespaces.get_or_insert_with(Vec::new).push(*n),
            Object::Instancetype(i) => inv.instancetypes.push(*i),
        }
    }
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: cannot read document {doc} as YAML/JSON Kubernetes objects: {message}")]
pub struct ManifestError {
    pub origin: String,
    pub doc: usize,
    pub message: String,
}

/// Parse all documents of a manifest text. `origin` names the file in errors; `kind_hint` is
/// used for list items without `kind` (support bundles name the resource in the file name).
///
/// Documents are read in one typed pass (unknown fields are skipped without building a tree),
/// which keeps a 5,000-VM folder well under a second.
pub fn parse(
    text: &str,
    origin: &str,
    kind_hint: Option<&str>,
) -> Result<Vec<Object>, ManifestError> {
    let mut out = Vec::new();
    let syntax = |doc: usize, message: String| ManifestError {
        origin: origin.to_string(),
        doc,
        message,
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') {
        let docs: Vec<AnyObject> =
            serde_json::from_str(trimmed).map_err(|e| syntax(1, e.to_string()))?;
        for d in docs {
            collect(d, kind_hint, &mut out);
        }
        return Ok(out);
    }
    if trimmed.starts_with('{') {
        let stream = serde_json::Deserializer::from_str(trimmed).into_iter::<AnyObject>();
        for (i, doc) in stream.enumerate() {
            collect(
                doc.map_err(|e| syntax(i + 1, e.to_string()))?,
                kind_hint,
                &mut out,
            );
        }
        return Ok(out);
    }
    // libyaml's time grows with the square of the flow nesting: refuse deep nesting first.
    if let Some(line) = super::yaml_depth::too_deep(text, super::yaml_depth::MAX_FLOW_DEPTH) {
        let starts = (text.lines().take(line - 1).skip(1)).filter(|l| l.starts_with("---"));
        let doc = 1 + starts.count();
        return Err(syntax(
            doc,
            format!(
                "line {line} nests [ ] / {{ }} more than {} deep (no Kubernetes object does)",
                super::yaml_depth::MAX_FLOW_DEPTH
            ),
        ));
    }
    let docs: Vec<AnyObject> =
        super::yaml::documents(text).map_err(|(doc, e)| syntax(doc, e.to_string()))?;
    for any in docs {
        collect(any, kind_hint, &mut out);
    }
    Ok(out)
}

/// Every field any supported kind has, so one typed pass reads any object.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnyObject {
    kind: Option<String>,
    api_version: Option<String>,
    #[serde(deserialize_with = "null_default")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    spec: AnySpec,
    #[serde(deserialize_with = "null_default")]
    status: AnyStatus,
    items: Option<Vec<AnyObject>>,
    value: Option<String>,
    default: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnySpec {
    // VirtualMachine
    running: Option<bool>,
    run_strategy: Option<String>,
    template: Option<VmTemplate>,
    instancetype: Option<InstancetypeMatcher>,
    // VirtualMachineInstance
    domain: Option<DomainSpec>,
    #[serde(deserialize_with = "exact_vec")]
    volumes: Vec<Volume>,
    liveness_probe: Option<Box<Probe>>,
    readiness_probe: Option<Box<Probe>>,
    architecture: Option<String>,
    // Pod
    node_name: Option<String>,
    #[serde(deserialize_with = "exact_vec")]
    containers: Vec<Container>,
    #[serde(deserialize_with = "exact_vec")]
    init_containers: Vec<Container>,
    // KubeVirt
    configuration: Option<KubeVirtConfiguration>,
    // ResourceQuota
    #[serde(deserialize_with = "null_default")]
    hard: BTreeMap<String, Quantity>,
    // VirtualMachine(Cluster)Instancetype
    memory: Option<InstancetypeMemory>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnyStatus {
    // VirtualMachine
    printable_status: Option<String>,
    #[serde(deserialize_with = "exact_vec")]
    conditions: Vec<Condition>,
    // VirtualMachineInstance, Pod, KubeVirt
    phase: Option<String>,
    node_name: Option<String>,
    #[serde(deserialize_with = "null_default")]
    active_pods: StringMap,
    migration_state: Option<Box<MigrationState>>,
    memory: Option<VmiMemoryStatus>,
    #[serde(deserialize_with = "exact_vec")]
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
    // Node
    #[serde(deserialize_with = "null_default")]
    capacity: ResourceList,
    #[serde(deserialize_with = "null_default")]
    allocatable: ResourceList,
    node_info: Option<NodeInfo>,
    // KubeVirt
    observed_kube_virt_version: Option<String>,
}

fn collect(mut doc: AnyObject, hint: Option<&str>, out: &mut Vec<Object>) {
    let kind = doc.kind.take().unwrap_or_default();
    if let Some(items) = doc.items.take() {
        // `kind: List` or `<Kind>List`: items may omit their kind.
        let item_hint = kind
            .strip_suffix("List")
            .filter(|k| !k.is_empty())
            .or(hint)
            .map(str::to_string);
        for mut item in items {
            if item.kind.is_none() {
                item.kind = item_hint.clone();
            }
            collect(item, hint, out);
        }
        return;
    }
    let kind = if kind.is_empty() {
        hint.unwrap_or("").to_string()
    } else {
        kind
    };
    if let Some(obj) = typed(&kind, doc) {
        out.push(obj);
    }
}

fn typed(kind: &str, d: AnyObject) -> Option<Object> {
    let AnyObject {
        api_version,
        metadata,
        spec,
        status,
        value,
        default,
        ..
    } = d;
    Some(match kind {
        "VirtualMachine" => vm(metadata, spec, status),
        "VirtualMachineInstance" => vmi(metadata, spec, status),
        "Pod" => pod(metadata, spec, status),
        "Node" => node(metadata, status),
        "KubeVirt" => kubevirt(metadata, spec, status),
        "Namespace" => Object::Namespace(Box::new(Namespace { metadata })),
        "VirtualMachineInstancetype" | "VirtualMachineClusterInstancetype" => {
            instancetype(kind, metadata, spec)
        }
        "ResourceQuota" => Object::ResourceQuota(Box::new(ResourceQuota {
            metadata,
            spec: ResourceQuotaSpec { hard: spec.hard },
        })),
        "Setting"
            if api_version
                .as_deref()
                .is_none_or(|a| a.starts_with("harvesterhci.io/")) =>
        {
            Object::HarvesterSetting(Box::new(HarvesterSetting {
                metadata,
                value,
                default,
            }))
        }
        _ => return None,
    })
}

fn vm(metadata: ObjectMeta, spec: AnySpec, s: AnyStatus) -> Object {
    Object::Vm(Box::new(VirtualMachine {
        metadata,
        spec: VmSpec {
            running: spec.running,
            run_strategy: spec.run_strategy,
            template: spec.template.unwrap_or_default(),
            instancetype: spec.instancetype,
        },
        status: VmStatus {
            printable_status: s.printable_status.as_deref().map(VmPhase::from),
            conditions: s.conditions,
        },
    }))
}

fn vmi(metadata: ObjectMeta, spec: AnySpec, s: AnyStatus) -> Object {
    Object::Vmi(Box::new(VirtualMachineInstance {
        metadata,
        spec: VmiSpec {
            domain: spec.domain.unwrap_or_default(),
            volumes: spec.volumes,
            liveness_probe: spec.liveness_probe,
            readiness_probe: spec.readiness_probe,
            architecture: spec.architecture,
        },
        status: VmiStatus {
            phase: s.phase.as_deref().map(VmPhase::from),
            node_name: s.node_name,
            active_pods: s.active_pods,
            migration_state: s.migration_state,
            memory: s.memory,
        },
    }))
}

fn pod(metadata: ObjectMeta, spec: AnySpec, s: AnyStatus) -> Object {
    Object::Pod(Box::new(Pod {
        metadata,
        spec: PodSpec {
            node_name: spec.node_name,
            containers: spec.containers,
            init_containers: spec.init_containers,
        },
        status: PodStatus {
            phase: s.phase.as_deref().map(PodPhase::from),
            container_statuses: s.container_statuses,
            init_container_statuses: s.init_container_statuses,
        },
    }))
}

fn node(metadata: ObjectMeta, s: AnyStatus) -> Object {
    Object::Node(Box::new(Node {
        metadata,
        status: NodeStatus {
            capacity: s.capacity,
            allocatable: s.allocatable,
            node_info: s.node_info,
        },
    }))
}

fn kubevirt(metadata: ObjectMeta, spec: AnySpec, s: AnyStatus) -> Object {
    Object::KubeVirt(Box::new(KubeVirt {
        metadata,
        spec: KubeVirtSpec {
            configuration: spec.configuration.unwrap_or_default(),
        },
        status: KubeVirtStatus {
            observed_kube_virt_version: s.observed_kube_virt_version,
            phase: s.phase,
        },
    }))
}

fn instancetype(kind: &str, metadata: ObjectMeta, spec: AnySpec) -> Object {
    let spec = InstancetypeSpec {
        memory: spec.memory.unwrap_or_default(),
    };
    Object::Instancetype(Box::new(if kind == "VirtualMachineInstancetype" {
        VirtualMachineInstancetype { metadata, spec }.into()
    } else {
        VirtualMachineClusterInstancetype { metadata, spec }.into()
    }))
}

/// The kind a support-bundle file holds, from its name (`virtualmachines.yaml` → VirtualMachine).
pub fn kind_from_file_name(name: &str) -> Option<&'static str> {
    let stem = name.rsplit('/').next()?.split('.').next()?;
    Some(match stem {
        "virtualmachines" => "VirtualMachine",
        "virtualmachineinstances" => "VirtualMachineInstance",
        "pods" => "Pod",
        "nodes" => "Node",
        "kubevirts" => "KubeVirt",
        "settings" => "Setting",
        "resourcequotas" => "ResourceQuota",
        "namespaces" => "Namespace",
        "virtualmachineinstancetypes" => "VirtualMachineInstancetype",
        "virtualmachineclusterinstancetypes" => "VirtualMachineClusterInstancetype",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_multi_document_and_lists() {
        let text = r#"
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: a, namespace: ns}
spec:
  template:
    spec:
      domain:
        memory: {guest: 1948Mi}
        resources: {limits: {memory: 2Gi}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: ns}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
---
"#;
        let objs = parse(text, "x.yaml", None).unwrap();
        assert_eq!(objs.len(), 2);
        let Object::Vm(vm) = &objs[0] else { panic!() };
        assert_eq!(
            vm.spec
                .template
                .spec
                .domain
                .memory
                .as_ref()
                .unwrap()
                .guest
                .as_ref()
                .unwrap()
                .as_str(),
            "1948Mi"
        );
        assert!(matches!(objs[1], Object::Pod(_)));
    }

    #[test]
    fn json_lists_with_kindless_items_and_numbers() {
        let text = r#"{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachineInstanceList","items":[
            {"metadata":{"name":"v","namespace":"n"},"spec":{"domain":{"resources":{"requests":{"memory":1073741824}}}}}]}"#;
        let objs = parse(text, "x.json", None).unwrap();
        let Object::Vmi(vmi) = &objs[0] else {
            panic!("{objs:?}")
        };
        assert_eq!(
            vmi.spec
                .domain
                .resources
                .requests
                .memory
                .as_ref()
                .unwrap()
                .bytes()
                .unwrap(),
            1 << 30
        );
    }

    #[test]
    fn kind_hint_from_file_name() {
        let text = "items:\n- metadata: {name: ratio}\n  value: \"1.5\"\n";
        let objs = parse(text, "settings.yaml", kind_from_file_name("settings.yaml")).unwrap();
        assert!(
            matches!(&objs[0], Object::HarvesterSetting(s) if s.value.as_deref() == Some("1.5"))
        );
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        let e = parse(
            "kind: VirtualMachine\nmetadata: [unclosed",
            "bad.yaml",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.yaml: cannot read document 1 as YAML/JSON"),
            "{e}"
        );
        let e = parse("{\"kind\": ", "bad.json", None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.json: cannot read document 1"),
            "{e}"
        );
        let e = parse(
            "kind: VirtualMachine\nmetadata: {name: x}\nspec: {running: maybe}\n",
            "s.yaml",
            None,
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(e.contains("boolean") && e.contains("line 3"), "{e}");
    }

    /// Go reads an explicit `null` as the zero value (an empty list, map or struct); KubeVirt
    /// stores such VMIs, and one must not fail a folder.
    #[test]
    fn explicit_nulls_are_empty() {
        let vmi = r#"{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
          "metadata": {"name": "n", "namespace": "ns", "labels": null, "annotations": null,
                       "ownerReferences": null},
          "spec": {"domain": {"cpu": null, "memory": null, "resources": {"requests": null,
                   "limits": null}, "devices": {"gpus": null, "hostDevices": null,
                   "interfaces": null, "disks": null, "tpm": null}},
                   "volumes": null, "networks": null, "architecture": null},
          "status": {"activePods": null, "phase": null}}"#;
        let objs = parse(vmi, "n.json", None).unwrap();
        let Object::Vmi(v) = &objs[0] else { panic!() };
        assert!(v.spec.volumes.is_empty() && v.spec.domain.devices.gpus.is_empty());
        assert!(v.status.active_pods.is_empty() && v.metadata.labels.is_empty());
        let yaml = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: ~\nstatus:\n  containerStatuses: ~\n---\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: null}\n---\nkind: VirtualMachine\nmetadata: {name: vm}\nspec: {template: {metadata: null, spec: {domain: {devices: null, resources: null}}}}\nstatus: null\n";
        let objs = parse(yaml, "n.yaml", None).unwrap();
        assert_eq!(objs.len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s, "p", None);
        }
    }
}
