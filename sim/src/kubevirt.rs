//! KubeVirt's controllers: a running VM gets a VMI (defaulted like KubeVirt does) and a
//! virt-launcher pod on a node; restart makes a new VMI and pod; a failed VMI is started again.

use serde_json::{json, Value};

use crate::keys;
use crate::units::{bytes_of, spell};

use super::launcher;
use super::resources::{PODS, VIRTUAL_MACHINES, VIRTUAL_MACHINE_INSTANCES};
use super::scenario::VmSpec;
use super::status::ApiError;
use super::store::meta_str;
use super::world::{ClusterConfig, Scheduled, World};

/// The VirtualMachine object a scenario VM describes (before the Harvester webhook).
pub fn vm_object(vm: &VmSpec, cfg: &ClusterConfig) -> Value {
    let mut resources =
        json!({"limits": {"cpu": vm.cpus.to_string()}, "requests": {"cpu": "125m"}});
    if vm.no_limit {
        resources["requests"]["memory"] = json!(vm.memory.as_str());
        resources["limits"] = json!({"cpu": vm.cpus.to_string()});
    } else {
        resources["limits"]["memory"] = json!(vm.memory.as_str());
    }
    if let Some(r) = &vm.request {
        resources["requests"]["memory"] = json!(r.as_str());
    }
    let mut domain = json!({
        "cpu": {"cores": vm.cpus, "sockets": 1, "threads": 1},
        "machine": {"type": "q35"},
        "resources": null,
        "devices": {"disks": [{"name": "disk-0", "disk": {"bus": "virtio"}, "bootOrder": 1}],
                    "interfaces": [{"name": "default", "masquerade": {}, "model": "virtio"}]},
    });
    // Values are moved in after json!, which would copy them by serializing.
    domain["resources"] = resources;
    if let Some(g) = &vm.guest {
        domain["memory"] = json!({"guest": g.as_str()});
    } else if vm.no_limit {
        domain["memory"] = json!({"guest": vm.memory.as_str()});
    }
    let mut annotations = json!({});
    if let Some(r) = &vm.reserved_memory {
        annotations[keys::HARVESTER_RESERVED_MEMORY] = json!(r.as_str());
    }
    let template_annotations = features(vm, &mut domain);
    let os = if cfg.harvester.is_some() {
        "harvesterhci.io/os"
    } else {
        "vm.kubevirt.io/os"
    };
    let mut obj = json!({
        "metadata": {"name": vm.name, "namespace": vm.namespace, "annotations": null,
                     "labels": {os: "linux"}},
        "spec": {
            "runStrategy": vm.run_strategy,
            "template": {
                "metadata": {"labels": {"harvesterhci.io/vmName": vm.name, "kubevirt.io/domain": vm.name}},
                "spec": {
                    "domain": null,
                    "networks": [{"name": "default", "pod": {}}],
                    "volumes": [{"name": "disk-0", "persistentVolumeClaim": {"claimName": format!("{}-disk-0", vm.name)}}],
                    "evictionStrategy": "LiveMigrateIfPossible",
                    "terminationGracePeriodSeconds": 120
                }
            }
        },
        "status": {}
    });
    obj["metadata"]["annotations"] = annotations;
    for fs in &vm.virtiofs {
        if let Some(volumes) = obj["spec"]["template"]["spec"]["volumes"].as_array_mut() {
            volumes.push(json!({"name": fs, "persistentVolumeClaim": {"claimName": format!("{}-{fs}", vm.name)}}));
        }
    }
    if let Some(a) = template_annotations {
        obj["spec"]["template"]["metadata"]["annotations"] = a;
    }
    obj["spec"]["template"]["spec"]["domain"] = domain;
    super::hotplug::vm_features(vm, &mut obj);
    obj
}

/// The scenario's features in the domain (hugepages, virtiofs, dedicated CPUs, console log
/// off); the template's annotations when it has hook sidecars.
fn features(vm: &VmSpec, domain: &mut Value) -> Option<Value> {
    if let Some(size) = &vm.hugepages {
        if domain["memory"].is_null() {
            domain["memory"] = json!({"guest": vm.memory.as_str()});
        }
        domain["memory"]["hugepages"] = json!({"pageSize": size});
    }
    if !vm.virtiofs.is_empty() {
        let fs: Vec<Value> = vm
            .virtiofs
            .iter()
            .map(|n| json!({"name": n, "virtiofs": {}}))
            .collect();
        domain["devices"]["filesystems"] = Value::Array(fs);
    }
    if vm.dedicated_cpus {
        domain["cpu"]["dedicatedCpuPlacement"] = json!(true);
    }
    if vm.console_log_off {
        domain["devices"]["logSerialConsole"] = json!(false);
    }
    (vm.hook_sidecars > 0).then(|| {
        let hooks: Vec<Value> = (0..vm.hook_sidecars)
            .map(|_| json!({"image": "quay.io/kubevirt/sidecar-shim:v1.3.0", "args": ["--version", "v1alpha3"]}))
            .collect();
        json!({keys::HOOK_SIDECARS: Value::Array(hooks).to_string()})
    })
}

/// Run a VM through admission (Harvester webhook) and store it, then reconcile.
pub fn create_vm(w: &mut World, vm: Value) -> Result<Value, ApiError> {
    let (ns, name) = store_vm(w, vm)?;
    let stored = w.store.get(&VIRTUAL_MACHINES, &ns, &name).cloned();
    stored.ok_or_else(|| ApiError::internal("VM vanished while it was created"))
}

/// [`create_vm`] without copying the result back; returns its namespace and name.
pub fn store_vm(w: &mut World, mut vm: Value) -> Result<(String, String), ApiError> {
    admit(w, &mut vm, None)?;
    let now = w.timestamp();
    let stored = w.store.insert(&VIRTUAL_MACHINES, vm, &now)?;
    let (ns, name) = (
        meta_str(stored, "namespace").to_string(),
        meta_str(stored, "name").to_string(),
    );
    reconcile_vm(w, &ns, &name);
    Ok((ns, name))
}

/// Admission for VM writes (the Harvester webhook in that flavour).
pub fn admit(w: &World, vm: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    if let Some(h) = &w.config.harvester {
        super::harvester::admit_vm(vm, old, h)?;
    }
    Ok(())
}

fn strategy(vm: &Value) -> String {
    if let Some(s) = vm["spec"]["runStrategy"].as_str() {
        return s.to_string();
    }
    match vm["spec"]["running"].as_bool() {
        Some(true) => "Always".into(),
        _ => "Halted".into(),
    }
}

/// Whether the VM should have a VMI now.
fn wants_running(vm: &Value) -> bool {
    matches!(strategy(vm).as_str(), "Always" | "RerunOnFailure" | "Once")
}

fn restarts_on_failure(vm: &Value) -> bool {
    matches!(strategy(vm).as_str(), "Always" | "RerunOnFailure")
}

/// Bring a VM's VMI in line with its run strategy, then update its status.
pub fn reconcile_vm(w: &mut World, ns: &str, name: &str) {
    let (ns, name) = (ns.to_string(), name.to_string());
    let Some(vm) = w.store.get(&VIRTUAL_MACHINES, &ns, &name) else {
        stop_vmi(w, &ns, &name);
        return;
    };
    let wants = wants_running(vm);
    let has_vmi = w
        .store
        .get(&VIRTUAL_MACHINE_INSTANCES, &ns, &name)
        .is_some();
    let waiting = w.scheduled.iter().any(|(_, s)| {
        *s == Scheduled::StartVm {
            ns: ns.clone(),
            name: name.clone(),
        }
    });
    match (wants, has_vmi) {
        (true, false) if !waiting => {
            if let Some(vm) = w.store.get(&VIRTUAL_MACHINES, &ns, &name).cloned() {
                start_vmi(w, &vm);
            }
        }
        (false, true) => stop_vmi(w, &ns, &name),
        _ => {}
    }
    update_vm_status(w, &ns, &name);
}

/// KubeVirt's defaulting of a VMI spec from the VM template (releases before v1.7 always write
/// a memory request).
pub fn default_vmi_spec(template_spec: &Value) -> Value {
    let mut spec = template_spec.clone();
    let d = &mut spec["domain"];
    let bytes = |v: &Value| v.as_str().and_then(bytes_of);
    let guest = bytes(&d["memory"]["guest"]);
    let request = bytes(&d["resources"]["requests"]["memory"]);
    let limit = bytes(&d["resources"]["limits"]["memory"]);
    // Like KubeVirt's setDefaultResourceRequests: the limit first, else the guest (at the default
    // memoryOvercommit of 100).
    if request.is_none() {
        if let Some(r) = limit.or(guest) {
            d["resources"]["requests"]["memory"] = json!(spell(r));
        }
    }
    if guest.is_none() {
        if let Some(g) = request.or(limit) {
            d["memory"]["guest"] = json!(spell(g));
        }
    }
    if d["firmware"]["uuid"].is_null() {
        d["firmware"]["uuid"] = json!(super::store::new_uid());
    }
    spec
}

fn pick_node(w: &mut World, ns: &str, name: &str) -> Option<String> {
    let planned = w
        .plans
        .get(&(ns.to_string(), name.to_string()))
        .and_then(|p| p.node.clone());
    if let Some(n) = planned.filter(|n| w.nodes.contains_key(n)) {
        return Some(n);
    }
    if w.nodes.is_empty() {
        return None;
    }
    w.round_robin += 1;
    w.nodes.keys().nth(w.round_robin % w.nodes.len()).cloned()
}

/// Create the VMI of a VM and its virt-launcher pod(s).
pub fn start_vmi(w: &mut World, vm: &Value) {
    let ns = meta_str(vm, "namespace").to_string();
    let name = meta_str(vm, "name").to_string();
    let Some(node) = pick_node(w, &ns, &name) else {
        return;
    };
    let template = super::hotplug::with_instancetype(w, vm);
    let spec = default_vmi_spec(&template);
    let guest = spec["domain"]["memory"]["guest"].clone();
    let mut labels = vm["spec"]["template"]["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["kubevirt.io/nodeName"] = json!(node);
    let mut vmi = json!({
        "metadata": {"name": name, "namespace": ns, "labels": null,
            "annotations": {"kubevirt.io/latest-observed-api-version": "v1", "kubevirt.io/storage-observed-api-version": "v1",
                            "kubevirt.io/vm-generation": vm["metadata"]["generation"].as_i64().unwrap_or(1).to_string()},
            "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": name,
                                  "uid": meta_str(vm, "uid"), "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"]},
        "spec": null,
        "status": {"phase": "Scheduling", "guestOSInfo": {}, "memory": {"guestAtBoot": guest, "guestCurrent": guest, "guestRequested": guest}}
    });
    vmi["metadata"]["labels"] = labels;
    // Template annotations reach the VMI (hook sidecars among them), as KubeVirt copies them.
    if let Some(a) = vm["spec"]["template"]["metadata"]["annotations"].as_object() {
        for (k, v) in a {
            vmi["metadata"]["annotations"][k] = v.clone();
        }
    }
    vmi["spec"] = spec;
    let now = w.timestamp();
    let Ok(vmi) = w.store.create(&VIRTUAL_MACHINE_INSTANCES, vmi, &now) else {
        return;
    };
    let plan = w.plans.get(&(ns.clone(), name.clone())).cloned();
    super::hotplug::schedule(w, &vmi, plan.as_ref());
    let migrate_to = plan
        .as_ref()
        .and_then(|p| p.migrate_to.clone())
        .filter(|t| *t != node && w.nodes.contains_key(t));
    let Some(source) = launcher::create_launcher_pod(w, &vmi, &node, plan.as_ref(), false) else {
        return;
    };
    let mut active = json!({source.0.clone(): node});
    let mut status = vmi["status"].clone();
    if let Some(target) = &migrate_to {
        if let Some((uid, pod_name)) =
            launcher::create_launcher_pod(w, &vmi, target, plan.as_ref(), true)
        {
            active[uid] = json!(target);
            status["migrationState"] = json!({
                "sourceNode": node, "targetNode": target, "targetPod": pod_name, "mode": "PreCopy",
                "startTimestamp": w.timestamp(), "completed": false, "failed": false,
                "migrationUid": super::store::new_uid()
            });
            status["migrationMethod"] = json!("LiveMigration");
        }
    }
    // The pod runs; the VMI is `Running` once virt-handler started the domain in it.
    let booting = w.domain_start_delay > 0.0;
    status["phase"] = json!(if booting { "Scheduled" } else { "Running" });
    status["nodeName"] = json!(node);
    status["activePods"] = active;
    status["qosClass"] = json!(w.launchers.get(&source.0).map_or("Burstable", |l| l.qos));
    status["launcherContainerImageVersion"] = json!(launcher::launcher_image(&w.config));
    if w.config.version >= crate::version::Version::new(1, 8, 0) {
        if let Some(l) = w.launchers.get(&source.0) {
            status["memory"]["memoryOverhead"] = json!(l.overhead.to_string());
        }
    }
    status["conditions"] = ready_conditions(!booting, &w.timestamp());
    status["interfaces"] =
        json!([{"name": "default", "ipAddress": w.alloc_ip(), "interfaceName": "eth0"}]);
    set_status(w, &VIRTUAL_MACHINE_INSTANCES, &ns, &name, status);
    if booting {
        let vmi_uid = meta_str(&vmi, "uid").to_string();
        let delay = w.domain_start_delay;
        w.schedule(delay, Scheduled::DomainStarted { ns, name, vmi_uid });
    }
}

fn ready_conditions(ready: bool, since: &str) -> Value {
    let status = if ready { "True" } else { "False" };
    json!([{"type": "Ready", "status": status, "lastTransitionTime": since},
           {"type": "LiveMigratable", "status": "True"}])
}

/// virt-handler started the domain of the VMI with `vmi_uid` (if that VMI still waits for it).
pub fn domain_started(w: &mut World, ns: &str, name: &str, vmi_uid: &str) {
    let Some(vmi) = w.store.get(&VIRTUAL_MACHINE_INSTANCES, ns, name) else {
        return;
    };
    if meta_str(vmi, "uid") != vmi_uid || vmi["status"]["phase"] != "Scheduled" {
        return;
    }
    // Its pod was deleted meanwhile (KubeVirt notices after `pod_gone_notice`): no domain starts.
    let pod_runs = w
        .launchers
        .values()
        .any(|l| l.vmi_uid == vmi_uid && l.killed_at.is_none());
    if !pod_runs {
        return;
    }
    let mut status = vmi["status"].clone();
    status["phase"] = json!("Running");
    status["conditions"] = ready_conditions(true, &w.timestamp());
    set_status(w, &VIRTUAL_MACHINE_INSTANCES, ns, name, status);
    update_vm_status(w, ns, name);
}

/// Replace the status of a stored object.
pub fn set_status(
    w: &mut World,
    rt: &super::resources::ResourceType,
    ns: &str,
    name: &str,
    status: Value,
) {
    w.store.set_field(rt, ns, name, "status", status);
}

/// Delete a VM's VMI and its launcher pods.
pub fn stop_vmi(w: &mut World, ns: &str, name: &str) {
    let Some(vmi) = w.store.get(&VIRTUAL_MACHINE_INSTANCES, ns, name).cloned() else {
        return;
    };
    let uid = meta_str(&vmi, "uid").to_string();
    let pods: Vec<String> = w
        .store
        .list(&PODS, Some(ns))
        .filter(|p| p["metadata"]["labels"][keys::CREATED_BY].as_str() == Some(uid.as_str()))
        .map(|p| meta_str(p, "name").to_string())
        .collect();
    for p in pods {
        if let Some(pod) = w.store.delete(&PODS, ns, &p) {
            w.launchers.remove(meta_str(&pod, "uid"));
        }
    }
    w.store.delete(&VIRTUAL_MACHINE_INSTANCES, ns, name);
}

/// `PUT .../virtualmachines/{name}/restart`: a new VMI and pod from the current template.
pub fn restart(w: &mut World, ns: &str, name: &str) -> Result<(), ApiError> {
    let vm = w
        .store
        .get(&VIRTUAL_MACHINES, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&VIRTUAL_MACHINES, name))?;
    let s = strategy(&vm);
    if s == "Halted" || s == "Once" {
        return Err(ApiError::conflict_msg(format!(
            "{s} does not support manual restart requests"
        )));
    }
    if w.store.get(&VIRTUAL_MACHINE_INSTANCES, ns, name).is_none() {
        return Err(ApiError::conflict_msg("VM is not running"));
    }
    stop_vmi(w, ns, name);
    w.scheduled.retain(|(_, s)| {
        *s != Scheduled::StartVm {
            ns: ns.into(),
            name: name.into(),
        }
    });
    start_vmi(w, &vm);
    update_vm_status(w, ns, name);
    Ok(())
}

/// `start`/`stop` subresources: switch the run strategy.
pub fn set_running(w: &mut World, ns: &str, name: &str, running: bool) -> Result<(), ApiError> {
    let mut vm = w
        .store
        .get(&VIRTUAL_MACHINES, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&VIRTUAL_MACHINES, name))?;
    let s = strategy(&vm);
    if running && wants_running(&vm) {
        return Err(ApiError::conflict_msg(format!(
            "{s} does not support manual start requests: VM is already running"
        )));
    }
    if !running && s == "Halted" {
        return Err(ApiError::conflict_msg("VM is not running"));
    }
    if let Some(spec) = vm["spec"].as_object_mut() {
        spec.remove("running");
    }
    vm["spec"]["runStrategy"] = json!(if running { "Always" } else { "Halted" });
    w.store.replace(&VIRTUAL_MACHINES, vm)?;
    reconcile_vm(w, ns, name);
    Ok(())
}

/// A VMI failed (qemu killed, pod gone): mark it, and restart the VM after a back-off when its
/// run strategy says so.
pub fn vmi_failed(w: &mut World, ns: &str, name: &str, reason: &str) {
    if let Some(vmi) = w.store.get(&VIRTUAL_MACHINE_INSTANCES, ns, name).cloned() {
        let mut status = vmi["status"].clone();
        status["phase"] = json!("Failed");
        status["reason"] = json!(reason);
        status["conditions"] = json!([{"type": "Ready", "status": "False", "reason": reason, "lastTransitionTime": w.timestamp()}]);
        set_status(w, &VIRTUAL_MACHINE_INSTANCES, ns, name, status);
    }
    let failed_uid = w
        .store
        .get(&VIRTUAL_MACHINE_INSTANCES, ns, name)
        .map(|v| meta_str(v, "uid").to_string());
    if let Some(mut vm) = w.store.get(&VIRTUAL_MACHINES, ns, name).cloned() {
        let n = vm["status"]["startFailure"]["consecutiveFailCount"]
            .as_i64()
            .unwrap_or(0);
        vm["status"]["startFailure"] =
            json!({"consecutiveFailCount": n + 1, "lastFailedVMIUID": failed_uid});
        let _ = w.store.replace(&VIRTUAL_MACHINES, vm);
    }
    if w.store
        .get(&VIRTUAL_MACHINES, ns, name)
        .is_some_and(restarts_on_failure)
    {
        let backoff = w.restart_backoff;
        w.schedule(
            backoff,
            Scheduled::StartVm {
                ns: ns.into(),
                name: name.into(),
            },
        );
    }
    update_vm_status(w, ns, name);
}

/// KubeVirt noticed a deleted launcher pod: its VMI fails, if it is still the same VMI and has
/// not failed meanwhile (qemu killed before the pod went).
pub fn launcher_pod_gone(w: &mut World, ns: &str, name: &str, vmi_uid: &str) {
    let same = w
        .store
        .get(&VIRTUAL_MACHINE_INSTANCES, ns, name)
        .is_some_and(|v| {
            meta_str(v, "uid") == vmi_uid
                && (v["status"]["phase"] == "Running" || v["status"]["phase"] == "Scheduled")
        });
    if same {
        vmi_failed(w, ns, name, "PodDeleted");
    }
}

/// A scheduled start after a failure: drop the failed VMI and pods, start anew.
pub fn start_after_failure(w: &mut World, ns: &str, name: &str) {
    stop_vmi(w, ns, name);
    if let Some(vm) = w.store.get(&VIRTUAL_MACHINES, ns, name).cloned() {
        if restarts_on_failure(&vm) {
            start_vmi(w, &vm);
        }
    }
    update_vm_status(w, ns, name);
}

/// `printableStatus`, `ready`, `created`, conditions (RestartRequired when the template changed
/// since the VMI started).
pub fn update_vm_status(w: &mut World, ns: &str, name: &str) {
    let Some(vm) = w.store.get(&VIRTUAL_MACHINES, ns, name) else {
        return;
    };
    let vmi = w.store.get(&VIRTUAL_MACHINE_INSTANCES, ns, name);
    let phase = vmi
        .and_then(|v| v["status"]["phase"].as_str())
        .unwrap_or("");
    let migrating = vmi.is_some_and(|v| v["status"]["migrationState"]["completed"] == json!(false));
    let waiting = w.scheduled.iter().any(|(_, s)| {
        *s == Scheduled::StartVm {
            ns: ns.into(),
            name: name.into(),
        }
    });
    let prev_restarts = vm["status"]["startFailure"]["consecutiveFailCount"]
        .as_i64()
        .unwrap_or(0);
    let (printable, ready) = match (phase, vmi.is_some()) {
        ("Running", _) if migrating => ("Migrating", true),
        ("Running", _) => ("Running", true),
        ("Failed", _) if waiting && prev_restarts >= 2 => ("CrashLoopBackOff", false),
        ("Failed", _) => ("Starting", false),
        (_, true) => ("Starting", false),
        (_, false) if waiting => ("Starting", false),
        (_, false) => ("Stopped", false),
    };
    let mut status = vm["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    status["printableStatus"] = json!(printable);
    status["ready"] = json!(ready);
    status["created"] = json!(vmi.is_some());
    let mut conditions =
        vec![json!({"type": "Ready", "status": if ready { "True" } else { "False" }})];
    let template_changed = vmi.is_some_and(|v| {
        v["metadata"]["annotations"]["kubevirt.io/vm-generation"]
            .as_str()
            .and_then(|g| g.parse::<i64>().ok())
            .is_some_and(|g| g != vm["metadata"]["generation"].as_i64().unwrap_or(g))
    });
    if template_changed {
        conditions.push(json!({"type": "RestartRequired", "status": "True",
            "message": "a non-live-updatable field was changed in the template spec"}));
    }
    status["conditions"] = Value::Array(conditions);
    set_status(w, &VIRTUAL_MACHINES, ns, name, status);
}

/// After a write to a VM: record the template generation on first start and reconcile.
pub fn on_vm_written(w: &mut World, ns: &str, name: &str) {
    reconcile_vm(w, ns, name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_defaults_to_the_limit_before_the_guest() {
        let spec = json!({"domain": {"memory": {"guest": "3584Mi"}, "resources": {"limits": {"memory": "4Gi"}}}});
        let d = default_vmi_spec(&spec);
        assert_eq!(d["domain"]["resources"]["requests"]["memory"], "4Gi");
        assert_eq!(d["domain"]["memory"]["guest"], "3584Mi");
        let only_guest = json!({"domain": {"memory": {"guest": "2Gi"}}});
        assert_eq!(
            default_vmi_spec(&only_guest)["domain"]["resources"]["requests"]["memory"],
            "2Gi"
        );
    }

    fn phase(w: &World, ns: &str, name: &str) -> (String, String) {
        let vmi = w.store.get(&VIRTUAL_MACHINE_INSTANCES, ns, name).unwrap();
        let phase = vmi["status"]["phase"].as_str().unwrap_or("").to_string();
        (phase, meta_str(vmi, "uid").to_string())
    }

    #[test]
    fn a_started_vmi_runs_only_after_its_launcher_pod() {
        let scenario = crate::scenario::Scenario::generated(1, 1);
        let mut w = World::new(&scenario, std::env::temp_dir()).unwrap();
        let l = w.launchers.values().next().unwrap();
        let (ns, name, first_pod) = (l.namespace.clone(), l.vm_name.clone(), l.pod_uid.clone());
        assert_eq!(phase(&w, &ns, &name).0, "Running", "the scenario's VMs run");
        w.domain_start_delay = 1.0;
        restart(&mut w, &ns, &name).unwrap();
        let (now, uid) = phase(&w, &ns, &name);
        assert_eq!(now, "Scheduled", "the domain is not started yet");
        let pod = w.launchers.values().find(|l| l.vmi_uid == uid).unwrap();
        assert_ne!(pod.pod_uid, first_pod);
        let pod = w.store.get(&PODS, &ns, &pod.pod_name).unwrap();
        assert_eq!(pod["status"]["phase"], "Running", "the pod runs first");
        let started = Scheduled::DomainStarted {
            ns: ns.clone(),
            name: name.clone(),
            vmi_uid: uid.clone(),
        };
        assert!(w.scheduled.iter().any(|(_, s)| *s == started));
        domain_started(&mut w, &ns, &name, "another-vmi");
        assert_eq!(phase(&w, &ns, &name).0, "Scheduled");
        domain_started(&mut w, &ns, &name, &uid);
        assert_eq!(phase(&w, &ns, &name), ("Running".to_string(), uid));
        let vm = w.store.get(&VIRTUAL_MACHINES, &ns, &name).unwrap();
        assert_eq!(vm["status"]["printableStatus"], "Running");
    }
}
