//! The dashboard's reads of node kernel logs (the agent's `dmesg`), in the background: the
//! cluster source asks after each refresh, [`OomWatch`] decides which nodes are due, one task
//! reads them (a few nodes at a time, each exec with the readers' time limit) and hands the
//! parsed reports back over a channel; the next refresh takes them in. Nothing here waits for
//! a read, and the UI never sees this state (only the explained kills in the report).
//!
//! The readers are shared with the probe rounds through a read-write lock: a log read holds it
//! shared, a probe round exclusively, so a refresh can wait for a log read in flight (at most
//! the exec time limit), never the other way round for longer than one round.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use tokio::sync::{mpsc, RwLock};
use tokio::task::JoinHandle;

use super::oom_watch::OomWatch;
use crate::model::inventory::Inventory;
use crate::model::oom_event::OomEvent;
use crate::model::oom_verdict::OomExplanation;
use crate::model::oom_vm::LogsRead;
use crate::model::version::Version;
use crate::node::error::KernelLogError;
use crate::node::readers::LiveReadings;

/// Nodes whose logs are read at the same time.
const PARALLEL: usize = 4;

/// One finished read.
struct LogRead {
    node: String,
    result: Result<Vec<OomEvent>, KernelLogError>,
    at: SystemTime,
}

pub struct KernelLogs {
    watch: OomWatch,
    task: Option<JoinHandle<()>>,
    tx: mpsc::UnboundedSender<LogRead>,
    rx: mpsc::UnboundedReceiver<LogRead>,
}

impl Default for KernelLogs {
    fn default() -> Self {
        KernelLogs::new()
    }
}

impl KernelLogs {
    pub fn new() -> KernelLogs {
        let (tx, rx) = mpsc::unbounded_channel();
        KernelLogs {
            watch: OomWatch::new(),
            task: None,
            tx,
            rx,
        }
    }

    pub fn watch(&self) -> &OomWatch {
        &self.watch
    }

    /// Take in the reads that finished since the last refresh.
    pub fn collect(&mut self) {
        while let Ok(r) = self.rx.try_recv() {
            // The watch keeps the sentence to show on the node's VMs.
            let result = r.result.map_err(|e| e.to_string());
            self.watch.finished(&r.node, result, r.at);
        }
    }

    /// The kills found so far, explained against the current inventory.
    pub fn explanations(
        &self,
        inv: &Inventory,
        flag: Option<Version>,
        remembered: &crate::model::peaks::RememberedPods,
    ) -> Vec<OomExplanation> {
        self.watch.explanations(inv, flag, remembered)
    }

    /// The nodes whose log has been read successfully at least once.
    pub fn read_nodes(&self) -> LogsRead {
        LogsRead::Nodes(
            self.watch
                .nodes()
                .iter()
                .filter(|(_, l)| l.last_read.is_some() && l.error.is_none())
                .map(|(n, _)| n.clone())
                .collect(),
        )
    }

    /// Where each refresh's rows are noted (what changed), before [`KernelLogs::schedule`].
    pub fn watch_mut(&mut self) -> &mut OomWatch {
        &mut self.watch
    }

    /// After a refresh was noted: unless a read is still in flight, start reading the nodes
    /// that are due.
    pub fn schedule(&mut self, readers: &Arc<RwLock<LiveReadings>>, now: SystemTime) {
        if self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let due = self.watch.due(now);
        if due.is_empty() {
            return;
        }
        self.task = Some(tokio::spawn(read_logs(
            readers.clone(),
            due,
            self.tx.clone(),
        )));
    }

    /// Stop a read in flight (before the readers are closed).
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Read and parse the logs of `nodes`, sending each result as it comes.
async fn read_logs(
    readers: Arc<RwLock<LiveReadings>>,
    nodes: Vec<String>,
    tx: mpsc::UnboundedSender<LogRead>,
) {
    let guard = readers.read().await;
    let live: &LiveReadings = &guard;
    let mut reads = futures::stream::iter(nodes)
        .map(|node| async move {
            let result = live.kernel_log_events(&node).await;
            LogRead {
                node,
                result,
                at: SystemTime::now(),
            }
        })
        .buffer_unordered(PARALLEL);
    while let Some(r) = reads.next().await {
        if tx.send(r).is_err() {
            return;
        }
    }
}
