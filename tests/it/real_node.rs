//! The tool against a real node: etcd, kube-apiserver, containerd + runc and a kubelet v1.20.2
//! (tests/node). VMs that look like KubeVirt's (common/node_vm.rs) are read through the real binary
//! with every live source, and every figure is checked against what the kernel's own files say for
//! the pod, read by the test from the host; then qemu is OOM-killed for real and the tool explains it.
//!
//! The node cannot be had without root and a few Debian packages; when it cannot start, the test
//! fails with the reason (it never skips).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::both_nodes::{self, VmUnderTest};
use crate::common::node::RealNode;
use crate::common::node_vm::{
    create_namespaces, create_vm, get, list_json_as, private_rss, read_u64, run_tool, start_vmi,
    stop_vmi, Kernel, TestVm, AGENT_NS, NS,
};
use crate::common::tmux::Tmux;

/// 4Gi of guest, 2 vCPUs; the compute limit KubeVirt v1.3.0 sets: 4Gi + O, O by hand from KubeVirt
/// v1.3.0's renderresources.go: page tables ⌈4Gi/1000⌉·1000/512 = 8,388,609, 210Mi of processes,
/// 2 × 8Mi per vCPU, 8Mi IOThread, 16Mi video.
const PLAIN: TestVm = TestVm {
    name: "plain",
    pod_suffix: "x7k2p",
    guest: 4 << 30,
    cores: 2,
    pod_limit: 4_294_967_296 + 270_532_609,
    touched_percent: 10,
    qemu_heap: 40 << 20,
};

/// 256Mi of guest, all touched, 1 vCPU: O = 268,436,000/512 = 524,289 + 210Mi + 8Mi + 8Mi + 16Mi
/// = 254,279,681. A process started in its compute container grows until the kernel kills qemu.
const MEMHOLD: TestVm = TestVm {
    name: "memhold",
    pod_suffix: "b5n8w",
    guest: 256 << 20,
    cores: 1,
    pod_limit: 268_435_456 + 254_279_681,
    touched_percent: 100,
    qemu_heap: 16 << 20,
};

fn start_node() -> RealNode {
    RealNode::start().unwrap_or_else(|e| panic!("REAL NODE UNAVAILABLE, failing on purpose: {e:#}"))
}

fn row_of<'a>(json: &'a Value, vm: &TestVm) -> &'a Value {
    json["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == vm.name)
        .unwrap_or_else(|| panic!("no row for {}: {json}", vm.name))
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
    let row = row_of(&json, &PLAIN).clone();
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
    assert_eq!(row["guestResidentBytes"].as_u64(), kernel.guest_resident());
    for (name, pid) in &kernel.others {
        let private = private_rss(*pid);
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
    assert_eq!(row["guestResidentBytes"].as_u64(), kernel.guest_resident());
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
        Some(PLAIN.pod_limit / 4096 * 4096),
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

/// A real OOM kill: a process in the compute container grows until the cgroup's limit makes the
/// kernel kill qemu (the largest task). The tool then shows the VM OOM-killed (container status
/// `OOMKilled` and the kernel-log report read through the agent), `oom --node` explains the kill
/// with the pod's limit, and the recommended reservation exceeds what the kill needed.
fn a_real_oom_kill_is_explained(node: &RealNode) {
    let pod_uid = create_vm(node, &MEMHOLD);
    // Kernel::of returns once qemu has touched all of its guest RAM: only then can the kill be
    // of qemu, the largest task.
    Kernel::of(node, &MEMHOLD, &pod_uid);
    let pod = MEMHOLD.pod_name();
    let admin = node.admin_kubeconfig().to_string_lossy().into_owned();
    let mut grow = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            &admin,
            "exec",
            "-n",
            NS,
            &pod,
            "-c",
            "compute",
            "--",
        ])
        .args(["/bin/memhold", "419430400", "4194304", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let reason_path =
        r#"{.status.containerStatuses[?(@.name=="compute")].lastState.terminated.reason}"#;
    loop {
        if get(node, "pod", &pod, reason_path) == "OOMKilled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "qemu was not OOM-killed within 90 s; compute's status: {}",
            get(
                node,
                "pod",
                &pod,
                r#"{.status.containerStatuses[?(@.name=="compute")]}"#
            )
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = grow.kill();
    let _ = grow.wait();
    // cgroup v1 counts the kill (memory.oom_control oom_kill) only in the victim's memcg and its
    // failcnt only in the memcg that hit its limit (both the killed container's here), and that
    // memcg goes with the container: after the restart
    // the container status and the kernel log are what is left, and the tool must use both.
    let json = list_json_as(node, node.admin_kubeconfig(), "agent");
    let row = row_of(&json, &MEMHOLD);
    let flags = row["flags"].to_string();
    assert!(
        flags.contains("\"oom-killed"),
        "memhold not shown OOM-killed: {row}"
    );
    let evidence = row["recommendation"]["evidence"].as_array().unwrap();
    let kill = evidence
        .iter()
        .filter(|e| e["kind"] == "oom-kill")
        .filter_map(|e| e["bytes"].as_u64())
        .max()
        .unwrap_or_else(|| panic!("no oom-kill evidence: {}", row["recommendation"]));
    let reserve = row["recommendation"]["reserveBytes"].as_u64().unwrap();
    let o = row["expectedOverheadBytes"].as_u64().unwrap();
    assert!(
        reserve + o > kill,
        "the reservation {reserve} + O {o} does not cover the {kill} bytes outside guest RAM at the kill: {}",
        row["recommendation"]
    );

    let node_name = node.name().to_string();
    let out = run_tool(
        node,
        node.admin_kubeconfig(),
        &["oom", "-n", NS, "--node", &node_name, "-o", "json"],
    );
    let oom: Value = serde_json::from_slice(&out.stdout).unwrap();
    let event = oom["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["vm"]["name"] == MEMHOLD.name)
        .unwrap_or_else(|| panic!("oom --node has no event of {}: {oom}", MEMHOLD.name));
    assert_eq!(event["victim"]["comm"], "qemu-system-x86", "{event}");
    assert_eq!(
        event["limitBytes"].as_u64(),
        Some(MEMHOLD.pod_limit / 4096 * 4096),
        "{event}"
    );
    assert_eq!(event["podUid"], pod_uid.as_str(), "{event}");
    let vm = VmUnderTest::of(node, NS, MEMHOLD.name);
    both_nodes::oom_kill_is_where_the_kernel_keeps_it(node, &vm, MEMHOLD.pod_limit / 4096 * 4096);
}

/// The dashboard's row of `name` (one namespace in scope: the NAME column comes first).
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
}

/// The dashboard in a real terminal (tmux) on the node's cluster, refreshing every 2 s.
fn dashboard(node: &RealNode) -> Tmux {
    let script = format!(
        "{} top -n {NS} --refresh 2s --history off --kubeconfig {} --agent-namespace {AGENT_NS} \
         --agent-image {} --agent-pull-policy Never --kubevirt-version v1.3.0",
        env!("CARGO_BIN_EXE_kubectl-vmmem"),
        node.admin_kubeconfig().display(),
        node.image()
    );
    let state = crate::common::state_home().to_string_lossy().into_owned();
    let env = [("NO_COLOR", "1"), ("XDG_STATE_HOME", state.as_str())];
    let socket = format!("vmmem-real-node-{}", std::process::id());
    let timing = (Duration::from_secs(90), Duration::from_millis(300));
    Tmux::start(socket, &script, (200, 50), &env, timing)
}

/// `fix --reserve` patches the VM on the real apiserver; a restart done as KubeVirt would (the old
/// launcher pod and VMI deleted, a new VMI from the patched template and a new pod with the limit
/// for it) is seen by the dashboard, left running all along, without a restart of the tool.
fn fix_and_restart_seen_by_the_dashboard(node: &RealNode) {
    let t = dashboard(node);
    let before = t.wait_for("plain's row with its 4GiB guest", |s| {
        row(s, PLAIN.name).is_some_and(|r| r.contains("4GiB") && r.contains("agent"))
    });
    let out = run_tool(
        node,
        node.admin_kubeconfig(),
        &[
            "fix",
            PLAIN.name,
            "-n",
            NS,
            "--reserve",
            "512Mi",
            "--strategy",
            "guest",
            "--yes",
            "-o",
            "json",
        ],
    );
    let fix: Value = serde_json::from_slice(&out.stdout).unwrap();
    let guest = get(
        node,
        "vm",
        PLAIN.name,
        "{.spec.template.spec.domain.memory.guest}",
    );
    assert_eq!(guest, "3584Mi", "the VM on the apiserver after fix: {fix}");
    let new_limit = fix["plan"]["after"]["expectedPodLimitBytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no expected pod limit in the plan: {fix}"));

    stop_vmi(node, &PLAIN);
    let restarted = TestVm {
        pod_suffix: "q9r4t",
        guest: 3584 << 20,
        pod_limit: new_limit,
        ..PLAIN
    };
    let template: Value = serde_json::from_str(
        &node
            .kubectl(&["get", "vm", PLAIN.name, "-n", NS, "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    start_vmi(
        node,
        &restarted,
        template["spec"]["template"]["spec"].clone(),
    );
    let after = t.wait_for("plain's row with its new 3.5GiB guest and live data", |s| {
        row(s, PLAIN.name).is_some_and(|r| r.contains("3.5GiB") && r.contains("agent"))
    });
    assert_ne!(row(&before, PLAIN.name), row(&after, PLAIN.name));
}

/// Issue 15: everything the tool does on a node, against a real kubelet + containerd + runc. One
/// node for all the steps (two kubelets would share the host's /kubepods cgroups).
#[test]
fn a_real_node_end_to_end() {
    let node = start_node();
    create_namespaces(&node);
    let pod_uid = create_vm(&node, &PLAIN);
    let kernel = Kernel::of(&node, &PLAIN, &pod_uid);
    agent_reads_what_the_kernel_says(&node, &kernel);
    pod_exec_reads_what_the_kernel_says(&node, &kernel);
    kubelet_reads_what_the_kernel_says(&node, &kernel);
    // The assertions the simulator passes too (both_nodes.rs).
    let plain = VmUnderTest::of(&node, NS, PLAIN.name);
    both_nodes::node_sources_read_the_host_files(&node, &plain, 1 << 20);
    both_nodes::kubelet_summary_is_a_sample(&node, &plain);
    both_nodes::kubelet_source_reads_the_summary(&node, &plain);
    auto_falls_back_without_agent_rights(&node, &kernel);
    a_real_oom_kill_is_explained(&node);
    fix_and_restart_seen_by_the_dashboard(&node);
}
