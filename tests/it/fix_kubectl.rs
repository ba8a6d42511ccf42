//! `kubectl-vmmem fix` (the binary) and the real `kubectl` against the simulator, Harvester and
//! plain KubeVirt: after `fix --yes --restart` kubectl shows the new annotation/guest and the
//! new pod's limit is what the overhead formula gives for the new VMI; `--undo` brings back the
//! original fields byte for byte.

use crate::common;

use std::path::Path;
use std::process::Output;

use crate::common::kubectl::{kubectl, ok_json, require_kubectl};
use serde_json::Value;
use vmmem::model::objects::VirtualMachineInstance;
use vmmem::model::overhead::{overhead, ClusterInputs};
use vmmem::model::spec::expected_pod;
use vmmem::model::version::Version;
use vmmem_sim::Scenario;

const PLAIN: &str = r#"
flavour: kubevirt
kubevirtVersion: v1.3.0
nodes:
  - {name: node-1, memory: 64Gi, cpus: 16}
namespaces: [default]
vms:
  - {name: req-01, namespace: default, memory: 4Gi, request: 4Gi, cpus: 2}
"#;

/// `kubectl args` as JSON, failing with kubectl's stderr.
async fn kubectl_json(dir: &Path, args: &[&str]) -> Value {
    ok_json(&kubectl(dir, args).await, &format!("kubectl {args:?}"))
}

async fn vmmem(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .args(args)
        .env("HOME", dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// metadata.annotations and spec.template.spec.domain as JSON text.
fn original_fields(vm: &Value) -> (String, String) {
    (
        vm["metadata"]["annotations"].to_string(),
        vm["spec"]["template"]["spec"]["domain"].to_string(),
    )
}

async fn fix_restart_undo(scenario: Scenario, ns: &str, name: &str, harvester: bool) {
    let sim = common::start(scenario).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sim.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
    let vm_arg = format!("{ns}/{name}");
    let original = kubectl_json(dir, &["get", "vm", name, "-n", ns, "-o", "json"]).await;

    // Without a terminal and without --yes: the plan, then exit 1, nothing sent.
    let o = vmmem(dir, &["fix", &vm_arg]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("JSON merge patch of virtualmachine.kubevirt.io/"));
    assert!(text(&o.stderr).contains("add --yes"), "{}", text(&o.stderr));
    // --dry-run=client: the plan only, exit 0.
    let o = vmmem(dir, &["fix", &vm_arg, "--dry-run"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let unchanged = kubectl_json(dir, &["get", "vm", name, "-n", ns, "-o", "json"]).await;
    assert_eq!(original_fields(&unchanged), original_fields(&original));

    let o = vmmem(
        dir,
        &[
            "fix",
            name,
            "-n",
            ns,
            "--reserve",
            "512Mi",
            "--yes",
            "--restart",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["kind"], "VmMemoryFix");
    assert!(
        text(&o.stderr).contains("restart: new VMI running in pod"),
        "{}",
        text(&o.stderr)
    );
    let plan = &doc["plan"];
    let expected_limit = plan["after"]["expectedPodLimitBytes"].as_i64().unwrap();
    assert_eq!(doc["restart"]["matchesPlan"], true);

    let vm = kubectl_json(dir, &["get", "vm", name, "-n", ns, "-o", "json"]).await;
    let domain = &vm["spec"]["template"]["spec"]["domain"];
    let limit =
        vmmem::units::parse_bytes(domain["resources"]["limits"]["memory"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        domain["memory"]["guest"].as_str().unwrap(),
        vmmem::units::to_quantity_string(limit - (512 << 20))
    );
    if harvester {
        assert_eq!(
            vm["metadata"]["annotations"]["harvesterhci.io/reservedMemory"],
            "512Mi"
        );
    }
    assert!(vm["metadata"]["annotations"]["vmmem.kubectl.io/previous"].is_string());

    // The new pod's limit is the formula's for the VMI KubeVirt actually started.
    let vmi_json = kubectl_json(dir, &["get", "vmi", name, "-n", ns, "-o", "json"]).await;
    let vmi: VirtualMachineInstance = serde_json::from_value(vmi_json).unwrap();
    let kv = kubectl_json(dir, &["get", "kubevirts", "-A", "-o", "json"]).await;
    let kv = &kv["items"][0];
    let version =
        Version::parse(kv["status"]["observedKubeVirtVersion"].as_str().unwrap()).unwrap();
    let inputs = ClusterInputs {
        ratio: kv["spec"]["configuration"]["additionalGuestMemoryOverheadRatio"]
            .as_str()
            .map(String::from),
        ..Default::default()
    };
    let o_formula = overhead(&vmi.spec, version, &inputs).total;
    let formula_limit = expected_pod(&vmi.spec, o_formula, None, &Default::default())
        .compute_limit
        .unwrap();
    let pods = kubectl_json(
        dir,
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            &format!("kubevirt.io/created-by={}", vmi.metadata.uid),
            "-o",
            "json",
        ],
    )
    .await;
    let compute = pods["items"][0]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "compute")
        .unwrap();
    let pod_limit =
        vmmem::units::parse_bytes(compute["resources"]["limits"]["memory"].as_str().unwrap())
            .unwrap();
    assert_eq!(pod_limit, formula_limit, "pod vs formula");
    assert_eq!(pod_limit, expected_limit, "pod vs plan");

    // Undo: the original fields come back byte for byte, and the record goes.
    let o = vmmem(dir, &["fix", &vm_arg, "--undo", "--yes"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("patched"));
    let back = kubectl_json(dir, &["get", "vm", name, "-n", ns, "-o", "json"]).await;
    assert_eq!(original_fields(&back), original_fields(&original));
    // A second undo has nothing to do: exit 0.
    let o = vmmem(dir, &["fix", &vm_arg, "--undo", "--yes"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("nothing to undo"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_fix_restart_and_undo_on_harvester() {
    require_kubectl();
    fix_restart_undo(Scenario::demo().unwrap(), "default", "memhold-vm", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_fix_restart_and_undo_on_plain_kubevirt() {
    require_kubectl();
    fix_restart_undo(
        Scenario::from_yaml(PLAIN).unwrap(),
        "default",
        "req-01",
        false,
    )
    .await;
}

#[tokio::test]
async fn refusals_exit_1_with_one_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vmmem(tmp.path(), &["--from", "x.yaml", "fix", "vm1"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim(),
        "error: fix needs a live cluster: --from reads files, which cannot be changed"
    );
    let o = vmmem(tmp.path(), &["fix", "vm1", "--reserve", "lots"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("error: --reserve \"lots\": "),
        "{}",
        text(&o.stderr)
    );
    let o = vmmem(tmp.path(), &["--readonly", "fix", "vm1", "--yes"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim(),
        "error: --readonly forbids changing the VM; add --dry-run to see the plan"
    );
    let o = vmmem(tmp.path(), &["fix", "vm1", "--undo", "--remove-limit"]).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "conflicting flags are a usage error"
    );
}
