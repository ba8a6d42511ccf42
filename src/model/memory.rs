//! The memory model: overhead used, budget, projected peak, headroom and the
//! breakdown of a pod's cgroup usage, from one probe reading.

use serde::Serialize;

use super::overhead::{process_role, ProcessConstants, ProcessRole};
use super::readings::{CgroupCounters, MemoryStat, PodReading, ProcessReading};

mod live_skew;
pub use live_skew::{swap_room, GuestSkew, FILLING_FROM};

/// One slice of the cgroup's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: Part,
    pub bytes: i64,
    /// KubeVirt's budget for it, when it has one.
    pub budget_bytes: Option<i64>,
}

/// What a slice of the cgroup's usage is; in JSON and on screen by the process's own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Part {
    /// Guest RAM resident in qemu.
    #[serde(rename = "guest")]
    Guest,
    /// qemu beside guest RAM.
    #[serde(rename = "qemu")]
    Qemu,
    #[serde(rename = "virt-launcher-monitor")]
    LauncherMonitor,
    #[serde(rename = "virt-launcher")]
    Launcher,
    #[serde(rename = "virtqemud")]
    Virtqemud,
    /// libvirt's daemon before KubeVirt v0.59.
    #[serde(rename = "libvirtd")]
    Libvirtd,
    #[serde(rename = "virtlogd")]
    Virtlogd,
    /// What no other part accounts for.
    #[serde(rename = "other")]
    Other,
    /// Kernel memory charged to the cgroup.
    #[serde(rename = "kernel")]
    Kernel,
    /// Page cache that is not shared memory.
    #[serde(rename = "file")]
    File,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Guest => "guest",
            Part::Qemu => "qemu",
            Part::LauncherMonitor => "virt-launcher-monitor",
            Part::Launcher => "virt-launcher",
            Part::Virtqemud => "virtqemud",
            Part::Libvirtd => "libvirtd",
            Part::Virtlogd => "virtlogd",
            Part::Other => "other",
            Part::Kernel => "kernel",
            Part::File => "file",
        }
    }

    /// The launcher's own processes (monitor and launcher).
    pub fn is_launcher(self) -> bool {
        matches!(self, Part::LauncherMonitor | Part::Launcher)
    }

    /// libvirt's daemon, by either name.
    pub fn is_libvirt(self) -> bool {
        matches!(self, Part::Virtqemud | Part::Libvirtd)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The model's numbers for one VM with live data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryModel {
    /// The cgroup whose limit binds (the tighter of pod slice and compute container).
    pub counters: CgroupCounters,
    pub guest_resident: i64,
    pub guest_resident_exact: bool,
    /// When the exact guest resident was measured, if in an earlier round (carried over).
    pub guest_resident_taken_at: Option<i64>,
    pub overhead_used: i64,
    /// `None` without a limit.
    pub budget: Option<i64>,
    pub projected_peak: i64,
    pub headroom: Option<i64>,
    /// Overhead at the cgroup's recorded peak (peak counter − guest resident).
    pub peak_overhead: Option<i64>,
    /// OOM kills of the VM: its compute container's (a group kill counted once), else, when
    /// the compute container is not known, the pod's (slice and descendants).
    pub oom_kills: u64,
    pub breakdown: Vec<Component>,
    /// Swap the binding cgroup may still use (counted in `headroom`: a cgroup is OOM-killed
    /// only when its memory and its swap are full).
    pub swap_room: i64,
    /// How far apart in time the guest figure and the usage are (a guest filling its RAM).
    pub guest_skew: GuestSkew,
}

impl MemoryModel {
    /// Whether this reading's negative headroom may be nothing but the guest's growth between
    /// the guest figure and the usage: no critical from it alone.
    pub fn overrun_is_guest_growth(&self) -> bool {
        self.headroom.is_some_and(|h| {
            h < 0 && self.guest_skew.filling() && h + self.guest_skew.grown_since >= 0
        })
    }
}

/// Budgets per breakdown component, derived from O's terms for this VMI.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budgets {
    pub constants: Option<ProcessConstants>,
    /// Page-table term of O (kernel).
    pub page_tables: i64,
    /// vCPU threads + IOThread + video terms (qemu-side).
    pub qemu_extra: i64,
}

fn private(p: &ProcessReading) -> i64 {
    (p.rss_anon_bytes + p.rss_shmem_bytes) as i64
}

fn is_qemu(p: &ProcessReading) -> bool {
    process_role(&p.comm) == Some(ProcessRole::Qemu)
}

/// Evaluate the model. `guest` is the guest memory charged to the memory cgroup (0 for
/// hugepage-backed guests); `compute_id` names the compute container's id when known.
pub fn evaluate(
    guest: i64,
    reading: &PodReading,
    compute_id: Option<&str>,
    budgets: &Budgets,
) -> MemoryModel {
    let compute = pick_compute(reading, compute_id);
    let qemu_rss: i64 = if reading.processes.is_empty() {
        // No process list (the kubelet's summary): the compute container's anonymous memory
        // (qemu's plus the launcher processes') stands in for qemu's, so the guest estimate is
        // high by what those processes hold, never low.
        compute
            .or(Some(&reading.cgroup))
            .and_then(|c| c.stat.anon)
            .unwrap_or(0) as i64
    } else {
        reading
            .processes
            .iter()
            .filter(|p| is_qemu(p))
            .map(private)
            .sum()
    };
    let (guest_resident, exact) = match reading.guest_resident_bytes {
        Some(g) => (g as i64, true),
        None => (qemu_rss.min(guest).max(0), false),
    };
    let candidates: Vec<&CgroupCounters> =
        std::iter::once(&reading.cgroup).chain(compute).collect();
    let evaluated: Vec<(&CgroupCounters, i64, Option<i64>)> = candidates
        .into_iter()
        .map(|c| {
            let f = c.stat.inactive_file.unwrap_or(0) as i64;
            let used = (c.usage_bytes as i64 - f) - guest_resident;
            let swap = swap_room(c, compute);
            let headroom = c.limit_bytes.map(|l| l as i64 + swap - (guest + used));
            (c, used, headroom)
        })
        .collect();
    // The binding cgroup: the one with the least headroom; without limits, the pod level.
    let (counters, overhead_used, headroom) = evaluated
        .iter()
        .filter(|(_, _, h)| h.is_some())
        .min_by_key(|(_, _, h)| h.unwrap_or(i64::MAX))
        .or(evaluated.first())
        .map(|(c, u, h)| ((*c).clone(), *u, *h))
        .unwrap_or_else(|| (reading.cgroup.clone(), 0, None));
    let budget = counters.limit_bytes.map(|l| l as i64 - guest);
    let peak_overhead = counters
        .peak_bytes
        .map(|p| p as i64 - guest_resident)
        .map(|p| p.max(overhead_used));
    // Only a kill in the compute container (qemu's) ends the VM: the pod's counter also counts
    // its sidecars' (kubevirt#15501: guest-console-log killed, the VM fine).
    let oom_kills = match compute {
        Some(c) => c.kill_events(),
        None => reading
            .cgroup
            .kill_events()
            .max(reading.containers.iter().map(|c| c.kill_events()).sum()),
    };
    let breakdown = if reading.processes.is_empty() {
        breakdown_without_processes(&counters, guest, guest_resident)
    } else {
        breakdown(&counters, reading, guest, guest_resident, budgets)
    };
    let swap_room = swap_room(&counters, compute);
    MemoryModel {
        counters,
        guest_resident,
        guest_resident_exact: exact,
        guest_resident_taken_at: reading.guest_resident_taken_at.filter(|_| exact),
        overhead_used,
        budget,
        projected_peak: guest + overhead_used,
        headroom,
        peak_overhead,
        oom_kills,
        breakdown,
        swap_room,
        guest_skew: GuestSkew::of(reading),
    }
}

fn pick_compute<'a>(
    reading: &'a PodReading,
    compute_id: Option<&str>,
) -> Option<&'a CgroupCounters> {
    if let Some(id) = compute_id {
        if let Some(c) = reading
            .containers
            .iter()
            .find(|c| c.container_id.as_deref() == Some(id))
        {
            return Some(c);
        }
    }
    // The container that holds qemu, else the largest.
    let qemu_ct = reading
        .processes
        .iter()
        .find(|p| is_qemu(p))
        .and_then(|p| p.container_id.as_deref());
    if let Some(id) = qemu_ct {
        if let Some(c) = reading
            .containers
            .iter()
            .find(|c| c.container_id.as_deref() == Some(id))
        {
            return Some(c);
        }
    }
    reading.containers.iter().max_by_key(|c| c.usage_bytes)
}

fn breakdown(
    level: &CgroupCounters,
    reading: &PodReading,
    guest: i64,
    guest_resident: i64,
    budgets: &Budgets,
) -> Vec<Component> {
    let procs = processes_in(level, reading);
    let mut parts = vec![Component {
        name: Part::Guest,
        bytes: guest_resident,
        budget_bytes: Some(guest),
    }];
    parts.extend(process_terms(&procs, guest_resident, budgets));
    parts.push(Component {
        name: Part::Other,
        bytes: unbudgeted_process_bytes(&procs),
        budget_bytes: None,
    });
    parts.push(kernel_term(&level.stat, budgets));
    parts.push(file_term(&level.stat));
    balance_to_usage(&mut parts, level.usage_bytes as i64);
    parts
}

/// Processes that live in the chosen cgroup (all of them at pod level).
fn processes_in<'a>(level: &CgroupCounters, reading: &'a PodReading) -> Vec<&'a ProcessReading> {
    let in_level = |p: &&ProcessReading| match (&level.level, &level.container_id, &p.container_id)
    {
        (super::readings::CgroupLevel::Container, Some(id), Some(pid)) => id == pid,
        _ => true,
    };
    reading.processes.iter().filter(in_level).collect()
}

/// KubeVirt's budget for one process, `f` of its constants in MiB; none where the version only
/// gives a combined figure.
fn process_budget(budgets: &Budgets, f: fn(&ProcessConstants) -> i64) -> Option<i64> {
    budgets
        .constants
        .filter(|c| c.combined.is_none())
        .map(|c| f(&c) * super::overhead::MI)
}

/// The private memory of the processes of `role`.
fn role_bytes(procs: &[&ProcessReading], role: ProcessRole) -> i64 {
    procs
        .iter()
        .filter(|p| process_role(&p.comm) == Some(role))
        .map(|p| private(p))
        .sum()
}

/// The private memory of processes KubeVirt does not budget for.
fn unbudgeted_process_bytes(procs: &[&ProcessReading]) -> i64 {
    procs
        .iter()
        .filter(|p| process_role(&p.comm).is_none())
        .map(|p| private(p))
        .sum()
}

/// qemu (less the guest RAM it holds), virt-launcher-monitor, virt-launcher, libvirt (named
/// after the daemon the pod runs) and virtlogd, each against its budget.
fn process_terms(
    procs: &[&ProcessReading],
    guest_resident: i64,
    budgets: &Budgets,
) -> [Component; 5] {
    let libvirt_name = if procs.iter().any(|p| p.comm == "libvirtd") {
        Part::Libvirtd
    } else {
        Part::Virtqemud
    };
    [
        Component {
            name: Part::Qemu,
            bytes: (role_bytes(procs, ProcessRole::Qemu) - guest_resident).max(0),
            budget_bytes: process_budget(budgets, |c| c.qemu).map(|b| b + budgets.qemu_extra),
        },
        Component {
            name: Part::LauncherMonitor,
            bytes: role_bytes(procs, ProcessRole::Monitor),
            budget_bytes: process_budget(budgets, |c| c.monitor),
        },
        Component {
            name: Part::Launcher,
            bytes: role_bytes(procs, ProcessRole::Launcher),
            budget_bytes: process_budget(budgets, |c| c.launcher),
        },
        Component {
            name: libvirt_name,
            bytes: role_bytes(procs, ProcessRole::Libvirt),
            budget_bytes: process_budget(budgets, |c| c.libvirt),
        },
        Component {
            name: Part::Virtlogd,
            bytes: role_bytes(procs, ProcessRole::Virtlogd),
            budget_bytes: process_budget(budgets, |c| c.virtlogd),
        },
    ]
}

/// Kernel memory: the cgroup's own kernel counter, else the sum of its kernel parts; against
/// the page-table term of O.
fn kernel_term(st: &MemoryStat, budgets: &Budgets) -> Component {
    let kernel = st.kernel.map(|k| k as i64).unwrap_or_else(|| {
        [st.pagetables, st.kernel_stack, st.slab, st.sock]
            .into_iter()
            .flatten()
            .sum::<u64>() as i64
    });
    Component {
        name: Part::Kernel,
        bytes: kernel,
        budget_bytes: (budgets.page_tables > 0).then_some(budgets.page_tables),
    }
}

/// Page cache that is not shared memory.
fn file_term(st: &MemoryStat) -> Component {
    Component {
        name: Part::File,
        bytes: (st.file.unwrap_or(0) as i64 - st.shmem.unwrap_or(0) as i64).max(0),
        budget_bytes: None,
    }
}

/// Make the parts add up to the cgroup's usage: what is unaccounted for is "other"; if the
/// parts overshoot (shared pages counted twice), take it back from file, then kernel.
fn balance_to_usage(parts: &mut [Component], usage: i64) {
    let total: i64 = parts.iter().map(|c| c.bytes).sum();
    let mut residual = usage - total;
    if residual >= 0 {
        parts[6].bytes += residual;
    } else {
        // file, kernel, other, qemu, virtlogd, libvirt, launcher, monitor, guest.
        for idx in [8usize, 7, 6, 1, 5, 4, 3, 2, 0] {
            let take = (-residual).min(parts[idx].bytes);
            parts[idx].bytes -= take;
            residual += take;
        }
    }
}

/// The breakdown when no processes are known (the kubelet's summary): guest RAM (estimated),
/// page cache that can be reclaimed (usage − working set, or the cgroup's file pages when known),
/// kernel memory when known, and everything else together as "other" (qemu, the launcher
/// processes, active page cache). Adds up to the cgroup's usage.
fn breakdown_without_processes(
    level: &CgroupCounters,
    guest: i64,
    guest_resident: i64,
) -> Vec<Component> {
    let usage = level.usage_bytes as i64;
    let st = &level.stat;
    let file = match st.file {
        Some(f) => (f as i64 - st.shmem.unwrap_or(0) as i64).max(0),
        None => usage - level.working_set_bytes as i64,
    }
    .clamp(0, usage);
    let kernel = st.kernel.map(|k| (k as i64).min(usage - file));
    let guest_part = guest_resident.clamp(0, usage - file - kernel.unwrap_or(0));
    let other = usage - file - kernel.unwrap_or(0) - guest_part;
    let mut parts = vec![
        Component {
            name: Part::Guest,
            bytes: guest_part,
            budget_bytes: Some(guest),
        },
        Component {
            name: Part::Other,
            bytes: other,
            budget_bytes: None,
        },
    ];
    if let Some(k) = kernel {
        parts.push(Component {
            name: Part::Kernel,
            bytes: k,
            budget_bytes: None,
        });
    }
    parts.push(Component {
        name: Part::File,
        bytes: file,
        budget_bytes: None,
    });
    parts
}

#[cfg(test)]
mod tests;
