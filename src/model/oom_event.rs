//! One kernel OOM-kill report as read from a kernel log (produced by `parse::oom`).
//!
//! Every field is optional because kernels from 3.10 to 6.x print different subsets, and a
//! report may be cut short; `partial` says so.

use std::collections::BTreeMap;

use serde::Serialize;

/// Bytes per page in the task table (the kernel prints those columns in pages).
pub const PAGE_BYTES: u64 = 4096;

/// One `memory:`/`memory+swap:`/`swap:`/`kmem:` counter line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemCounter {
    pub usage_bytes: u64,
    /// `None` = unlimited (the kernel prints 9007199254740988kB).
    pub limit_bytes: Option<u64>,
    pub failcnt: u64,
}

impl MemCounter {
    /// Usage reached the limit (within one page, as the kernel charges in batches).
    pub fn at_limit(&self) -> bool {
        self.limit_bytes
            .is_some_and(|l| self.usage_bytes.saturating_add(PAGE_BYTES) > l)
    }
}

/// Which cgroup hit its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OomScope {
    /// A pod's cgroup (pod slice): the sum of its containers' limits.
    Pod,
    /// One container's cgroup (e.g. the VM's `compute` container).
    Container,
    /// The node's `kubepods` (or a QoS class) cgroup: node allocatable was exhausted.
    Node,
    /// Not a cgroup limit: the whole machine ran out of memory.
    Global,
    /// A memory cgroup outside Kubernetes.
    Other,
}

impl OomScope {
    pub fn as_str(self) -> &'static str {
        match self {
            OomScope::Pod => "pod",
            OomScope::Container => "container",
            OomScope::Node => "node",
            OomScope::Global => "global",
            OomScope::Other => "other",
        }
    }
}

/// The container runtime named by a cgroup path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerRuntime {
    Containerd,
    Crio,
    Docker,
}

/// One row of the task table ("Tasks state (memory values in pages)").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OomTask {
    pub pid: u32,
    pub uid: Option<u32>,
    pub tgid: Option<u32>,
    pub total_vm_pages: Option<u64>,
    pub rss_pages: u64,
    /// Only in kernels whose table has `rss_anon rss_file rss_shmem` columns.
    pub rss_anon_pages: Option<u64>,
    pub rss_file_pages: Option<u64>,
    pub rss_shmem_pages: Option<u64>,
    pub swapents: Option<u64>,
    pub oom_score_adj: Option<i64>,
    pub name: String,
}

impl OomTask {
    pub fn rss_bytes(&self) -> u64 {
        self.rss_pages.saturating_mul(PAGE_BYTES)
    }
}

/// The killed process, from the `Killed process …` and `oom-kill:` lines.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OomVictim {
    pub pid: u32,
    pub comm: String,
    pub uid: Option<u32>,
    pub total_vm_bytes: Option<u64>,
    pub anon_rss_bytes: Option<u64>,
    pub file_rss_bytes: Option<u64>,
    pub shmem_rss_bytes: Option<u64>,
}

/// One OOM-kill report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OomEvent {
    /// 1-based line of the input where the report starts.
    pub line: usize,
    /// The timestamp as printed (`8758.722811`, `Thu May  9 14:52:38 2024`, `Feb 03 19:57:08`).
    pub time: Option<String>,
    /// The host name from a syslog/journal prefix, or the node the log was read from.
    pub node: Option<String>,
    /// The thread that needed memory (`CPU 11/KVM`, `virt-launcher`).
    pub trigger: Option<String>,
    pub trigger_pid: Option<u32>,
    pub constraint: Option<String>,
    /// The kernel said `global_oom`, or printed `Out of memory:` instead of `Memory cgroup out of memory:`.
    pub global: bool,
    /// The cgroup that hit its limit (`oom_memcg=`, the old `limit of` path, else the path of
    /// the first `Memory cgroup stats for` block, which the kernel prints for that cgroup).
    pub oom_memcg: Option<String>,
    /// The victim's own cgroup.
    pub task_memcg: Option<String>,
    pub cpuset: Option<String>,
    pub memory: Option<MemCounter>,
    /// cgroup v1 `memory+swap:`.
    pub memsw: Option<MemCounter>,
    /// cgroup v2 `swap:`.
    pub swap: Option<MemCounter>,
    pub kmem: Option<MemCounter>,
    /// Path of the first `Memory cgroup stats for` block.
    pub stats_for: Option<String>,
    /// That block's values, in bytes where the kernel printed sizes.
    pub stats: BTreeMap<String, u64>,
    pub tasks: Vec<OomTask>,
    /// Task-table rows left out (the table keeps the largest by RSS, up to a bound).
    pub tasks_omitted: usize,
    /// The process killed: named by a `Killed process` line (or, on kernels 5.0+, whose
    /// `oom-kill:` summary names the victim, by that line alone). `None` when the report
    /// does not say.
    pub victim: Option<OomVictim>,
    /// The process old kernels (3.10 … 4.19) chose with `Kill process N (comm) score S or
    /// sacrifice child`, BEFORE a child of it may be killed instead: not necessarily a victim.
    pub candidate: Option<OomVictim>,
    /// The cgroup whose `memory.oom.group` made the kernel kill all its tasks (4.19+: `Tasks in
    /// X are going to be killed due to memory.oom.group set`).
    pub group_kill: Option<String>,
    /// The other processes that one kill took (a `memory.oom.group` kill), in order.
    pub group_victims: Vec<OomVictim>,
    /// Further processes of the group kill not listed in `group_victims`.
    pub group_victims_omitted: usize,
    /// Pod UID with dashes, from the cgroup paths.
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
    pub runtime: Option<ContainerRuntime>,
    pub scope: Option<OomScope>,
    /// The scope is global only because the call trace reached `out_of_memory` from the page
    /// allocator without a memory cgroup function (the report's later lines are missing).
    pub global_from_call_trace: bool,
    /// The report is cut short (the start or the kill line is missing).
    pub partial: bool,
}

impl OomEvent {
    /// The memory+swap limit was the one hit (cgroup v1 with swap accounting).
    pub fn memsw_limit_hit(&self) -> bool {
        let Some(memsw) = self.memsw else {
            return false;
        };
        if !memsw.at_limit() {
            return false;
        }
        // Both at the same limit: the memsw counter is the one that failed when it counted.
        match self.memory {
            Some(mem) if mem.at_limit() => memsw.failcnt > 0 && mem.failcnt == 0,
            _ => true,
        }
    }

    /// The counter whose limit was hit: memory+swap when that one was, else memory.
    pub fn hit_counter(&self) -> Option<MemCounter> {
        if self.memsw_limit_hit() {
            self.memsw
        } else {
            self.memory
        }
    }

    /// The limit that was hit, in bytes.
    pub fn limit_bytes(&self) -> Option<u64> {
        self.hit_counter().and_then(|c| c.limit_bytes)
    }

    pub fn usage_bytes(&self) -> Option<u64> {
        self.hit_counter().map(|c| c.usage_bytes)
    }

    pub fn failcnt(&self) -> Option<u64> {
        self.hit_counter().map(|c| c.failcnt)
    }

    /// Every process this report killed: the victim first, then the rest of its group.
    pub fn victims(&self) -> impl Iterator<Item = &OomVictim> {
        self.victim.iter().chain(self.group_victims.iter())
    }

    /// Sum of the task table's RSS.
    pub fn tasks_rss_bytes(&self) -> u64 {
        self.tasks
            .iter()
            .map(OomTask::rss_bytes)
            .fold(0, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(usage: u64, limit: Option<u64>, failcnt: u64) -> MemCounter {
        MemCounter {
            usage_bytes: usage,
            limit_bytes: limit,
            failcnt,
        }
    }

    #[test]
    fn memsw_hit_only_when_its_counter_failed() {
        let mut ev = OomEvent {
            memory: Some(counter(100 << 20, Some(100 << 20), 5)),
            memsw: Some(counter(100 << 20, None, 0)),
            ..Default::default()
        };
        assert!(!ev.memsw_limit_hit());
        assert_eq!(ev.failcnt(), Some(5));
        ev.memory = Some(counter(100 << 20, Some(100 << 20), 0));
        ev.memsw = Some(counter(100 << 20, Some(100 << 20), 2339));
        assert!(ev.memsw_limit_hit());
        assert_eq!(ev.failcnt(), Some(2339));
        ev.memory = Some(counter(80 << 20, Some(100 << 20), 0));
        ev.memsw = Some(counter(120 << 20, Some(120 << 20), 0));
        assert!(ev.memsw_limit_hit());
        assert_eq!(ev.limit_bytes(), Some(120 << 20));
    }
}
