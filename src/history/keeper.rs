//! The peaks one run keeps: loaded from the store at start (unless history is off), fed with
//! every report round's readings, handed to the report as evidence, and saved back.

use std::sync::Arc;

use super::store::PeakStore;
use crate::model::evidence::EvidenceKind;
use crate::model::peaks::{MemoryConfig, Peak, PeakTracker, RememberedPods, RememberedUse};
use crate::model::report::VmRow;

/// Whether history is used, and over which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryMode {
    /// No history of any kind: nothing is read from or written to the store.
    Off,
    /// Peaks of the last `window_seconds` count as evidence.
    Window { window_seconds: i64 },
}

impl Default for HistoryMode {
    fn default() -> Self {
        HistoryMode::Window {
            window_seconds: 7 * 24 * 3600,
        }
    }
}

/// One run's peaks, and where to keep them.
#[derive(Debug)]
pub struct PeakKeeper {
    store: Option<PeakStore>,
    cluster: String,
    mode: HistoryMode,
    /// Shared with the report being built (never copied: changed in place between reports).
    tracker: Arc<PeakTracker>,
}

impl PeakKeeper {
    /// A keeper for `cluster` (its API server URL) that remembers nothing (history off, or no
    /// place to keep it).
    pub fn in_memory(cluster: &str) -> PeakKeeper {
        PeakKeeper {
            store: None,
            cluster: cluster.to_string(),
            mode: HistoryMode::Off,
            tracker: Arc::default(),
        }
    }

    /// Open the store for `cluster` (none when `mode` is off); warnings say what could not be
    /// read. Never fails: without a store, peaks are kept for this run only.
    pub fn open(
        store: Option<PeakStore>,
        cluster: &str,
        mode: HistoryMode,
    ) -> (PeakKeeper, Vec<String>) {
        let mut keeper = PeakKeeper::in_memory(cluster);
        keeper.mode = mode;
        if mode == HistoryMode::Off {
            return (keeper, Vec::new());
        }
        let Some(store) = store else {
            return (keeper, Vec::new());
        };
        let (tracker, warnings) = store.load(cluster);
        keeper.tracker = Arc::new(tracker);
        keeper.store = Some(store);
        (keeper, warnings)
    }

    /// The peaks to build a report with at `now`: remembered peaks older than the window do
    /// not count.
    pub fn for_report(&mut self, now: i64) -> Arc<PeakTracker> {
        let using = match self.mode {
            HistoryMode::Off => RememberedUse::None,
            HistoryMode::Window { window_seconds } => RememberedUse::Since(now - window_seconds),
        };
        if self.tracker.remembered_use != using {
            Arc::make_mut(&mut self.tracker).remembered_use = using;
        }
        self.tracker.clone()
    }

    /// The launcher pods remembered for each VM, to find the VM of a kill in a pod that is gone
    /// (none when history is off).
    pub fn remembered_pods(&self) -> RememberedPods {
        match self.mode {
            HistoryMode::Off => RememberedPods::new(),
            HistoryMode::Window { .. } => self.tracker.remembered_pods(),
        }
    }

    /// Take in each row's reading of now (rows without live data add no peak) and its launcher
    /// pod, seen at `now`.
    pub fn observe<'a>(&mut self, rows: impl IntoIterator<Item = &'a VmRow>, now: i64) {
        self.take_in(rows.into_iter().filter_map(Sighting::of), now);
    }

    /// Take in what [`Sighting::of`] noted of a refresh's rows, seen at `now`.
    pub fn take_in(&mut self, sightings: impl IntoIterator<Item = Sighting>, now: i64) {
        for s in sightings {
            if let (Some(vm_uid), Some(pod_uid)) = (s.vm_uid.as_deref(), s.pod_uid.as_deref()) {
                Arc::make_mut(&mut self.tracker).saw_pod(vm_uid, &s.config, pod_uid, now);
            }
            let (Some(uid), Some(peak)) = (s.vm_uid.or(s.pod_uid), s.reading) else {
                continue;
            };
            Arc::make_mut(&mut self.tracker).observe(&uid, &s.config, peak);
        }
    }

    /// Write what this run saw into the store (nothing when history is off), taking in what
    /// another process stored meanwhile. Warnings are
    /// returned, never an error: a store that cannot be written costs only the memory.
    pub fn save(&mut self, now: i64) -> Vec<String> {
        match &self.store {
            None => Vec::new(),
            Some(store) => match store.save(&self.cluster, Arc::make_mut(&mut self.tracker), now) {
                Ok(w) => w,
                Err(e) => vec![format!("peaks could not be remembered: {e}")],
            },
        }
    }
}

/// What the keeper takes from one row: the VM's configuration, its UIDs and its reading of now.
/// Noted while a refresh's rows are built (when the report still holds the tracker) and taken
/// in after, so the tracker is changed in place, not copied.
#[derive(Debug, Clone)]
pub struct Sighting {
    config: MemoryConfig,
    vm_uid: Option<String>,
    pod_uid: Option<String>,
    reading: Option<Peak>,
}

impl Sighting {
    /// `None` for a row with neither UID (nothing to keep).
    pub fn of(r: &VmRow) -> Option<Sighting> {
        if r.vm_uid.is_none() && r.pod_uid.is_none() {
            return None;
        }
        let reading = r
            .recommendation
            .evidence
            .iter()
            .find(|e| e.kind == EvidenceKind::Now)
            .and_then(|now| {
                let at = match now.at.as_ref()? {
                    crate::model::evidence::At::Unix(t) => *t,
                    crate::model::evidence::At::Printed(_) => return None,
                };
                Some(Peak {
                    bytes: now.bytes,
                    at,
                    source: now.source.clone(),
                    level: now.level,
                })
            });
        Some(Sighting {
            config: MemoryConfig::of(r.guest_bytes, r.vm_limit_bytes, r.expected_overhead_bytes),
            vm_uid: r.vm_uid.clone(),
            pod_uid: r.pod_uid.clone(),
            reading,
        })
    }
}
