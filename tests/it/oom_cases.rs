//! The kernel OOM cases real clusters show beside the plain one (issue 16): old kernels that
//! name a process before choosing, journal excerpts with the memory cgroup lines cut, node-wide
//! OOMs known only from their call trace, `memory.oom.group` kills of several processes, and a
//! sidecar's kill that leaves the VM running. Each through the parser and through the binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::oom_fixtures::fixture;
use vmmem::model::inventory::Inventory;
use vmmem::model::objects::{Pod, VirtualMachine, VirtualMachineInstance};
use vmmem::model::oom_event::{OomEvent, OomScope};
use vmmem::model::oom_verdict::explain;
use vmmem::model::oom_vm::ContainerEvidence;
use vmmem::parse::oom::parse_kernel_log;

fn path(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oom")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn oom_json(args: &[&str]) -> serde_json::Value {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["oom", "-o", "json"])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn events(name: &str) -> Vec<OomEvent> {
    parse_kernel_log(&fixture(name))
}

const GROUP_POD: &str = "5c0f3a2e-7d41-4b8e-9f2a-1e6b7c8d9a01";
const COMPUTE_ID: &str = "a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5";
const CONSOLE_ID: &str = "e8f6d4b2a0c8e6f4d2b0a8c6e4f2d0b8a6c4e2f0d8b6a4c2e0f8d6b4a2c0e8f6";

/// Ubuntu 18.04's 4.15 prints `Kill process N (comm) score S or sacrifice child` before it
/// picks (a child may die instead); the excerpt ends before `Killed process`.
#[test]
fn old_kernel_choice_is_not_the_victim() {
    let evs = events("old-4.15-sacrifice-child-cut.log");
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    assert_eq!(ev.victim, None, "only `Killed process` names the victim");
    let c = ev.candidate.as_ref().unwrap();
    assert_eq!((c.pid, c.comm.as_str()), (21873, "qemu-system-x86"));
    assert!(ev.partial);
    assert_eq!(ev.scope, Some(OomScope::Pod));
    let ex = &explain(&evs, None, None)[0];
    assert!(
        ex.verdict.contains("the victim is unknown"),
        "{}",
        ex.verdict
    );
    assert!(!ex.verdict.contains("The kernel killed"), "{}", ex.verdict);

    let v = oom_json(&["-f", &path("old-4.15-sacrifice-child-cut.log")]);
    let e = &v["events"][0];
    assert_eq!(e["victim"], serde_json::Value::Null);
    assert_eq!(e["victims"].as_array().unwrap().len(), 0);
    assert_eq!(e["candidate"]["pid"], 21873);
    assert_eq!(e["partial"], true);
}

/// The same kernel when the child dies: `Killed process` names the child.
#[test]
fn old_kernel_child_killed_instead() {
    let mut text = fixture("old-4.15-sacrifice-child-cut.log");
    text.push_str("[2281934.118470] Killed process 21590 (virtlogd) total-vm:134476kB, anon-rss:2092kB, file-rss:13668kB, shmem-rss:0kB\n");
    let evs = parse_kernel_log(&text);
    let v = evs[0].victim.as_ref().unwrap();
    assert_eq!((v.pid, v.comm.as_str()), (21590, "virtlogd"));
    assert_eq!(evs[0].candidate.as_ref().unwrap().pid, 21873);
    assert!(!evs[0].partial);
}

/// journalctl excerpts (5.14, SLE Micro 5.5) whose memory cgroup lines were suppressed: qemu
/// killed as uid 107, or a `CPU n/KVM` trigger, is still a KubeVirt VM's report.
#[test]
fn journal_excerpt_without_memcg_lines_is_kubevirt() {
    let evs = events("journal-5.14-memcg-lines-cut.log");
    assert_eq!(evs.len(), 2);
    assert!(evs
        .iter()
        .all(|e| e.pod_uid.is_none() && e.memory.is_none()));
    assert_eq!(evs[0].victim.as_ref().unwrap().uid, Some(107));
    assert_eq!(evs[0].node.as_deref(), Some("harv-node-3"));
    assert_eq!(evs[1].trigger.as_deref(), Some("CPU 3/KVM"));
    let ex = explain(&evs, None, None);
    assert!(ex[0].kubevirt, "qemu as uid 107");
    assert!(ex[1].kubevirt, "a vCPU thread triggered it");
    assert!(
        ex[0].verdict.contains("which is the VM itself"),
        "{}",
        ex[0].verdict
    );

    let v = oom_json(&["-f", &path("journal-5.14-memcg-lines-cut.log")]);
    let e = v["events"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["kubevirt"], true);
    assert_eq!(e[1]["kubevirt"], true);
    assert_eq!(e[0]["container"]["name"], "compute");
    assert_eq!(e[0]["container"]["knownFrom"], "process-name");
    assert_eq!(e[0]["killsVm"], true);
}

/// 5.15: a node-wide OOM cut after Mem-Info (no kill lines, no constraint) is global from its
/// call trace; a memory cgroup OOM cut the same way is not.
#[test]
fn global_oom_known_from_the_call_trace() {
    let evs = events("dmesg-5.15-trace-only.log");
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].scope, Some(OomScope::Global));
    assert!(evs[0].global_from_call_trace);
    assert_eq!(evs[1].scope, None, "mem_cgroup_out_of_memory in the trace");
    assert!(!evs[1].global_from_call_trace);
    let ex = explain(&evs, None, None);
    assert!(
        ex[0].verdict.contains("node ran out of memory"),
        "{}",
        ex[0].verdict
    );
    assert!(ex[0].verdict.contains("call trace"), "{}", ex[0].verdict);
    assert_eq!(ex[0].reserve_bytes, None);

    let v = oom_json(&["-f", &path("dmesg-5.15-trace-only.log")]);
    assert_eq!(v["events"][0]["scope"], "global");
    assert_eq!(v["events"][1]["scope"], serde_json::Value::Null);
}

/// cgroup v2, kubelet ≥ 1.28 (`memory.oom.group = 1` on each container), 5.14: one report, then
/// the group's other processes killed: one event listing them all; the next report is its own.
#[test]
fn oom_group_kill_is_one_event() {
    let evs = events("v2-5.14-oom-group-compute.log");
    assert_eq!(evs.len(), 2, "{evs:#?}");
    let ev = &evs[0];
    assert!(!ev.partial, "not cut short");
    let pids: Vec<u32> = ev.victims().map(|v| v.pid).collect();
    assert_eq!(pids, [40120, 39960, 39978, 40011, 40012]);
    assert!(ev
        .group_kill
        .as_deref()
        .unwrap()
        .ends_with(&format!("cri-containerd-{COMPUTE_ID}.scope")));
    assert_eq!(ev.pod_uid.as_deref(), Some(GROUP_POD));
    assert_eq!(ev.container_id.as_deref(), Some(COMPUTE_ID));
    assert!(evs[1].group_victims.is_empty());
    assert_eq!(evs[1].victim.as_ref().unwrap().pid, 90288);
    let ex = explain(&evs, None, None);
    assert!(ex[0].kills_vm());
    assert!(
        ex[0].verdict.contains("memory.oom.group"),
        "{}",
        ex[0].verdict
    );
    assert!(
        ex[0].verdict.contains("virtlogd (pid 40012)"),
        "{}",
        ex[0].verdict
    );

    let v = oom_json(&["-f", &path("v2-5.14-oom-group-compute.log")]);
    let e = v["events"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["partial"], false);
    assert_eq!(e[0]["victims"].as_array().unwrap().len(), 5);
    assert_eq!(e[0]["victims"][4]["comm"], "virtlogd");
    assert_eq!(e[0]["victim"]["pid"], 40120);
    assert_eq!(e[0]["killsVm"], true);
}

/// The inventory of the oom.group fixtures' pod: compute and guest-console-log by container id.
fn sidecar_inventory() -> Inventory {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "prod", "name": "virt-launcher-web-1-x7k2p", "uid": GROUP_POD,
                     "labels": {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": "web-1",
                                "kubevirt.io/created-by": "vmi-web-1"}},
        "spec": {"containers": [{"name": "compute"}, {"name": "guest-console-log"}]},
        "status": {"containerStatuses": [
            {"name": "compute", "containerID": format!("containerd://{COMPUTE_ID}")},
            {"name": "guest-console-log", "containerID": format!("containerd://{CONSOLE_ID}")}]}
    }))
    .unwrap();
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "prod", "name": "web-1", "uid": "vmi-web-1"},
        "spec": {"domain": {"resources": {"requests": {"memory": "2Gi"}}}}
    }))
    .unwrap();
    let vm: VirtualMachine = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "prod", "name": "web-1", "uid": "vm-web-1"}
    }))
    .unwrap();
    Inventory {
        pods: vec![pod.into()],
        vmis: vec![vmi.into()],
        vms: vec![vm.into()],
        ..Default::default()
    }
}

/// kubevirt#15501: guest-console-log hits its own 60M limit; virt-tail is killed, the VM runs on.
#[test]
fn sidecar_kill_is_not_the_vms_death() {
    let evs = events("v2-5.14-sidecar-guest-console-log.log");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].scope, Some(OomScope::Container));
    assert_eq!(evs[0].container_id.as_deref(), Some(CONSOLE_ID));
    // Without the cluster's objects: known by the process name.
    let ex = &explain(&evs, None, None)[0];
    let c = ex.container.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.known_from),
        ("guest-console-log", ContainerEvidence::ProcessName)
    );
    assert!(!ex.kills_vm());
    assert!(ex.verdict.contains("the VM kept running"), "{}", ex.verdict);
    assert!(!ex.verdict.contains("was OOM-killed"), "{}", ex.verdict);
    assert_eq!(
        ex.reserve_bytes, None,
        "a reservation does not help a sidecar's own limit"
    );
    // With them: by the container id in the pod's status.
    let inv = sidecar_inventory();
    let ex = &explain(&evs, Some(&inv), None)[0];
    let c = ex.container.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.known_from),
        ("guest-console-log", ContainerEvidence::PodStatus)
    );
    assert_eq!(ex.vm.as_ref().unwrap().name, "web-1");
    // The compute container's group kill, with the same inventory, is the VM's.
    let group = events("v2-5.14-oom-group-compute.log");
    let ex = &explain(&group, Some(&inv), None)[0];
    assert_eq!(ex.container.as_ref().unwrap().name, "compute");
    assert_eq!(
        ex.container.as_ref().unwrap().known_from,
        ContainerEvidence::PodStatus
    );
    assert!(ex.kills_vm());
}

#[test]
fn sidecar_kill_through_the_binary() {
    let v = oom_json(&["-f", &path("v2-5.14-sidecar-guest-console-log.log")]);
    let e = &v["events"][0];
    assert_eq!(e["container"]["name"], "guest-console-log");
    assert_eq!(e["killsVm"], false);
    assert_eq!(e["scope"], "container");
    assert_eq!(e["recommendation"], serde_json::Value::Null);
    // With the pod's objects (--from): the container named by the pod's status.
    let dir = tempdir();
    let inv = sidecar_inventory();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        with_kind(&inv.pods[0], "v1", "Pod"),
        with_kind(&inv.vmis[0], "kubevirt.io/v1", "VirtualMachineInstance"),
        with_kind(&inv.vms[0], "kubevirt.io/v1", "VirtualMachine"),
    ]});
    let objects = dir.join("objects.json");
    std::fs::write(&objects, serde_json::to_vec(&list).unwrap()).unwrap();
    let v = oom_json(&[
        "--from",
        objects.to_str().unwrap(),
        "-f",
        &path("v2-5.14-sidecar-guest-console-log.log"),
    ]);
    let e = &v["events"][0];
    assert_eq!(e["vm"]["name"], "web-1");
    assert_eq!(e["container"]["name"], "guest-console-log");
    assert_eq!(e["container"]["knownFrom"], "pod-status");
    assert_eq!(e["killsVm"], false);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn with_kind<T: serde::Serialize>(obj: &T, api: &str, kind: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).unwrap();
    v["apiVersion"] = api.into();
    v["kind"] = kind.into();
    v
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmmem-oom-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
