//! The memory cgroups of a node (cgroup v1): what each directory is charged and the files the
//! kernel shows for it.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{compute_pid, UNLIMITED};
use crate::treefiles::TreeWriter;
use crate::workload::{GuestBacking, ProcMem, Sample};
use crate::world::Launcher;

/// Memory charged to one cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Charge {
    pub anon: i64,
    pub shmem: i64,
    pub active_file: i64,
    pub inactive_file: i64,
    pub kernel: i64,
    pub anon_huge: i64,
}

impl Charge {
    pub fn usage(&self) -> i64 {
        self.anon + self.shmem + self.active_file + self.inactive_file + self.kernel
    }

    pub(super) fn add(&mut self, o: &Charge) {
        self.anon += o.anon;
        self.shmem += o.shmem;
        self.active_file += o.active_file;
        self.inactive_file += o.inactive_file;
        self.kernel += o.kernel;
        self.anon_huge += o.anon_huge;
    }
}

/// Counters of one cgroup directory.
#[derive(Debug, Clone, Default)]
pub struct CgroupFiles {
    pub limit: Option<i64>,
    /// Own charge (processes directly in it); `total` is the hierarchical sum.
    pub local: Charge,
    pub total: Charge,
    pub max_usage: i64,
    pub failcnt: u64,
    pub oom_kill: u64,
    pub procs: Vec<u32>,
    /// v2 `oom_group_kill`; `oom_kill` of the cgroups below (v2 counts them here too).
    pub group_kills: u64,
    pub oom_kill_below: u64,
    pub group_kills_below: u64,
    /// Swap in use and `memory.swap.max` (`None`: "max").
    pub swap: i64,
    pub swap_limit: Option<i64>,
    /// Times this memcg hit its own limit and the OOM killer ran for it (v2 `oom`, which the
    /// parents count too); `oom_kill` is counted where the victim was, `failcnt` here.
    pub ooms: u64,
    pub ooms_below: u64,
}

/// How the node's kernel shows its cgroups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel {
    pub v2: bool,
    /// The node has swap: v1 then has `memory.memsw.usage_in_bytes`.
    pub swap: bool,
}

fn memory_stat(c: &CgroupFiles) -> String {
    let mut s = String::new();
    let l = &c.local;
    let t = &c.total;
    let lim = c.limit.unwrap_or(UNLIMITED);
    let pages = |b: i64| b / 4096;
    let rows: [(&str, i64, i64); 17] = [
        (
            "cache",
            l.active_file + l.inactive_file + l.shmem,
            t.active_file + t.inactive_file + t.shmem,
        ),
        ("rss", l.anon, t.anon),
        ("rss_huge", l.anon_huge, t.anon_huge),
        ("shmem", l.shmem, t.shmem),
        ("mapped_file", l.active_file, t.active_file),
        ("dirty", 0, 0),
        ("writeback", 0, 0),
        ("swap", 0, 0),
        ("pgpgin", pages(l.usage()) + 1200, pages(t.usage()) + 1200),
        ("pgpgout", 1200, 1200),
        ("pgfault", pages(l.anon) * 2, pages(t.anon) * 2),
        ("pgmajfault", 0, 1),
        ("inactive_anon", l.anon - l.anon / 8, t.anon - t.anon / 8),
        ("active_anon", l.anon / 8 + l.shmem, t.anon / 8 + t.shmem),
        ("inactive_file", l.inactive_file, t.inactive_file),
        ("active_file", l.active_file, t.active_file),
        ("unevictable", 0, 0),
    ];
    for (k, v, _) in &rows {
        let _ = writeln!(s, "{k} {v}");
    }
    let _ = writeln!(s, "hierarchical_memory_limit {lim}");
    let _ = writeln!(s, "hierarchical_memsw_limit {UNLIMITED}");
    for (k, _, v) in &rows {
        let _ = writeln!(s, "total_{k} {v}");
    }
    s
}

pub(super) fn write_cgroup(
    w: &mut TreeWriter,
    dir: &Path,
    c: &CgroupFiles,
    k: Kernel,
) -> io::Result<()> {
    if k.v2 {
        return super::cgroups_v2::write_cgroup_v2(w, dir, c);
    }
    w.dir(dir)?;
    if k.swap {
        w.file(
            &dir.join("memory.memsw.usage_in_bytes"),
            format!("{}\n", c.total.usage() + c.swap),
        )?;
    }
    let usage = c.total.usage();
    let files: [(&str, String); 9] = [
        (
            "memory.limit_in_bytes",
            format!("{}\n", c.limit.unwrap_or(UNLIMITED)),
        ),
        ("memory.usage_in_bytes", format!("{usage}\n")),
        (
            "memory.max_usage_in_bytes",
            format!("{}\n", c.max_usage.max(usage)),
        ),
        ("memory.failcnt", format!("{}\n", c.failcnt)),
        ("memory.stat", memory_stat(c)),
        (
            "memory.oom_control",
            format!("oom_kill_disable 0\nunder_oom 0\noom_kill {}\n", c.oom_kill),
        ),
        (
            "memory.kmem.usage_in_bytes",
            format!("{}\n", c.total.kernel),
        ),
        ("memory.memsw.limit_in_bytes", format!("{UNLIMITED}\n")),
        (
            "cgroup.procs",
            c.procs.iter().map(|p| format!("{p}\n")).collect(),
        ),
    ];
    for (name, text) in files {
        w.file(&dir.join(name), text)?;
    }
    Ok(())
}

/// The memory cgroups of one virt-launcher pod: the pod slice and its container scopes.
pub struct LauncherCgroups {
    pub pod: CgroupFiles,
    /// (container name, container id, counters): `pause` (the sandbox, which the kubelet does not
    /// list as a container), `compute`, and `guest-console-log` where the pod has it.
    pub containers: Vec<(&'static str, String, CgroupFiles)>,
}

/// What the node's cgroups hold for launcher `l` with memory `s`: the one source of both the
/// host tree the probe reads and the kubelet's stats summary.
pub fn launcher_cgroups(l: &Launcher, s: &Sample) -> LauncherCgroups {
    let file = |p: &ProcMem| Charge {
        anon: p.anon,
        shmem: p.shmem,
        ..Charge::default()
    };
    let pause = file(&s.pause);
    let console = file(&s.sidecar);
    let console_kills = u64::from(l.console_killed_at.is_some());
    let compute = Charge {
        anon: s.compute.iter().map(|p| p.anon).sum(),
        shmem: s.compute.iter().map(|p| p.shmem).sum(),
        active_file: s.active_file,
        inactive_file: s.inactive_file,
        kernel: s.pagetables + s.kernel_stack + s.slab,
        // Transparent huge pages back anonymous guest RAM only (not hugetlb, not a memfd).
        anon_huge: match l.shape.guest_backing {
            GuestBacking::Anon => s.guest_resident / (2 << 20) * (2 << 20),
            _ => 0,
        },
    };
    let leaf = |charge: Charge, limit: Option<i64>, procs: Vec<u32>| CgroupFiles {
        limit,
        local: charge,
        total: charge,
        procs,
        ..CgroupFiles::default()
    };
    let compute_pids: Vec<u32> = (0..s.compute.len()).map(|i| compute_pid(l, i)).collect();
    // The memcg that hit its limit counts the failures (and, v2, the `oom` event); the kill is
    // counted where qemu was, compute's (kernel 6.x, measured as tests/it/both_nodes.rs does).
    let by_pod = l.killed_by_pod_limit;
    let (compute_hits, pod_hits) = if by_pod {
        (0, l.oom_kills)
    } else {
        (l.oom_kills, 0)
    };
    let mut containers = vec![(
        "pause",
        l.container_ids[0].clone(),
        leaf(pause, None, vec![l.pids[0]]),
    )];
    let compute_files = CgroupFiles {
        max_usage: if by_pod { 0 } else { l.max_usage },
        failcnt: if by_pod { 0 } else { l.failcnt },
        oom_kill: l.oom_kills,
        group_kills: l.oom_kills,
        ooms: compute_hits,
        swap: l.params.swap_used,
        swap_limit: Some(l.params.swap_limit.unwrap_or(0)),
        ..leaf(compute, l.compute_limit, compute_pids)
    };
    // qemu's kill ends virt-launcher and so the compute container: its memcg goes with it, and
    // with it its counters (what is left: the pod status, the kernel log and, v2 only, the
    // pod's hierarchical memory.events, kept by the parent).
    let gone = if l.killed_at.is_none() {
        containers.push(("compute", l.container_ids[1].clone(), compute_files));
        None
    } else {
        Some(compute_files)
    };
    if l.has_console_sidecar() {
        containers.push((
            "guest-console-log",
            l.container_ids[2].clone(),
            CgroupFiles {
                oom_kill: console_kills,
                group_kills: console_kills,
                ooms: console_kills,
                swap_limit: Some(0),
                ..leaf(
                    console,
                    l.params
                        .console_oom_after
                        .map(|_| crate::oomlog_sidecar::CONSOLE_LIMIT),
                    vec![l.pids[6]],
                )
            },
        ));
    }
    let mut pod = Charge::default();
    for (_, _, c) in &containers {
        pod.add(&c.total);
    }
    let below = containers.iter().map(|c| &c.2).chain(gone.as_ref());
    let sum = |f: fn(&CgroupFiles) -> u64| below.clone().map(f).sum::<u64>();
    LauncherCgroups {
        pod: CgroupFiles {
            limit: l.pod_limit,
            local: Charge::default(),
            total: pod,
            max_usage: if by_pod {
                l.max_usage
            } else {
                l.max_usage + pause.usage() + console.usage()
            },
            failcnt: if by_pod { l.failcnt } else { 0 },
            ooms: pod_hits,
            ooms_below: sum(|c| c.ooms),
            oom_kill_below: sum(|c| c.oom_kill),
            group_kills_below: sum(|c| c.group_kills),
            swap: containers.iter().map(|c| c.2.swap).sum(),
            ..CgroupFiles::default()
        },
        containers,
    }
}
