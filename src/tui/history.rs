//! Per-VM usage and overhead over the session, for the detail view's sparklines.

use std::collections::{HashMap, VecDeque};

use crate::model::report::TableRow;

/// Samples kept per VM (at the default 2s refresh: the last 8 minutes).
pub const SAMPLES: usize = 240;

/// One VM's identity across snapshots.
pub use crate::model::evidence::VmKey;

/// Bounded samples of one quantity, kept as `u16` in units of `1 KiB << shift`, the smallest
/// unit in which the series' largest sample fits (a 16 GiB VM's usage: 256 KiB, a 0.002%
/// step), and read back in bytes. A full series of [`SAMPLES`] takes 480 bytes, allocated once
/// (KiB as `u32` took 960: 9.6 MiB for 5,000 VMs' two series, now 4.8).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    shift: u8,
    units: VecDeque<u16>,
}

impl Samples {
    pub(crate) fn push(&mut self, bytes: u64) {
        if self.units.capacity() == 0 {
            self.units.reserve_exact(SAMPLES);
        }
        if self.units.len() == SAMPLES {
            self.units.pop_front();
        }
        let kib = bytes / 1024;
        // A larger sample than the unit holds: a coarser unit for the whole series.
        while kib >> self.shift > u64::from(u16::MAX) {
            self.shift += 1;
            for u in &mut self.units {
                *u >>= 1;
            }
        }
        self.units.push_back((kib >> self.shift) as u16);
    }
    pub fn len(&self) -> usize {
        self.units.len()
    }
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
    fn bytes(&self, unit: u16) -> u64 {
        (u64::from(unit) << self.shift) * 1024
    }
    /// The samples in bytes, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.units.iter().map(|&u| self.bytes(u))
    }
    /// The newest sample in bytes.
    pub fn back(&self) -> Option<u64> {
        self.units.back().map(|&u| self.bytes(u))
    }
    /// The oldest sample in bytes.
    pub fn front(&self) -> Option<u64> {
        self.units.front().map(|&u| self.bytes(u))
    }
}

/// Bounded series of one VM.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Cgroup usage.
    pub usage: Samples,
    /// Overhead used (0 when negative).
    pub overhead: Samples,
    /// The last `record` that saw this VM.
    seen: u64,
}

/// Series per namespace, then name (looked up by `&str`, so a refresh allocates only for new
/// VMs).
#[derive(Debug, Clone, Default)]
pub struct History {
    series: HashMap<String, HashMap<String, Series>>,
    generation: u64,
}

impl History {
    /// Add one sample per row with live data; forget VMs that are gone.
    pub fn record(&mut self, rows: &[TableRow]) {
        self.generation += 1;
        let generation = self.generation;
        for r in rows {
            let live = r.usage_bytes.zip(r.overhead_used_bytes);
            let existing = self
                .series
                .get_mut(r.namespace.as_str())
                .and_then(|ns| ns.get_mut(r.name.as_str()));
            let s = match (existing, live) {
                (Some(s), _) => s,
                // Without live data a VM keeps its past samples but starts no series.
                (None, None) => continue,
                (None, Some(_)) => self
                    .series
                    .entry(r.namespace.clone())
                    .or_default()
                    .entry(r.name.clone())
                    .or_default(),
            };
            s.seen = generation;
            if let Some((usage, o)) = live {
                s.usage.push(usage);
                s.overhead.push(o.max(0) as u64);
            }
        }
        for ns in self.series.values_mut() {
            ns.retain(|_, s| s.seen == generation);
        }
        self.series.retain(|_, ns| !ns.is_empty());
    }

    pub fn get(&self, key: &VmKey) -> Option<&Series> {
        self.series
            .get(key.namespace.as_str())
            .and_then(|ns| ns.get(key.name.as_str()))
    }
}
