//! A running VM's last reading carried into a refresh that could not read it (issue 21).

use std::collections::HashMap;
use std::sync::Arc;

use super::carry::{self, Carried, Earlier, Wanted, CARRY_AT_MOST_SECONDS};
use super::*;
use crate::model::evidence::VmKey;
use crate::model::inventory::{Inventory, Readings};
use crate::model::readings::NodeReadings;

/// default/vm2's launcher pod on harv41 in the seed fixtures.
const VM2_POD: &str = "99ee3a64-645b-4699-9384-5a3875d78b41";

/// default/vm2 (2Gi limit, guest 1948Mi, KubeVirt v1.1.1) running on harv41 in its launcher pod.
fn seed() -> Inventory {
    use crate::model::objects::{KubeVirt, Pod, VirtualMachine, VirtualMachineInstance};
    let domain = serde_json::json!({
        "memory": {"guest": "1948Mi"},
        "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1365Mi"}}});
    let vm: VirtualMachine = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "vm2", "uid": "vm-uid"},
        "spec": {"template": {"spec": {"domain": domain}}}}))
    .unwrap();
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "vm2", "uid": "vmi-uid"},
        "spec": {"domain": domain},
        "status": {"phase": "Running", "nodeName": "harv41"}}))
    .unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "virt-launcher-vm2-x7k2p", "uid": VM2_POD,
                     "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "vmi-uid"}},
        "spec": {"nodeName": "harv41", "containers": [{"name": "compute",
            "resources": {"limits": {"memory": "2412423169"}, "requests": {"memory": "1696245761"}}}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "compute",
            "containerID": "containerd://c0ffee"}]}}))
    .unwrap();
    let kv: KubeVirt = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "harvester-system", "name": "kubevirt"},
        "status": {"observedKubeVirtVersion": "v1.1.1"}}))
    .unwrap();
    Inventory {
        vms: vec![vm.into()],
        vmis: vec![vmi.into()],
        pods: vec![pod.into()],
        kubevirts: vec![kv],
        ..Default::default()
    }
}

/// harv41 read at `taken_at`, holding the pods `uids` (each using `usage` bytes).
fn harv41(taken_at: i64, uids: &[&str], usage: u64) -> Readings {
    let pods: Vec<serde_json::Value> = uids
        .iter()
        .map(|uid| {
            serde_json::json!({"uid": uid, "level": "pod", "path": "", "limitBytes": 2_472_419_328u64,
                "usageBytes": usage, "workingSetBytes": usage, "peakBytes": null, "failcnt": 0,
                "oomKills": 0, "guestResidentBytes": 1_900_000_000u64})
        })
        .collect();
    let node: NodeReadings = serde_json::from_value(serde_json::json!({
        "node": "harv41", "cgroupVersion": "v1", "kernel": "5.14.21", "source": "agent",
        "takenAt": taken_at, "pods": pods}))
    .unwrap();
    [("harv41".to_string(), Arc::new(node))]
        .into_iter()
        .collect()
}

/// The seed without vm2's launcher pod: the pod watch has seen it go, the VMI watch not yet.
fn without_vm2_pod(mut inv: Inventory) -> Inventory {
    inv.pods.retain(|p| p.metadata.uid != VM2_POD);
    inv
}

fn vm2() -> VmKey {
    VmKey::new("default", "vm2")
}

fn wanted_vm2() -> Wanted {
    Wanted {
        key: vm2(),
        vmi_uid: "vmi-uid".into(),
    }
}

fn row_of<'a>(r: &'a Report, key: &VmKey) -> &'a VmRow {
    r.vms.iter().find(|v| key.matches(*v)).unwrap()
}

fn carried_vm2(readings: &Readings, vmi_uid: &str) -> HashMap<VmKey, Carried> {
    [(
        vm2(),
        Carried {
            vmi_uid: vmi_uid.into(),
            node: readings["harv41"].clone(),
            pod_uid: VM2_POD.into(),
            compute_id: None,
        },
    )]
    .into_iter()
    .collect()
}

#[test]
fn a_running_vm_whose_pod_went_keeps_its_last_reading_marked_stale() {
    let earlier_inv = seed();
    let earlier_readings = harv41(1000, &[VM2_POD], 2_300_000_000);
    let now_inv = without_vm2_pod(seed());
    // harv41 answered this refresh, without vm2's pod.
    let now_readings = harv41(1002, &[], 0);
    let wanted = carry::wanted(&now_inv, &now_readings, &HashMap::new());
    assert_eq!(wanted, [wanted_vm2()]);
    let earlier = Earlier {
        inventory: &earlier_inv,
        readings: &earlier_readings,
        carried: &HashMap::new(),
    };
    let carried = carry::carry(&wanted, &earlier, &now_readings, 1002);
    let c = carried.get(&vm2()).expect("vm2's last reading");
    assert_eq!((c.pod_uid.as_str(), c.taken_at()), (VM2_POD, 1000));
    assert_eq!(c.node.pods.len(), 1, "only the VM's own pod is kept");

    let without = build(&now_inv, &now_readings, &ReportOptions::default());
    let row = row_of(&without, &vm2());
    assert!(
        row.cgroup.is_none() && !row.stale,
        "nothing carried: no live data"
    );

    let opts = ReportOptions {
        carried,
        ..ReportOptions::default()
    };
    let with = build(&now_inv, &now_readings, &opts);
    let row = row_of(&with, &vm2());
    assert_eq!(
        row.cgroup.as_ref().map(|c| c.usage_bytes),
        Some(2_300_000_000)
    );
    assert!(
        row.stale && row.flags.contains(&Flag::Stale),
        "{:?}",
        row.flags
    );
    assert!(
        row.notes
            .iter()
            .any(|n| n.contains(VM2_POD) && n.contains("Unix time 1000")),
        "{:?}",
        row.notes
    );
    assert_eq!(row.pod_uid, None, "the row names no pod it does not have");
}

#[test]
fn the_pods_reading_in_this_refresh_is_carried_before_the_earlier_one() {
    // The pod was read once more in this round, then its deletion reached the objects.
    let earlier_readings = harv41(1000, &[VM2_POD], 1);
    let now_readings = harv41(1002, &[VM2_POD], 2);
    let earlier_inv = seed();
    let earlier = Earlier {
        inventory: &earlier_inv,
        readings: &earlier_readings,
        carried: &HashMap::new(),
    };
    let carried = carry::carry(&[wanted_vm2()], &earlier, &now_readings, 1002);
    assert_eq!(carried[&vm2()].taken_at(), 1002);
}

#[test]
fn a_carried_reading_is_carried_on_until_it_is_too_old() {
    let earlier_inv = without_vm2_pod(seed());
    let none = harv41(1000, &[], 0);
    let before = carried_vm2(&harv41(1000, &[VM2_POD], 5), "vmi-uid");
    let earlier = Earlier {
        inventory: &earlier_inv,
        readings: &none,
        carried: &before,
    };
    let at_most = 1000 + CARRY_AT_MOST_SECONDS;
    assert!(carry::carry(&[wanted_vm2()], &earlier, &none, at_most).contains_key(&vm2()));
    assert!(carry::carry(&[wanted_vm2()], &earlier, &none, at_most + 1).is_empty());
}

#[test]
fn nothing_is_carried_to_a_new_vmi() {
    // The VM restarted (or was made again under its name): its new VMI is a new boot.
    let earlier_inv = seed();
    let earlier_readings = harv41(1000, &[VM2_POD], 5);
    let earlier = Earlier {
        inventory: &earlier_inv,
        readings: &earlier_readings,
        carried: &HashMap::new(),
    };
    let new_vmi = Wanted {
        key: vm2(),
        vmi_uid: "new-vmi-uid".into(),
    };
    assert!(carry::carry(&[new_vmi], &earlier, &harv41(1002, &[], 0), 1002).is_empty());
    // Nor is a reading of the old VMI shown on the new one's row.
    let mut inv = without_vm2_pod(seed());
    Arc::make_mut(&mut inv.vmis[0]).metadata.uid = "new-vmi-uid".into();
    let opts = ReportOptions {
        carried: carried_vm2(&earlier_readings, "vmi-uid"),
        ..ReportOptions::default()
    };
    let row = row_of(&build(&inv, &harv41(1002, &[], 0), &opts), &vm2()).clone();
    assert!(row.cgroup.is_none() && !row.stale);
}

#[test]
fn a_vm_not_running_is_not_wanted_and_shows_nothing_carried() {
    let mut inv = without_vm2_pod(seed());
    Arc::make_mut(&mut inv.vmis[0]).status.phase = Some(crate::model::phase::VmPhase::Failed);
    let now_readings = harv41(1002, &[], 0);
    assert!(carry::wanted(&inv, &now_readings, &HashMap::new()).is_empty());
    let opts = ReportOptions {
        carried: carried_vm2(&harv41(1000, &[VM2_POD], 5), "vmi-uid"),
        ..ReportOptions::default()
    };
    let row = row_of(&build(&inv, &now_readings, &opts), &vm2()).clone();
    assert!(row.cgroup.is_none() && !row.stale);
}

#[test]
fn a_vm_on_a_stale_node_a_node_not_read_or_read_now_is_not_wanted() {
    let inv = seed();
    let read = harv41(1002, &[VM2_POD], 5);
    assert!(carry::wanted(&inv, &read, &HashMap::new()).is_empty());
    let stale: HashMap<String, String> = [("harv41".to_string(), "exec timed out".to_string())]
        .into_iter()
        .collect();
    let unread = harv41(1002, &[], 0);
    assert!(carry::wanted(&inv, &unread, &stale).is_empty());
    assert!(carry::wanted(&inv, &Readings::new(), &HashMap::new()).is_empty());
}

#[test]
fn a_kill_of_the_carried_pod_counts_once() {
    // qemu was killed; the last reading has the pod's kill counter at 1, and the node's kernel
    // log has the same kill.
    let readings = {
        let mut r = harv41(1000, &[VM2_POD], 5);
        let node = Arc::make_mut(r.get_mut("harv41").unwrap());
        node.pods[0].cgroup.oom_kills = 1;
        r
    };
    let inv = without_vm2_pod(seed());
    let event = crate::model::oom_event::OomEvent {
        time: Some("8758.722811".into()),
        node: Some("harv41".into()),
        pod_uid: Some(VM2_POD.into()),
        scope: Some(crate::model::oom_event::OomScope::Pod),
        victim: Some(crate::model::oom_event::OomVictim {
            pid: 24790,
            comm: "qemu-system-x86".into(),
            uid: Some(107),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = ReportOptions {
        carried: carried_vm2(&readings, "vmi-uid"),
        oom_history: crate::model::oom_verdict::explain(&[event], Some(&seed()), None),
        kernel_logs_read: crate::model::oom_vm::LogsRead::All,
        ..ReportOptions::default()
    };
    let row = row_of(&build(&inv, &harv41(1002, &[], 0), &opts), &vm2()).clone();
    assert!(row.stale);
    assert_eq!(row.oom_kills, Some(1), "{:?}", row.notes);
}
