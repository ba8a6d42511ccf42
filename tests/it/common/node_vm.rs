//! KubeVirt-like VMs on the real node of [`super::node`], and what the test reads of them from the
//! host: the structural CRD objects (a VirtualMachine, a Running VirtualMachineInstance) and a launcher
//! pod made the way virt-controller makes it, running the fake launcher processes of
//! tests/node/fake (named like KubeVirt's), and the pod's cgroups and processes as the kernel shows
//! them (cgroup v1, the kubelet's cgroupfs driver).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::node::RealNode;

/// The namespace of the test VMs and the one the tool's agents go to.
pub const NS: &str = "vms";
pub const AGENT_NS: &str = "vmmem-agents";

/// One VM: its guest, its shape, the compute limit KubeVirt would give its launcher pod and how
/// the fake qemu behaves.
pub struct TestVm {
    pub name: &'static str,
    /// The launcher pod's random suffix (a new one for each pod, as KubeVirt's generateName gives).
    pub pod_suffix: &'static str,
    pub guest: u64,
    pub cores: u32,
    /// KubeVirt v1.3.0's compute limit: guest + O.
    pub pod_limit: u64,
    /// How much of the guest qemu touches (percent), and its own heap beside it.
    pub touched_percent: u64,
    pub qemu_heap: u64,
}

impl TestVm {
    pub fn pod_name(&self) -> String {
        format!("virt-launcher-{}-{}", self.name, self.pod_suffix)
    }

    pub fn domain(&self) -> Value {
        json!({"cpu": {"cores": self.cores},
            "resources": {"limits": {"memory": self.guest.to_string(), "cpu": self.cores.to_string()},
                          "requests": {"memory": self.guest.to_string()}}})
    }
}

pub fn create_namespaces(node: &RealNode) {
    for ns in [NS, AGENT_NS] {
        let manifest = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        node.apply(&manifest.to_string()).unwrap();
    }
}

/// The VM, its Running VMI on the node and, as virt-controller would make it, its launcher pod:
/// `compute` (virt-launcher-monitor starting virt-launcher, virtqemud, virtlogd and qemu) and the
/// `guest-console-log` sidecar (virt-tail). Returns the pod's UID once it runs.
pub fn create_vm(node: &RealNode, vm: &TestVm) -> String {
    let name = vm.name;
    let manifest = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"kubevirt.io/domain": name}},
            "spec": {"domain": vm.domain()}}}});
    node.apply(&manifest.to_string()).unwrap();
    start_vmi(node, vm, json!({"domain": vm.domain()}))
}

/// What virt-controller does to start a VM: a VMI with `spec` (Running on the node) and its
/// launcher pod. Returns the pod's UID once it runs.
pub fn start_vmi(node: &RealNode, vm: &TestVm, spec: Value) -> String {
    let name = vm.name;
    let vmi = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": NS, "labels": {"kubevirt.io/domain": name}},
        "spec": spec});
    node.apply(&vmi.to_string()).unwrap();
    let vmi_uid = get(node, "vmi", name, "{.metadata.uid}");
    let status = json!({"status": {"phase": "Running", "nodeName": node.name()}}).to_string();
    let patch = [
        "patch",
        "vmi",
        name,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
    ];
    let mut args = patch.to_vec();
    args.push(&status);
    node.kubectl(&args).unwrap();
    create_launcher_pod(node, vm, &vmi_uid);
    wait_running(node, &vm.pod_name());
    get(node, "pod", &vm.pod_name(), "{.metadata.uid}")
}

/// What virt-controller does to stop a VM: the launcher pod and the VMI deleted, and gone.
pub fn stop_vmi(node: &RealNode, vm: &TestVm) {
    let pod = vm.pod_name();
    let grace = ["--grace-period=1", "--wait=true"];
    node.kubectl(&[&["delete", "pod", pod.as_str(), "-n", NS][..], &grace].concat())
        .unwrap();
    node.kubectl(&["delete", "vmi", vm.name, "-n", NS, "--wait=true"])
        .unwrap();
}

/// The launcher pod for the VMI `vmi_uid`, with `vm`'s compute limit.
pub fn create_launcher_pod(node: &RealNode, vm: &TestVm, vmi_uid: &str) {
    let monitor_args = [
        vm.guest.to_string(),
        vm.touched_percent.to_string(),
        vm.qemu_heap.to_string(),
    ];
    let limit = vm.pod_limit.to_string();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": vm.pod_name(), "namespace": NS,
            "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid,
                       "vm.kubevirt.io/name": vm.name}},
        "spec": {"nodeName": node.name(), "terminationGracePeriodSeconds": 1,
            "containers": [
                // Non-root KubeVirt (the default since v0.59) runs the compute container as
                // the qemu user, 107: reading its processes' smaps takes CAP_SYS_PTRACE.
                {"name": "compute", "image": node.image(), "imagePullPolicy": "Never",
                 "securityContext": {"runAsUser": 107, "runAsGroup": 107},
                 "command": ["/bin/virt-launcher-monitor"], "args": monitor_args,
                 // KubeVirt requests 1/10 of a CPU per vCPU (the default allocation ratio); the
                 // node has only this machine's 2 cores.
                 "resources": {"limits": {"memory": limit},
                               "requests": {"memory": limit, "cpu": "100m"}}},
                {"name": "guest-console-log", "image": node.image(), "imagePullPolicy": "Never",
                 "command": ["/bin/virt-tail", "1048576"],
                 "resources": {"limits": {"memory": "60M", "cpu": "15m"},
                               "requests": {"memory": "60M", "cpu": "15m"}}}]}});
    node.apply(&pod.to_string()).unwrap();
}

/// `kubectl get KIND NAME -n vms -o jsonpath=PATH` as the admin.
pub fn get(node: &RealNode, kind: &str, name: &str, path: &str) -> String {
    node.kubectl(&[
        "get",
        kind,
        name,
        "-n",
        NS,
        "-o",
        &format!("jsonpath={path}"),
    ])
    .unwrap_or_default()
}

pub fn wait_running(node: &RealNode, pod: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let phase = get(node, "pod", pod, "{.status.phase}");
        if phase == "Running" {
            return;
        }
        assert!(
            phase != "Failed",
            "pod {pod} failed: {}",
            get(node, "pod", pod, "{.status}")
        );
        assert!(
            Instant::now() < deadline,
            "pod {pod} not Running after 60 s (phase {phase:?}); kubelet log:\n{}",
            node.kubelet_log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What the test reads from the host for a launcher pod: its cgroups and processes.
pub struct Kernel {
    /// The compute container's memory cgroup (the tighter limit: compute's, below the pod's
    /// compute + 60M).
    pub compute: PathBuf,
    pub guest: u64,
    pub qemu: u32,
    pub others: Vec<(&'static str, u32)>,
}

impl Kernel {
    /// Find the pod's processes on the host and wait until qemu has touched its share of the guest.
    pub fn of(node: &RealNode, vm: &TestVm, pod_uid: &str) -> Kernel {
        let pod = pod_cgroup(pod_uid);
        let pids = pids_in(&pod);
        let pid_of = |name: &str| {
            *pids
                .iter()
                .find(|p| comm(**p) == name)
                .unwrap_or_else(|| panic!("no {name} among the pod's processes"))
        };
        let qemu = pid_of("qemu-system-x86");
        let deadline = Instant::now() + Duration::from_secs(30);
        while guest_resident(qemu, vm.guest).unwrap_or(0) < vm.guest / 100 * vm.touched_percent {
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
        let id = get(
            node,
            "pod",
            &vm.pod_name(),
            r#"{.status.containerStatuses[?(@.name=="compute")].containerID}"#,
        );
        let id = id
            .strip_prefix("containerd://")
            .unwrap_or_else(|| panic!("compute's containerID {id:?} is not containerd's"));
        Kernel {
            compute: pod.join(id),
            guest: vm.guest,
            qemu,
            others,
        }
    }

    pub fn usage(&self) -> u64 {
        read_u64(&self.compute.join("memory.usage_in_bytes"))
    }

    /// qemu's guest RAM resident, from its smaps.
    pub fn guest_resident(&self) -> Option<u64> {
        guest_resident(self.qemu, self.guest)
    }
}

/// The pod's memory cgroup on the host: Guaranteed pods sit directly under /kubepods.
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

pub fn read_u64(path: &Path) -> u64 {
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

/// A size line of /proc (`Name:   123 kB`) in bytes.
fn kb_field(line: &str, field: &str) -> Option<u64> {
    let kb = line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim();
    kb.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// A process's private memory as the tool counts it: RssAnon + RssShmem of /proc/PID/status.
pub fn private_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    ["RssAnon:", "RssShmem:"]
        .iter()
        .map(|field| {
            status
                .lines()
                .find_map(|l| kb_field(l, field))
                .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        })
        .sum()
}

/// The resident bytes of qemu's mapping whose size is exactly `guest` (its guest RAM), once qemu
/// has mapped it.
fn guest_resident(pid: u32, guest: u64) -> Option<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut in_guest = false;
    for line in smaps.lines() {
        if let Some(size) = kb_field(line, "Size:") {
            in_guest = size == guest;
        } else if in_guest {
            if let Some(rss) = kb_field(line, "Rss:") {
                return Some(rss);
            }
        }
    }
    None
}

/// Run the real binary with `args` plus the node's agent settings, as the user of `kubeconfig`;
/// its output, after checking it succeeded.
pub fn run_tool(node: &RealNode, kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .env("XDG_STATE_HOME", super::state_home())
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--agent-namespace", AGENT_NS, "--agent-image", node.image()])
        .args([
            "--agent-pull-policy",
            "Never",
            "--kubevirt-version",
            "v1.3.0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}\nkubelet log:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        node.kubelet_log_tail(30)
    );
    out
}

/// `list -o json` of the VMs' namespace with the `--live` source `live`, as the user of `kubeconfig`.
pub fn list_json_as(node: &RealNode, kubeconfig: &Path, live: &str) -> Value {
    let out = run_tool(
        node,
        kubeconfig,
        &["list", "-n", NS, "-o", "json", "--live", live],
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
