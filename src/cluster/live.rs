//! The live cluster as an [`Inventory`] source: kube-rs reflectors keep VMs, VMIs, virt-launcher
//! pods, nodes, KubeVirt CRs, resource quotas and (on Harvester) settings current through
//! watches, so [`LiveSource::snapshot`] never lists again.
//!
//! Node readings (agent pods, probes) are a separate source that runs beside this one and takes
//! the pods of a snapshot as input; this module only reads the API's objects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::connect::Connection;
use super::discovery;
use super::feed::{Feed, FeedState, Phase};
use super::forbidden::Denied;
use super::lean::Kind;
use crate::model::inventory::{Inventory, SourceKind};
use crate::model::objects::{
    Instancetype, VirtualMachineClusterInstancetype, VirtualMachineInstancetype,
};
use crate::parse::duration;

mod error;
mod open;
pub use error::LiveError;
pub use open::SETTINGS_READ;
use open::{readable_namespaces, Feeds, Reading, Start};

/// Which namespaces to read: `-A`, `-n X`, else the context's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    pub fn from_flags(all: bool, namespace: Option<&str>, context_namespace: &str) -> Scope {
        match (all, namespace) {
            (true, _) => Scope::All,
            (false, Some(ns)) => Scope::Namespace(ns.to_string()),
            (false, None) => Scope::Namespace(context_namespace.to_string()),
        }
    }

    fn namespace(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub scope: Scope,
    /// `Live`, or `Demo` for the built-in simulated cluster.
    pub source: SourceKind,
    /// How long to wait for the first complete lists (`None`: as long as it takes).
    pub initial_timeout: Option<Duration>,
}

/// Whether the watches are current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Watching fails (e.g. the server is gone): snapshots show the objects as of `since`.
    Stale {
        error: String,
        since: Instant,
    },
}

/// Counters over all watches (for tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchStats {
    /// Initial lists plus relists.
    pub lists: u64,
    /// Changes received through watches.
    pub events: u64,
    pub feeds: usize,
}

/// The live cluster, kept current by watches. Dropping it stops them.
pub struct LiveSource {
    server: String,
    source: SourceKind,
    feeds: Feeds,
    warnings: Vec<String>,
    states: Vec<Arc<FeedState>>,
    monitor: JoinHandle<()>,
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

fn sorted<T: Kind>(mut out: Vec<Arc<T>>) -> Vec<Arc<T>> {
    out.sort_by(|a, b| {
        let (ma, mb) = (a.lean_meta(), b.lean_meta());
        (&ma.namespace, &ma.name).cmp(&(&mb.namespace, &mb.name))
    });
    out
}

fn collect<T: Kind>(feeds: &[Feed<T>]) -> Vec<Arc<T>> {
    sorted(feeds.iter().flat_map(Feed::objects).collect())
}

/// Copies of the few objects of which there are a handful per cluster (nodes, KubeVirt CRs,
/// quotas, settings), which the inventory holds by value.
fn owned<T: Kind>(shared: Vec<Arc<T>>) -> Vec<T> {
    shared.into_iter().map(Arc::unwrap_or_clone).collect()
}

/// Both kinds of instance type, as the inventory keeps them.
fn instancetypes(
    namespaced: Vec<Arc<VirtualMachineInstancetype>>,
    cluster: Vec<Arc<VirtualMachineClusterInstancetype>>,
) -> Vec<Instancetype> {
    let namespaced = owned(namespaced).into_iter().map(Instancetype::from);
    namespaced
        .chain(owned(cluster).into_iter().map(Instancetype::from))
        .collect()
}

async fn take_all<T: Kind>(feeds: Vec<Feed<T>>) -> Vec<Arc<T>> {
    let mut out = Vec::new();
    for f in feeds {
        out.extend(f.into_objects().await);
    }
    sorted(out)
}

impl LiveSource {
    /// Connect, discover, start the watches and wait until their first lists are in.
    pub async fn start(conn: &Connection, opts: LiveOptions) -> Result<LiveSource, LiveError> {
        LiveSource::open(conn, opts, Reading::Watch).await
    }

    /// Like [`start`](Self::start), but list each resource once, page by page, and watch
    /// nothing: for one snapshot ([`into_snapshot`](Self::into_snapshot)), as `list` takes.
    pub async fn list_once(conn: &Connection, opts: LiveOptions) -> Result<LiveSource, LiveError> {
        LiveSource::open(conn, opts, Reading::Once).await
    }

    async fn open(
        conn: &Connection,
        opts: LiveOptions,
        how: Reading,
    ) -> Result<LiveSource, LiveError> {
        let server = conn.server.clone();
        conn.check_reachable().await?;
        let apis = discovery::probe(conn).await?;
        if !apis.kubevirt {
            return Err(LiveError::NoKubeVirt { server });
        }
        let client = conn.watch_client()?;
        let start = Start {
            how,
            client: &client,
            deadline: opts.initial_timeout.map(|t| (t, Instant::now() + t)),
        };
        let mut feeds = Feeds::start(&start, opts.scope.namespace(), &apis);
        within(start.deadline, &server, feeds.initial()).await?;
        let mut denied = Denied::default();
        let fallback = feeds.refused_groups(opts.scope == Scope::All);
        let kubevirt_refused = match feeds.kubevirts.first().map(Feed::phase) {
            Some(Phase::Forbidden(msg)) => Some(msg),
            _ => None,
        };
        if fallback.any() {
            let namespaces =
                readable_namespaces(conn, opts.scope.namespace(), &fallback, &mut denied).await;
            feeds.per_namespace(&start, &fallback, &namespaces);
            within(start.deadline, &server, feeds.again()).await?;
        }
        feeds.settle(&fallback, kubevirt_refused, &mut denied, &server)?;
        let states = feeds.states();
        let monitor = tokio::spawn(monitor(conn.clone(), states.clone()));
        Ok(LiveSource {
            server,
            source: opts.source,
            feeds,
            warnings: denied.sentence().into_iter().collect(),
            states,
            monitor,
        })
    }

    /// The objects as of now, from the watch caches (no request to the server). VMs, VMIs and
    /// pods are shared with the caches, not copied.
    pub fn snapshot(&self) -> Inventory {
        Inventory {
            source: self.source,
            vms: collect(&self.feeds.vms),
            vmis: collect(&self.feeds.vmis),
            pods: collect(&self.feeds.pods),
            nodes: owned(collect(&self.feeds.nodes)),
            kubevirts: owned(collect(&self.feeds.kubevirts)),
            harvester_settings: self.feeds.settings.as_ref().map(|s| owned(collect(s))),
            resource_quotas: owned(collect(&self.feeds.quotas)),
            namespaces: (!self.feeds.namespaces.is_empty())
                .then(|| owned(collect(&self.feeds.namespaces))),
            instancetypes: instancetypes(
                collect(&self.feeds.instancetypes),
                collect(&self.feeds.cluster_instancetypes),
            ),
            warnings: self.warnings.clone(),
        }
    }

    /// Stop watching and return the objects without copying them (`list` takes one snapshot).
    pub async fn into_snapshot(mut self) -> Inventory {
        self.monitor.abort();
        let settings = match self.feeds.settings.take() {
            Some(s) => Some(owned(take_all(s).await)),
            None => None,
        };
        Inventory {
            source: self.source,
            vms: take_all(std::mem::take(&mut self.feeds.vms)).await,
            vmis: take_all(std::mem::take(&mut self.feeds.vmis)).await,
            pods: take_all(std::mem::take(&mut self.feeds.pods)).await,
            nodes: owned(take_all(std::mem::take(&mut self.feeds.nodes)).await),
            kubevirts: owned(take_all(std::mem::take(&mut self.feeds.kubevirts)).await),
            harvester_settings: settings,
            resource_quotas: owned(take_all(std::mem::take(&mut self.feeds.quotas)).await),
            namespaces: match std::mem::take(&mut self.feeds.namespaces) {
                feeds if feeds.is_empty() => None,
                feeds => Some(owned(take_all(feeds).await)),
            },
            instancetypes: instancetypes(
                take_all(std::mem::take(&mut self.feeds.instancetypes)).await,
                take_all(std::mem::take(&mut self.feeds.cluster_instancetypes)).await,
            ),
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    /// Stale while any watch fails; the first error names the server.
    pub fn health(&self) -> Health {
        let worst = self
            .states
            .iter()
            .filter_map(|s| s.error())
            .min_by_key(|(_, since)| *since);
        match worst {
            None => Health::Ok,
            Some((error, since)) => Health::Stale {
                error: format!("watching {} fails: {error}", self.server),
                since,
            },
        }
    }

    pub fn stats(&self) -> WatchStats {
        WatchStats {
            lists: self.states.iter().map(|s| s.lists()).sum(),
            events: self.states.iter().map(|s| s.events()).sum(),
            feeds: self.states.len(),
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }
}

async fn within<F: std::future::Future>(
    deadline: Option<(Duration, Instant)>,
    server: &str,
    fut: F,
) -> Result<F::Output, LiveError> {
    match deadline {
        None => Ok(fut.await),
        Some((total, at)) => {
            tokio::time::timeout_at(at.into(), fut)
                .await
                .map_err(|_| LiveError::InitialTimeout {
                    server: server.to_string(),
                    timeout: duration::format(total),
                })
        }
    }
}

/// While a watch fails, ask the server every second whether it is back; when it answers, clear
/// the errors (the watchers resume on their own, quietly, so they cannot say so themselves).
async fn monitor(conn: Connection, states: Vec<Arc<FeedState>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if states.iter().all(|s| s.error().is_none()) {
            continue;
        }
        let probe = tokio::time::timeout(Duration::from_secs(2), conn.client.apiserver_version());
        if let Ok(Ok(_)) = probe.await {
            for s in &states {
                s.clear_error();
            }
        }
    }
}
