//! The real `kubectl` and `kubectl-vmmem` against the same simulated cluster see the same VMs:
//! `kubectl-vmmem --kubeconfig F list -A -o json` vs `kubectl --kubeconfig F get vm,vmi,pods -A -o json`.

use std::collections::BTreeMap;

use crate::common::kubectl::{demo_for_kubectl, kubectl, ok_json};
use serde_json::Value;

fn key(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_and_vmmem_report_the_same_vms() {
    let (dir, sim) = demo_for_kubectl().await;

    let got = ok_json(
        &kubectl(dir.path(), &["get", "vm,vmi,pods", "-A", "-o", "json"]).await,
        "kubectl get",
    );
    let items = got["items"].as_array().unwrap();
    let vms: Vec<String> = items
        .iter()
        .filter(|o| o["kind"] == "VirtualMachine")
        .map(key)
        .collect();
    // Node of each running VM as kubectl sees it: the VMI's status.nodeName.
    let vmi_nodes: BTreeMap<String, String> = items
        .iter()
        .filter(|o| o["kind"] == "VirtualMachineInstance")
        .map(|o| {
            (
                key(o),
                o["status"]["nodeName"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let launchers = items
        .iter()
        .filter(|o| o["kind"] == "Pod" && o["metadata"]["labels"]["kubevirt.io"] == "virt-launcher")
        .count();
    assert_eq!(vms.len(), 23);
    assert!(launchers >= vmi_nodes.len());

    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .args(["list", "-A", "-o", "json"])
        .env("HOME", dir.path())
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    let report = ok_json(&o, "kubectl-vmmem list");
    let rows = report["vms"].as_array().unwrap();
    let mut ours: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    let mut theirs = vms.clone();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    for r in rows {
        let k = format!(
            "{}/{}",
            r["namespace"].as_str().unwrap(),
            r["name"].as_str().unwrap()
        );
        if let Some(node) = vmi_nodes.get(&k) {
            assert_eq!(r["node"].as_str().unwrap_or(""), node, "{k}");
        }
    }
    sim.shutdown().await;
}
