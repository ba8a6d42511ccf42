//! Opening a live source, step by step: one feed per resource, the first lists, the groups
//! refused cluster-wide read namespace by namespace instead, and what was refused recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Namespace as K8sNamespace;
use kube::api::ListParams;
use kube::Api;

use super::error::LiveError;
use crate::cluster::connect::Connection;
use crate::cluster::discovery::Apis;
use crate::cluster::feed::{Feed, FeedState, Phase};
use crate::cluster::forbidden::Denied;
use crate::cluster::lean::Kind;
use crate::model::objects::{
    keys, HarvesterSetting, KubeVirt, Namespace, Node, Pod, ResourceQuota, VirtualMachine,
    VirtualMachineClusterInstancetype, VirtualMachineInstance, VirtualMachineInstancetype,
};

/// Whether feeds watch (the dashboard) or list once (`list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    Watch,
    Once,
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
            Phase::Failed { code, message } => {
                return Err(LiveError::Read {
                    resource: T::PLURAL,
                    server: server.to_string(),
                    code,
                    message,
                })
            }
            Phase::Pending => {
                return Err(LiveError::Read {
                    resource: T::PLURAL,
                    server: server.to_string(),
                    code: None,
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

fn feed<T: Kind>(
    how: Reading,
    client: &kube::Client,
    ns: Option<&str>,
    labels: Option<&str>,
) -> Feed<T> {
    match how {
        Reading::Watch => Feed::start(client.clone(), ns, labels, None),
        Reading::Once => Feed::list_once(client.clone(), ns, labels, None),
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

/// The Harvester settings the report reads (model::harvester), and nothing else.
pub const SETTINGS_READ: [&str; 3] = [
    crate::model::objects::keys::SETTING_SERVER_VERSION,
    crate::model::objects::keys::SETTING_RATIO,
    crate::model::objects::keys::SETTING_OVERCOMMIT,
];

/// What every feed of one open shares.
pub(super) struct Start<'a> {
    pub(super) how: Reading,
    pub(super) client: &'a kube::Client,
    /// The time limit for the first lists, and when it ends.
    pub(super) deadline: Option<(Duration, Instant)>,
}

/// The feeds of one source, by resource.
pub(super) struct Feeds {
    pub(super) vms: Vec<Feed<VirtualMachine>>,
    pub(super) vmis: Vec<Feed<VirtualMachineInstance>>,
    pub(super) pods: Vec<Feed<Pod>>,
    pub(super) quotas: Vec<Feed<ResourceQuota>>,
    pub(super) nodes: Vec<Feed<Node>>,
    /// Namespace objects (KubeVirt's auto memory limit ratio label); empty when refused.
    pub(super) namespaces: Vec<Feed<Namespace>>,
    pub(super) kubevirts: Vec<Feed<KubeVirt>>,
    /// `None` when the server has no Harvester settings API.
    pub(super) settings: Option<Vec<Feed<HarvesterSetting>>>,
    /// Instance types (namespaced over the scope, and cluster-wide); empty when the server
    /// has no instance type API. A refused list is a warning: running VMIs carry the values.
    pub(super) instancetypes: Vec<Feed<VirtualMachineInstancetype>>,
    pub(super) cluster_instancetypes: Vec<Feed<VirtualMachineClusterInstancetype>>,
}

/// The groups refused cluster-wide that are read namespace by namespace instead: VMs, VMIs,
/// pods and quotas with -A; the KubeVirt CR in any scope, as it lives in its own namespace.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Fallback {
    vms: bool,
    vmis: bool,
    pods: bool,
    quotas: bool,
    kubevirts: bool,
    instancetypes: bool,
}

impl Fallback {
    pub(super) fn any(&self) -> bool {
        self.scoped() || self.kubevirts
    }

    /// Whether one of the groups read in the scope's namespaces falls back.
    fn scoped(&self) -> bool {
        self.vms || self.vmis || self.pods || self.quotas || self.instancetypes
    }
}

impl Feeds {
    /// One feed per resource over the scope (nodes, KubeVirt CRs and settings cluster-wide).
    pub(super) fn start(s: &Start<'_>, ns: Option<&str>, apis: &Apis) -> Feeds {
        let (how, client) = (s.how, s.client);
        let instancetypes = apis.instancetypes;
        let launchers = launcher_selector();
        Feeds {
            vms: vec![feed(how, client, ns, None)],
            vmis: vec![feed(how, client, ns, None)],
            pods: vec![feed(how, client, ns, Some(&launchers))],
            quotas: vec![feed(how, client, ns, None)],
            nodes: vec![feed(how, client, None, None)],
            namespaces: vec![feed(how, client, None, None)],
            kubevirts: vec![feed(how, client, None, None)],
            // Only the settings the report reads, each by name: the read-only role grants
            // these by `resourceNames` (others, like the backup target, can hold secrets).
            settings: apis.harvester_settings.then(|| {
                SETTINGS_READ
                    .iter()
                    .map(|n| match how {
                        Reading::Watch => Feed::start(client.clone(), None, None, Some(n)),
                        Reading::Once => Feed::list_once(client.clone(), None, None, Some(n)),
                    })
                    .collect()
            }),
            instancetypes: instancetypes
                .then(|| feed(how, client, ns, None))
                .into_iter()
                .collect(),
            cluster_instancetypes: instancetypes
                .then(|| feed(how, client, None, None))
                .into_iter()
                .collect(),
        }
    }

    /// Wait for every feed's first list.
    pub(super) async fn initial(&self) {
        tokio::join!(
            wait(&self.vms),
            wait(&self.vmis),
            wait(&self.pods),
            wait(&self.quotas),
            wait(&self.nodes),
            wait(&self.namespaces),
            wait(&self.kubevirts),
            async {
                if let Some(s) = &self.settings {
                    wait(s).await
                }
            },
            wait(&self.instancetypes),
            wait(&self.cluster_instancetypes),
        );
    }

    /// Wait for the first lists of the groups that may have been replaced per namespace.
    pub(super) async fn again(&self) {
        tokio::join!(
            wait(&self.vms),
            wait(&self.vmis),
            wait(&self.pods),
            wait(&self.quotas),
            wait(&self.kubevirts),
            wait(&self.instancetypes)
        );
    }

    pub(super) fn refused_groups(&self, all: bool) -> Fallback {
        Fallback {
            vms: all && refused_cluster_wide(&self.vms),
            vmis: all && refused_cluster_wide(&self.vmis),
            pods: all && refused_cluster_wide(&self.pods),
            quotas: all && refused_cluster_wide(&self.quotas),
            kubevirts: refused_cluster_wide(&self.kubevirts),
            instancetypes: all && refused_cluster_wide(&self.instancetypes),
        }
    }

    /// Replace the groups of `fallback` by one feed per namespace.
    pub(super) fn per_namespace(
        &mut self,
        s: &Start<'_>,
        fallback: &Fallback,
        namespaces: &[String],
    ) {
        let (how, client) = (s.how, s.client);
        let launchers = launcher_selector();
        if fallback.vms {
            self.vms = per_namespace(how, client, namespaces, None);
        }
        if fallback.vmis {
            self.vmis = per_namespace(how, client, namespaces, None);
        }
        if fallback.pods {
            self.pods = per_namespace(how, client, namespaces, Some(&launchers));
        }
        if fallback.quotas {
            self.quotas = per_namespace(how, client, namespaces, None);
        }
        if fallback.kubevirts {
            self.kubevirts = per_namespace(how, client, namespaces, None);
        }
        if fallback.instancetypes {
            self.instancetypes = per_namespace(how, client, namespaces, None);
        }
    }

    /// Keep the feeds that listed, record the refused ones in `denied`; fail when no VMs are
    /// readable at all or a list failed otherwise.
    pub(super) fn settle(
        &mut self,
        fallback: &Fallback,
        kubevirt_refused: Option<String>,
        denied: &mut Denied,
        server: &str,
    ) -> Result<(), LiveError> {
        let mut forbidden_msgs = Vec::new();
        let mut vm_forbidden = Vec::new();
        settle(&mut self.vms, denied, &mut vm_forbidden, server)?;
        if self.vms.is_empty() {
            // Not a single namespace of VMs is readable: say what the server said.
            let msg = vm_forbidden
                .into_iter()
                .next()
                .unwrap_or_else(|| "no VirtualMachines are readable".to_string());
            return Err(LiveError::Forbidden(msg));
        }
        settle(&mut self.vmis, denied, &mut forbidden_msgs, server)?;
        settle(&mut self.pods, denied, &mut forbidden_msgs, server)?;
        settle(&mut self.quotas, denied, &mut forbidden_msgs, server)?;
        settle(&mut self.nodes, denied, &mut forbidden_msgs, server)?;
        // Namespaces matter only where a quota makes KubeVirt set a limit: the report says
        // so there when they could not be read, so a refusal here is no warning of its own.
        self.namespaces.retain(|f| f.phase() == Phase::Ready);
        if fallback.kubevirts {
            // Read namespace by namespace: keep only the watches where the CR is, and do not
            // count namespaces the user may not read (it can read the CR where it is).
            self.kubevirts
                .retain(|f| f.phase() == Phase::Ready && !f.is_empty());
        }
        if let (true, Some(msg)) = (self.kubevirts.is_empty(), &kubevirt_refused) {
            // Version and overhead ratio then come from elsewhere: say why.
            denied.add("kubevirts", None, msg);
        }
        settle(&mut self.kubevirts, denied, &mut forbidden_msgs, server)?;
        if let Some(s) = &mut self.settings {
            settle(s, denied, &mut forbidden_msgs, server)?;
        }
        settle(&mut self.instancetypes, denied, &mut forbidden_msgs, server)?;
        settle(
            &mut self.cluster_instancetypes,
            denied,
            &mut forbidden_msgs,
            server,
        )?;
        Ok(())
    }

    pub(super) fn states(&self) -> Vec<Arc<FeedState>> {
        let mut states: Vec<Arc<FeedState>> = Vec::new();
        states.extend(self.vms.iter().map(|f| f.state().clone()));
        states.extend(self.vmis.iter().map(|f| f.state().clone()));
        states.extend(self.pods.iter().map(|f| f.state().clone()));
        states.extend(self.quotas.iter().map(|f| f.state().clone()));
        states.extend(self.nodes.iter().map(|f| f.state().clone()));
        states.extend(self.namespaces.iter().map(|f| f.state().clone()));
        states.extend(self.kubevirts.iter().map(|f| f.state().clone()));
        states.extend(self.settings.iter().flatten().map(|f| f.state().clone()));
        states.extend(self.instancetypes.iter().map(|f| f.state().clone()));
        states.extend(self.cluster_instancetypes.iter().map(|f| f.state().clone()));
        states
    }
}

/// The namespaces to read one by one: all of them, or (when the user may not list them) only
/// the scope's namespace (`None` for all) or the context's; a refused list is recorded in `denied` when a
/// group of the scope needs it.
pub(super) async fn readable_namespaces(
    conn: &Connection,
    namespace: Option<&str>,
    fallback: &Fallback,
    denied: &mut Denied,
) -> Vec<String> {
    match list_namespaces(conn).await {
        Ok(n) => n,
        Err(msg) => {
            if fallback.scoped() {
                denied.add("namespaces", None, &msg);
            }
            let own = namespace.unwrap_or(&conn.default_namespace);
            vec![own.to_string()]
        }
    }
}

/// Namespace names, or the server's message when the user may not list them.
async fn list_namespaces(conn: &Connection) -> Result<Vec<String>, String> {
    let api: Api<K8sNamespace> = Api::all(conn.client.clone());
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect()),
        Err(kube::Error::Api(s)) => Err(s.message),
        Err(e) => Err(crate::cluster::connect::root_cause(&e)),
    }
}
