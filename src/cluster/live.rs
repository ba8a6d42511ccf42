//! The live cluster as an [`Inventory`] source: kube-rs reflectors keep VMs, VMIs, virt-launcher
//! pods, nodes, KubeVirt CRs, resource quotas and (on Harvester) settings current through
//! watches, so [`LiveSource::snapshot`] never lists again.
//!
//! Node readings (agent pods, probes) are a separate source that runs beside this one and takes
//! the pods of a snapshot as input; this module only reads the API's objects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::Api;
use tokio::task::JoinHandle;

use super::connect::{ConnectError, Connection};
use super::discovery;
use super::feed::{Feed, FeedState, Phase};
use super::forbidden::Denied;
use super::lean::Kind;
use crate::model::inventory::{Inventory, SourceKind};
use crate::model::objects::{
    keys, HarvesterSetting, KubeVirt, Node, Pod, ResourceQuota, VirtualMachine,
    VirtualMachineInstance,
};
use crate::parse::duration;

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

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("KubeVirt is not installed on the cluster at {server} (it serves no kubevirt.io/v1 virtualmachines)")]
    NoKubeVirt { server: String },
    /// Nothing readable: the server's own message.
    #[error("{0}")]
    Forbidden(String),
    #[error("reading {resource} from {server}: {message}")]
    Read {
        resource: &'static str,
        server: String,
        message: String,
    },
    #[error("the Kubernetes API server at {server} did not send the lists of VMs, VMIs and pods within {timeout}")]
    InitialTimeout { server: String, timeout: String },
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
    vms: Vec<Feed<VirtualMachine>>,
    vmis: Vec<Feed<VirtualMachineInstance>>,
    pods: Vec<Feed<Pod>>,
    quotas: Vec<Feed<ResourceQuota>>,
    nodes: Vec<Feed<Node>>,
    kubevirts: Vec<Feed<KubeVirt>>,
    /// `None` when the server has no Harvester settings API.
    settings: Option<Vec<Feed<HarvesterSetting>>>,
    warnings: Vec<String>,
    states: Vec<Arc<FeedState>>,
    monitor: JoinHandle<()>,
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

fn launcher_selector() -> String {
    format!("{}={}", keys::LAUNCHER_LABEL, keys::LAUNCHER_LABEL_VALUE)
}

async fn wait<T: Kind>(feeds: &[Feed<T>]) {
    join_all(feeds.iter().map(|f| f.initial())).await;
}

/// Keep the feeds whose first list worked; record 403s; fail on anything else.
fn settle<T: Kind>(
    feeds: &mut Vec<Feed<T>>,
    denied: &mut Denied,
    forbidden_msgs: &mut Vec<String>,
    server: &str,
) -> Result<(), LiveError> {
    let mut kept = Vec::with_capacity(feeds.len());
    for f in feeds.drain(..) {
        match f.phase() {
            Phase::Ready => kept.push(f),
            Phase::Forbidden(msg) => {
                denied.add(T::PLURAL, f.namespace.as_deref(), &msg);
                forbidden_msgs.push(msg);
            }
            Phase::Failed(message) => {
                return Err(LiveError::Read {
                    resource: T::PLURAL,
                    server: server.to_string(),
                    message,
                })
            }
            Phase::Pending => {
                return Err(LiveError::Read {
                    resource: T::PLURAL,
                    server: server.to_string(),
                    message: "the list did not finish".to_string(),
                })
            }
        }
    }
    *feeds = kept;
    Ok(())
}

/// Whether the only feed of a namespaced group was refused cluster-wide.
fn refused_cluster_wide<T: Kind>(feeds: &[Feed<T>]) -> bool {
    feeds.len() == 1
        && feeds[0].namespace.is_none()
        && matches!(feeds[0].phase(), Phase::Forbidden(_))
}

/// Whether feeds watch (the dashboard) or list once (`list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Watch,
    Once,
}

fn feed<T: Kind>(
    how: Reading,
    client: &kube::Client,
    ns: Option<&str>,
    labels: Option<&str>,
) -> Feed<T> {
    match how {
        Reading::Watch => Feed::start(client.clone(), ns, labels),
        Reading::Once => Feed::list_once(client.clone(), ns, labels),
    }
}

fn per_namespace<T: Kind>(
    how: Reading,
    client: &kube::Client,
    namespaces: &[String],
    labels: Option<&str>,
) -> Vec<Feed<T>> {
    namespaces
        .iter()
        .map(|ns| feed(how, client, Some(ns), labels))
        .collect()
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
        let ns = opts.scope.namespace();
        let launchers = launcher_selector();
        let mut vms: Vec<Feed<VirtualMachine>> = vec![feed(how, &client, ns, None)];
        let mut vmis: Vec<Feed<VirtualMachineInstance>> = vec![feed(how, &client, ns, None)];
        let mut pods: Vec<Feed<Pod>> = vec![feed(how, &client, ns, Some(&launchers))];
        let mut quotas: Vec<Feed<ResourceQuota>> = vec![feed(how, &client, ns, None)];
        let mut nodes: Vec<Feed<Node>> = vec![feed(how, &client, None, None)];
        let mut kubevirts: Vec<Feed<KubeVirt>> = vec![feed(how, &client, None, None)];
        let mut settings: Option<Vec<Feed<HarvesterSetting>>> = apis
            .harvester_settings
            .then(|| vec![feed(how, &client, None, None)]);

        let deadline = opts.initial_timeout.map(|t| (t, Instant::now() + t));
        let initial = async {
            tokio::join!(
                wait(&vms),
                wait(&vmis),
                wait(&pods),
                wait(&quotas),
                wait(&nodes),
                wait(&kubevirts),
                async {
                    if let Some(s) = &settings {
                        wait(s).await
                    }
                },
            )
        };
        within(deadline, &server, initial).await?;

        // Refused cluster-wide: read the namespaces one by one instead (VMs, VMIs, pods and
        // quotas with -A; the KubeVirt CR in any scope, as it lives in its own namespace).
        let mut denied = Denied::default();
        let mut forbidden_msgs = Vec::new();
        let all = opts.scope == Scope::All;
        let fallback = [
            all && refused_cluster_wide(&vms),
            all && refused_cluster_wide(&vmis),
            all && refused_cluster_wide(&pods),
            all && refused_cluster_wide(&quotas),
            refused_cluster_wide(&kubevirts),
        ];
        let kubevirt_refused = match kubevirts.first().map(Feed::phase) {
            Some(Phase::Forbidden(msg)) => Some(msg),
            _ => None,
        };
        if fallback.iter().any(|f| *f) {
            let namespaces = match list_namespaces(conn).await {
                Ok(n) => n,
                Err(msg) => {
                    if fallback[..4].iter().any(|f| *f) {
                        denied.add("namespaces", None, &msg);
                    }
                    let own = opts.scope.namespace().unwrap_or(&conn.default_namespace);
                    vec![own.to_string()]
                }
            };
            if fallback[0] {
                vms = per_namespace(how, &client, &namespaces, None);
            }
            if fallback[1] {
                vmis = per_namespace(how, &client, &namespaces, None);
            }
            if fallback[2] {
                pods = per_namespace(how, &client, &namespaces, Some(&launchers));
            }
            if fallback[3] {
                quotas = per_namespace(how, &client, &namespaces, None);
            }
            if fallback[4] {
                kubevirts = per_namespace(how, &client, &namespaces, None);
            }
            let again = async {
                tokio::join!(
                    wait(&vms),
                    wait(&vmis),
                    wait(&pods),
                    wait(&quotas),
                    wait(&kubevirts)
                )
            };
            within(deadline, &server, again).await?;
        }
        let mut vm_forbidden = Vec::new();
        settle(&mut vms, &mut denied, &mut vm_forbidden, &server)?;
        if vms.is_empty() {
            // Not a single namespace of VMs is readable: say what the server said.
            let msg = vm_forbidden
                .into_iter()
                .next()
                .unwrap_or_else(|| "no VirtualMachines are readable".to_string());
            return Err(LiveError::Forbidden(msg));
        }
        settle(&mut vmis, &mut denied, &mut forbidden_msgs, &server)?;
        settle(&mut pods, &mut denied, &mut forbidden_msgs, &server)?;
        settle(&mut quotas, &mut denied, &mut forbidden_msgs, &server)?;
        settle(&mut nodes, &mut denied, &mut forbidden_msgs, &server)?;
        if fallback[4] {
            // Read namespace by namespace: keep only the watches where the CR is, and do not
            // count namespaces the user may not read (it can read the CR where it is).
            kubevirts.retain(|f| f.phase() == Phase::Ready && !f.is_empty());
        }
        if let (true, Some(msg)) = (kubevirts.is_empty(), &kubevirt_refused) {
            // Version and overhead ratio then come from elsewhere: say why.
            denied.add("kubevirts", None, msg);
        }
        settle(&mut kubevirts, &mut denied, &mut forbidden_msgs, &server)?;
        if let Some(s) = &mut settings {
            settle(s, &mut denied, &mut forbidden_msgs, &server)?;
        }

        let mut states: Vec<Arc<FeedState>> = Vec::new();
        states.extend(vms.iter().map(|f| f.state().clone()));
        states.extend(vmis.iter().map(|f| f.state().clone()));
        states.extend(pods.iter().map(|f| f.state().clone()));
        states.extend(quotas.iter().map(|f| f.state().clone()));
        states.extend(nodes.iter().map(|f| f.state().clone()));
        states.extend(kubevirts.iter().map(|f| f.state().clone()));
        states.extend(settings.iter().flatten().map(|f| f.state().clone()));
        let monitor = tokio::spawn(monitor(conn.clone(), states.clone()));
        Ok(LiveSource {
            server,
            source: opts.source,
            vms,
            vmis,
            pods,
            quotas,
            nodes,
            kubevirts,
            settings,
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
            vms: collect(&self.vms),
            vmis: collect(&self.vmis),
            pods: collect(&self.pods),
            nodes: owned(collect(&self.nodes)),
            kubevirts: owned(collect(&self.kubevirts)),
            harvester_settings: self.settings.as_ref().map(|s| owned(collect(s))),
            resource_quotas: owned(collect(&self.quotas)),
            warnings: self.warnings.clone(),
        }
    }

    /// Stop watching and return the objects without copying them (`list` takes one snapshot).
    pub async fn into_snapshot(mut self) -> Inventory {
        self.monitor.abort();
        let settings = match self.settings.take() {
            Some(s) => Some(owned(take_all(s).await)),
            None => None,
        };
        Inventory {
            source: self.source,
            vms: take_all(std::mem::take(&mut self.vms)).await,
            vmis: take_all(std::mem::take(&mut self.vmis)).await,
            pods: take_all(std::mem::take(&mut self.pods)).await,
            nodes: owned(take_all(std::mem::take(&mut self.nodes)).await),
            kubevirts: owned(take_all(std::mem::take(&mut self.kubevirts)).await),
            harvester_settings: settings,
            resource_quotas: owned(take_all(std::mem::take(&mut self.quotas)).await),
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

/// Namespace names, or the server's message when the user may not list them.
async fn list_namespaces(conn: &Connection) -> Result<Vec<String>, String> {
    let api: Api<Namespace> = Api::all(conn.client.clone());
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect()),
        Err(kube::Error::Api(s)) => Err(s.message),
        Err(e) => Err(super::connect::root_cause(&e)),
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
