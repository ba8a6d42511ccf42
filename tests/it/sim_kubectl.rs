//! The real `kubectl` against the simulated cluster: discovery, tables, `-o json`, merge patch,
//! the refusal of strategic merge on custom resources, RBAC-like 403 and exec over WebSocket.

use std::process::Output;

use crate::common::kubectl::{demo_for_kubectl, kubectl};
use vmmem_sim::SimHandle;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The guest memory the simulator stores for the VM default/`name`.
fn stored_guest(sim: &SimHandle, name: &str) -> serde_json::Value {
    let w = sim.world();
    let stored = w
        .store
        .get(&vmmem_sim::resources::VIRTUAL_MACHINES, "default", name)
        .unwrap();
    stored["spec"]["template"]["spec"]["domain"]["memory"]["guest"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_gets_patches_and_execs() {
    let (dir, sim) = demo_for_kubectl().await;

    let o = kubectl(dir.path(), &["get", "vm,vmi,pods", "-A"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in [
        "virtualmachine.kubevirt.io/memhold-vm",
        "virtualmachineinstance.kubevirt.io/db-01",
        "pod/virt-launcher-app-02-",
        "Migrating",
        "Stopped",
        "harvester-node-3",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }

    let o = kubectl(
        dir.path(),
        &["get", "vm", "memhold-vm", "-n", "default", "-o", "json"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o).1);
    let vm: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(vm["kind"], "VirtualMachine");
    assert_eq!(
        vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"], "2Gi",
        "ratio set: no reservation"
    );

    let o = kubectl(
        dir.path(),
        &[
            "patch",
            "vm",
            "memhold-vm",
            "-n",
            "default",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"annotations":{"harvesterhci.io/reservedMemory":"384Mi"}}}"#,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o)
        .0
        .contains("virtualmachine.kubevirt.io/memhold-vm patched"));
    assert_eq!(stored_guest(&sim, "memhold-vm"), "1664Mi");

    let o = kubectl(
        dir.path(),
        &[
            "patch",
            "vm",
            "memhold-vm",
            "-n",
            "default",
            "-p",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
        ],
    )
    .await;
    assert!(!o.status.success());
    assert!(
        text(&o)
            .1
            .contains("the body of the request was in an unknown format"),
        "{}",
        text(&o).1
    );

    // kubectl apply: GET, OpenAPI v3 (server-side field validation), merge patch.
    let o = kubectl(
        dir.path(),
        &["get", "vm", "web-02", "-n", "default", "-o", "yaml"],
    )
    .await;
    let edited = text(&o).0.replace(
        "harvesterhci.io/reservedMemory: 384Mi",
        "harvesterhci.io/reservedMemory: 512Mi",
    );
    assert!(edited.contains("reservedMemory: 512Mi"));
    std::fs::write(dir.path().join("vm.yaml"), edited).unwrap();
    let file = dir.path().join("vm.yaml");
    let o = kubectl(dir.path(), &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(
        text(&o)
            .0
            .contains("virtualmachine.kubevirt.io/web-02 configured"),
        "{}",
        text(&o).0
    );
    assert_eq!(stored_guest(&sim, "web-02"), "1536Mi");

    sim.forbid_namespace("viewer", "prod");
    let o = kubectl(dir.path(), &["get", "vm", "-n", "prod", "--as", "viewer"]).await;
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("User \"viewer\" cannot list resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"prod\""),
        "{}",
        text(&o).1
    );

    let o = kubectl(
        dir.path(),
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-l",
            "vm.kubevirt.io/name=web-01",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    )
    .await;
    let pod = text(&o).0;
    assert!(pod.starts_with("virt-launcher-web-01-"), "{pod}");
    let exec_args = [
        "exec",
        "-n",
        "default",
        &pod,
        "-c",
        "compute",
        "--",
        "sh",
        "-c",
        "cat $VMMEM_CGROUP_ROOT/memory/memory.limit_in_bytes; ls $VMMEM_PROC_ROOT | grep -c '^[0-9]'; exit 4",
    ];
    // The simulated pods have only kubectl-vmmem's two commands: anything else is refused, as
    // it would run on this machine.
    let o = kubectl(dir.path(), &exec_args).await;
    assert!(!o.status.success());
    assert!(text(&o).1.contains("has no such command"), "{}", text(&o).1);
    // A test of exec itself may allow any command.
    sim.allow_any_exec(true);
    let o = kubectl(dir.path(), &exec_args).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    // The compute container's own cgroup (limit = VM limit + O) and its five processes (the
    // proc root also holds sys/kernel/osrelease for the probe).
    let lines: Vec<i64> = out.split_whitespace().map(|l| l.parse().unwrap()).collect();
    assert!(lines[0] > 2 << 30 && lines[0] < 3 << 30, "{out}");
    assert_eq!(lines[1], 5, "{out}");
    sim.shutdown().await;
}
