//! Everything the simulated cluster knows: stored objects, the clock, nodes, the memory model of
//! every virt-launcher pod, and timed actions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::units::Quantity;
use crate::version::Version;

use super::auth::Auth;
use super::clock::SimClock;
use super::harvester::HarvesterConfig;
use super::resources::{KUBEVIRTS, NAMESPACES, NODES, RESOURCE_QUOTAS, SETTINGS};

/// The namespace kubectl-vmmem's agents go to by default, present in every simulated cluster as
/// if its admin had applied the plugin's namespace manifest.
pub const AGENT_NAMESPACE: &str = "vmmem-system";
use super::scenario::{Flavour, Scenario};
use super::status::ApiError;
use super::store::Store;
use super::workload::{Params, Shape};

/// Cluster-wide facts the controllers use.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub flavour: Flavour,
    pub version: Version,
    pub ratio: Option<String>,
    pub harvester: Option<HarvesterConfig>,
    pub kubevirt_namespace: String,
    pub kubernetes_version: String,
}

#[derive(Debug, Clone)]
pub struct NodeModel {
    pub name: String,
    pub memory: i64,
    pub cpus: u32,
    pub kernel: String,
    /// Node uptime (seconds) when the simulator started: kernel log timestamps count from boot.
    pub uptime_at_start: f64,
    pub next_pid: u32,
    pub kernel_log: Vec<String>,
    pub ip: String,
    /// cgroup v2 layout; swap on the node.
    pub cgroup_v2: bool,
    pub swap: bool,
    /// How the kubelet names the pods' cgroups.
    pub cgroup_driver: crate::hosttree::CgroupDriver,
    /// cAdvisor's sampling interval behind the Summary (0: always fresh).
    pub housekeeping: f64,
}

impl NodeModel {
    pub fn alloc_pid(&mut self) -> u32 {
        self.next_pid += 1 + (self.next_pid % 7);
        self.next_pid
    }
}

/// Scenario-side data of one VM.
#[derive(Debug, Clone)]
pub struct VmPlan {
    pub node: Option<String>,
    pub migrate_to: Option<String>,
    pub workload: Params,
    pub seed: u64,
    /// A memory hotplug to run after the VMI starts.
    pub hotplug: Option<super::scenario::HotplugSpec>,
}

/// The runtime of one virt-launcher pod.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub pod_uid: String,
    pub pod_name: String,
    pub namespace: String,
    pub vm_name: String,
    pub vmi_uid: String,
    pub node: String,
    pub qos: &'static str,
    pub shape: Shape,
    pub params: Params,
    /// Model time the pod started.
    pub started: f64,
    /// Cgroup limits as the kernel stores them (rounded down to 4096); `None` = unlimited.
    pub compute_limit: Option<i64>,
    pub pod_limit: Option<i64>,
    /// 64-hex container ids: pause, compute, guest-console-log.
    pub container_ids: [String; 3],
    /// pause, monitor, launcher, libvirt, virtlogd, qemu, virt-tail, sh, memhold.
    pub pids: [u32; 9],
    pub oom_score_adj: i64,
    pub oom_kills: u64,
    pub failcnt: u64,
    pub max_usage: i64,
    /// Model time qemu was OOM-killed.
    pub killed_at: Option<f64>,
    /// The model time the last tick looked at.
    pub checked_until: f64,
    /// Its memory can never reach its limit (so ticks skip it).
    pub never_over: bool,
    /// KubeVirt's overhead O added to this pod's compute container.
    pub overhead: i64,
    /// Model time the guest-console-log sidecar was OOM-killed.
    pub console_killed_at: Option<f64>,
    /// qemu's kill was the pod's limit at work (the pod's memcg hit it), not compute's.
    pub killed_by_pod_limit: bool,
}

impl Launcher {
    pub fn has_console_sidecar(&self) -> bool {
        !self.container_ids[2].is_empty()
    }
}

/// Something that happens at a model time.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheduled {
    /// A created pod becomes Running.
    PodRunning { ns: String, name: String },
    /// A VM whose VMI failed gets a new one.
    StartVm { ns: String, name: String },
    /// virt-handler started the domain of the VMI with `vmi_uid`: the VMI is `Running`.
    DomainStarted {
        ns: String,
        name: String,
        vmi_uid: String,
    },
    /// KubeVirt notices that the launcher pod of a VM's VMI (the one with `vmi_uid`) is gone.
    PodGone {
        ns: String,
        name: String,
        vmi_uid: String,
    },
    /// A pod's `activeDeadlineSeconds` ran out (if it still runs, it fails).
    PodDeadline {
        ns: String,
        name: String,
        uid: String,
    },
    /// The user raises a hotplug VM's guest (its VMI must be the one with `vmi_uid`).
    Hotplug {
        ns: String,
        name: String,
        vmi_uid: String,
    },
    /// The hotplug's migration ends: the new pod takes over and qemu has the new guest.
    HotplugDone {
        ns: String,
        name: String,
        vmi_uid: String,
    },
}

/// Exec behaviour tests can change.
#[derive(Debug, Default)]
pub struct ExecControl {
    pub latency: Duration,
    pub hung_nodes: HashSet<String>,
    /// Running exec sessions per node: their host trees are refreshed every second.
    pub sessions: HashMap<String, usize>,
    /// When each node's host tree was last written.
    pub written: HashMap<String, std::time::Instant>,
    /// What each node's host tree holds on disk (unchanged files are not rewritten).
    pub trees: HashMap<String, super::treefiles::Written>,
    /// Counter steps, stored probe outputs and the background that prepares them.
    pub cpus: super::nodecpu::NodeCpus,
    /// Run any command a test sends (tests of the exec transport itself); otherwise only the
    /// commands the simulated pods have (`sim::exec::allowed`).
    pub any_command: bool,
}

pub struct World {
    pub store: Store,
    pub clock: SimClock,
    pub config: ClusterConfig,
    pub nodes: BTreeMap<String, NodeModel>,
    pub plans: HashMap<(String, String), VmPlan>,
    pub launchers: BTreeMap<String, Launcher>,
    pub auth: Auth,
    pub exec: ExecControl,
    /// Faults tests switched on (throttling, expiring watches, nodes without a kubelet).
    pub faults: super::faults::Faults,
    pub scheduled: Vec<(f64, Scheduled)>,
    /// Seconds before a created pod turns Running.
    pub pod_start_delay: f64,
    /// Seconds a VM waits after its VMI failed before it starts again.
    pub restart_backoff: f64,
    /// Seconds from a started VMI's launcher pod to its VMI `Running` (virt-handler starting
    /// the domain; the VMI says `Scheduled` meanwhile). Zero while the scenario is built: its
    /// VMs run from the start.
    pub domain_start_delay: f64,
    /// Seconds before KubeVirt marks a VMI failed whose launcher pod was deleted (its VMI says
    /// Running meanwhile, as on a real cluster until virt-handler reports the domain gone).
    pub pod_gone_notice: f64,
    /// Directory holding one host tree per node.
    pub host_root: PathBuf,
    pub next_ip: u32,
    pub round_robin: usize,
}

fn seed_of(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl World {
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    pub fn timestamp(&self) -> String {
        self.clock.timestamp()
    }

    pub fn schedule(&mut self, after: f64, what: Scheduled) {
        let at = self.now() + after;
        self.scheduled.push((at, what));
    }

    pub fn alloc_ip(&mut self) -> String {
        self.next_ip += 1;
        format!(
            "10.52.{}.{}",
            (self.next_ip >> 8) & 0xff,
            self.next_ip & 0xff
        )
    }

    /// Build the world of a scenario: namespaces, nodes, KubeVirt CR, Harvester settings, VMs
    /// (through the same webhook and controller as API writes).
    pub fn new(scenario: &Scenario, host_root: PathBuf) -> Result<World, ApiError> {
        let mut w = World::empty(cluster_config(scenario)?, host_root);
        w.store.recording = false;
        let now = w.timestamp();
        w.create_namespaces(scenario, &now)?;
        w.create_nodes(scenario, &now)?;
        w.create_quotas(scenario, &now)?;
        let kv = kubevirt_cr(&w.config, &w.config.kubevirt_namespace);
        w.store.create(&KUBEVIRTS, kv, &now)?;
        w.create_harvester_settings(&now)?;
        super::hotplug::create_instancetypes(&mut w, scenario, &now)?;
        w.create_vms(scenario)?;
        if scenario.monitoring {
            super::metrics::install(&mut w, &now)?; // issue 20
        }
        w.store.compact();
        Ok(w)
    }

    /// A cluster with nothing in it yet.
    fn empty(config: ClusterConfig, host_root: PathBuf) -> World {
        World {
            store: Store::new(),
            clock: SimClock::new(),
            config,
            nodes: BTreeMap::new(),
            plans: HashMap::new(),
            launchers: BTreeMap::new(),
            auth: Auth::default(),
            exec: ExecControl::default(),
            faults: super::faults::Faults::default(),
            scheduled: Vec::new(),
            pod_start_delay: 0.5,
            restart_backoff: 10.0,
            pod_gone_notice: 0.0,
            domain_start_delay: 0.0,
            host_root,
            next_ip: 10,
            round_robin: 0,
        }
    }

    /// The scenario's namespaces, `kube-system`, KubeVirt's, and the agents' as the plugin's
    /// install manifest makes it (Pod Security level privileged).
    fn create_namespaces(&mut self, scenario: &Scenario, now: &str) -> Result<(), ApiError> {
        let mut namespaces = scenario.all_namespaces();
        namespaces.extend([
            AGENT_NAMESPACE.to_string(),
            "kube-system".to_string(),
            self.config.kubevirt_namespace.clone(),
        ]);
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            let mut labels = json!({"kubernetes.io/metadata.name": ns});
            if ns == AGENT_NAMESPACE {
                labels["pod-security.kubernetes.io/enforce"] = json!("privileged");
            }
            self.store.create(
                &NAMESPACES,
                json!({"metadata": {"name": ns, "labels": labels}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
                now,
            )?;
        }
        Ok(())
    }

    /// Node objects, and each node's model (uptime and first PID vary by its name).
    fn create_nodes(&mut self, scenario: &Scenario, now: &str) -> Result<(), ApiError> {
        for (i, n) in scenario.nodes.iter().enumerate() {
            let memory = n.memory.bytes().unwrap_or(0);
            let ip = format!("192.168.122.{}", 101 + i);
            self.store.create(
                &NODES,
                node_object(
                    n.name.as_str(),
                    memory,
                    n.cpus,
                    &n.kernel,
                    &ip,
                    &self.config,
                ),
                now,
            )?;
            self.nodes.insert(
                n.name.clone(),
                NodeModel {
                    name: n.name.clone(),
                    memory,
                    cpus: n.cpus,
                    kernel: n.kernel.clone(),
                    uptime_at_start: 8000.0 + (seed_of(&n.name) % 5000) as f64,
                    next_pid: 20_000 + (seed_of(&n.name) % 3000) as u32,
                    kernel_log: Vec::new(),
                    ip,
                    cgroup_v2: n.cgroup_v2,
                    swap: n.swap,
                    cgroup_driver: n.cgroup_driver,
                    housekeeping: n.cadvisor_housekeeping_seconds.max(0.0),
                },
            );
        }
        Ok(())
    }

    /// ResourceQuotas on `limits.memory`, with the namespace's auto-limit ratio label.
    fn create_quotas(&mut self, scenario: &Scenario, now: &str) -> Result<(), ApiError> {
        for q in &scenario.quotas {
            if let Some(r) = &q.auto_memory_limits_ratio {
                if let Some(mut ns) = self.store.get(&NAMESPACES, "", &q.namespace).cloned() {
                    ns["metadata"]["labels"]["alpha.kubevirt.io/auto-memory-limits-ratio"] =
                        json!(r);
                    self.store.replace(&NAMESPACES, ns)?;
                }
            }
            let hard = json!({"limits.memory": q.limits_memory.as_str()});
            self.store.create(
                &RESOURCE_QUOTAS,
                json!({"metadata": {"name": "memory-limits", "namespace": q.namespace}, "spec": {"hard": hard},
                       "status": {"hard": hard, "used": {"limits.memory": "0"}}}),
                now,
            )?;
        }
        Ok(())
    }

    /// Harvester's settings the tool reads (none on plain KubeVirt).
    fn create_harvester_settings(&mut self, now: &str) -> Result<(), ApiError> {
        let Some(h) = &self.config.harvester else {
            return Ok(());
        };
        for (name, value, default) in [
            (
                "additional-guest-memory-overhead-ratio",
                h.ratio.clone(),
                "1.5".to_string(),
            ),
            (
                "overcommit-config",
                String::new(),
                format!(
                    "{{\"cpu\":1600,\"memory\":{},\"storage\":200}}",
                    h.overcommit_memory
                ),
            ),
            ("server-version", h.version.to_string(), String::new()),
        ] {
            let mut s = json!({"metadata": {"name": name}, "default": default});
            if !value.is_empty() {
                s["value"] = json!(value);
            }
            self.store.create(&SETTINGS, s, now)?;
        }
        Ok(())
    }

    /// The scenario's VMs, each with its plan (node, workload), stored through the webhook and
    /// the controller.
    fn create_vms(&mut self, scenario: &Scenario) -> Result<(), ApiError> {
        for vm in &scenario.vms {
            self.plans.insert(
                (vm.namespace.clone(), vm.name.clone()),
                VmPlan {
                    node: vm.node.clone(),
                    migrate_to: vm.migrate_to.clone(),
                    workload: Params::from_workload(&vm.workload),
                    seed: seed_of(&format!("{}/{}", vm.namespace, vm.name)),
                    hotplug: vm.hotplug.clone(),
                },
            );
            let obj = super::kubevirt::vm_object(vm, &self.config);
            super::kubevirt::store_vm(self, obj)?;
        }
        Ok(())
    }
}

/// The cluster-wide facts of a scenario: flavour, versions, the overhead ratio.
fn cluster_config(scenario: &Scenario) -> Result<ClusterConfig, ApiError> {
    let version = Version::parse(&scenario.kubevirt_version).ok_or_else(|| {
        ApiError::internal(format!(
            "bad KubeVirt version {}",
            scenario.kubevirt_version
        ))
    })?;
    let harvester = scenario.flavour == Flavour::Harvester;
    Ok(ClusterConfig {
        flavour: scenario.flavour,
        version,
        ratio: scenario
            .overhead_ratio
            .clone()
            .filter(|r| !r.trim().is_empty() && r.trim() != "0"),
        harvester: harvester.then(|| HarvesterConfig {
            version: Version::parse(&scenario.harvester_version).unwrap_or(Version::new(1, 4, 1)),
            ratio: scenario.overhead_ratio.clone().unwrap_or_default(),
            overcommit_memory: scenario.overcommit_memory,
        }),
        kubevirt_namespace: if harvester {
            "harvester-system"
        } else {
            "kubevirt"
        }
        .to_string(),
        kubernetes_version: scenario.kubernetes_version.clone(),
    })
}

fn node_object(
    name: &str,
    memory: i64,
    cpus: u32,
    kernel: &str,
    ip: &str,
    cfg: &ClusterConfig,
) -> serde_json::Value {
    let os = match cfg.flavour {
        Flavour::Harvester => format!(
            "Harvester {}",
            cfg.harvester
                .as_ref()
                .map(|h| h.version.to_string())
                .unwrap_or_default()
        ),
        Flavour::Kubevirt => "SUSE Linux Enterprise Micro 5.5".to_string(),
    };
    let mem = Quantity::new(format!("{}Ki", memory / 1024));
    let alloc = Quantity::new(format!("{}Ki", (memory - (2 << 30)).max(0) / 1024));
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/control-plane": "true", "kubevirt.io/schedulable": "true"}},
        "spec": {"podCIDR": "10.52.0.0/24"},
        "status": {
            "capacity": {"cpu": cpus.to_string(), "memory": mem, "pods": "200"},
            "allocatable": {"cpu": cpus.to_string(), "memory": alloc, "pods": "200"},
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kernelVersion": kernel, "osImage": os, "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.23-k3s2", "kubeletVersion": cfg.kubernetes_version,
                "kubeProxyVersion": cfg.kubernetes_version, "operatingSystem": "linux"}
        }
    })
}

fn kubevirt_cr(cfg: &ClusterConfig, ns: &str) -> serde_json::Value {
    let mut conf =
        json!({"developerConfiguration": {"featureGates": ["LiveMigration", "HotplugVolumes"]}});
    if let Some(r) = &cfg.ratio {
        conf["additionalGuestMemoryOverheadRatio"] = json!(r);
    }
    json!({
        "metadata": {"name": "kubevirt", "namespace": ns},
        "spec": {"configuration": conf},
        "status": {"phase": "Deployed", "observedKubeVirtVersion": cfg.version.to_string(),
                   "targetKubeVirtVersion": cfg.version.to_string(), "observedKubeVirtRegistry": "registry.suse.com/suse/sles/15.6"}
    })
}
