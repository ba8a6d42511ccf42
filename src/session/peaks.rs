//! The peaks a session keeps: for a real cluster, the user's peak store (unless `--history
//! off`); for the demo and files, this run's memory only.

use super::options::{Objects, Options};
use crate::history::{HistoryMode, PeakKeeper, PeakStore};
use crate::model::peaks::RememberedPods;

/// The keeper for a session on the cluster at `server`, with warnings about a store that
/// could not be read (never an error: without a store, peaks live as long as the process).
pub fn keeper_for(opts: &Options, server: &str) -> (PeakKeeper, Vec<String>) {
    let store = match (&opts.objects, opts.history) {
        (_, HistoryMode::Off) => None,
        (Objects::Cluster, _) => PeakStore::in_state_dir().ok(),
        _ => None,
    };
    PeakKeeper::open(store, server, opts.history)
}

/// The launcher pods this machine's peak store remembers for the VMs of the cluster at
/// `server`, read without changing the store (`oom --node` only reads it), with warnings about
/// a store that could not be read. None with `--history off`, for the demo and for files.
pub fn remembered_pods(opts: &Options, server: &str) -> (RememberedPods, Vec<String>) {
    if opts.history == HistoryMode::Off || opts.objects != Objects::Cluster {
        return (RememberedPods::new(), Vec::new());
    }
    let Ok(store) = PeakStore::in_state_dir() else {
        return (RememberedPods::new(), Vec::new());
    };
    let (tracker, warnings) = store.peek(server);
    let pods = tracker.map(|t| t.remembered_pods()).unwrap_or_default();
    (pods, warnings)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
