//! What the dashboard is fed: owned snapshots of the report, taken in the background by a
//! [`DataSource`] and sent over a channel. Nothing here touches UI state.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::model::evidence::VmKey;
use crate::model::report::{self, Report, Table, VmRow};
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

/// What the dashboard asks its source for: the scope, the VM it looks at (whose full row it
/// needs) and how many refreshes were asked for by hand (a new number fetches at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub scope: Scope,
    pub focus: Option<VmKey>,
    pub generation: u64,
}

/// One owned picture of the cluster.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `None` when the fetch failed outright (then `health` says why and old rows stay up).
    pub table: Option<Table>,
    /// The full rows of the VMs the request focused on (one, or none; all of them in tests).
    pub details: Vec<VmRow>,
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

impl Snapshot {
    /// A snapshot of a whole report: its table, and the full row of `focus`.
    pub fn of_report(
        report: Option<Report>,
        focus: Option<&VmKey>,
        taken_at: SystemTime,
        health: Health,
        scope: Scope,
    ) -> Snapshot {
        let (table, details) = match report {
            Some(r) => {
                let (t, d) = Table::split(r, |row| focus.is_some_and(|k| k.matches(row)));
                (Some(t), d)
            }
            None => (None, Vec::new()),
        };
        Snapshot {
            table,
            details,
            taken_at,
            context: ContextInfo::default(),
            health,
            live: String::new(),
            scope,
            history_loading: None,
        }
    }
}

/// The full row of one VM, built on demand from what the last snapshot was built from.
#[derive(Debug, Clone)]
pub struct Detail {
    pub scope: Scope,
    pub key: VmKey,
    /// `None` when the VM is not there (any more).
    pub row: Option<VmRow>,
}

/// What the fetch task sends the dashboard.
#[derive(Debug, Clone)]
pub enum Feed {
    Snapshot(Box<Snapshot>),
    Detail(Box<Detail>),
}

/// Something that can take snapshots: the files reader here, the live cluster client and the
/// demo elsewhere. A source keeps whatever state it needs between calls (watches, session peaks
/// for the recommendation) and is only ever driven by [`fetch_loop`], never by the UI.
pub trait DataSource: Send + 'static {
    /// A picture of `request.scope`, with the full row of `request.focus`.
    fn fetch<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Snapshot>;

    /// The full row of `key`, as the last snapshot would have had it (`None`: not there).
    fn detail<'a>(&'a mut self, scope: &'a Scope, key: &'a VmKey) -> BoxFuture<'a, Option<VmRow>>;

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

/// Run a source: one snapshot now, then one per `interval`, and one at once whenever the
/// scope or the generation of the request changes (namespace switch, manual refresh). A change
/// of focus alone is answered from what the last snapshot was built from, without a refresh and
/// without moving the next one. `requests` always holds the latest request, so requests made
/// while a fetch is slow merge into one and none is lost. Ends when either side goes away (a
/// fetch in flight is dropped), then shuts the source down.
pub async fn fetch_loop<S: DataSource>(
    mut source: S,
    interval: Duration,
    mut requests: watch::Receiver<Request>,
    feed: mpsc::Sender<Feed>,
) {
    // What the last snapshot (or detail) answered, and when the next refresh is due.
    let mut done: Option<Request> = None;
    let mut next = tokio::time::Instant::now();
    loop {
        let request = requests.borrow_and_update().clone();
        let refetch = done
            .as_ref()
            .is_none_or(|d| d.scope != request.scope || d.generation != request.generation)
            || tokio::time::Instant::now() >= next;
        if refetch {
            let Some(snap) = fetch_once(&mut source, &request, &mut requests).await else {
                break;
            };
            if feed.send(Feed::Snapshot(Box::new(snap))).await.is_err() {
                break;
            }
            next = tokio::time::Instant::now() + interval;
            done = Some(request);
            continue;
        }
        if let Some(d) = done.as_mut().filter(|d| d.focus != request.focus) {
            d.focus = request.focus.clone();
            if let Some(key) = &request.focus {
                let row = source.detail(&request.scope, key).await;
                let detail = Detail {
                    scope: request.scope.clone(),
                    key: key.clone(),
                    row,
                };
                if feed.send(Feed::Detail(Box::new(detail))).await.is_err() {
                    break;
                }
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = requests.changed() => if changed.is_err() { break },
        }
    }
    source.shutdown().await;
}

/// One fetch; `None` when the dashboard went away meanwhile (the fetch is dropped). Requests
/// that arrive meanwhile are left for the loop to look at.
async fn fetch_once<S: DataSource>(
    source: &mut S,
    request: &Request,
    requests: &mut watch::Receiver<Request>,
) -> Option<Snapshot> {
    let fut = source.fetch(request);
    tokio::pin!(fut);
    let mut asked = false;
    loop {
        tokio::select! {
            s = &mut fut => return Some(s),
            changed = requests.changed(), if !asked => match changed {
                Ok(()) => asked = true,
                Err(_) => return None,
            },
        }
    }
}

/// `--from PATH`: re-reads the files on every refresh (they may be edited), no live data.
pub struct FilesSource {
    path: PathBuf,
    opts: Options,
    /// The last report, whose rows the detail view is given.
    last: Option<Report>,
}

impl FilesSource {
    pub fn new(path: PathBuf, opts: Options) -> FilesSource {
        FilesSource {
            path,
            opts,
            last: None,
        }
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
    fn fetch<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Snapshot> {
        Box::pin(async move {
            let path = self.path.clone();
            let opts = self.opts.clone();
            let sc = request.scope.clone();
            let result =
                tokio::task::spawn_blocking(move || report_from_files(&path, &opts, &sc)).await;
            let (report, health) = match result {
                Ok(Ok(r)) => (Some(r), Health::Ok),
                Ok(Err(e)) => (None, Health::Failed(crate::session::error_chain(&e))),
                Err(e) => (None, Health::Failed(format!("reading files: {e}"))),
            };
            // A failed read keeps the last report for the rows asked for, as the screen keeps
            // its table.
            if report.is_some() {
                self.last = report.clone();
            }
            Snapshot {
                context: self.context(),
                live: "off (files have no live data)".into(),
                ..Snapshot::of_report(
                    report,
                    request.focus.as_ref(),
                    SystemTime::now(),
                    health,
                    request.scope.clone(),
                )
            }
        })
    }

    fn detail<'a>(&'a mut self, scope: &'a Scope, key: &'a VmKey) -> BoxFuture<'a, Option<VmRow>> {
        let row = self
            .last
            .as_ref()
            .filter(|_| {
                scope.namespace.is_none() || scope.namespace.as_ref() == Some(&key.namespace)
            })
            .and_then(|r| r.vms.iter().find(|v| key.matches(*v)).cloned());
        Box::pin(async move { row })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts fetches and details; each snapshot says which fetch it was.
    struct Counting {
        fetches: u32,
        details: u32,
    }

    impl DataSource for Counting {
        fn fetch<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Snapshot> {
            self.fetches += 1;
            let n = self.fetches;
            Box::pin(async move {
                Snapshot::of_report(
                    None,
                    None,
                    SystemTime::UNIX_EPOCH,
                    Health::Failed(format!("fetch {n}")),
                    request.scope.clone(),
                )
            })
        }

        fn detail<'a>(
            &'a mut self,
            _scope: &'a Scope,
            _key: &'a VmKey,
        ) -> BoxFuture<'a, Option<VmRow>> {
            self.details += 1;
            Box::pin(async { None })
        }
    }

    fn counting() -> Counting {
        Counting {
            fetches: 0,
            details: 0,
        }
    }

    /// The fetch loop over a counting source, refreshing every `interval`.
    fn start(
        interval: Duration,
    ) -> (
        watch::Sender<Request>,
        mpsc::Receiver<Feed>,
        tokio::task::JoinHandle<()>,
    ) {
        let (req_tx, req_rx) = watch::channel(Request::default());
        let (snap_tx, snap_rx) = mpsc::channel(4);
        let task = tokio::spawn(fetch_loop(counting(), interval, req_rx, snap_tx));
        (req_tx, snap_rx, task)
    }

    async fn next_snapshot(rx: &mut mpsc::Receiver<Feed>) -> Snapshot {
        match rx.recv().await.unwrap() {
            Feed::Snapshot(s) => *s,
            Feed::Detail(d) => panic!("a detail came instead of a snapshot: {d:?}"),
        }
    }

    #[tokio::test]
    async fn refreshes_on_request_with_the_new_scope() {
        let (req_tx, mut snap_rx, task) = start(Duration::from_secs(3600));
        let first = next_snapshot(&mut snap_rx).await;
        assert_eq!(first.health, Health::Failed("fetch 1".into()));
        assert_eq!(first.scope.namespace, None);
        let prod = Scope {
            namespace: Some("prod".into()),
        };
        // Two requests before the loop looks: they merge, the latest scope wins.
        req_tx.send_modify(|r| r.generation += 1);
        req_tx.send_modify(|r| r.scope = prod.clone());
        let second = next_snapshot(&mut snap_rx).await;
        assert_eq!(second.health, Health::Failed("fetch 2".into()));
        assert_eq!(second.scope, prod);
        // A manual refresh of the same scope fetches too.
        req_tx.send_modify(|r| r.generation += 1);
        let third = next_snapshot(&mut snap_rx).await;
        assert_eq!(third.health, Health::Failed("fetch 3".into()));
        drop(req_tx);
        // With the request channel closed the loop ends.
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_new_focus_gets_its_row_without_a_refresh() {
        let (req_tx, mut snap_rx, task) = start(Duration::from_secs(3600));
        next_snapshot(&mut snap_rx).await;
        let key = VmKey::new("prod", "db");
        req_tx.send_modify(|r| r.focus = Some(key.clone()));
        match snap_rx.recv().await.unwrap() {
            Feed::Detail(d) => {
                assert_eq!(d.key, key);
                assert!(d.row.is_none());
            }
            Feed::Snapshot(s) => panic!("a refresh came for a new focus: {:?}", s.health),
        }
        // No focus: nothing to build, nothing sent; the next refresh is still an hour away.
        req_tx.send_modify(|r| r.focus = None);
        let quiet = tokio::time::timeout(Duration::from_millis(200), snap_rx.recv()).await;
        assert!(quiet.is_err(), "{quiet:?}");
        drop(req_tx);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn refreshes_on_interval() {
        let (_req_tx, mut snap_rx, task) = start(Duration::from_millis(10));
        for n in 1..=3 {
            let s = next_snapshot(&mut snap_rx).await;
            assert_eq!(s.health, Health::Failed(format!("fetch {n}")));
        }
        drop(snap_rx);
        task.await.unwrap();
    }

    fn all() -> Request {
        Request::default()
    }

    #[tokio::test]
    async fn files_source_counts_the_kills_of_a_bundles_kernel_logs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundle");
        let mut src = FilesSource::new(dir, Options::default());
        let key = VmKey::new("prod", "vm-64g");
        let request = Request {
            focus: Some(key.clone()),
            ..all()
        };
        let snap = src.fetch(&request).await;
        let table = snap.table.unwrap();
        let row = table.rows.iter().find(|v| v.name == "vm-64g").unwrap();
        assert_eq!(row.oom_kills, Some(1));
        // The focus's full row comes with the table, and again when asked for.
        let [vm] = snap.details.as_slice() else {
            panic!("{:?}", snap.details)
        };
        assert_eq!(vm.oom_history.len(), 1);
        assert!(vm.oom_history[0]
            .verdict
            .starts_with("VM prod/vm-64g was OOM-killed"));
        let again = src.detail(&request.scope, &key).await.unwrap();
        assert_eq!(again.oom_history.len(), 1);
    }

    #[tokio::test]
    async fn files_source_reads_fixtures_and_reports_errors() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
        let mut src = FilesSource::new(dir, Options::default());
        let snap = src.fetch(&all()).await;
        assert!(snap.health.is_ok(), "{:?}", snap.health);
        assert!(snap.table.unwrap().rows.iter().any(|v| v.name == "vm2"));
        assert!(snap.details.is_empty(), "no focus, no full rows");
        let mut bad = FilesSource::new("no/such/dir".into(), Options::default());
        let snap = bad.fetch(&all()).await;
        assert!(snap.table.is_none());
        assert!(matches!(snap.health, Health::Failed(m) if m.contains("no/such/dir")));
    }

    /// The full row built on demand for one VM is the row the whole report has for it, for
    /// every VM of every fixture (hotplug, hugepages, quotas, sidecars, versions inferred from
    /// pods, OOM kills in kernel logs, Harvester).
    #[test]
    fn a_row_built_alone_is_the_row_of_the_whole_report() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        let mut paths = vec![root.join("seed"), root.join("bundle")];
        for e in std::fs::read_dir(root.join("features")).unwrap() {
            paths.push(e.unwrap().path());
        }
        for path in paths {
            let inputs = crate::session::inputs::from_files(&path, &Options::default()).unwrap();
            let (inv, readings, opts) = (&inputs.inventory, &inputs.readings, &inputs.options);
            let whole = report::build(inv, readings, opts);
            assert!(!whole.vms.is_empty(), "{}", path.display());
            for row in &whole.vms {
                let alone = report::vm_row(inv, readings, opts, &VmKey::of(row))
                    .unwrap_or_else(|| panic!("{}: {} not built", path.display(), row.name));
                assert_eq!(
                    format!("{alone:?}"),
                    format!("{row:?}"),
                    "{}",
                    path.display()
                );
                checked += 1;
            }
            let gone = VmKey::new("no-such-namespace", "no-such-vm");
            assert!(report::vm_row(inv, readings, opts, &gone).is_none());
        }
        assert!(checked >= 20, "only {checked} rows");
    }
}
