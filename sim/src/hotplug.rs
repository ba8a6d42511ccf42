//! Memory hotplug and instance types, as KubeVirt does them (pkg/virt-controller/watch/vm.go
//! handleMemoryHotplugRequest and pkg/instancetype/apply/memory.go, v1.1–v1.8), written for the
//! simulator from those rules:
//!
//! - a VM naming a cluster instance type has no memory in its template; its VMI gets the
//!   instance type's guest, and with `overcommitPercent` p a request of guest × (1 − p/100)
//!   computed in float32;
//! - a hotplug: the user raises the template's guest; the VMI's guest, request and limit rise by
//!   the same amount, a new launcher pod sized from them starts (a migration target), and when
//!   the migration ends the old pod goes and qemu has the new guest (`status.memory`).

use serde_json::{json, Value};

use crate::keys;
use crate::units::{bytes_of, spell};

use super::kubevirt::set_status;
use super::launcher;
use super::resources::{
    PODS, VIRTUAL_MACHINES, VIRTUAL_MACHINE_CLUSTER_INSTANCETYPES, VIRTUAL_MACHINE_INSTANCES,
};
use super::scenario::{Scenario, VmSpec};
use super::status::ApiError;
use super::store::meta_str;
use super::workload::GuestMappings;
use super::world::{Scheduled, VmPlan, World};

fn bytes(v: &Value) -> Option<i64> {
    v.as_str().and_then(bytes_of)
}

/// The scenario's instance types, served at `instancetype.kubevirt.io/v1beta1`.
pub fn create_instancetypes(w: &mut World, s: &Scenario, now: &str) -> Result<(), ApiError> {
    for d in &s.instancetypes {
        let obj = json!({
            "metadata": {"name": d.name, "labels": {"instancetype.kubevirt.io/vendor": "vmmem-sim"}},
            "spec": {"cpu": {"guest": d.cpus},
                     "memory": {"guest": d.guest.as_str(), "overcommitPercent": d.overcommit_percent}}
        });
        w.store
            .create(&VIRTUAL_MACHINE_CLUSTER_INSTANCETYPES, obj, now)?;
    }
    Ok(())
}

/// What a scenario VM's features change in its VirtualMachine: `spec.instancetype` (and no
/// memory in the template), `memory.maxGuest` with Harvester's hotplug annotation.
pub fn vm_features(vm: &VmSpec, obj: &mut Value) {
    if let Some(it) = &vm.instancetype {
        let domain = &mut obj["spec"]["template"]["spec"]["domain"];
        for side in ["requests", "limits"] {
            if let Some(r) = domain["resources"][side].as_object_mut() {
                r.remove("memory");
            }
        }
        if let Some(m) = domain.as_object_mut() {
            m.remove("memory");
            m.remove("cpu");
        }
        obj["spec"]["instancetype"] =
            json!({"kind": "VirtualMachineClusterInstancetype", "name": it});
    }
    if let Some(h) = &vm.hotplug {
        obj["spec"]["template"]["spec"]["domain"]["memory"]["maxGuest"] =
            json!(h.max_guest.as_str());
        obj["metadata"]["annotations"][keys::HARVESTER_HOTPLUG] = json!("true");
    }
}

/// The VM's template with its instance type's memory applied (the template when it names none
/// or the instance type is not there).
pub fn with_instancetype(w: &World, vm: &Value) -> Value {
    let mut spec = vm["spec"]["template"]["spec"].clone();
    let Some(name) = vm["spec"]["instancetype"]["name"].as_str() else {
        return spec;
    };
    let Some(it) = w
        .store
        .get(&VIRTUAL_MACHINE_CLUSTER_INSTANCETYPES, "", name)
    else {
        return spec;
    };
    let Some(guest) = bytes(&it["spec"]["memory"]["guest"]) else {
        return spec;
    };
    let d = &mut spec["domain"];
    d["memory"]["guest"] = it["spec"]["memory"]["guest"].clone();
    if let Some(cpus) = it["spec"]["cpu"]["guest"].as_u64() {
        d["cpu"] = json!({"cores": 1, "sockets": cpus, "threads": 1});
    }
    let percent = it["spec"]["memory"]["overcommitPercent"]
        .as_u64()
        .unwrap_or(0);
    if percent > 0 {
        // In float32 throughout, then truncated, as KubeVirt's Go code does.
        let factor = 1.0f32 - percent as f32 / 100.0f32;
        let request = (guest as f32 * factor) as i64;
        d["resources"]["requests"]["memory"] = json!(request.to_string());
    }
    spec
}

/// qemu's guest RAM mappings for a hotplug-capable VMI: the boot RAM (`guestAtBoot`) and a
/// virtio-mem device of maxGuest − guestAtBoot.
pub fn guest_mappings(vmi: &Value) -> Option<GuestMappings> {
    let max = bytes(&vmi["spec"]["domain"]["memory"]["maxGuest"])?;
    let boot = bytes(&vmi["status"]["memory"]["guestAtBoot"])
        .or_else(|| bytes(&vmi["spec"]["domain"]["memory"]["guest"]))?;
    (max > boot).then_some(GuestMappings {
        boot,
        virtio_mem: max - boot,
    })
}

/// After a VMI starts: its VM's hotplug, if the plan has one.
pub fn schedule(w: &mut World, vmi: &Value, plan: Option<&VmPlan>) {
    let Some(h) = plan.and_then(|p| p.hotplug.as_ref()) else {
        return;
    };
    let what = Scheduled::Hotplug {
        ns: meta_str(vmi, "namespace").to_string(),
        name: meta_str(vmi, "name").to_string(),
        vmi_uid: meta_str(vmi, "uid").to_string(),
    };
    w.schedule(h.after_seconds, what);
}

/// The VMI named, if it is still the one with `uid` (a restart makes another).
fn same_vmi(w: &World, ns: &str, name: &str, uid: &str) -> Option<Value> {
    w.store
        .get(&VIRTUAL_MACHINE_INSTANCES, ns, name)
        .filter(|v| meta_str(v, "uid") == uid)
        .cloned()
}

/// The user raises the guest; KubeVirt raises the VMI's guest, request and limit and starts the
/// migration to a pod sized for them.
pub fn hotplug(w: &mut World, ns: &str, name: &str, vmi_uid: &str) {
    let Some(mut vmi) = same_vmi(w, ns, name, vmi_uid) else {
        return;
    };
    let plan = w.plans.get(&(ns.to_string(), name.to_string())).cloned();
    let Some(h) = plan.as_ref().and_then(|p| p.hotplug.clone()) else {
        return;
    };
    let (Ok(to), Some(now)) = (
        h.to.bytes(),
        bytes(&vmi["spec"]["domain"]["memory"]["guest"]),
    ) else {
        return;
    };
    let delta = to - now;
    if delta <= 0 {
        return;
    }
    if let Some(mut vm) = w.store.get(&VIRTUAL_MACHINES, ns, name).cloned() {
        vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = json!(spell(to));
        let _ = w.store.replace(&VIRTUAL_MACHINES, vm);
    }
    let d = &mut vmi["spec"]["domain"];
    d["memory"]["guest"] = json!(spell(to));
    for side in ["requests", "limits"] {
        if let Some(b) = bytes(&d["resources"][side]["memory"]) {
            d["resources"][side]["memory"] = json!(spell(b + delta));
        }
    }
    vmi["status"]["memory"]["guestRequested"] = json!(spell(to));
    let source = vmi["status"]["nodeName"].as_str().unwrap_or("").to_string();
    let target = h.target_node.clone().unwrap_or_else(|| source.clone());
    let Ok(vmi) = w.store.replace(&VIRTUAL_MACHINE_INSTANCES, vmi) else {
        return;
    };
    let Some((uid, pod)) = launcher::create_launcher_pod(w, &vmi, &target, plan.as_ref(), true)
    else {
        return;
    };
    let mut status = vmi["status"].clone();
    status["activePods"][uid] = json!(target);
    status["migrationState"] = json!({
        "sourceNode": source, "targetNode": target, "targetPod": pod, "mode": "PreCopy",
        "startTimestamp": w.timestamp(), "completed": false, "failed": false,
        "migrationUid": super::store::new_uid()
    });
    status["migrationMethod"] = json!("LiveMigration");
    set_status(w, &VIRTUAL_MACHINE_INSTANCES, ns, name, status);
    let done = Scheduled::HotplugDone {
        ns: ns.to_string(),
        name: name.to_string(),
        vmi_uid: vmi_uid.to_string(),
    };
    w.schedule(h.migration_seconds, done);
}

/// The migration ends: the target pod runs the VM, the source pod goes, qemu has the new guest.
pub fn hotplug_done(w: &mut World, ns: &str, name: &str, vmi_uid: &str) {
    let Some(vmi) = same_vmi(w, ns, name, vmi_uid) else {
        return;
    };
    let mut status = vmi["status"].clone();
    let target_pod = status["migrationState"]["targetPod"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let target_node = status["migrationState"]["targetNode"].clone();
    let Some(target_uid) = w
        .store
        .get(&PODS, ns, &target_pod)
        .map(|p| meta_str(p, "uid").to_string())
    else {
        return;
    };
    let sources: Vec<String> = w
        .store
        .list(&PODS, Some(ns))
        .filter(|p| p["metadata"]["labels"][keys::CREATED_BY].as_str() == Some(vmi_uid))
        .map(|p| meta_str(p, "name").to_string())
        .filter(|p| *p != target_pod)
        .collect();
    for p in sources {
        if let Some(pod) = w.store.delete(&PODS, ns, &p) {
            w.launchers.remove(meta_str(&pod, "uid"));
        }
    }
    status["nodeName"] = target_node.clone();
    status["activePods"] = json!({target_uid: target_node});
    status["migrationState"]["completed"] = json!(true);
    status["migrationState"]["endTimestamp"] = json!(w.timestamp());
    status["memory"]["guestCurrent"] = vmi["spec"]["domain"]["memory"]["guest"].clone();
    set_status(w, &VIRTUAL_MACHINE_INSTANCES, ns, name, status);
}

#[cfg(test)]
mod tests;
