//! What the node probe measured: memory cgroup counters and per-process memory for each pod.
//!
//! Produced by `parse::probe` from `assets/probe.sh` output (or by the fallbacks: pod exec, kubelet
//! summary), consumed by the memory model. Field names follow the `probe -o json` contract.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The cgroup hierarchy version of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
    /// Not reported by the source (the kubelet's Summary API does not say).
    Unknown,
}

impl CgroupVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
            CgroupVersion::Unknown => "unknown",
        }
    }

    /// `v1`/`v2`, or `None` when not known.
    pub fn known(self) -> Option<&'static str> {
        (self != CgroupVersion::Unknown).then(|| self.as_str())
    }
}

/// Which cgroup a set of counters belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupLevel {
    Pod,
    Container,
}

impl CgroupLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupLevel::Pod => "pod",
            CgroupLevel::Container => "container",
        }
    }
}

/// Where live numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiveSource {
    /// Privileged agent pod on the node: pod slice, containers and processes.
    Agent,
    /// `sh` in the VM's compute container: its own cgroup and processes only.
    PodExec,
    /// kubelet Summary API: per-container usage/working set/rss, no processes.
    Kubelet,
    /// `probe --local` on the node itself.
    Local,
    /// The embedded simulator.
    Sim,
}

impl LiveSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveSource::Agent => "agent",
            LiveSource::PodExec => "pod-exec",
            LiveSource::Kubelet => "kubelet",
            LiveSource::Local => "local",
            LiveSource::Sim => "sim",
        }
    }

    /// Whether the source reads OOM kill counters (the kubelet's Summary API has none).
    pub fn has_oom_counters(self) -> bool {
        self != LiveSource::Kubelet
    }
}

/// The `memory.stat` keys the model uses, in bytes (v1 hierarchical `total_*` keys, or v2 keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MemoryStat {
    pub anon: Option<u64>,
    pub file: Option<u64>,
    pub shmem: Option<u64>,
    pub inactive_file: Option<u64>,
    pub active_file: Option<u64>,
    /// Kernel memory as a whole (v2 `kernel`, v1 `kmem.usage_in_bytes`).
    pub kernel: Option<u64>,
    pub kernel_stack: Option<u64>,
    pub pagetables: Option<u64>,
    pub slab: Option<u64>,
    pub sock: Option<u64>,
    pub anon_thp: Option<u64>,
}

/// Counters of one memory cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupCounters {
    pub level: CgroupLevel,
    /// Path below the memory hierarchy root, e.g. `/kubepods.slice/…/cri-containerd-<id>.scope`.
    /// Empty in the node readers' rounds ([`NodeReadings::compact`]): nothing there reads it.
    pub path: String,
    /// Container id (for container level), without the runtime prefix; shared with the
    /// container's processes (thousands of pods: one copy of each id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<Arc<str>>,
    /// `None` = unlimited.
    pub limit_bytes: Option<u64>,
    pub usage_bytes: u64,
    pub working_set_bytes: u64,
    pub peak_bytes: Option<u64>,
    pub failcnt: Option<u64>,
    /// OOM kills in this cgroup and its descendants (v1: the probe adds the descendants up;
    /// v2 `memory.events` `oom_kill`: one per process killed).
    pub oom_kills: u64,
    /// v2 `memory.events` `oom_group_kill` (kernel 5.17+): kills of a whole `memory.oom.group`
    /// cgroup, each counted once however many processes it took. `None` where not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_group_kills: Option<u64>,
    #[serde(default)]
    pub stat: MemoryStat,
    /// Swap in use (v2 `memory.swap.current`, v1 memsw usage − usage, kubelet `swapUsageBytes`);
    /// `None` where the node has no swap accounting or it was not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_bytes: Option<u64>,
    /// The swap this cgroup may use (v2 `memory.swap.max`, v1 memsw limit − limit); `None` when
    /// unlimited or not read. 0: no swap allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_limit_bytes: Option<u64>,
}

impl CgroupCounters {
    /// A cgroup at `level` with nothing read yet: no path, no limit, every counter 0 or unknown.
    pub fn empty(level: CgroupLevel) -> CgroupCounters {
        CgroupCounters {
            level,
            path: String::new(),
            container_id: None,
            limit_bytes: None,
            usage_bytes: 0,
            working_set_bytes: 0,
            peak_bytes: None,
            failcnt: None,
            oom_kills: 0,
            oom_group_kills: None,
            stat: MemoryStat::default(),
            swap_bytes: None,
            swap_limit_bytes: None,
        }
    }

    /// How many times the OOM killer struck here: group kills where the kernel counts them
    /// (one kill of a `memory.oom.group` container takes all its processes), else processes.
    pub fn kill_events(&self) -> u64 {
        match self.oom_group_kills {
            Some(g) if g > 0 => g,
            _ => self.oom_kills,
        }
    }
}

/// Memory of one process (from `/proc/PID/status` and, for qemu, `/proc/PID/smaps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessReading {
    pub pid: u32,
    /// As the kernel shows it (15 characters at most), e.g. `qemu-system-x86`.
    pub comm: String,
    pub rss_anon_bytes: u64,
    pub rss_file_bytes: u64,
    pub rss_shmem_bytes: u64,
    /// Container id of the cgroup the process lives in, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<Arc<str>>,
}

/// Everything measured for one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReading {
    /// Pod UID with dashes.
    pub uid: String,
    /// The pod-level cgroup, or the container's own when only that is visible (pod exec).
    #[serde(flatten)]
    pub cgroup: CgroupCounters,
    /// Guest RAM resident in qemu, exact from smaps; `None` when not measured.
    pub guest_resident_bytes: Option<u64>,
    /// When `guest_resident_bytes` was measured (Unix seconds), if in an earlier round than this
    /// reading: smaps is not read every round, and the last exact figure is carried in between.
    /// `None`: measured with this reading (or not at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_resident_taken_at: Option<i64>,
    /// Hugepage-backed guest RAM (charged to hugetlb, not memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_hugetlb_bytes: Option<u64>,
    /// The pod cgroup's usage read again right after qemu's smaps scan (probe format 2): the
    /// cgroup counters were read before it, so a guest filling its RAM meanwhile shows here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_after_smaps_bytes: Option<u64>,
    /// With a guest resident carried from an earlier round: how much the guest may have grown
    /// since (qemu's RSS growth since then, or its growth rate over the time), which this
    /// reading's usage holds but the carried figure does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_grown_since_bytes: Option<u64>,
    #[serde(default)]
    pub containers: Vec<CgroupCounters>,
    #[serde(default)]
    pub processes: Vec<ProcessReading>,
}

/// One probe of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReadings {
    pub node: String,
    pub cgroup_version: CgroupVersion,
    pub kernel: String,
    pub source: LiveSource,
    /// Unix seconds when taken (the caller's clock, passed in as a value).
    pub taken_at: i64,
    pub pods: Vec<PodReading>,
    /// Pod UIDs asked for that have no cgroup on the node (not there, or gone while probing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_pods: Vec<String>,
}

impl NodeReadings {
    pub fn pod(&self, uid: &str) -> Option<&PodReading> {
        self.pods.iter().find(|p| p.uid == uid)
    }

    /// Keep only what the report and the dashboard read, in no more room than it needs: the
    /// lists give back what they grew into while parsing (a list that grows by doubling holds up
    /// to twice its length), and the cgroup paths, which only the probe's own output shows, are
    /// dropped. The node readers hold readings of thousands of pods for a whole session.
    pub fn compact(&mut self) {
        self.pods.shrink_to_fit();
        self.missing_pods.shrink_to_fit();
        for p in &mut self.pods {
            p.cgroup.path = String::new();
            for c in &mut p.containers {
                c.path = String::new();
            }
            p.containers.shrink_to_fit();
            p.processes.shrink_to_fit();
        }
    }
}
