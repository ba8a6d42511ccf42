//! A running VM's last reading carried into a refresh that could not read it (issue 21).

use std::collections::HashMap;
use std::sync::Arc;

use super::carry::{self, Carried, Earlier, CARRY_AT_MOST_SECONDS};
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

fn row_of<'a>(r: &'a Report, key: &VmKey) -> &'a VmRow {
    r.vms.iter().find(|v| key.matches(*v)).unwrap()
}

#[test]
fn a_running_vm_whose_pod_went_keeps_its_last_reading_marked_stale() {
    let earlier_inv = seed();
    let earlier_readings = harv41(1000, &[VM2_POD], 2_300_000_000);
    let now_inv = without_vm2_pod(seed());
    // harv41 answered this refresh, without vm2's pod.
    let now_readings = harv41(1002, &[], 0);
    let wanted = carry::wanted(&now_inv, &now_readings, &HashMap::new());
    assert!(wanted.contains(&vm2()), "{wanted:?}");
    let earlier = Earlier {
        inventory: &earlier_inv,
        readings: &earlier_readings,
        carried: &HashMap::new(),
    };
    let carried = carry::carry(&wanted, &earlier, &now_readings, 1002);
    let c = carried.get(&vm2()).expect("vm2's last reading");
    assert_eq!((c.pod_uid.as_str(), c.taken_at()), (VM2_POD, 1000));

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
    let carried = carry::carry(&[vm2()], &earlier, &now_readings, 1002);
    assert_eq!(carried[&vm2()].taken_at(), 1002);
}

#[test]
fn a_carried_reading_is_carried_on_until_it_is_too_old() {
    let earlier_inv = without_vm2_pod(seed());
    let none = harv41(1000, &[], 0);
    let old = harv41(1000, &[VM2_POD], 5);
    let before: HashMap<VmKey, Carried> = [(
        vm2(),
        Carried {
            node: old["harv41"].clone(),
            pod_uid: VM2_POD.into(),
            compute_id: None,
        },
    )]
    .into_iter()
    .collect();
    let earlier = Earlier {
        inventory: &earlier_inv,
        readings: &none,
        carried: &before,
    };
    let at_most = 1000 + CARRY_AT_MOST_SECONDS;
    assert!(carry::carry(&[vm2()], &earlier, &none, at_most).contains_key(&vm2()));
    assert!(carry::carry(&[vm2()], &earlier, &none, at_most + 1).is_empty());
}

#[test]
fn a_vm_not_running_shows_nothing_carried() {
    let mut inv = without_vm2_pod(seed());
    for v in &mut inv.vmis {
        if v.metadata.name == "vm2" {
            Arc::make_mut(v).status.phase = Some(crate::model::phase::VmPhase::Failed);
        }
    }
    let now_readings = harv41(1002, &[], 0);
    let old = harv41(1000, &[VM2_POD], 5);
    let carried: HashMap<VmKey, Carried> = [(
        vm2(),
        Carried {
            node: old["harv41"].clone(),
            pod_uid: VM2_POD.into(),
            compute_id: None,
        },
    )]
    .into_iter()
    .collect();
    // Still wanted (it may run again in a moment), but not shown while it is not running.
    assert!(carry::wanted(&inv, &now_readings, &HashMap::new()).contains(&vm2()));
    let opts = ReportOptions {
        carried,
        ..ReportOptions::default()
    };
    let row = row_of(&build(&inv, &now_readings, &opts), &vm2()).clone();
    assert!(row.cgroup.is_none() && !row.stale);
}

#[test]
fn a_vm_on_a_stale_node_or_read_now_is_not_wanted() {
    let inv = seed();
    let read = harv41(1002, &[VM2_POD], 5);
    assert!(!carry::wanted(&inv, &read, &HashMap::new()).contains(&vm2()));
    let stale: HashMap<String, String> = [("harv41".to_string(), "exec timed out".to_string())]
        .into_iter()
        .collect();
    let unread = harv41(1002, &[], 0);
    assert!(!carry::wanted(&inv, &unread, &stale).contains(&vm2()));
}
