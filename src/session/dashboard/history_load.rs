//! The dashboard's history from Prometheus (issue 20), loaded in the background: a refresh
//! starts a load when one is due and none runs, and takes its result in the first refresh after
//! it finished, so a slow or hung Prometheus (each query may wait up to its timeout) never holds
//! a refresh up. The previous history of the same scope stays in use while a newer one loads;
//! a load for another scope is aborted and its result never shown.

use std::sync::Arc;

use futures::FutureExt;
use tokio::task::JoinHandle;

use super::snapshot::Scope;
use crate::cluster::connect::Connection;
use crate::model::inventory::Inventory;
use crate::session::options::Options;
use crate::session::prometheus::{self, known_vms, Loaded};

/// How often the dashboard asks Prometheus again (seconds): history changes slowly.
pub const HISTORY_EVERY: i64 = 15 * 60;

/// A load that has finished, for the scope it was asked for.
struct Done {
    scope: Scope,
    /// When it was started (Unix seconds): the next one is due [`HISTORY_EVERY`] later.
    started: i64,
    loaded: Arc<Loaded>,
}

/// A load in flight.
struct Running {
    scope: Scope,
    started: i64,
    /// What the dashboard says while it runs and there is no history yet.
    words: String,
    task: JoinHandle<Loaded>,
}

/// The session's history: the last finished load and the one running, if any.
#[derive(Default)]
pub struct HistoryLoads {
    done: Option<Done>,
    running: Option<Running>,
}

impl HistoryLoads {
    /// Once per refresh: take a finished load, forget what belongs to another scope, and start
    /// a load when one is due and none runs. The load owns what it needs: the options for
    /// `scope`, a clone of the connection, and the VMs of `inventory` (not the inventory).
    pub fn refresh(
        &mut self,
        opts: &Options,
        scope: &Scope,
        conn: &Connection,
        inventory: &Inventory,
        now: i64,
    ) {
        if self.running.as_ref().is_some_and(|r| &r.scope != scope) {
            self.abort();
        }
        self.take_finished();
        if self.done.as_ref().is_some_and(|d| &d.scope != scope) {
            self.done = None;
        }
        let due = self
            .done
            .as_ref()
            .is_none_or(|d| now - d.started >= HISTORY_EVERY);
        if !due || self.running.is_some() {
            return;
        }
        let scoped = opts.with_namespace(scope.namespace.as_deref());
        // Nothing to load (history off, files): nothing runs, nothing is said.
        let Some(words) = prometheus::loading_words(&scoped) else {
            return;
        };
        let conn = conn.clone();
        let vms = known_vms(inventory);
        let task =
            tokio::spawn(async move { prometheus::load_for(&scoped, &conn, &vms, now).await });
        self.running = Some(Running {
            scope: scope.clone(),
            started: now,
            words,
            task,
        });
    }

    /// The finished load's result becomes the history in use.
    fn take_finished(&mut self) {
        if !self.running.as_ref().is_some_and(|r| r.task.is_finished()) {
            return;
        }
        let Some(mut r) = self.running.take() else {
            return;
        };
        let loaded = match (&mut r.task).now_or_never() {
            Some(Ok(loaded)) => loaded,
            Some(Err(e)) => Loaded {
                warnings: vec![format!("no history from Prometheus: the load failed: {e}")],
                ..Loaded::default()
            },
            // Finished means its output is ready; were it not, it is asked again next time.
            None => {
                self.running = Some(r);
                return;
            }
        };
        self.done = Some(Done {
            scope: r.scope,
            started: r.started,
            loaded: Arc::new(loaded),
        });
    }

    /// The history to show for `scope` (the last finished load for it).
    pub fn current(&self, scope: &Scope) -> Option<&Loaded> {
        self.done
            .as_ref()
            .filter(|d| &d.scope == scope)
            .map(|d| d.loaded.as_ref())
    }

    /// While the first load for `scope` runs: what to say where the history will be.
    pub fn loading(&self, scope: &Scope) -> Option<String> {
        if self.current(scope).is_some() {
            return None;
        }
        self.running
            .as_ref()
            .filter(|r| &r.scope == scope)
            .map(|r| r.words.clone())
    }

    /// Stop the load in flight (scope gone, connection closing, dashboard ending).
    pub fn abort(&mut self) {
        if let Some(r) = self.running.take() {
            r.task.abort();
        }
    }

    /// Forget everything: the connection it was loaded through is gone.
    pub fn reset(&mut self) {
        self.abort();
        self.done = None;
    }
}

impl Drop for HistoryLoads {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
#[path = "tests_history_load.rs"]
mod tests;
