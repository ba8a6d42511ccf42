//! The tool against a real node: etcd, kube-apiserver, containerd + runc and a kubelet v1.20.2
//! (tests/node). A VM that looks like KubeVirt's (the structural CRDs, a VirtualMachine, a Running
//! VirtualMachineInstance and a launcher pod made the way virt-controller makes it, running processes
//! named like KubeVirt's) is read through the real binary, and every figure is checked against what
//! the kernel's own files say for that pod, read by the test from the host.
//!
//! The node cannot be had without root and a few Debian packages; when it cannot start, the test
//! fails with the reason (it never skips).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::node::RealNode;

const NS: &str = "vms";
const AGENT_NS: &str = "vmmem-agents";
const VM: &str = "plain";
/// The VM's guest RAM (its memory limit and request: 4Gi, 2 vCPUs).
const GUEST: u64 = 4 << 30;
/// The compute limit KubeVirt v1.3.0 sets for it: 4Gi + O, O by hand from KubeVirt v1.3.0's
/// renderresources.go (page tables, 210Mi of processes, 2 × 8Mi per vCPU, 8Mi IOThread, 16Mi video).
const POD_LIMIT: u64 = 4_294_967_296 + 270_532_609;
/// How much of the guest qemu has touched (percent) and its own heap beside it.
const TOUCHED_PERCENT: u64 = 10;
const QEMU_HEAP: u64 = 40 << 20;

fn start_node() -> RealNode {
    RealNode::start().unwrap_or_else(|e| panic!("REAL NODE UNAVAILABLE, failing on purpose: {e:#}"))
}

/// The VM, its Running VMI on the node and, as virt-controller would make it, its launcher pod:
/// `compute` (virt-launcher-monitor starting virt-launcher, virtqemud, virtlogd and qemu) and the
/// `guest-console-log` sidecar. Returns the pod's UID.
fn create_vm(node: &RealNode) -> String {
    node.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": "{NS}"}}}}"#
    ))
    .unwrap();
    node.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": "{AGENT_NS}"}}}}"#
    ))
    .unwrap();
    let domain = json!({"cpu": {"cores": 2},
        "resources": {"limits": {"memory": "4Gi", "cpu": "2"}, "requests": {"memory": "4Gi"}}});
    let vm = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": VM, "namespace": NS},
        "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"kubevirt.io/domain": VM}},
            "spec": {"domain": domain}}}});
    node.apply(&vm.to_string()).unwrap();
    let vmi = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": VM, "namespace": NS, "labels": {"kubevirt.io/domain": VM}},
        "spec": {"domain": domain}});
    node.apply(&vmi.to_string()).unwrap();
    let vmi_uid = node
        .kubectl(&["get", "vmi", VM, "-n", NS, "-o", "jsonpath={.metadata.uid}"])
        .unwrap();
    let status = json!({"status": {"phase": "Running", "nodeName": node.name()}});
    node.kubectl(&[
        "patch",
        "vmi",
        VM,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ])
    .unwrap();
    let monitor_args = [
        GUEST.to_string(),
        TOUCHED_PERCENT.to_string(),
        QEMU_HEAP.to_string(),
    ];
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("virt-launcher-{VM}-x7k2p"), "namespace": NS,
            "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid,
                       "vm.kubevirt.io/name": VM}},
        "spec": {"nodeName": node.name(), "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "compute", "image": node.image(), "imagePullPolicy": "Never",
                 "command": ["/bin/virt-launcher-monitor"], "args": monitor_args,
                 // KubeVirt requests 1/10 of a CPU per vCPU (the default allocation ratio); the
                 // node has only this machine's 2 cores.
                 "resources": {"limits": {"memory": POD_LIMIT.to_string()},
                               "requests": {"memory": POD_LIMIT.to_string(), "cpu": "200m"}}},
                {"name": "guest-console-log", "image": node.image(), "imagePullPolicy": "Never",
                 "command": ["/bin/virt-tail", "1048576"],
                 "resources": {"limits": {"memory": "60M", "cpu": "15m"},
                               "requests": {"memory": "60M", "cpu": "15m"}}}]}});
    node.apply(&pod.to_string()).unwrap();
    wait_running(node, &format!("virt-launcher-{VM}-x7k2p"));
    node.kubectl(&[
        "get",
        "pod",
        &format!("virt-launcher-{VM}-x7k2p"),
        "-n",
        NS,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
    .unwrap()
}

fn wait_running(node: &RealNode, pod: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let phase = node
            .kubectl(&[
                "get",
                "pod",
                pod,
                "-n",
                NS,
                "-o",
                "jsonpath={.status.phase}",
            ])
            .unwrap_or_default();
        if phase == "Running" {
            return;
        }
        assert!(
            phase != "Failed",
            "pod {pod} failed: {}",
            node.kubectl(&["get", "pod", pod, "-n", NS, "-o", "jsonpath={.status}"])
                .unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "pod {pod} not Running after 60 s (phase {phase:?}); kubelet log:\n{}",
            node.kubelet_log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The pod's memory cgroup on the host (cgroup v1, cgroupfs driver: Guaranteed pods sit directly
/// under /kubepods) and its `compute` container's.
fn pod_cgroup(pod_uid: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup/memory/kubepods");
    [
        root.join(format!("pod{pod_uid}")),
        root.join(format!("burstable/pod{pod_uid}")),
    ]
    .into_iter()
    .find(|p| p.is_dir())
    .unwrap_or_else(|| {
        panic!(
            "no memory cgroup for pod {pod_uid} under {}",
            root.display()
        )
    })
}

/// The `compute` container's id as containerd knows it (the name of its cgroup in the pod's).
fn compute_container_id(node: &RealNode) -> String {
    let id = node
        .kubectl(&[
            "get",
            "pod",
            &format!("virt-launcher-{VM}-x7k2p"),
            "-n",
            NS,
            "-o",
            r#"jsonpath={.status.containerStatuses[?(@.name=="compute")].containerID}"#,
        ])
        .unwrap();
    id.strip_prefix("containerd://")
        .unwrap_or_else(|| panic!("compute's containerID {id:?} is not containerd's"))
        .to_string()
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// PIDs (host) of the processes in `cgroup` and below it.
fn pids_in(cgroup: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut dirs = vec![cgroup.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    pids
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A `/proc/PID/status` field in bytes (the kernel prints kB).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        * 1024
}

/// The resident bytes of qemu's mapping whose size is exactly the guest's (its guest RAM), once
/// qemu has mapped it.
fn guest_resident(pid: u32) -> Option<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_guest = false;
    for line in smaps.lines() {
        if let Some(size) = line.strip_prefix("Size:") {
            let kb: u64 = size.trim().trim_end_matches("kB").trim().parse().unwrap();
            in_guest = kb * 1024 == GUEST;
        } else if in_guest {
            if let Some(rss) = line.strip_prefix("Rss:") {
                return Some(
                    rss.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                        * 1024,
                );
            }
        }
    }
    None
}

/// `list -o json` of the VMs' namespace with the `--live` source `live`, as the user of
/// `kubeconfig`. Its stderr (notes and warnings) is printed for the test log.
fn list_json_as(node: &RealNode, kubeconfig: &Path, live: &str) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .env("XDG_STATE_HOME", crate::common::state_home())
        .args([
            "list",
            "-n",
            NS,
            "-o",
            "json",
            "--live",
            live,
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .args([
            "--agent-namespace",
            AGENT_NS,
            "--agent-image",
            node.image(),
            "--agent-pull-policy",
            "Never",
            "--kubevirt-version",
            "v1.3.0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "list --live {live} failed: {}\nkubelet log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.kubelet_log_tail(30)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn breakdown(row: &Value, name: &str) -> u64 {
    row["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["bytes"].as_u64())
        .unwrap_or_else(|| panic!("no {name} in the breakdown: {}", row["breakdown"]))
}

/// What the test reads from the host for the launcher pod: its cgroups and processes.
struct Kernel {
    /// The compute container's memory cgroup (the tighter limit: compute's, below the pod's
    /// compute + 60M).
    compute: PathBuf,
    qemu: u32,
    others: Vec<(&'static str, u32)>,
}

impl Kernel {
    /// Find the pod's processes on the host and wait until qemu has touched its guest RAM.
    fn of(node: &RealNode, pod_uid: &str) -> Kernel {
        let pod_cg = pod_cgroup(pod_uid);
        let pids = pids_in(&pod_cg);
        let pid_of = |name: &str| {
            *pids
                .iter()
                .find(|p| comm(**p) == name)
                .unwrap_or_else(|| panic!("no {name} among the pod's processes"))
        };
        let qemu = pid_of("qemu-system-x86");
        let deadline = Instant::now() + Duration::from_secs(30);
        while guest_resident(qemu).unwrap_or(0) < GUEST / 100 * TOUCHED_PERCENT {
            assert!(
                Instant::now() < deadline,
                "qemu never touched its guest RAM"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let others = ["virt-launcher", "virtqemud", "virtlogd"]
            .into_iter()
            .map(|name| (name, pid_of(name)))
            .collect();
        Kernel {
            compute: pod_cg.join(compute_container_id(node)),
            qemu,
            others,
        }
    }

    fn usage(&self) -> u64 {
        read_u64(&self.compute.join("memory.usage_in_bytes"))
    }
}

/// What one `list -o json` said: the test VM's row and the report's warnings, with the compute
/// cgroup's usage just before and after the tool read it.
struct Read {
    row: Value,
    warnings: Value,
    lo: u64,
    hi: u64,
}

fn read_row(node: &RealNode, kubeconfig: &Path, live: &str, kernel: &Kernel) -> Read {
    let before = kernel.usage();
    let json = list_json_as(node, kubeconfig, live);
    let after = kernel.usage();
    let row = json["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == VM)
        .unwrap_or_else(|| panic!("no row for {VM}: {json}"))
        .clone();
    Read {
        row,
        warnings: json["warnings"].clone(),
        lo: before.min(after),
        hi: before.max(after),
    }
}

/// The figures every node-side source reads: limit, usage (within what the kernel said around the
/// read, give or take 1 MiB of kernel bookkeeping), failcnt.
fn assert_cgroup_as_the_kernel_says(live: &str, read: &Read, kernel: &Kernel) {
    let (lo, hi) = (read.lo, read.hi);
    let cg = &read.row["cgroup"];
    assert_eq!(cg["version"], "v1", "{live}: {cg}");
    assert_eq!(cg["level"], "container", "{live}: {cg}");
    assert_eq!(
        cg["limitBytes"].as_u64(),
        Some(read_u64(&kernel.compute.join("memory.limit_in_bytes"))),
        "{live}: {cg}"
    );
    assert_eq!(
        cg["failcnt"].as_u64(),
        Some(read_u64(&kernel.compute.join("memory.failcnt"))),
        "{live}: {cg}"
    );
    let usage = cg["usageBytes"].as_u64().unwrap();
    assert!(
        usage + (1 << 20) >= lo && usage <= hi + (1 << 20),
        "{live}: usage {usage} outside what the kernel said around the read ({lo}..{hi})"
    );
}

/// The agent (a privileged hostPID pod the tool creates, accepted and started by the kubelet):
/// every figure, per-process memory and qemu's exact guest resident, then the agent is deleted.
fn agent_reads_what_the_kernel_says(node: &RealNode, kernel: &Kernel) {
    let read = read_row(node, node.admin_kubeconfig(), "agent", kernel);
    assert_cgroup_as_the_kernel_says("agent", &read, kernel);
    let row = &read.row;
    assert_eq!(row["guestResidentExact"], true, "{row}");
    assert_eq!(
        row["guestResidentBytes"].as_u64(),
        guest_resident(kernel.qemu)
    );
    for (name, pid) in &kernel.others {
        let private = status_kb(*pid, "RssAnon:") + status_kb(*pid, "RssShmem:");
        let shown = breakdown(row, name);
        assert_eq!(shown, private, "{name}: shown {shown}, kernel {private}");
    }
    let left = node
        .kubectl(&["get", "pods", "-n", AGENT_NS, "-o", "name"])
        .unwrap();
    assert_eq!(left.trim(), "", "agents left behind");
}

/// pod-exec: the probe run in the VM's own `compute` container (through apiserver → kubelet →
/// containerd), seeing the container's cgroup as its root and the container's processes.
fn pod_exec_reads_what_the_kernel_says(node: &RealNode, kernel: &Kernel) {
    let read = read_row(node, node.admin_kubeconfig(), "pod-exec", kernel);
    assert_cgroup_as_the_kernel_says("pod-exec", &read, kernel);
    let row = &read.row;
    assert_eq!(row["guestResidentExact"], true, "pod-exec: {row}");
    assert_eq!(
        row["guestResidentBytes"].as_u64(),
        guest_resident(kernel.qemu)
    );
}

/// The compute container's usage in the kubelet's Summary, as cAdvisor last sampled it.
fn summary_usage(node: &RealNode) -> Option<u64> {
    let path = format!("/api/v1/nodes/{}/proxy/stats/summary", node.name());
    let summary: Value =
        serde_json::from_str(&node.kubectl(&["get", "--raw", &path]).ok()?).ok()?;
    summary["pods"]
        .as_array()?
        .iter()
        .filter(|p| p["podRef"]["namespace"] == NS)
        .flat_map(|p| p["containers"].as_array().into_iter().flatten())
        .find(|c| c["name"] == "compute")?["memory"]["usageBytes"]
        .as_u64()
}

/// kubelet: the real /stats/summary through the apiserver's node proxy. cAdvisor samples each
/// container every 10–15 s, so the Summary can lag a pod that just started: wait until its
/// sample has caught up with the kernel (qemu's memory no longer moves), then read it.
fn kubelet_reads_what_the_kernel_says(node: &RealNode, kernel: &Kernel) {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let sampled = summary_usage(node).unwrap_or(0);
        if sampled.abs_diff(kernel.usage()) < 4 << 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kubelet's Summary never caught up with the kernel: {sampled} vs {}",
            kernel.usage()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let Read { row, lo, hi, .. } = read_row(node, node.admin_kubeconfig(), "kubelet", kernel);
    let cg = &row["cgroup"];
    let usage = cg["usageBytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("kubelet: {row}"));
    assert!(
        usage + (4 << 20) >= lo && usage <= hi + (4 << 20),
        "kubelet: usage {usage} far from what the kernel said around the read ({lo}..{hi}): {cg}"
    );
    assert_eq!(
        cg["limitBytes"].as_u64(),
        Some(POD_LIMIT / 4096 * 4096),
        "kubelet: {cg}"
    );
}

/// auto, for a user who may read (the read-only role) and exec into the VMs' namespace but not
/// create agents: the tool says it cannot use the agent and reads through the VM's own pod.
fn auto_falls_back_without_agent_rights(node: &RealNode, kernel: &Kernel) {
    let readonly = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/rbac/readonly-clusterrole.yaml"),
    )
    .unwrap();
    node.apply(&readonly).unwrap();
    node.kubectl(&[
        "create",
        "clusterrolebinding",
        "vmmem-readonly-user",
        "--clusterrole=kubectl-vmmem-readonly",
        "--user=vmmem-user",
    ])
    .unwrap();
    node.kubectl(&[
        "create",
        "role",
        "exec-vms",
        "-n",
        NS,
        "--verb=create,get",
        "--resource=pods/exec",
    ])
    .unwrap();
    node.kubectl(&[
        "create",
        "rolebinding",
        "exec-vms-user",
        "-n",
        NS,
        "--role=exec-vms",
        "--user=vmmem-user",
    ])
    .unwrap();
    let read = read_row(node, node.user_kubeconfig(), "auto", kernel);
    assert_cgroup_as_the_kernel_says("auto as a user without agent rights", &read, kernel);
    // The kernel log (OOM kills of earlier pods) is read only through an agent: the report says
    // which right was missing and what to use instead.
    let warnings = read.warnings.to_string();
    assert!(
        warnings.contains("not allowed to create agent pods in namespace vmmem-agents")
            && warnings.contains("--live pod-exec"),
        "auto as a user without agent rights: {warnings}"
    );
    let pods = node
        .kubectl(&["get", "pods", "-n", AGENT_NS, "-o", "name"])
        .unwrap();
    assert_eq!(pods.trim(), "", "the user could not have created agents");
}

/// Issue 15: everything the tool does on a node, against a real kubelet + containerd + runc. One
/// node for all the steps (two kubelets would share the host's /kubepods cgroups).
#[test]
fn a_real_node_end_to_end() {
    let node = start_node();
    let pod_uid = create_vm(&node);
    let kernel = Kernel::of(&node, &pod_uid);
    agent_reads_what_the_kernel_says(&node, &kernel);
    pod_exec_reads_what_the_kernel_says(&node, &kernel);
    kubelet_reads_what_the_kernel_says(&node, &kernel);
    auto_falls_back_without_agent_rights(&node, &kernel);
}
