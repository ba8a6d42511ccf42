//! RBAC that allows reading but not exec, pod creation or patching, through the simulator's
//! per-verb denials and the real binary: `list` still shows every VM, with live data marked
//! unavailable and the missing verb and resource named; `fix` says it may not patch
//! virtualmachines in the namespace; `agent cleanup` is unaffected by what it may not do.

use crate::common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vmmem_sim::SimHandle;

pub const USER: &str = "reader";

/// A user who may read everything but not create pods, exec, read the kubelet through the
/// API server (nodes/proxy), or patch VMs.
pub fn reader(sim: &SimHandle, dir: &Path) -> PathBuf {
    sim.forbid_verb(USER, "create", "pods");
    sim.forbid_verb(USER, "create", "pods/exec");
    sim.forbid_verb(USER, "get", "pods/exec");
    sim.forbid_verb(USER, "get", "nodes/proxy");
    sim.forbid_verb(USER, "patch", "virtualmachines");
    let p = dir.join("reader.kubeconfig");
    sim.write_kubeconfig_as(&p, USER).unwrap();
    p
}

async fn run(kc: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(["--kubeconfig".into(), kc.display().to_string()]);
    crate::common::run_plugin(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_every_vm_and_names_the_missing_verbs() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = reader(&sim, dir.path());
    let out = run(&kc, &["list", "-A", "-o", "json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vms = report["vms"].as_array().unwrap();
    assert_eq!(vms.len(), 23, "every VM is listed");
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings: {report:#}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    // One sentence per node, naming each refusal: the agent's pod, the fallback's exec and the
    // kubelet's stats through nodes/proxy.
    for node in [
        "harvester-node-1",
        "harvester-node-2",
        "harvester-node-3",
        "lab-node-1",
    ] {
        let w = warnings
            .iter()
            .find(|w| w.starts_with(&format!("live data for node {node} is stale: ")))
            .unwrap_or_else(|| panic!("no warning for {node}: {warnings:#?}"));
        assert!(
            w.contains("not allowed to create agent pods in namespace vmmem-system")
                && w.contains("User \"reader\" cannot create resource \"pods\" in API group \"\" in the namespace \"vmmem-system\"")
                && w.contains("cannot get resource \"pods/exec\"")
                && w.contains("it needs get on nodes/proxy"),
            "{w}"
        );
    }
    let running: Vec<&Value> = vms.iter().filter(|v| v["phase"] == "Running").collect();
    assert!(running.len() >= 10);
    for vm in &running {
        assert!(vm["cgroup"].is_null(), "no live data: {vm}");
        assert_eq!(vm["risk"], "unknown", "{vm}");
        assert!(
            vm["notes"].as_array().unwrap().iter().any(|n| n
                .as_str()
                .unwrap()
                .contains("cannot get resource \"pods/exec\"")),
            "{vm}"
        );
    }
    // The table prints the same on stderr and the rows on stdout.
    let out = run(&kc, &["list", "-A"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("warning: live data for node ") && l.contains("pods/exec"))
            .count(),
        4,
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 24);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_says_it_may_not_patch() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = reader(&sim, dir.path());
    let out = run(
        &kc,
        &["fix", "db-02", "-n", "prod", "--reserve", "512Mi", "--yes"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("VirtualMachine prod/db-02"),
        "the plan first: {stdout}"
    );
    assert_eq!(
        stderr.trim(),
        "error: applying to prod/db-02: forbidden: virtualmachines.kubevirt.io \"db-02\" is forbidden: User \"reader\" cannot patch resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"prod\"",
    );
    // Nothing changed.
    let vm = sim
        .world()
        .store
        .get(&vmmem_sim::resources::VIRTUAL_MACHINES, "prod", "db-02")
        .cloned()
        .unwrap();
    assert_eq!(
        vm["metadata"]["annotations"]["harvesterhci.io/reservedMemory"],
        "1Gi"
    );
    sim.shutdown().await;
}
