//! The dashboard's [`DataSource`] for a cluster (or `--demo`): the live client's watch caches,
//! turned into a report per refresh. Connecting happens here, in the background task, so the
//! screen is up (and says "Loading…" or the error) while the server is slow or down.
//!
//! Beside each refresh's probe round, nodes' kernel logs are read in the background when
//! something suggests an OOM kill (kernel_logs.rs); the kills found go into the report as
//! explained history (the OOMS column, the detail view).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;

use super::cluster_fix::ClientSlot;
use super::history_load::HistoryLoads;
use super::kernel_logs::KernelLogs;
use super::snapshot::{ContextInfo, DataSource, Health, Request, Scope, Snapshot};
use crate::cluster::connect::{kubeconfig_paths, read_merged, Env};
use crate::cluster::live::{Health as WatchHealth, LiveError};
use crate::history::{PeakKeeper, Sighting};
use crate::model::evidence::VmKey;
use crate::model::inventory::{Inventory, Readings};
use crate::model::report::carry::{self, Carried, Earlier};
use crate::model::report::{self, ReportOptions, Table, TableRow, VmRow};
use crate::node::readers::{LiveReadings, Mode};
use crate::session::error_chain;
use crate::session::inputs::filter_namespace;
use crate::session::options::{Objects, Options};
use crate::session::readings::unix_now;
use crate::session::source::{open, Live};

/// The session's node readers, shared with the background kernel-log reads.
type SharedReaders = Arc<tokio::sync::RwLock<LiveReadings>>;

/// What the header says about where live numbers come from.
fn live_label(opts: &Options) -> String {
    match opts.live {
        Mode::Off => "off (specs only)".into(),
        Mode::Agent => "agent pods".into(),
        Mode::PodExec => "pod exec".into(),
        Mode::Kubelet => "kubelet stats summary (guest RAM estimated)".into(),
        Mode::Auto => "auto (agent pods, else pod exec, else kubelet)".into(),
    }
}

pub struct ClusterSource {
    opts: Options,
    live: Option<(Live, Scope)>,
    /// Node readings (agent pods / pod exec), started with the live source; `None` when off.
    readers: Option<SharedReaders>,
    /// OOM kills from the nodes' kernel logs (read through the readers' agents).
    kernel_logs: KernelLogs,
    /// Shared with the fix backend: the client of the open connection.
    client: ClientSlot,
    /// The peaks this session sees (and the store they are kept in), opened at the first fetch.
    peaks: Option<PeakKeeper>,
    /// When the peaks were last written to the store (Unix seconds).
    peaks_saved_at: i64,
    /// What the peak store said (a broken file set aside), shown with every report.
    peak_warnings: Vec<String>,
    /// The history from Prometheus (issue 20), loaded in the background.
    history: HistoryLoads,
    /// What the last refresh was built from, for full rows asked for in between.
    kept: Option<Kept>,
    /// The last refresh's readings for the peak keeper, taken in when the next one starts:
    /// until then its kept inputs share the peaks it was built with, so a full row built on
    /// demand has the evidence the refresh's own rows had.
    pending: Vec<Sighting>,
    pending_at: i64,
}

/// How often the dashboard writes its peaks to the store.
const PEAKS_SAVE_EVERY: i64 = 60;

impl ClusterSource {
    pub fn new(opts: Options, client: ClientSlot) -> ClusterSource {
        ClusterSource {
            opts,
            live: None,
            readers: None,
            kernel_logs: KernelLogs::new(),
            client,
            peaks: None,
            peaks_saved_at: 0,
            peak_warnings: Vec::new(),
            history: HistoryLoads::default(),
            kept: None,
            pending: Vec::new(),
            pending_at: 0,
        }
    }

    /// Stop reading kernel logs and delete the agent pods (and keep what was seen).
    async fn close_readers(&mut self) {
        // What the last refresh kept shares the peaks: let them go first, so taking in its
        // readings and saving them does not copy them.
        self.kept = None;
        let (pending, at) = (std::mem::take(&mut self.pending), self.pending_at);
        if let Some(k) = &mut self.peaks {
            k.take_in(pending, at);
            k.save(crate::session::peaks::unix_now());
        }
        self.kernel_logs.stop().await;
        if let Some(r) = self.readers.take() {
            match Arc::try_unwrap(r) {
                Ok(r) => r.into_inner().close().await,
                // Unreachable once the log task has ended; delete the agents anyway.
                Err(shared) => {
                    if let Some(a) = shared.read().await.agents() {
                        a.delete_all().await;
                    }
                }
            }
        }
    }

    fn set_client(&self, client: Option<kube::Client>) {
        if let Ok(mut slot) = self.client.lock() {
            *slot = client;
        }
    }

    /// The kubeconfig's context (as the flags pick it): name, cluster, namespace.
    fn kube_context(&self) -> (String, Option<String>, Option<String>) {
        let kc = kubeconfig_paths(
            self.opts.connect.kubeconfig.as_deref(),
            &Env::from_process(),
        )
        .ok()
        .and_then(|(paths, _)| read_merged(&paths).ok());
        let name = self
            .opts
            .connect
            .context
            .clone()
            .or_else(|| kc.as_ref().and_then(|k| k.current_context.clone()))
            .unwrap_or_default();
        let ctx = kc.as_ref().and_then(|k| {
            k.contexts
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.context.clone())
        });
        let cluster = self
            .opts
            .connect
            .cluster
            .clone()
            .or_else(|| ctx.as_ref().map(|c| c.cluster.clone()));
        (name, cluster, ctx.and_then(|c| c.namespace))
    }

    fn context(&self, server: &str) -> ContextInfo {
        if self.opts.objects == Objects::Demo {
            // The demo's URL has a random port and a secret path: say what it is instead.
            let _ = server;
            return ContextInfo {
                context: "demo".into(),
                cluster: "built-in simulated cluster".into(),
                server: "in-process, 127.0.0.1".into(),
            };
        }
        let (context, cluster, _) = self.kube_context();
        ContextInfo {
            context,
            cluster: cluster.unwrap_or_default(),
            server: server.into(),
        }
    }

    /// Whether the watches started for `started` also hold the objects of `wanted`.
    fn covers(started: &Scope, wanted: &Scope) -> bool {
        started.namespace.is_none() || started == wanted
    }

    async fn ensure(&mut self, scope: &Scope) -> Result<(), Health> {
        if let Some((_, started)) = &self.live {
            if Self::covers(started, scope) {
                return Ok(());
            }
        }
        self.close_readers().await;
        self.kernel_logs = KernelLogs::new();
        // Its connection goes: a load through it stops.
        self.history.reset();
        if let Some((old, _)) = self.live.take() {
            self.set_client(None);
            old.close().await;
        }
        let opts = self.opts.with_namespace(scope.namespace.as_deref());
        match open(&opts).await {
            Ok(live) => {
                self.set_client(Some(live.client.clone()));
                // Node readings run beside the watches; when they cannot start, the dashboard
                // still shows the specs and says why in the warnings.
                self.readers = match opts.read_options() {
                    o if o.mode != Mode::Off => LiveReadings::start(
                        live.conn.client.clone(),
                        &live.source.snapshot(),
                        &opts.agent,
                        o,
                        unix_now(),
                    )
                    .await
                    .ok()
                    .map(|r| Arc::new(tokio::sync::RwLock::new(r))),
                    _ => None,
                };
                self.live = Some((live, scope.clone()));
                Ok(())
            }
            Err(e) => Err(classify(&e)),
        }
    }
}

/// Say on a VM whose node's kernel log cannot be read that kills of its earlier pods are not
/// counted, and why.
fn note_unreadable_logs(row: &mut VmRow, logs: &KernelLogs) {
    if let Some(why) = row.node.as_deref().and_then(|n| logs.watch().error(n)) {
        row.notes
            .push(format!("OOM kills of earlier pods are not counted: {why}"));
    }
}

/// What one refresh made of its rows.
struct Built {
    table: Table,
    /// The full row of the VM in focus.
    details: Vec<VmRow>,
    /// What the peak keeper takes in once the rows are built.
    sightings: Vec<Sighting>,
}

/// What a refresh was built from, kept for the full rows asked for until the next one (the
/// objects and readings are shared with the caches and readers, not copies).
struct Kept {
    scope: Scope,
    inventory: Inventory,
    readings: Readings,
    opts: ReportOptions,
}

/// A failure to open the live source, as the dashboard draws it.
fn classify(e: &anyhow::Error) -> Health {
    let text = error_chain(e);
    match e.downcast_ref::<LiveError>() {
        Some(LiveError::Forbidden(_)) => Health::Forbidden(text),
        Some(LiveError::Connect(_)) | Some(LiveError::InitialTimeout { .. }) => {
            Health::Unreachable(text)
        }
        // A 403 the feed did not take for a Kubernetes Forbidden (e.g. a proxy's, with no
        // Status): still a refusal.
        Some(LiveError::Read {
            code: Some(403), ..
        }) => Health::Forbidden(text),
        _ => Health::Failed(text),
    }
}

impl ClusterSource {
    /// The peaks kept for this cluster, opened at the first refresh.
    fn peak_keeper(&mut self, server: &str) -> &mut PeakKeeper {
        let (opts, warnings) = (&self.opts, &mut self.peak_warnings);
        self.peaks.get_or_insert_with(|| {
            let (k, w) = crate::session::peaks::keeper_for(opts, server);
            *warnings = w;
            k
        })
    }

    /// Build the refresh's rows one at a time, keeping of each what the table shows (and the
    /// full row of the VM in focus), and noting each for the kernel-log watch and the peaks.
    fn build_table(
        &mut self,
        inventory: &Inventory,
        readings: &Readings,
        opts: &ReportOptions,
        focus: Option<&VmKey>,
    ) -> Built {
        let (head, rows) = report::parts(inventory, readings, opts);
        let watching = self.readers.is_some();
        if watching {
            self.kernel_logs.watch_mut().begin_round(readings);
        }
        let (mut table_rows, mut details, mut sightings) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            if watching {
                self.kernel_logs.watch_mut().see_row(&row);
            }
            sightings.extend(Sighting::of(&row));
            table_rows.push(TableRow::of(&row));
            if focus.is_some_and(|k| k.matches(&row)) {
                details.push(row);
            }
        }
        if watching {
            self.kernel_logs.watch_mut().end_round();
        }
        table_rows.shrink_to_fit();
        Built {
            table: Table {
                kubevirt: head.kubevirt,
                rows: table_rows,
                warnings: head.warnings,
            },
            details,
            sightings,
        }
    }

    /// Running VMs this refresh could not read although their nodes answered (their pods ended
    /// or moved meanwhile), with the last reading of the same VMI (`report::carry`).
    fn carried(
        &self,
        inventory: &Inventory,
        readings: &Readings,
        stale_nodes: &HashMap<String, String>,
    ) -> HashMap<VmKey, Carried> {
        let Some(kept) = self.kept.as_ref().filter(|_| !readings.is_empty()) else {
            return HashMap::new();
        };
        let wanted = carry::wanted(inventory, readings, stale_nodes);
        let earlier = Earlier {
            inventory: &kept.inventory,
            readings: &kept.readings,
            carried: &kept.opts.carried,
        };
        carry::carry(&wanted, &earlier, readings, unix_now())
    }

    /// Remember this refresh's peaks, and write them out every [`PEAKS_SAVE_EVERY`] seconds.
    fn keep_peaks(&mut self, server: &str, sightings: Vec<Sighting>, now: i64) {
        self.peak_keeper(server).take_in(sightings, now);
        if now - self.peaks_saved_at >= PEAKS_SAVE_EVERY {
            let warnings = self.peak_keeper(server).save(now);
            self.peak_warnings.extend(warnings);
            self.peaks_saved_at = now;
        }
    }
}

impl DataSource for ClusterSource {
    fn fetch<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Snapshot> {
        Box::pin(async move {
            let scope = &request.scope;
            let failed = |me: &Self, health: Health| Snapshot {
                table: None,
                details: Vec::new(),
                taken_at: SystemTime::now(),
                context: me.context(""),
                health,
                live: live_label(&me.opts),
                scope: scope.clone(),
                history_loading: None,
            };
            if let Err(h) = self.ensure(scope).await {
                return failed(self, h);
            }
            let Some((live, _)) = &self.live else {
                return failed(
                    self,
                    Health::Failed("the cluster source is not open".into()),
                );
            };
            let mut opts = self.opts.report_options();
            let namespaces = self
                .opts
                .with_namespace(scope.namespace.as_deref())
                .namespaces;
            let snapshot = || {
                let mut inventory = live.source.snapshot();
                filter_namespace(&mut inventory, &namespaces);
                inventory
            };
            let events = live.source.stats().events;
            let mut inventory = snapshot();
            let (health, taken_at) = match live.source.health() {
                WatchHealth::Ok => (Health::Ok, SystemTime::now()),
                // The caches hold the objects as of when watching began to fail.
                WatchHealth::Stale { error, since } => (
                    Health::Unreachable(error),
                    SystemTime::now() - Instant::now().saturating_duration_since(since),
                ),
            };
            let server = live.source.server().to_string();
            let (readings, warnings) = match self.readers.as_ref() {
                Some(r) => {
                    let mut readers = r.write().await;
                    let mut round = readers.read(&inventory, unix_now()).await;
                    // Objects changed during the round (a VM restarted or migrated: a pod the
                    // round did not read): read those pods now, so the VM has live data in
                    // this refresh, and report on the objects as they are now.
                    if live.source.stats().events != events {
                        inventory = snapshot();
                        readers
                            .read_missed(&inventory, &mut round, unix_now())
                            .await;
                    }
                    drop(readers);
                    opts.stale_nodes = round.stale;
                    (round.readings, round.warnings)
                }
                None => (Readings::new(), Vec::new()),
            };
            // Never waited for: a load runs beside the refreshes, its result taken when done.
            self.history
                .refresh(&self.opts, scope, &live.conn, &inventory, unix_now());
            if let Some(loaded) = self.history.current(scope) {
                loaded.apply(&mut opts);
            }
            self.kernel_logs.collect();
            opts.carried = self.carried(&inventory, &readings, &opts.stale_nodes);
            // What the last refresh kept goes now (it shares the peaks): its readings are taken
            // in without copying every VM's peaks. Until here a failed refresh leaves it for
            // the full rows asked for.
            self.kept = None;
            let (pending, at) = (std::mem::take(&mut self.pending), self.pending_at);
            self.keep_peaks(&server, pending, at);
            let remembered = self.peak_keeper(&server).remembered_pods();
            opts.oom_history =
                self.kernel_logs
                    .explanations(&inventory, opts.version_flag, &remembered);
            opts.kernel_logs_read = self.kernel_logs.read_nodes();
            let now = crate::session::peaks::unix_now();
            opts.peaks = self.peak_keeper(&server).for_report(now);
            let built = self.build_table(&inventory, &readings, &opts, request.focus.as_ref());
            let Built {
                mut table,
                mut details,
                sightings,
            } = built;
            (self.pending, self.pending_at) = (sightings, now);
            table.warnings.extend(warnings);
            table.warnings.extend(self.peak_warnings.iter().cloned());
            // Where the history came from is in the detail view; only what went wrong is a
            // warning.
            if let Some(loaded) = self.history.current(scope) {
                table.warnings.extend(loaded.warnings.iter().cloned());
            }
            if let Some(r) = &self.readers {
                self.kernel_logs.schedule(r, SystemTime::now());
            }
            for row in &mut details {
                note_unreadable_logs(row, &self.kernel_logs);
            }
            // Kept for the full rows asked for before the next refresh, with the peaks this
            // refresh's rows were built with.
            self.kept = Some(Kept {
                scope: scope.clone(),
                inventory,
                readings,
                opts,
            });
            Snapshot {
                table: Some(table),
                details,
                taken_at,
                context: self.context(&server),
                health,
                live: live_label(&self.opts),
                scope: scope.clone(),
                history_loading: self.history.loading(scope),
            }
        })
    }

    fn detail<'a>(&'a mut self, scope: &'a Scope, key: &'a VmKey) -> BoxFuture<'a, Option<VmRow>> {
        let row = self
            .kept
            .as_ref()
            .filter(|k| &k.scope == scope)
            .and_then(|k| report::vm_row(&k.inventory, &k.readings, &k.opts, key))
            .map(|mut row| {
                note_unreadable_logs(&mut row, &self.kernel_logs);
                row
            });
        Box::pin(async move { row })
    }

    /// The demo shows every namespace; a cluster, like kubectl, the context's namespace,
    /// else `default`.
    fn default_namespace(&self) -> Option<String> {
        if self.opts.objects == Objects::Demo {
            return None;
        }
        Some(self.kube_context().2.unwrap_or_else(|| "default".into()))
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Delete the agent pods before the connection goes; a history load stops.
            self.history.abort();
            self.close_readers().await;
            if let Some((live, _)) = self.live.take() {
                self.set_client(None);
                live.close().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_error(code: Option<u16>, message: &str) -> anyhow::Error {
        LiveError::Read {
            resource: "virtualmachines",
            server: "https://127.0.0.1:6443".into(),
            code,
            message: message.into(),
        }
        .into()
    }

    #[test]
    fn a_refusal_is_told_by_its_code_not_its_words() {
        let text = "reading virtualmachines from https://127.0.0.1:6443: Forbidden";
        assert_eq!(
            classify(&read_error(Some(403), "Forbidden")),
            Health::Forbidden(text.into())
        );
        // The word alone is no refusal: a 500 whose message says "forbidden" is a failure.
        let e = read_error(Some(500), "etcd: forbidden key");
        assert!(matches!(classify(&e), Health::Failed(_)), "{e}");
        let e = read_error(None, "the list did not finish");
        assert!(matches!(classify(&e), Health::Failed(_)), "{e}");
        let forbidden = LiveError::Forbidden("virtualmachines.kubevirt.io is forbidden".into());
        assert!(matches!(classify(&forbidden.into()), Health::Forbidden(_)));
    }
}
