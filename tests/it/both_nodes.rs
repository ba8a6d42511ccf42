//! One set of assertions run against the simulator and against the real node (issue 19), as
//! both_servers.rs does for the API server: the tool's figures per live source equal the host's
//! cgroup files, the kubelet's Summary is a sample with its own age, the pods' cgroup paths
//! (systemd or cgroupfs driver) parse to the pod and container, and after an OOM kill by the
//! compute limit the counters are where the kernel keeps them and the explanation names the
//! limit and the pod. The real node's half runs inside tests/it/real_node.rs (one node start).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use vmmem::parse::cgroup_path::{kube_cgroup, CgroupLevel};

/// A cluster whose node the test can also read from the host side.
pub trait NodeUnderTest {
    fn kubeconfig(&self) -> &Path;
    fn node(&self) -> &str;
    /// The node's cgroup v1 memory hierarchy on the host (the kernel's, or the simulated tree).
    fn memcg_root(&self) -> PathBuf;
    /// The binary with `args` (and the cluster's agent settings); its output, succeeded.
    fn run(&self, args: &[&str]) -> Output;
    /// Bring the host files up to date before they are read (the simulator writes them).
    fn sync_host(&self) {}
    /// The cluster's clock (Unix seconds): the simulator's runs ahead when a test skips time.
    fn now_unix(&self) -> i64 {
        let now = std::time::SystemTime::now();
        now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }
    /// The kubelet's Summary of the node, through the API server's node proxy.
    fn summary(&self) -> Value {
        let path = format!("/api/v1/nodes/{}/proxy/stats/summary", self.node());
        kubectl_json(self.kubeconfig(), &["get", "--raw", &path])
    }
}

/// One VM's launcher pod as the API shows it.
pub struct VmUnderTest {
    pub namespace: String,
    pub name: String,
    pub pod_uid: String,
    pub compute_id: String,
}

impl VmUnderTest {
    /// The VM's launcher pod (by the `vm.kubevirt.io/name` label KubeVirt gives it).
    pub fn of(node: &dyn NodeUnderTest, namespace: &str, name: &str) -> VmUnderTest {
        let pod = launcher_pod(node, namespace, name);
        let compute_id = pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "compute")
            .and_then(|c| c["containerID"].as_str())
            .and_then(|id| id.strip_prefix("containerd://"))
            .unwrap_or_else(|| panic!("no containerd compute container in {pod}"))
            .to_string();
        VmUnderTest {
            namespace: namespace.into(),
            name: name.into(),
            pod_uid: pod["metadata"]["uid"].as_str().unwrap().into(),
            compute_id,
        }
    }
}

/// `kubectl --kubeconfig KC args` (the real kubectl), its JSON output; fails the test with
/// kubectl's stderr.
fn kubectl_json(kubeconfig: &Path, args: &[&str]) -> Value {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("running kubectl");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The launcher pod of VM `name`, through kubectl.
pub fn launcher_pod(node: &dyn NodeUnderTest, namespace: &str, name: &str) -> Value {
    let selector = format!("vm.kubevirt.io/name={name}");
    let args = [
        "get", "pods", "-n", namespace, "-o", "json", "-l", &selector,
    ];
    let list = kubectl_json(node.kubeconfig(), &args);
    list["items"]
        .as_array()
        .unwrap()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no launcher pod for {namespace}/{name}"))
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// `oom_kill N` of a v1 memory.oom_control.
fn oom_kills(memcg: &Path) -> u64 {
    let text = std::fs::read_to_string(memcg.join("memory.oom_control")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// The pod's memory cgroup below the hierarchy, whatever the driver named it; the product's
/// path parser must read it back as this pod's pod-level cgroup.
pub fn pod_memcg(node: &dyn NodeUnderTest, vm: &VmUnderTest) -> PathBuf {
    let root = node.memcg_root();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let below = format!("/{}", path.strip_prefix(&root).unwrap().display());
            let parsed = kube_cgroup(&below);
            if parsed.pod_uid.as_deref() == Some(vm.pod_uid.as_str()) {
                assert_eq!(parsed.level, CgroupLevel::Pod, "{below}");
                return path;
            }
            if below.matches('/').count() < 4 {
                dirs.push(path);
            }
        }
    }
    panic!(
        "no memory cgroup of pod {} under {}",
        vm.pod_uid,
        root.display()
    )
}

/// The compute container's memcg: a directory of the pod's whose name the parser reads as that
/// container (`cri-containerd-<id>.scope` or the bare id).
pub fn compute_memcg(node: &dyn NodeUnderTest, vm: &VmUnderTest) -> PathBuf {
    let pod = pod_memcg(node, vm);
    let root = node.memcg_root();
    std::fs::read_dir(&pod)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let below = format!("/{}", p.strip_prefix(&root).unwrap().display());
            let parsed = kube_cgroup(&below);
            parsed.container_id.as_deref() == Some(vm.compute_id.as_str())
                && parsed.level == CgroupLevel::Container
                && parsed.pod_uid.as_deref() == Some(vm.pod_uid.as_str())
        })
        .unwrap_or_else(|| {
            panic!(
                "no memcg of container {} in {}",
                vm.compute_id,
                pod.display()
            )
        })
}

fn row<'a>(report: &'a Value, vm: &VmUnderTest) -> &'a Value {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == vm.name.as_str() && r["namespace"] == vm.namespace.as_str())
        .unwrap_or_else(|| panic!("no row for {}: {report}", vm.name))
}

/// `list -o json --live LIVE` of the VM's namespace: the VM's `cgroup` object.
fn cgroup_read(node: &dyn NodeUnderTest, vm: &VmUnderTest, live: &str) -> Value {
    let out = node.run(&["list", "-n", &vm.namespace, "-o", "json", "--live", live]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cg = row(&report, vm)["cgroup"].clone();
    assert!(cg.is_object(), "{live}: no cgroup figures: {report}");
    cg
}

/// The agent and pod-exec sources: limit and failcnt equal to the compute memcg's files, usage
/// within `slack` bytes of the file read just after (the real kernel's moves a little).
pub fn node_sources_read_the_host_files(node: &dyn NodeUnderTest, vm: &VmUnderTest, slack: u64) {
    for live in ["agent", "pod-exec"] {
        let cg = cgroup_read(node, vm, live);
        node.sync_host();
        let memcg = compute_memcg(node, vm);
        assert_eq!(cg["level"], "container", "{live}: {cg}");
        assert_eq!(
            cg["limitBytes"].as_u64(),
            Some(read_u64(&memcg.join("memory.limit_in_bytes"))),
            "{live}: {cg}"
        );
        assert_eq!(
            cg["failcnt"].as_u64(),
            Some(read_u64(&memcg.join("memory.failcnt"))),
            "{live}: {cg}"
        );
        let usage = cg["usageBytes"].as_u64().unwrap();
        let file = read_u64(&memcg.join("memory.usage_in_bytes"));
        assert!(
            usage.abs_diff(file) <= slack,
            "{live}: usage {usage}, the file says {file}"
        );
    }
}

/// The kubelet's Summary of the node: the VM's pod and its compute container's `memory`.
fn summary_of(node: &dyn NodeUnderTest, vm: &VmUnderTest) -> (Value, Value) {
    let summary = node.summary();
    let pod = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["uid"] == vm.pod_uid.as_str())
        .unwrap_or_else(|| panic!("pod {} not in the Summary", vm.pod_uid))
        .clone();
    let compute = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "compute")
        .unwrap_or_else(|| panic!("no compute container in {pod}"))["memory"]
        .clone();
    (pod, compute)
}

/// The Summary as a kubelet v1.20 on cgroup v1 serves it: the fields the tool reads, every
/// `memory` with its sample `time`, compute's availableBytes + workingSetBytes = its limit,
/// and a sample that may be older than the read (never newer).
pub fn kubelet_summary_is_a_sample(node: &dyn NodeUnderTest, vm: &VmUnderTest) {
    let read = node.now_unix();
    let (pod, compute) = summary_of(node, vm);
    for key in ["podRef", "startTime", "containers", "memory"] {
        assert!(!pod[key].is_null(), "{key} in {pod}");
    }
    for m in [&pod["memory"], &compute] {
        for key in [
            "time",
            "usageBytes",
            "workingSetBytes",
            "rssBytes",
            "pageFaults",
            "majorPageFaults",
        ] {
            assert!(!m[key].is_null(), "{key} in {m}");
        }
    }
    node.sync_host();
    let limit = read_u64(&compute_memcg(node, vm).join("memory.limit_in_bytes"));
    let (available, ws) = (
        compute["availableBytes"].as_u64(),
        compute["workingSetBytes"].as_u64(),
    );
    assert_eq!(
        available.zip(ws).map(|(a, w)| a + w),
        Some(limit),
        "{compute}"
    );
    let sampled = vmmem::model::evidence::parse_rfc3339(compute["time"].as_str().unwrap()).unwrap();
    assert!(
        sampled <= read + 1,
        "a sample from after the read: {compute}"
    );
}

/// The kubelet source: the VM's figures are the Summary's (pod or compute level), with the
/// limit of that level's memcg on the host.
pub fn kubelet_source_reads_the_summary(node: &dyn NodeUnderTest, vm: &VmUnderTest) {
    let cg = cgroup_read(node, vm, "kubelet");
    node.sync_host();
    let memcg = match cg["level"].as_str() {
        Some("container") => compute_memcg(node, vm),
        Some("pod") => pod_memcg(node, vm),
        other => panic!("kubelet level {other:?}: {cg}"),
    };
    assert_eq!(
        cg["limitBytes"].as_u64(),
        Some(read_u64(&memcg.join("memory.limit_in_bytes"))),
        "kubelet: {cg}"
    );
    assert!(cg["usageBytes"].as_u64().unwrap_or(0) > 0, "kubelet: {cg}");
}

/// After qemu was OOM-killed by the compute container's limit: the container status says
/// OOMKilled (its state, or lastState after a restart); no memcg left of the pod counts the
/// kill (v1 counts it in the memcg of the victim, compute's, which went with the container)
/// and the pod's own memcg never hit its limit; `oom --node` explains the kill with compute's
/// limit, the pod and the VM, from a path of the node's driver.
pub fn oom_kill_is_where_the_kernel_keeps_it(
    node: &dyn NodeUnderTest,
    vm: &VmUnderTest,
    compute_limit: u64,
) {
    let pod = launcher_pod(node, &vm.namespace, &vm.name);
    assert_eq!(
        pod["metadata"]["uid"],
        vm.pod_uid.as_str(),
        "the pod was replaced"
    );
    let compute = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "compute")
        .unwrap()
        .clone();
    let reason = |s: &str| {
        compute[s]["terminated"]["reason"]
            .as_str()
            .map(str::to_string)
    };
    assert!(
        reason("state").or_else(|| reason("lastState")).as_deref() == Some("OOMKilled"),
        "compute's status: {compute}"
    );
    node.sync_host();
    let pod_memcg = pod_memcg(node, vm);
    assert_eq!(
        read_u64(&pod_memcg.join("memory.failcnt")),
        0,
        "the pod's memcg never hit"
    );
    assert_eq!(
        oom_kills(&pod_memcg),
        0,
        "v1 counts no kill at the pod level"
    );
    for entry in std::fs::read_dir(&pod_memcg).unwrap().flatten() {
        if entry.path().is_dir() {
            assert_eq!(oom_kills(&entry.path()), 0, "{}", entry.path().display());
        }
    }
    let node_name = node.node().to_string();
    let out = node.run(&[
        "oom",
        "-n",
        &vm.namespace,
        "--node",
        &node_name,
        "-o",
        "json",
    ]);
    let oom: Value = serde_json::from_slice(&out.stdout).unwrap();
    let event = oom["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["podUid"] == vm.pod_uid.as_str())
        .unwrap_or_else(|| panic!("no kill of pod {} in {oom}", vm.pod_uid));
    assert_eq!(event["limitBytes"].as_u64(), Some(compute_limit), "{event}");
    assert_eq!(event["scope"], "container", "{event}");
    assert_eq!(event["vm"]["name"], vm.name.as_str(), "{event}");
    assert_eq!(event["vm"]["namespace"], vm.namespace.as_str(), "{event}");
    let memcg = kube_cgroup(event["oomMemcg"].as_str().unwrap());
    assert_eq!(memcg.level, CgroupLevel::Container, "{event}");
    assert_eq!(
        memcg.pod_uid.as_deref(),
        Some(vm.pod_uid.as_str()),
        "{event}"
    );
    assert!(memcg.container_id.is_some(), "{event}");
}

// ---- The simulator's half ----

/// A simulated cluster and the host tree of its node.
struct SimNode {
    sim: vmmem_sim::SimHandle,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
    node: String,
}

impl NodeUnderTest for SimNode {
    fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn memcg_root(&self) -> PathBuf {
        let w = self.sim.world();
        vmmem_sim::hosttree::cgroup_root(&vmmem_sim::hosttree::node_root(&w.host_root, &self.node))
            .join("memory")
    }
    fn run(&self, args: &[&str]) -> Output {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .env("XDG_STATE_HOME", self.home.path())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
    fn sync_host(&self) {
        self.sim.write_host_tree(&self.node).unwrap();
    }
    /// What the simulator's node proxy serves (kubectl's --raw drops the simulator's path).
    fn summary(&self) -> Value {
        vmmem_sim::summary::summary(&self.sim.world(), &self.node).unwrap()
    }
    fn now_unix(&self) -> i64 {
        let wall = self.sim.world().clock.wall();
        wall.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}

/// A node like the real one of tests/node: cgroup v1, the cgroupfs driver, cAdvisor sampling
/// every 15 s; a VM at rest and one whose compute container grows until its limit kills qemu.
const SCENARIO: &str = r#"
flavour: kubevirt
kubevirtVersion: v1.3.0
nodes:
  - {name: node-a, memory: 16Gi, cpus: 8, cgroupDriver: cgroupfs, cadvisorHousekeepingSeconds: 15}
namespaces: [vms, other]
vms:
  - {name: plain, namespace: vms, node: node-a, memory: 1Gi, cpus: 1}
  - name: memhold
    namespace: other
    node: node-a
    memory: 256Mi
    cpus: 1
    workload: {guestFillStart: 1.0, memhold: {afterSeconds: 1100, rate: 8Mi}}
"#;

async fn sim_node() -> SimNode {
    let scenario = vmmem_sim::Scenario::from_yaml(SCENARIO).unwrap();
    let sim = crate::common::start(scenario).await;
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("config");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    SimNode {
        sim,
        kubeconfig,
        home,
        node: "node-a".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_passes_the_real_nodes_assertions() {
    let node = sim_node().await;
    // The node's counters step every 1000 s: the tool's read and the test's read of the files
    // see the same step while model time runs on (so the tool's agent pods start), and the
    // kubelet's sample is past the pod's first.
    node.sim.set_counters(Duration::from_secs(1000), false);
    node.sim.advance(Duration::from_secs(1020));
    let node = tokio::task::spawn_blocking(move || {
        let plain = VmUnderTest::of(&node, "vms", "plain");
        node_sources_read_the_host_files(&node, &plain, 0);
        kubelet_summary_is_a_sample(&node, &plain);
        kubelet_source_reads_the_summary(&node, &plain);
        node
    })
    .await
    .unwrap();
    let (memhold, limit) = {
        let vm = VmUnderTest::of(&node, "other", "memhold");
        let w = node.sim.world();
        let limit = w.launchers[&vm.pod_uid].compute_limit.unwrap() as u64;
        (vm, limit)
    };
    // Up to the kill, and not on to KubeVirt's restart of the VM (a new pod).
    for _ in 0..120 {
        if node.sim.world().launchers[&memhold.pod_uid]
            .killed_at
            .is_some()
        {
            break;
        }
        node.sim.advance(Duration::from_secs(2));
    }
    assert!(
        node.sim.world().launchers[&memhold.pod_uid]
            .killed_at
            .is_some(),
        "memhold was not OOM-killed"
    );
    let node = tokio::task::spawn_blocking(move || {
        oom_kill_is_where_the_kernel_keeps_it(&node, &memhold, limit);
        // A kill in another namespace than the one in scope is still the VM's (by pod UID).
        let out = node.run(&["oom", "-n", "vms", "--node", "node-a", "-o", "json"]);
        let oom: Value = serde_json::from_slice(&out.stdout).unwrap();
        let named = oom["events"].as_array().unwrap().iter().any(|e| {
            e["podUid"] == memhold.pod_uid.as_str()
                && e["vm"] == serde_json::json!({"namespace": "other", "name": "memhold"})
        });
        assert!(named, "the kill in namespace other is not named: {oom}");
        // The cgroupfs path names no runtime; the pod's status does (`containerd://…`).
        let runtimes: Vec<&Value> = oom["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["podUid"] == memhold.pod_uid.as_str())
            .map(|e| &e["containerRuntime"])
            .collect();
        assert!(
            !runtimes.is_empty() && runtimes.iter().all(|r| *r == "containerd"),
            "{runtimes:?}"
        );
        node
    })
    .await
    .unwrap();
    node.sim.shutdown().await;
}

/// A kill by the pod-level limit (a launcher whose compute container has no limit of its own
/// but the pod has one) is counted where the kernel counts it: failcnt in the pod's memcg,
/// oom_kill in the victim's (compute's), and the report's oom_memcg is the pod's.
#[test]
fn a_pod_level_kill_counts_failcnt_in_the_pod_and_the_kill_in_compute() {
    use vmmem_sim::hosttree::launcher_cgroups;
    use vmmem_sim::tick::clamped;
    let scenario = vmmem_sim::Scenario::from_yaml(SCENARIO).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut w = vmmem_sim::world::World::new(&scenario, dir.path().to_path_buf()).unwrap();
    let uid = w
        .launchers
        .values()
        .find(|l| l.vm_name == "memhold")
        .unwrap()
        .pod_uid
        .clone();
    let l = w.launchers.get_mut(&uid).unwrap();
    l.killed_at = Some(l.started + 1.0);
    l.oom_kills = 1;
    l.failcnt = 1200;
    l.killed_by_pod_limit = true;
    let l = l.clone();
    let cgroups = launcher_cgroups(&l, &clamped(&l, 1.0));
    assert_eq!(cgroups.pod.failcnt, 1200);
    assert_eq!(cgroups.pod.oom_kill, 0);
    assert_eq!(
        cgroups.pod.oom_kill_below, 1,
        "v2's memory.events counts it above"
    );
    assert!(
        cgroups.containers.iter().all(|c| c.0 != "compute"),
        "compute's memcg went with the container"
    );
    let _ = &mut w;
}

// ---- The real node's half (called from tests/it/real_node.rs, which starts the node) ----

impl NodeUnderTest for crate::common::node::RealNode {
    fn kubeconfig(&self) -> &Path {
        self.admin_kubeconfig()
    }
    fn node(&self) -> &str {
        self.name()
    }
    fn memcg_root(&self) -> PathBuf {
        PathBuf::from("/sys/fs/cgroup/memory")
    }
    fn run(&self, args: &[&str]) -> Output {
        crate::common::node_vm::run_tool(self, self.admin_kubeconfig(), args)
    }
}
