//! What the dashboard is fed: owned snapshots of the report, taken in the background by a
//! [`DataSource`] and sent over a channel. Nothing here touches UI state.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::model::report::{self, Report};
use crate::session::options::Options;

/// Where the data comes from, for the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextInfo {
    /// kubeconfig context (or `files`, `demo`).
    pub context: String,
    pub cluster: String,
    pub server: String,
}

/// How the last fetch went. Errors are drawn, never raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// The server said 403 to something the dashboard needs; the message is the server's.
    Forbidden(String),
    /// The server could not be reached (or timed out).
    Unreachable(String),
    /// Any other failure (files unreadable, bad answer), as a sentence.
    Failed(String),
}

impl Health {
    pub fn is_ok(&self) -> bool {
        matches!(self, Health::Ok)
    }
    /// A short label and the message, for banners.
    pub fn describe(&self) -> Option<(&'static str, &str)> {
        match self {
            Health::Ok => None,
            Health::Forbidden(m) => Some(("forbidden", m)),
            Health::Unreachable(m) => Some(("unreachable", m)),
            Health::Failed(m) => Some(("error", m)),
        }
    }
}

/// Which namespaces to look at: `None` is all of them (`-A`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub namespace: Option<String>,
}

/// One owned picture of the cluster.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `None` when the fetch failed outright (then `health` says why and old rows stay up).
    pub report: Option<Report>,
    pub taken_at: SystemTime,
    pub context: ContextInfo,
    pub health: Health,
    /// Where live numbers come from, in words (`agent`, `pod-exec`, `off: files have no live data`).
    pub live: String,
    /// The scope this snapshot was taken for.
    pub scope: Scope,
    /// While the first load of history from Prometheus for this scope runs (issue 20): what
    /// the detail view says where the history will be.
    pub history_loading: Option<String>,
}

/// Something that can take snapshots: the files reader here, the live cluster client and the
/// demo elsewhere. A source keeps whatever state it needs between calls (watches, session peaks
/// for the recommendation) and is only ever driven by [`fetch_loop`], never by the UI.
pub trait DataSource: Send + 'static {
    fn fetch<'a>(&'a mut self, scope: &'a Scope) -> BoxFuture<'a, Snapshot>;

    /// The namespace to show when neither `-n` nor `-A` is given (the context's, for a
    /// cluster); `None` shows all.
    fn default_namespace(&self) -> Option<String> {
        None
    }

    /// Called once when the dashboard ends (quit, SIGTERM): delete agent pods, close watches.
    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Run a source: one snapshot now, then one per `interval`, and one at once whenever a request
/// arrives (manual refresh, namespace switch). `requests` always holds the latest scope, so
/// requests made while a fetch is slow merge into one and none is lost. Ends when either side
/// goes away (a fetch in flight is dropped), then shuts the source down.
pub async fn fetch_loop<S: DataSource>(
    mut source: S,
    interval: Duration,
    mut requests: watch::Receiver<Scope>,
    snapshots: mpsc::Sender<Snapshot>,
) {
    loop {
        let scope = requests.borrow_and_update().clone();
        let mut asked = false;
        let snap = {
            let fut = source.fetch(&scope);
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    s = &mut fut => break Some(s),
                    changed = requests.changed(), if !asked => match changed {
                        Ok(()) => asked = true,
                        // The dashboard is gone: drop the slow fetch.
                        Err(_) => break None,
                    },
                }
            }
        };
        let Some(snap) = snap else { break };
        if snapshots.send(snap).await.is_err() {
            break;
        }
        return_free_memory();
        if !asked {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                changed = requests.changed() => if changed.is_err() { break },
            }
        }
    }
    source.shutdown().await;
}

/// Give the pages a refresh freed back to the system. glibc keeps an arena per thread and
/// returns only the top of each, so a dashboard's RSS stayed at its highest refresh: at 5,000
/// VMs 172 MiB with 95 MiB of heap in use at the peak (heaptrack), 155 MiB with this.
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only hands free pages back to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `--from PATH`: re-reads the files on every refresh (they may be edited), no live data.
pub struct FilesSource {
    path: PathBuf,
    opts: Options,
}

impl FilesSource {
    pub fn new(path: PathBuf, opts: Options) -> FilesSource {
        FilesSource { path, opts }
    }

    fn context(&self) -> ContextInfo {
        ContextInfo {
            context: "files".into(),
            cluster: self.path.display().to_string(),
            server: "-".into(),
        }
    }
}

/// Build a report from files for a scope (blocking: file reads and parsing), with the OOM
/// kills of the kernel logs among them.
pub fn report_from_files(
    path: &std::path::Path,
    opts: &Options,
    scope: &Scope,
) -> anyhow::Result<Report> {
    let inputs =
        crate::session::inputs::from_files(path, &opts.with_namespace(scope.namespace.as_deref()))?;
    Ok(report::build(
        &inputs.inventory,
        &inputs.readings,
        &inputs.options,
    ))
}

impl DataSource for FilesSource {
    fn fetch<'a>(&'a mut self, scope: &'a Scope) -> BoxFuture<'a, Snapshot> {
        Box::pin(async move {
            let path = self.path.clone();
            let opts = self.opts.clone();
            let sc = scope.clone();
            let result =
                tokio::task::spawn_blocking(move || report_from_files(&path, &opts, &sc)).await;
            let (report, health) = match result {
                Ok(Ok(r)) => (Some(r), Health::Ok),
                Ok(Err(e)) => (None, Health::Failed(crate::session::error_chain(&e))),
                Err(e) => (None, Health::Failed(format!("reading files: {e}"))),
            };
            Snapshot {
                report,
                taken_at: SystemTime::now(),
                context: self.context(),
                health,
                live: "off (files have no live data)".into(),
                scope: scope.clone(),
                history_loading: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(u32);

    impl DataSource for Counting {
        fn fetch<'a>(&'a mut self, scope: &'a Scope) -> BoxFuture<'a, Snapshot> {
            self.0 += 1;
            let n = self.0;
            Box::pin(async move {
                Snapshot {
                    report: None,
                    taken_at: SystemTime::UNIX_EPOCH,
                    context: ContextInfo::default(),
                    health: Health::Failed(format!("fetch {n}")),
                    live: String::new(),
                    scope: scope.clone(),
                    history_loading: None,
                }
            })
        }
    }

    #[tokio::test]
    async fn refreshes_on_request_with_the_new_scope() {
        let (req_tx, req_rx) = watch::channel(Scope::default());
        let (snap_tx, mut snap_rx) = mpsc::channel(4);
        let task = tokio::spawn(fetch_loop(
            Counting(0),
            Duration::from_secs(3600),
            req_rx,
            snap_tx,
        ));
        let first = snap_rx.recv().await.unwrap();
        assert_eq!(first.health, Health::Failed("fetch 1".into()));
        assert_eq!(first.scope.namespace, None);
        let prod = Scope {
            namespace: Some("prod".into()),
        };
        // Two requests before the loop looks: they merge, the latest scope wins.
        req_tx.send(Scope::default()).unwrap();
        req_tx.send(prod.clone()).unwrap();
        let second = snap_rx.recv().await.unwrap();
        assert_eq!(second.health, Health::Failed("fetch 2".into()));
        assert_eq!(second.scope, prod);
        drop(req_tx);
        // With the request channel closed the loop ends.
        task.await.unwrap();
    }

    #[tokio::test]
    async fn refreshes_on_interval() {
        let (_req_tx, req_rx) = watch::channel(Scope::default());
        let (snap_tx, mut snap_rx) = mpsc::channel(4);
        let task = tokio::spawn(fetch_loop(
            Counting(0),
            Duration::from_millis(10),
            req_rx,
            snap_tx,
        ));
        for n in 1..=3 {
            let s = snap_rx.recv().await.unwrap();
            assert_eq!(s.health, Health::Failed(format!("fetch {n}")));
        }
        drop(snap_rx);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn files_source_counts_the_kills_of_a_bundles_kernel_logs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundle");
        let mut src = FilesSource::new(dir, Options::default());
        let snap = src.fetch(&Scope::default()).await;
        let report = snap.report.unwrap();
        let vm = report.vms.iter().find(|v| v.name == "vm-64g").unwrap();
        assert_eq!(vm.oom_kills, Some(1));
        assert_eq!(vm.oom_history.len(), 1);
        assert!(vm.oom_history[0]
            .verdict
            .starts_with("VM prod/vm-64g was OOM-killed"));
    }

    #[tokio::test]
    async fn files_source_reads_fixtures_and_reports_errors() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
        let mut src = FilesSource::new(dir, Options::default());
        let snap = src.fetch(&Scope::default()).await;
        assert!(snap.health.is_ok(), "{:?}", snap.health);
        assert!(snap.report.unwrap().vms.iter().any(|v| v.name == "vm2"));
        let mut bad = FilesSource::new("no/such/dir".into(), Options::default());
        let snap = bad.fetch(&Scope::default()).await;
        assert!(snap.report.is_none());
        assert!(matches!(snap.health, Health::Failed(m) if m.contains("no/such/dir")));
    }
}
