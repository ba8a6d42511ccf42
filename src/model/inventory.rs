//! The one plain value between the sources (files, live cluster, simulator) and the model.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::objects::{
    HarvesterSetting, Instancetype, KubeVirt, Namespace, Node, Pod, ResourceQuota, VirtualMachine,
    VirtualMachineInstance,
};
use super::readings::NodeReadings;

/// Where the inventory came from (the `source` field of reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Live,
    Demo,
    Files,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Live => "live",
            SourceKind::Demo => "demo",
            SourceKind::Files => "files",
        }
    }
}

/// Objects read from a cluster or from files. VMs, VMIs and pods, of which there are
/// thousands, are shared (`Arc`): the dashboard's snapshot of the watch caches holds the
/// caches' own objects, not copies.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub source: SourceKind,
    pub vms: Vec<Arc<VirtualMachine>>,
    pub vmis: Vec<Arc<VirtualMachineInstance>>,
    /// virt-launcher pods (others are ignored).
    pub pods: Vec<Arc<Pod>>,
    pub nodes: Vec<Node>,
    pub kubevirts: Vec<KubeVirt>,
    /// `Some` when the Harvester settings API exists (so this is a Harvester cluster).
    pub harvester_settings: Option<Vec<HarvesterSetting>>,
    pub resource_quotas: Vec<ResourceQuota>,
    /// Namespace objects (their labels); `None` when they could not be read (not permitted,
    /// or not among the files).
    pub namespaces: Option<Vec<Namespace>>,
    /// Instance types (namespaced and cluster-wide) that VMs name in `spec.instancetype`.
    pub instancetypes: Vec<Instancetype>,
    /// Things the reader could not see, as sentences (e.g. a namespace it may not list).
    pub warnings: Vec<String>,
}

/// Live readings per node name. Shared (`Arc`): the dashboard's node readers keep each node's
/// last good reading for the next round, and a round's readings are that same value, not a copy.
pub type Readings = BTreeMap<String, Arc<NodeReadings>>;
