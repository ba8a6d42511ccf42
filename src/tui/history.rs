//! Per-VM usage and overhead over the session, for the detail view's sparklines.

use std::collections::{HashMap, VecDeque};

use crate::model::report::TableRow;

/// Samples kept per VM (at the default 2s refresh: the last 8 minutes).
pub const SAMPLES: usize = 240;

/// One VM's identity across snapshots.
pub use crate::model::evidence::VmKey;

/// Bounded samples of one quantity, kept in KiB as `u32` (up to 4 TiB; more is held at the
/// top) and read back in bytes: a full series of [`SAMPLES`] takes 960 bytes, allocated once,
/// where bytes as `u64` in a growing deque took up to 2 KiB (20 MiB for 5,000 VMs' two series).
#[derive(Debug, Clone, Default)]
pub struct Samples(VecDeque<u32>);

impl Samples {
    fn push(&mut self, bytes: u64) {
        if self.0.capacity() == 0 {
            self.0.reserve_exact(SAMPLES);
        }
        if self.0.len() == SAMPLES {
            self.0.pop_front();
        }
        self.0
            .push_back(u32::try_from(bytes / 1024).unwrap_or(u32::MAX));
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The samples in bytes, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|&k| u64::from(k) * 1024)
    }
    /// The newest sample in bytes.
    pub fn back(&self) -> Option<u64> {
        self.0.back().map(|&k| u64::from(k) * 1024)
    }
    /// The oldest sample in bytes.
    pub fn front(&self) -> Option<u64> {
        self.0.front().map(|&k| u64::from(k) * 1024)
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
