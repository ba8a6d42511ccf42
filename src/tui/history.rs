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
}

fn push(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == SAMPLES {
        q.pop_front();
    }
    q.push_back(v);
}

#[derive(Debug, Clone, Default)]
pub struct History {
    series: HashMap<VmKey, Series>,
}

impl History {
    /// Add one sample per row with live data; forget VMs that are gone.
    pub fn record(&mut self, rows: &[VmRow]) {
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        for r in rows {
            let key = VmKey::of(r);
            if let (Some(c), Some(o)) = (&r.cgroup, r.overhead_used_bytes) {
                let s = self.series.entry(key.clone()).or_default();
                push(&mut s.usage, c.usage_bytes);
                push(&mut s.overhead, o.max(0) as u64);
            }
            seen.insert(key);
        }
        self.series.retain(|k, _| seen.contains(k));
    }

    pub fn get(&self, key: &VmKey) -> Option<&Series> {
        self.series.get(key)
    }
}
