//! The demo's cgroup v2 node (lab-node-1) through the real binary (issue 16): console-oom-vm's
//! guest-console-log sidecar is OOM-killed 20 s after start (kubevirt#15501; the pod slice's
//! hierarchical memory.events counts it, and the node's kernel log has the report with the
//! memory.oom.group line), and swap-vm uses 200Mi of its 512Mi of swap.

use std::time::Duration;

use crate::common;

use serde_json::Value;
use vmmem_sim::{Scenario, Sim, SimOptions};

async fn list_lab(kubeconfig: &std::path::Path, home: &std::path::Path) -> Value {
    common::plugin_json(&["list", "-n", "lab", "-o", "json"], kubeconfig, home).await
}

fn vm<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

fn flags(v: &Value) -> Vec<&str> {
    v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_oom_kill_on_a_v2_node_leaves_the_vm_running_and_swap_shows() {
    // Model time 5x the wall clock: the sidecar's kill comes 4 s after its pod runs.
    let opts = SimOptions {
        pod_start_delay: Duration::from_millis(100),
        domain_start_delay: Duration::from_millis(100),
        speed: 5.0,
        ..SimOptions::default()
    };
    let sim = Sim::start(Scenario::demo().unwrap(), opts).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    sim.write_kubeconfig(&kubeconfig).unwrap();

    let before = list_lab(&kubeconfig, dir.path()).await;
    let swap = vm(&before, "swap-vm");
    assert_eq!(swap["cgroup"]["version"], "v2");
    assert_eq!(swap["cgroup"]["swapBytes"], 200u64 << 20);
    assert_eq!(swap["cgroup"]["swapLimitBytes"], 512u64 << 20);
    assert!(flags(swap).contains(&"swapping"), "{swap}");

    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = sim.kernel_log("lab-node-1");
    assert!(
        log.iter()
            .any(|l| l.contains("are going to be killed due to memory.oom.group set")),
        "the node's kernel log has no group kill: {log:?}"
    );
    let after = list_lab(&kubeconfig, dir.path()).await;
    let c = vm(&after, "console-oom-vm");
    assert_eq!(c["cgroup"]["version"], "v2");
    assert_eq!(c["oomKills"], 0, "{c}");
    assert_eq!(c["cgroup"]["oomKills"], 0, "{c}");
    assert!(!flags(c).contains(&"oom-killed"), "{c}");
    assert_ne!(c["risk"], "critical", "{c}");
    let notes: Vec<&str> = c["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("the guest-console-log sidecar was OOM-killed once")),
        "{notes:?}"
    );
    // `oom` reads the node's kernel log through its agent: one report (memory.oom.group), one
    // event, in the sidecar, not the VM's death.
    let oom = common::plugin_json(
        &["oom", "--node", "lab-node-1", "-o", "json"],
        &kubeconfig,
        dir.path(),
    )
    .await;
    let events = oom["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{oom:#}");
    let e = &events[0];
    let pod_uid = {
        let w = sim.world();
        let l = w
            .launchers
            .values()
            .find(|l| l.vm_name == "console-oom-vm")
            .unwrap();
        l.pod_uid.clone()
    };
    assert_eq!(e["podUid"], pod_uid.as_str(), "{e:#}");
    assert_eq!(e["container"]["name"], "guest-console-log", "{e:#}");
    assert_eq!(e["killsVm"], false, "{e:#}");
    sim.shutdown().await;
}

/// The kubelet's Summary of the v2 lab node has swap stats (Kubernetes 1.28+): `list --live
/// kubelet` shows swap-vm swapping, with its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_source_shows_swap_on_the_v2_node() {
    let sim = crate::common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let report = common::plugin_json(
        &["list", "-n", "lab", "--live", "kubelet", "-o", "json"],
        &kubeconfig,
        dir.path(),
    )
    .await;
    let swap = vm(&report, "swap-vm");
    assert_eq!(swap["liveSource"], "kubelet");
    assert_eq!(swap["cgroup"]["swapBytes"], 200u64 << 20, "{swap}");
    assert_eq!(swap["cgroup"]["swapLimitBytes"], 512u64 << 20, "{swap}");
    assert!(flags(swap).contains(&"swapping"), "{swap}");
    sim.shutdown().await;
}
