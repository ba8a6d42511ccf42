//! When to read qemu's smaps (the exact guest RAM resident), and what to show in the rounds in
//! between. Pure: no I/O, the round number and the clock come in as values.
//!
//! Scanning smaps costs far more than the rest of the probe (qemu has hundreds of mappings), so a
//! pod's smaps is read in its first round, then every `every` rounds, and sooner when qemu's RSS
//! has moved by more than `rss_moved` since the last exact reading (as the latest round saw it), when
//! the guest sizes change (hotplug) or when qemu is a new process. In the rounds in between, the
//! last exact figure is carried into the reading, marked with the time it was measured
//! (`PodReading::guest_resident_taken_at`), with how much the guest may have grown since
//! (`PodReading::guest_grown_since_bytes`: qemu's RSS growth since then, read in the same round as
//! the usage, and never more than the part of the guest that was not resident yet), which the
//! reading's usage holds and the carried figure does not. Guest RAM grows only inside qemu's RSS,
//! so this bound is measured, not predicted: a growth rate times the time passed would excuse a
//! real overrun elsewhere in the pod (a leak beside a guest that fills) as the guest's.

use std::collections::HashMap;

use crate::model::overhead::{process_role, ProcessRole};
use crate::model::readings::{NodeReadings, PodReading};

/// How often smaps is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmapsPolicy {
    /// Read at least every this many rounds (1 = every round).
    pub every: u64,
    /// Read sooner when qemu's RSS moved by more than this many bytes since the last exact reading.
    pub rss_moved: u64,
}

impl Default for SmapsPolicy {
    fn default() -> Self {
        SmapsPolicy {
            every: 6,
            rss_moved: 64 << 20,
        }
    }
}

/// The last exact reading of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exact {
    sizes: Vec<u64>,
    round: u64,
    taken_at: i64,
    guest_resident: u64,
    hugetlb: Option<u64>,
    qemu_pid: u32,
    qemu_rss: u64,
}

impl Exact {
    /// How much the guest may have grown since, when qemu's private RSS is `rss` now: qemu's
    /// growth, at most the guest that was not resident yet.
    fn grown_by(&self, rss: u64) -> u64 {
        let unfilled = self
            .sizes
            .iter()
            .sum::<u64>()
            .saturating_sub(self.guest_resident);
        rss.saturating_sub(self.qemu_rss).min(unfilled)
    }
}

/// What was seen of a pod's qemu in its latest round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    pid: u32,
    rss: u64,
}

/// Per pod: the last exact guest resident and qemu as last seen.
#[derive(Debug, Clone, Default)]
pub struct GuestMemory {
    exact: HashMap<String, Exact>,
    latest: HashMap<String, Latest>,
}

/// qemu's process in a reading (the largest, if several): PID and private RSS (anon + shmem).
fn qemu(p: &PodReading) -> Option<Latest> {
    p.processes
        .iter()
        .filter(|x| process_role(&x.comm) == Some(ProcessRole::Qemu))
        .map(|x| Latest {
            pid: x.pid,
            rss: x.rss_anon_bytes.saturating_add(x.rss_shmem_bytes),
        })
        .max_by_key(|l| l.rss)
}

impl GuestMemory {
    /// Should round `round` read smaps for pod `uid` whose guest RAM has `sizes`?
    pub fn wants_smaps(&self, policy: &SmapsPolicy, uid: &str, sizes: &[u64], round: u64) -> bool {
        if sizes.is_empty() {
            return false;
        }
        let Some(e) = self.exact.get(uid) else {
            return true;
        };
        if e.sizes != sizes || round >= e.round.saturating_add(policy.every.max(1)) {
            return true;
        }
        match self.latest.get(uid) {
            Some(l) => l.pid != e.qemu_pid || l.rss.abs_diff(e.qemu_rss) > policy.rss_moved,
            None => true,
        }
    }

    /// After a fresh reading of a node in round `round`: remember the pods whose smaps was read
    /// (`exact` maps pod UID → the guest sizes asked for), and carry the last exact figure into
    /// the pods whose smaps was skipped, as long as qemu is the same process.
    pub fn absorb(&mut self, r: &mut NodeReadings, exact: &HashMap<String, Vec<u64>>, round: u64) {
        for p in &mut r.pods {
            let q = qemu(p);
            match q {
                Some(q) => {
                    self.latest.insert(p.uid.clone(), q);
                }
                None => {
                    self.latest.remove(&p.uid);
                }
            }
            if let Some(sizes) = exact.get(&p.uid) {
                match (p.guest_resident_bytes, q) {
                    (Some(g), Some(q)) => {
                        self.exact.insert(
                            p.uid.clone(),
                            Exact {
                                sizes: sizes.clone(),
                                round,
                                taken_at: r.taken_at,
                                guest_resident: g,
                                hugetlb: p.guest_hugetlb_bytes,
                                qemu_pid: q.pid,
                                qemu_rss: q.rss,
                            },
                        );
                    }
                    _ => {
                        self.exact.remove(&p.uid);
                    }
                }
                continue;
            }
            if p.guest_resident_bytes.is_some() {
                continue;
            }
            let Some(e) = self.exact.get(&p.uid) else {
                continue;
            };
            if let Some(q) = q.filter(|q| q.pid == e.qemu_pid) {
                p.guest_resident_bytes = Some(e.guest_resident);
                p.guest_hugetlb_bytes = e.hugetlb;
                p.guest_resident_taken_at = Some(e.taken_at);
                p.guest_grown_since_bytes = Some(e.grown_by(q.rss));
            } else {
                self.exact.remove(&p.uid);
            }
        }
    }

    /// Forget pods that are not in `uids` any more.
    pub fn retain<'a>(&mut self, uids: impl IntoIterator<Item = &'a str>) {
        let keep: std::collections::HashSet<&str> = uids.into_iter().collect();
        self.exact.retain(|u, _| keep.contains(u.as_str()));
        self.latest.retain(|u, _| keep.contains(u.as_str()));
    }
}

#[cfg(test)]
mod tests;
