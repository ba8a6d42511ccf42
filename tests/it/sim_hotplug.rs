//! The demo's memory hotplug and instance-type VMs through the real binary (`list -o json`
//! with the node agents): before, during and after lab/hotplug-vm's hotplug 2Gi → 3Gi.

use crate::common;

use std::time::Duration;

use serde_json::Value;
use vmmem_sim::SimHandle;

const GI: i64 = 1 << 30;
const MI: i64 = 1 << 20;

async fn list(sim: &SimHandle) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let args = ["list", "-n", "lab", "-o", "json", "--live", "agent"];
    common::plugin_json(&args, &kc, dir.path()).await
}

fn row<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r}"))
}

fn has(v: &Value, flag: &str) -> bool {
    v["flags"].as_array().unwrap().iter().any(|f| f == flag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotplug_is_judged_pod_by_pod_and_an_instance_type_gives_the_memory() {
    let sim = common::demo().await;
    // Model time runs with the clock; advancing moves it on at once (the hotplug starts 30 s
    // after the VMI, and its migration takes 20 s).
    let before = list(&sim).await;
    let vm = row(&before, "hotplug-vm");
    assert_eq!(vm["guestBytes"], 2 * GI);
    assert_eq!(vm["guestRunningBytes"], 2 * GI, "{vm}");
    assert!(!has(vm, "hotplug-in-progress"), "{vm}");
    assert_eq!(vm["guestResidentExact"], true, "{vm}");

    // 35 s in: the VMI asks for 3Gi, its old pod's qemu has 2Gi; the new pod runs beside it.
    sim.advance(Duration::from_secs(35));
    let during = list(&sim).await;
    let vm = row(&during, "hotplug-vm");
    assert!(
        has(vm, "hotplug-in-progress") && has(vm, "migrating"),
        "{vm}"
    );
    assert!(
        !has(vm, "limit-below-guest") && !has(vm, "restart-pending"),
        "{vm}"
    );
    assert_eq!(vm["guestBytes"], 3 * GI);
    assert_eq!(vm["guestRunningBytes"], 2 * GI);
    assert_eq!(vm["node"], "harvester-node-1", "the source pod is judged");
    let pod_limit = vm["podLimitBytes"].as_i64().unwrap();
    assert!(pod_limit < 3 * GI, "the source pod's own limit: {vm}");
    assert_ne!(vm["risk"], "critical", "{vm}");
    assert_eq!(vm["guestResidentExact"], true, "{vm}");

    // 60 s after the hotplug began: migrated, plugged, and the new guest filled (the boot RAM
    // and 1Gi of the virtio-mem device).
    sim.advance(Duration::from_secs(60));
    let after = list(&sim).await;
    let vm = row(&after, "hotplug-vm");
    for flag in [
        "hotplug-in-progress",
        "migrating",
        "restart-pending",
        "limit-below-guest",
    ] {
        assert!(!has(vm, flag), "{flag}: {vm}");
    }
    assert_eq!(vm["node"], "harvester-node-2");
    assert_eq!(vm["guestRunningBytes"], 3 * GI);
    assert!(vm["podLimitBytes"].as_i64().unwrap() > 3 * GI, "{vm}");
    assert_eq!(vm["guestResidentExact"], true, "{vm}");
    let resident = vm["guestResidentBytes"].as_i64().unwrap();
    assert!(resident > 2 * GI + 512 * MI, "both mappings found: {vm}");
    // The boot RAM is guest RAM, not overhead.
    assert!(vm["overheadUsedBytes"].as_i64().unwrap() < 512 * MI, "{vm}");
    assert_ne!(vm["risk"], "critical", "{vm}");

    // The instance-type VM: memory from u1.medium (4Gi, 10% overcommit, in float32).
    let typed = row(&after, "typed-vm");
    assert!(
        has(typed, "instancetype") && !has(typed, "restart-pending"),
        "{typed}"
    );
    assert_eq!(typed["guestBytes"], 4 * GI);
    let request = ((4 * GI) as f32 * (1.0f32 - 10.0f32 / 100.0f32)) as i64;
    assert_eq!(typed["vmRequestBytes"], request);
    sim.shutdown().await;
}
