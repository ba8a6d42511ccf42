//! Per-VM usage and overhead over the session, for the detail view's sparklines.

use std::collections::{HashMap, VecDeque};

use crate::model::report::VmRow;

/// Samples kept per VM (at the default 2s refresh: the last 8 minutes).
pub const SAMPLES: usize = 240;

/// One VM's identity across snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmKey {
    pub namespace: String,
    pub name: String,
}

impl VmKey {
    pub fn of(row: &VmRow) -> VmKey {
        VmKey {
            namespace: row.namespace.clone(),
            name: row.name.clone(),
        }
    }
    pub fn matches(&self, row: &VmRow) -> bool {
        self.namespace == row.namespace && self.name == row.name
    }
}

impl std::fmt::Display for VmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Bounded series of one VM.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Cgroup usage, bytes.
    pub usage: VecDeque<u64>,
    /// Overhead used, bytes (0 when negative).
    pub overhead: VecDeque<u64>,
    /// The last `record` that saw this VM.
    seen: u64,
}

fn push(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == SAMPLES {
        q.pop_front();
    }
    q.push_back(v);
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
    pub fn record(&mut self, rows: &[VmRow]) {
        self.generation += 1;
        let generation = self.generation;
        for r in rows {
            let live = r.cgroup.as_ref().zip(r.overhead_used_bytes);
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
            if let Some((c, o)) = live {
                push(&mut s.usage, c.usage_bytes);
                push(&mut s.overhead, o.max(0) as u64);
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
