//! `fix` when nothing states the KubeVirt version (no KubeVirt CR, launcher images by digest only),
//! against the real kube-apiserver: the plan is made with the version whose formula reproduces the
//! O the running launcher pods show (their compute request less their VMI's), read over the API,
//! and says so, rather than assume the newest version (48Mi off for this VM).
//!
//! The objects are those of tests/fixtures/features/version-by-digest.yaml, created through the
//! API: only KubeVirt v0.57.0–v0.58.0's constants give both pods' O.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::apiserver::RealApiServer;

const NS: &str = "apps";
const IMAGE: &str = "registry.example/kubevirt/virt-launcher@sha256:4f1d2c0e9b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6";

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn running(kubeconfig: &Path, kind: &str, name: &str, status: Value) {
    let patch = json!({ "status": status }).to_string();
    let args = [
        "patch",
        kind,
        name,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
    ];
    kubectl(kubeconfig, &[&args[..], &[patch.as_str()]].concat(), None);
}

/// A Running VMI `name` with `domain` and its launcher pod with a compute request of `request`.
fn vmi_and_pod(kubeconfig: &Path, name: &str, domain: Value, request: &str) {
    let vmi = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": NS}, "spec": {"domain": domain}});
    kubectl(kubeconfig, &["apply", "-f", "-"], Some(&vmi.to_string()));
    running(
        kubeconfig,
        "vmi",
        name,
        json!({"phase": "Running", "nodeName": "n1"}),
    );
    let uid = kubectl(
        kubeconfig,
        &[
            "get",
            "vmi",
            name,
            "-n",
            NS,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    let pod_name = format!("virt-launcher-{name}-abcde");
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": NS,
            "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": uid}},
        "spec": {"nodeName": "n1", "containers": [{"name": "compute", "image": IMAGE,
            "resources": {"requests": {"memory": request}}}]}});
    kubectl(kubeconfig, &["apply", "-f", "-"], Some(&pod.to_string()));
    running(kubeconfig, "pod", &pod_name, json!({"phase": "Running"}));
}

#[test]
fn fix_infers_the_version_from_the_running_pods_when_nothing_states_it() {
    let server = RealApiServer::start()
        .unwrap_or_else(|e| panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"));
    let kc = server.admin_kubeconfig();
    kubectl(kc, &["create", "namespace", NS], None);
    let db = json!({"cpu": {"cores": 2},
        "resources": {"requests": {"memory": "4Gi"}, "limits": {"memory": "4Gi"}}});
    let vm = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": "db", "namespace": NS},
        "spec": {"running": true, "template": {"spec": {"domain": db}}}});
    kubectl(kc, &["apply", "-f", "-"], Some(&vm.to_string()));
    vmi_and_pod(kc, "db", db, "4563402753");
    let web = json!({"cpu": {"cores": 1}, "resources": {"requests": {"memory": "1Gi"}}});
    vmi_and_pod(kc, "web", web, "1327497216");

    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .env("XDG_STATE_HOME", crate::common::state_home())
        .args([
            "fix",
            "db",
            "-n",
            NS,
            "--reserve",
            "512Mi",
            "--dry-run=client",
            "-o",
            "json",
        ])
        .args(["--live", "off", "--kubeconfig"])
        .arg(kc)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "fix failed: {stderr}");
    let fix: Value = serde_json::from_str(&stdout).unwrap();
    let plan = &fix["plan"];
    // v0.57.0's O for db (4Gi, 2 vCPUs): 268,435,457; the newest formula would say 318,767,105.
    assert_eq!(
        plan["before"]["overheadBytes"], 268_435_457_i64,
        "{plan}\nstderr: {stderr}"
    );
    assert_eq!(
        plan["before"]["expectedPodLimitBytes"], 4_563_402_753_i64,
        "{plan}"
    );
    assert!(
        stdout.contains("v0.57.0–v0.58.0") || stderr.contains("v0.57.0–v0.58.0"),
        "the plan does not say which versions it inferred:\n{stdout}\n{stderr}"
    );
}
