//! Memory of one virt-launcher pod over time: guest RAM filling up, launcher processes drifting,
//! an optional `memhold` process, kernel memory and page cache. Pure: a function of model time.

use crate::units::MI;

use super::scenario::Workload;

/// A workload with quantities resolved to numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub fill_start: f64,
    /// Bytes per second.
    pub fill_rate: f64,
    pub fill_max: f64,
    /// Bytes per second.
    pub drift_rate: f64,
    pub drift_max: f64,
    pub file_cache: i64,
    /// (seconds after start, bytes per second)
    pub memhold: Option<(f64, f64)>,
    /// The compute container's swap limit and swap in use (bytes).
    pub swap_limit: Option<i64>,
    pub swap_used: i64,
    /// Seconds after start when the console-log sidecar is OOM-killed.
    pub console_oom_after: Option<f64>,
}

impl Params {
    /// Resolve a scenario workload (quantities were validated when the scenario was read).
    pub fn from_workload(w: &Workload) -> Params {
        let b = |q: &crate::units::Quantity| q.bytes().unwrap_or(0).max(0);
        Params {
            fill_start: w.guest_fill_start.clamp(0.0, 1.0),
            fill_rate: b(&w.guest_fill_rate) as f64,
            fill_max: w.guest_fill_max.clamp(0.0, 1.0),
            drift_rate: b(&w.overhead_drift_per_minute) as f64 / 60.0,
            drift_max: b(&w.overhead_drift_max) as f64,
            file_cache: b(&w.file_cache),
            memhold: w
                .memhold
                .as_ref()
                .map(|m| (m.after_seconds.max(0.0), b(&m.rate) as f64)),
            swap_limit: w.swap_limit.as_ref().map(b),
            swap_used: b(&w.swap_used),
            console_oom_after: w.console_log_oom_after.map(|a| a.max(0.0)),
        }
    }
}

/// The fixed shape of one launcher: guest size, vCPUs, process names.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub guest: i64,
    pub vcpus: i64,
    /// `virtqemud` or `libvirtd`.
    pub libvirt_comm: &'static str,
    /// `qemu-system-x86` (SUSE) or `qemu-kvm`.
    pub qemu_comm: &'static str,
    /// Per-VM variation.
    pub seed: u64,
    /// A migration target: the guest arrives at `fill_rate` from zero.
    pub migration_target: bool,
    /// Memory hotplug: qemu's boot RAM mapping and its virtio-mem device (maxGuest − boot);
    /// `guest` is then what is plugged in all (boot + plugged part). `None`: one guest mapping.
    pub virtio_mem: Option<GuestMappings>,
    /// Where qemu keeps guest RAM.
    pub guest_backing: GuestBacking,
}

/// What backs guest RAM in qemu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestBacking {
    /// Private anonymous memory, charged to the memory cgroup (the usual case).
    #[default]
    Anon,
    /// Hugepages: charged to the hugetlb controller, not the memory cgroup; not in RSS.
    Hugepages,
    /// A shared memfd (virtiofs needs it): shmem in the memory cgroup, not anonymous.
    Memfd,
}

/// The sizes of a hotplug-capable qemu's two guest RAM mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMappings {
    pub boot: i64,
    pub virtio_mem: i64,
}

impl Shape {
    /// qemu's guest RAM mappings as (resident, size): the boot RAM fills first, the rest of the
    /// resident guest is in the virtio-mem device (only its plugged part can be resident).
    pub fn guest_mappings(&self, resident: i64) -> Vec<(i64, i64)> {
        match self.virtio_mem {
            None => vec![(resident, self.guest)],
            Some(m) => {
                let boot = resident.min(m.boot);
                vec![(boot, m.boot), (resident - boot, m.virtio_mem)]
            }
        }
    }
}

/// Memory of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcMem {
    pub comm: &'static str,
    /// Private anonymous RSS (for qemu: including resident guest RAM).
    pub anon: i64,
    /// File-backed RSS (shared libraries, binary).
    pub file: i64,
    pub shmem: i64,
    /// Virtual size.
    pub vsz: i64,
}

impl ProcMem {
    pub fn rss(&self) -> i64 {
        self.anon + self.file + self.shmem
    }
}

/// One moment of a launcher pod's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub guest_resident: i64,
    /// Guest RAM on hugepages (charged to hugetlb, not to the memory cgroup).
    pub hugetlb: i64,
    /// The compute container's processes, `virt-launcher-m` first, qemu fifth, extras after.
    pub compute: Vec<ProcMem>,
    /// Sidecar (`virt-tail`) and `pause`.
    pub sidecar: ProcMem,
    pub pause: ProcMem,
    pub pagetables: i64,
    pub kernel_stack: i64,
    pub slab: i64,
    pub active_file: i64,
    pub inactive_file: i64,
}

impl Sample {
    fn kernel(&self) -> i64 {
        self.pagetables + self.kernel_stack + self.slab
    }

    /// Anonymous + shmem of the compute container.
    pub fn compute_anon(&self) -> i64 {
        self.compute.iter().map(|p| p.anon + p.shmem).sum()
    }

    /// What the compute container's cgroup is charged (page cache included).
    pub fn compute_usage(&self) -> i64 {
        self.compute_anon() + self.kernel() + self.active_file + self.inactive_file
    }

    /// What cannot be reclaimed in the compute container.
    pub fn compute_unreclaimable(&self) -> i64 {
        self.compute_usage() - self.inactive_file
    }

    /// The pod slice: compute + sidecar + pause.
    pub fn pod_usage(&self) -> i64 {
        self.compute_usage() + self.sidecar.anon + self.pause.anon
    }

    pub fn pod_unreclaimable(&self) -> i64 {
        self.pod_usage() - self.inactive_file
    }
}

/// A small deterministic variation in [0.9, 1.1) per VM and process.
fn jitter(seed: u64, i: u64) -> f64 {
    let mut x = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    0.9 + (x % 1000) as f64 / 5000.0
}

fn page(b: f64) -> i64 {
    (b as i64 / 4096) * 4096
}

/// Resident sizes of one VM's processes: `mi` MiB varied per VM and process `i`.
fn base(shape: &Shape, mi: f64, i: u64) -> f64 {
    mi * MI as f64 * jitter(shape.seed, i)
}

/// The launcher's memory `t` seconds after its VMI started.
pub fn sample(shape: &Shape, p: &Params, t: f64) -> Sample {
    let t = t.max(0.0);
    let guest_resident = guest_resident(shape, p, t);
    let drift = (p.drift_rate * t).min(p.drift_max);
    let mut compute = launcher_processes(shape, guest_resident, drift);
    if let Some((after, rate)) = p.memhold {
        if t >= after {
            compute.extend(memhold_processes(shape, rate * (t - after)));
        }
    }
    let anon: i64 = compute.iter().map(|p| p.anon).sum();
    let file_cache = p.file_cache as f64;
    Sample {
        guest_resident,
        hugetlb: match shape.guest_backing {
            GuestBacking::Hugepages => guest_resident,
            _ => 0,
        },
        pagetables: page(anon as f64 / 512.0),
        kernel_stack: (shape.vcpus + 24) * 16 * 1024,
        slab: page(base(shape, 3.0, 7)),
        active_file: page(file_cache * 0.25),
        inactive_file: page(file_cache * 0.75),
        compute,
        sidecar: ProcMem {
            comm: "virt-tail",
            anon: page(base(shape, 5.0, 8)),
            file: page(base(shape, 4.0, 18)),
            shmem: 0,
            vsz: 1_237_000 * 1024,
        },
        pause: ProcMem {
            comm: "pause",
            anon: 245_760,
            file: 4096 * 60,
            shmem: 0,
            vsz: 972 * 1024,
        },
    }
}

/// Guest RAM resident after `t` seconds: from the start fraction (zero for a migration target)
/// at the fill rate, up to the fill maximum and the guest's size.
fn guest_resident(shape: &Shape, p: &Params, t: f64) -> i64 {
    let g = shape.guest as f64;
    let start = if shape.migration_target {
        0.0
    } else {
        p.fill_start * g
    };
    page(
        (start + p.fill_rate * t)
            .min(p.fill_max.max(p.fill_start) * g)
            .min(g),
    )
}

/// The compute container's own processes with `drift` bytes of growth spread over them.
/// Resident sizes seen on real launchers (seed Example 3): well under KubeVirt's constants.
fn launcher_processes(shape: &Shape, guest_resident: i64, drift: f64) -> Vec<ProcMem> {
    let qemu_own = base(shape, 26.0 + 2.0 * shape.vcpus as f64, 5) + 0.2 * drift;
    let (guest_anon, guest_shmem) = match shape.guest_backing {
        GuestBacking::Anon => (guest_resident, 0),
        GuestBacking::Hugepages => (0, 0),
        GuestBacking::Memfd => (0, guest_resident),
    };
    vec![
        ProcMem {
            comm: "virt-launcher-m",
            anon: page(base(shape, 9.0, 1)),
            file: page(base(shape, 3.0, 11)),
            shmem: 0,
            vsz: 1_761_000 * 1024,
        },
        ProcMem {
            comm: "virt-launcher",
            anon: page(base(shape, 40.0, 2) + 0.5 * drift),
            file: page(base(shape, 13.0, 12)),
            shmem: 0,
            vsz: 3_042_684 * 1024,
        },
        ProcMem {
            comm: shape.libvirt_comm,
            anon: page(base(shape, 24.0, 3) + 0.3 * drift),
            file: page(base(shape, 8.0, 13)),
            shmem: 0,
            vsz: 1_403_024 * 1024,
        },
        ProcMem {
            comm: "virtlogd",
            anon: page(base(shape, 12.0, 4)),
            file: page(base(shape, 6.0, 14)),
            shmem: 0,
            vsz: 147_048 * 1024,
        },
        ProcMem {
            comm: shape.qemu_comm,
            anon: guest_anon + page(qemu_own),
            file: page(base(shape, 23.0, 15)),
            shmem: guest_shmem,
            vsz: shape.guest + 700 * MI,
        },
    ]
}

/// The `memhold` process (and the shell that started it) holding `held` bytes.
fn memhold_processes(shape: &Shape, held: f64) -> [ProcMem; 2] {
    let held = page(held);
    [
        ProcMem {
            comm: "sh",
            anon: page(base(shape, 2.0, 6)),
            file: page(base(shape, 2.0, 16)),
            shmem: 0,
            vsz: 6964 * 1024,
        },
        ProcMem {
            comm: "memhold",
            anon: held,
            file: 4096 * 60,
            shmem: 0,
            vsz: held + 2 * MI,
        },
    ]
}

/// The first model time in `(from, to]` at which `unreclaimable(t) > limit`, found by stepping
/// then bisecting (usage only grows within one launcher's life).
pub fn first_over(
    shape: &Shape,
    p: &Params,
    from: f64,
    to: f64,
    limit: i64,
    pod_level: bool,
) -> Option<f64> {
    let over = |t: f64| {
        let s = sample(shape, p, t);
        (if pod_level {
            s.pod_unreclaimable()
        } else {
            s.compute_unreclaimable()
        }) > limit
    };
    if !over(to) {
        return None;
    }
    let (mut lo, mut hi) = (from, to);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if over(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{MemHold, Workload};

    fn shape(guest: i64) -> Shape {
        Shape {
            guest_backing: GuestBacking::Anon,
            guest,
            vcpus: 2,
            libvirt_comm: "virtqemud",
            qemu_comm: "qemu-system-x86",
            seed: 7,
            migration_target: false,
            virtio_mem: None,
        }
    }

    #[test]
    fn guest_fills_up_and_stops_at_its_size() {
        let p = Params::from_workload(&Workload::default());
        let s0 = sample(&shape(2 << 30), &p, 0.0);
        let s1 = sample(&shape(2 << 30), &p, 10.0);
        let s_end = sample(&shape(2 << 30), &p, 10_000.0);
        assert!(s0.guest_resident < s1.guest_resident);
        assert_eq!(s_end.guest_resident, 2 << 30);
        // Overhead (everything but guest RAM) stays under KubeVirt's budget for a normal VM.
        let overhead = s_end.compute_unreclaimable() - s_end.guest_resident;
        assert!(overhead < 250 * MI, "{overhead}");
        assert!(overhead > 100 * MI, "{overhead}");
    }

    #[test]
    fn memhold_grows_past_any_limit() {
        let w = Workload {
            memhold: Some(MemHold {
                after_seconds: 10.0,
                rate: crate::units::Quantity::new("4Mi"),
            }),
            ..Workload::default()
        };
        let p = Params::from_workload(&w);
        let sh = shape(1 << 30);
        let limit = (1 << 30) + 300 * MI;
        let t = first_over(&sh, &p, 0.0, 1000.0, limit, false).unwrap();
        assert!(t > 10.0 && t < 1000.0);
        assert!(sample(&sh, &p, t).compute_unreclaimable() > limit);
        assert!(sample(&sh, &p, t - 0.01).compute_unreclaimable() <= limit);
        assert!(first_over(
            &sh,
            &Params::from_workload(&Workload::default()),
            0.0,
            1000.0,
            limit,
            false
        )
        .is_none());
    }
}
