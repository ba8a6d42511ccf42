//! Two things a single reading of usage does not say by itself: how much swap the cgroup may
//! still use before it is OOM-killed, and how far the guest RAM figure and the usage are apart in
//! time while the guest grows.

use crate::model::readings::{CgroupCounters, CgroupLevel, PodReading};

/// The swap the cgroup `c` may still use: its `memory.swap.max` less its swap in use. A pod
/// cgroup with no swap limit of its own swaps its containers' pages within their limits: the
/// compute container's room then. No swap accounting, no limit read or `0` allowed: none
/// (unlimited swap is the node's swap, which nothing here reads: no room is counted for it).
pub fn swap_room(c: &CgroupCounters, compute: Option<&CgroupCounters>) -> i64 {
    let own = |c: &CgroupCounters| {
        c.swap_limit_bytes
            .map(|l| l.saturating_sub(c.swap_bytes.unwrap_or(0)) as i64)
    };
    match (own(c), c.level, compute) {
        (Some(r), _, _) => r,
        (None, CgroupLevel::Pod, Some(k)) => own(k).unwrap_or(0),
        _ => 0,
    }
}

/// How far apart in time the guest RAM figure and the usage are, as bytes of guest growth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestSkew {
    /// The guest figure is older than the usage (carried from an earlier round): the usage holds
    /// up to this much more guest RAM, which the overhead then counts. Overhead is high by at
    /// most this.
    pub grown_since: i64,
    /// The usage was read before qemu's smaps: the guest grew by up to this much (the pod's
    /// usage after the scan less before) into the guest figure. Overhead is low by at most this.
    pub grew_during_read: i64,
}

/// Guest growth this big within one reading means the guest is filling its RAM.
pub const FILLING_FROM: i64 = 64 << 20;

impl GuestSkew {
    pub fn of(r: &PodReading) -> GuestSkew {
        GuestSkew {
            grown_since: r.guest_grown_since_bytes.unwrap_or(0) as i64,
            grew_during_read: r
                .usage_after_smaps_bytes
                .map_or(0, |a| a.saturating_sub(r.cgroup.usage_bytes) as i64),
        }
    }

    /// Whether the guest grew fast enough between the two figures to say "guest filling".
    pub fn filling(&self) -> bool {
        self.grown_since.max(self.grew_during_read) >= FILLING_FROM
    }
}
