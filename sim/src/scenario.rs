//! What a simulated cluster contains: flavour, versions, nodes, namespaces and VMs with their
//! memory workloads. Parsed from YAML (`demo.yaml`) or generated for benchmarks. Pure.

use serde::{Deserialize, Serialize};

use crate::units::Quantity;

/// KubeVirt alone, or Harvester on top of it (settings API and VM webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    #[default]
    Kubevirt,
    Harvester,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub flavour: Flavour,
    pub kubevirt_version: String,
    /// Harvester release (for its webhook rules and the `server-version` setting).
    pub harvester_version: String,
    /// `additionalGuestMemoryOverheadRatio` (Harvester: the setting it copies into the KubeVirt CR).
    pub overhead_ratio: Option<String>,
    /// Harvester `overcommit-config` memory percentage.
    pub overcommit_memory: i64,
    /// Kubernetes version `/version` reports.
    pub kubernetes_version: String,
    pub nodes: Vec<NodeSpec>,
    pub namespaces: Vec<String>,
    pub vms: Vec<VmSpec>,
    /// Namespace ResourceQuotas on `limits.memory` (KubeVirt v1.1+ then limits VMs that have none).
    pub quotas: Vec<QuotaSpec>,
    // Instance types (issue 16).
    /// `VirtualMachineClusterInstancetype`s VMs may name in `instancetype`.
    pub instancetypes: Vec<InstancetypeDef>,
    // Prometheus history (issue 20).
    /// Run rancher-monitoring's Prometheus (`cattle-monitoring-system/rancher-monitoring-prometheus`),
    /// its query API answering from a week of history, through the API server's service proxy.
    #[serde(default)]
    pub monitoring: bool,
}

/// A cluster-wide instance type: the memory a VM naming it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstancetypeDef {
    pub name: String,
    pub guest: Quantity,
    /// `memory.overcommitPercent`: the VMI's request is that much below the guest.
    #[serde(default)]
    pub overcommit_percent: u32,
    #[serde(default = "one_cpu")]
    pub cpus: u32,
}

fn one_cpu() -> u32 {
    1
}

/// A memory hotplug during the run: the user raises the VM's guest (rollout strategy
/// LiveUpdate) and KubeVirt migrates the VMI to a pod sized for the new guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct HotplugSpec {
    /// `memory.maxGuest` (the virtio-mem device is maxGuest − the boot guest).
    pub max_guest: Quantity,
    /// The guest after the hotplug.
    pub to: Quantity,
    /// Seconds after the VMI starts.
    pub after_seconds: f64,
    /// How long the migration to the new pod takes.
    pub migration_seconds: f64,
    /// The migration target's node (default: the VM's node).
    pub target_node: Option<String>,
}

impl Default for HotplugSpec {
    fn default() -> Self {
        HotplugSpec {
            max_guest: Quantity::new("8Gi"),
            to: Quantity::new("3Gi"),
            after_seconds: 30.0,
            migration_seconds: 20.0,
            target_node: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaSpec {
    pub namespace: String,
    pub limits_memory: Quantity,
    /// The namespace label `alpha.kubevirt.io/auto-memory-limits-ratio`.
    #[serde(default)]
    pub auto_memory_limits_ratio: Option<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            flavour: Flavour::Kubevirt,
            kubevirt_version: "v1.3.0".into(),
            harvester_version: "v1.4.1".into(),
            overhead_ratio: None,
            overcommit_memory: 150,
            kubernetes_version: "v1.29.9+rke2r1".into(),
            nodes: Vec::new(),
            namespaces: Vec::new(),
            vms: Vec::new(),
            quotas: Vec::new(),
            instancetypes: Vec::new(),
            monitoring: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub memory: Quantity,
    pub cpus: u32,
    pub kernel: String,
    // Live cgroup reading (livecg): the node's cgroup layout and swap.
    /// cgroup v2 (unified hierarchy: memory.current, memory.events, …) instead of v1.
    pub cgroup_v2: bool,
    /// The node has swap (v1 then shows `memory.memsw.*`; v2 always has `memory.swap.*`).
    pub swap: bool,
    // Simulator vs real node (issue 19): the kubelet's cgroup driver.
    /// `systemd` (slices and scopes, the default) or `cgroupfs` (`/kubepods/burstable/pod<uid>/<id>`).
    #[serde(default)]
    pub cgroup_driver: crate::hosttree::CgroupDriver,
    /// cAdvisor's housekeeping interval behind the kubelet's Summary (seconds; 0, the default:
    /// every read is a fresh sample). Real kubelets serve a sample up to ~15 s old, and a new
    /// pod's own (pod-level) memory is all zeros until its second sample.
    #[serde(default)]
    pub cadvisor_housekeeping_seconds: f64,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            name: String::new(),
            memory: Quantity::new("256Gi"),
            cpus: 64,
            kernel: "5.14.21-150400.24.116-default".into(),
            cgroup_v2: false,
            swap: false,
            cgroup_driver: Default::default(),
            cadvisor_housekeeping_seconds: 0.0,
        }
    }
}

/// One VirtualMachine as a user would write it (Harvester UI style: one memory size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct VmSpec {
    pub name: String,
    pub namespace: String,
    /// Node to run on (default: round robin over the nodes).
    pub node: Option<String>,
    /// `limits.memory` (or, with `noLimit`, `requests.memory`).
    pub memory: Quantity,
    /// Explicit `memory.guest` (Harvester's webhook overwrites it unless hotplug is on).
    pub guest: Option<Quantity>,
    /// Explicit `requests.memory`.
    pub request: Option<Quantity>,
    pub cpus: u32,
    /// No `limits.memory`: the pod has no memory limit.
    pub no_limit: bool,
    /// `harvesterhci.io/reservedMemory` annotation.
    pub reserved_memory: Option<Quantity>,
    /// `Always`, `RerunOnFailure`, `Manual`, `Halted` (`Halted` = stopped).
    pub run_strategy: String,
    /// Live-migrating to this node (two pods, `migrationState`).
    pub migrate_to: Option<String>,
    pub workload: Workload,
    // Containers beside compute, hugepages, dedicated CPUs (issue 16, sidecars); all off by
    // default.
    /// `memory.hugepages.pageSize` (`2Mi`, `1Gi`): guest RAM from hugepages (hugetlb).
    #[serde(default)]
    pub hugepages: Option<String>,
    /// virtiofs filesystems: a `virtiofs-<name>` container each, guest RAM on a shared memfd.
    #[serde(default)]
    pub virtiofs: Vec<String>,
    /// Hook sidecars (`hooks.kubevirt.io/hookSidecars`), each a `hook-sidecar-N` container.
    #[serde(default)]
    pub hook_sidecars: u32,
    /// `cpu.dedicatedCpuPlacement: true`.
    #[serde(default)]
    pub dedicated_cpus: bool,
    /// `devices.logSerialConsole: false` (no guest-console-log container).
    #[serde(default)]
    pub console_log_off: bool,
    // Memory hotplug and instance types (issue 16).
    /// `spec.instancetype`: a cluster instance type of the scenario; the template then has no
    /// memory values.
    pub instancetype: Option<String>,
    /// A memory hotplug during the run (needs `guest`).
    pub hotplug: Option<HotplugSpec>,
}

impl Default for VmSpec {
    fn default() -> Self {
        VmSpec {
            name: String::new(),
            namespace: "default".into(),
            node: None,
            memory: Quantity::new("2Gi"),
            guest: None,
            request: None,
            cpus: 1,
            no_limit: false,
            reserved_memory: None,
            run_strategy: "RerunOnFailure".into(),
            migrate_to: None,
            workload: Workload::default(),
            hugepages: None,
            virtiofs: Vec::new(),
            hook_sidecars: 0,
            dedicated_cpus: false,
            console_log_off: false,
            instancetype: None,
            hotplug: None,
        }
    }
}

/// How a VM's memory behaves over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// Fraction of guest RAM resident at boot.
    pub guest_fill_start: f64,
    /// Guest RAM the guest touches per second.
    pub guest_fill_rate: Quantity,
    /// Fraction of guest RAM the guest ever touches.
    pub guest_fill_max: f64,
    /// Growth of the launcher processes per minute (spread over virt-launcher, virtqemud, qemu).
    pub overhead_drift_per_minute: Quantity,
    /// Cap on that growth.
    pub overhead_drift_max: Quantity,
    /// Page cache of the pod.
    pub file_cache: Quantity,
    /// The seed's `memhold`: a process in the compute container that grows until OOM.
    pub memhold: Option<MemHold>,
    // Live cgroup reading (livecg): swap and a sidecar's OOM kill.
    /// LimitedSwap: the swap the compute container may use (its `memory.swap.max`).
    pub swap_limit: Option<Quantity>,
    /// Swap the compute container has in use.
    pub swap_used: Quantity,
    /// Seconds after start when the guest-console-log sidecar hits its 60M limit and the kernel
    /// kills its processes (kubevirt#15501; memory.oom.group on v2): the VM runs on.
    pub console_log_oom_after: Option<f64>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            guest_fill_start: 0.2,
            guest_fill_rate: Quantity::new("32Mi"),
            guest_fill_max: 1.0,
            overhead_drift_per_minute: Quantity::new("256Ki"),
            overhead_drift_max: Quantity::new("48Mi"),
            file_cache: Quantity::new("24Mi"),
            memhold: None,
            swap_limit: None,
            swap_used: Quantity::new("0"),
            console_log_oom_after: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct MemHold {
    /// Seconds after the VMI starts.
    pub after_seconds: f64,
    /// Bytes per second.
    pub rate: Quantity,
}

impl Default for MemHold {
    fn default() -> Self {
        MemHold {
            after_seconds: 20.0,
            rate: Quantity::new("2Mi"),
        }
    }
}

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario YAML: {0}")]
    Yaml(#[from] crate::yaml::Error),
    #[error("scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Parse a scenario from YAML and check it.
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = crate::yaml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// The scenario shipped as `demo.yaml`.
    pub fn demo() -> Result<Scenario, ScenarioError> {
        Scenario::from_yaml(include_str!("../demo.yaml"))
    }

    /// `vms` VMs over `nodes` nodes (Harvester on KubeVirt v1.3, ratio 1.5), sizes 1–64Gi,
    /// some stopped and some without a limit; deterministic.
    pub fn generated(vms: usize, nodes: usize) -> Scenario {
        let nodes = nodes.max(1);
        let sizes = ["1Gi", "2Gi", "4Gi", "8Gi", "16Gi", "32Gi", "64Gi"];
        let namespaces: Vec<String> = ["default", "prod", "staging", "dev"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Scenario {
            flavour: Flavour::Harvester,
            overhead_ratio: Some("1.5".into()),
            nodes: (0..nodes)
                .map(|i| NodeSpec {
                    name: format!("node-{:03}", i + 1),
                    memory: Quantity::new("1Ti"),
                    cpus: 128,
                    ..NodeSpec::default()
                })
                .collect(),
            vms: (0..vms)
                .map(|i| VmSpec {
                    name: format!("vm-{:05}", i + 1),
                    namespace: namespaces[i % namespaces.len()].clone(),
                    memory: Quantity::new(sizes[(i * 7 / 3) % sizes.len()]),
                    cpus: 1 << (i % 4),
                    no_limit: i % 50 == 49,
                    run_strategy: if i % 17 == 16 {
                        "Halted".into()
                    } else {
                        "RerunOnFailure".into()
                    },
                    workload: Workload {
                        guest_fill_start: 0.1 + (i % 7) as f64 / 10.0,
                        // One VM in a hundred leaks like the seed's memhold and gets OOM-killed.
                        memhold: (i % 100 == 42).then(|| MemHold {
                            after_seconds: 60.0,
                            rate: Quantity::new("1Mi"),
                        }),
                        ..Workload::default()
                    },
                    ..VmSpec::default()
                })
                .collect(),
            namespaces,
            ..Scenario::default()
        }
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if crate::version::Version::parse(&self.kubevirt_version).is_none() {
            return invalid(format!(
                "kubevirtVersion {:?} is not a version",
                self.kubevirt_version
            ));
        }
        if self.nodes.is_empty() && self.vms.iter().any(|v| v.run_strategy != "Halted") {
            return invalid("running VMs need at least one node".into());
        }
        for n in &self.nodes {
            if n.name.is_empty() {
                return invalid("a node has no name".into());
            }
            if let Err(e) = n.memory.bytes() {
                return invalid(format!("node {}: memory: {e}", n.name));
            }
        }
        let node_names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for vm in &self.vms {
            let id = format!("{}/{}", vm.namespace, vm.name);
            if vm.name.is_empty() {
                return invalid("a VM has no name".into());
            }
            if !seen.insert(id.clone()) {
                return invalid(format!("VM {id} appears twice"));
            }
            vm.validate(&id, &node_names)?;
            self.check_features(vm, &id, &node_names)?;
        }
        self.quotas.iter().try_for_each(QuotaSpec::validate)
    }
    /// Every namespace the scenario uses (listed ones and those of its VMs), sorted.
    pub fn all_namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .namespaces
            .iter()
            .cloned()
            .chain(self.vms.iter().map(|v| v.namespace.clone()))
            .chain(self.quotas.iter().map(|q| q.namespace.clone()))
            .collect();
        v.push("default".into());
        v.sort();
        v.dedup();
        v
    }
}

impl Scenario {
    /// A VM's instance type is one of the scenario's; a hotplug has sizes and a known node.
    fn check_features(&self, vm: &VmSpec, id: &str, nodes: &[&str]) -> Result<(), ScenarioError> {
        if let Some(it) = &vm.instancetype {
            if !self.instancetypes.iter().any(|d| &d.name == it) {
                return invalid(format!("VM {id}: instancetype {it} is not in the scenario"));
            }
        }
        for d in &self.instancetypes {
            if let Err(e) = d.guest.bytes() {
                return invalid(format!("instancetype {}: guest: {e}", d.name));
            }
        }
        let Some(h) = &vm.hotplug else {
            return Ok(());
        };
        let guest = vm.guest.as_ref().and_then(|g| g.bytes().ok());
        match (guest, h.to.bytes(), h.max_guest.bytes()) {
            (Some(g), Ok(to), Ok(max)) if g < to && to <= max => {}
            _ => {
                return invalid(format!(
                    "VM {id}: hotplug needs a guest, and guest < to <= maxGuest"
                ))
            }
        }
        match &h.target_node {
            Some(n) if !nodes.contains(&n.as_str()) => invalid(format!(
                "VM {id}: hotplug target node {n} is not in the scenario"
            )),
            _ => Ok(()),
        }
    }
}

fn invalid(message: String) -> Result<(), ScenarioError> {
    Err(ScenarioError::Invalid(message))
}

impl VmSpec {
    /// Its quantities, nodes, run strategy and workload (`id` is `namespace/name`).
    fn validate(&self, id: &str, node_names: &[&str]) -> Result<(), ScenarioError> {
        for (what, q) in [
            ("memory", Some(&self.memory)),
            ("guest", self.guest.as_ref()),
            ("request", self.request.as_ref()),
            ("reservedMemory", self.reserved_memory.as_ref()),
        ] {
            if let Some(Err(e)) = q.map(Quantity::bytes) {
                return invalid(format!("VM {id}: {what}: {e}"));
            }
        }
        for node in self.node.iter().chain(self.migrate_to.iter()) {
            if !node_names.contains(&node.as_str()) {
                return invalid(format!("VM {id}: node {node} is not in the scenario"));
            }
        }
        if !["Always", "RerunOnFailure", "Manual", "Halted", "Once"]
            .contains(&self.run_strategy.as_str())
        {
            return invalid(format!("VM {id}: runStrategy {:?} is not one of Always, RerunOnFailure, Manual, Halted, Once", self.run_strategy));
        }
        self.workload.validate(id)
    }
}

impl Workload {
    fn validate(&self, id: &str) -> Result<(), ScenarioError> {
        for q in [
            &self.guest_fill_rate,
            &self.overhead_drift_per_minute,
            &self.overhead_drift_max,
            &self.file_cache,
        ] {
            if let Err(e) = q.bytes() {
                return invalid(format!("VM {id}: workload: {e}"));
            }
        }
        if let Some(Err(e)) = self.memhold.as_ref().map(|m| m.rate.bytes()) {
            return invalid(format!("VM {id}: memhold rate: {e}"));
        }
        Ok(())
    }
}

impl QuotaSpec {
    fn validate(&self) -> Result<(), ScenarioError> {
        if let Err(e) = self.limits_memory.bytes() {
            return invalid(format!("quota in {}: limitsMemory: {e}", self.namespace));
        }
        if let Some(r) = &self.auto_memory_limits_ratio {
            if !r.parse::<f64>().is_ok_and(|x| x.is_finite() && x >= 1.0) {
                return invalid(format!(
                    "quota in {}: autoMemoryLimitsRatio {r:?} must be a number >= 1",
                    self.namespace
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
