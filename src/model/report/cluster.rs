//! What a report knows of the cluster as a whole: the version in use (stated, or inferred
//! from the running pods), Harvester's settings and the overhead formula's cluster inputs.

use super::from_pods;
use super::types::ReportOptions;
use crate::model::auto_limits::NamespaceLimits;
use crate::model::harvester::HarvesterContext;
use crate::model::inventory::Inventory;
use crate::model::objects::Instancetype;
use crate::model::overhead::{ClusterInputs, VersionSpan};
use crate::model::version::{detect, DetectedVersion, VersionSource};

/// The cluster facts that size a VMI's pod: Harvester context, the overhead formula's cluster
/// inputs, and KubeVirt's memory overcommit. Shared by the report and the fix planner.
#[derive(Debug, Clone)]
pub struct SizingFacts {
    /// `Some` on Harvester.
    pub harvester: Option<HarvesterContext>,
    pub inputs: ClusterInputs,
    /// KubeVirt `developerConfiguration.memoryOvercommit` (percent, default 100).
    pub memory_overcommit: i64,
}

impl SizingFacts {
    pub fn from_inventory(inv: &Inventory) -> SizingFacts {
        let config = inv
            .kubevirts
            .first()
            .map(|c| c.spec.configuration.clone())
            .unwrap_or_default();
        let cluster_arch = inv
            .nodes
            .iter()
            .find_map(|n| n.status.node_info.as_ref().map(|i| i.architecture.clone()))
            .filter(|a| !a.is_empty());
        let memory_overcommit = config
            .developer_configuration
            .as_ref()
            .and_then(|d| d.memory_overcommit)
            .filter(|&m| m > 0)
            .unwrap_or(100);
        SizingFacts {
            harvester: inv
                .harvester_settings
                .as_deref()
                .map(HarvesterContext::from_settings),
            inputs: ClusterInputs {
                ratio: config.additional_guest_memory_overhead_ratio.clone(),
                cluster_arch,
                config,
            },
            memory_overcommit,
        }
    }
}

/// Cluster-wide facts derived once per report.
pub struct Cluster {
    pub detected: DetectedVersion,
    /// The version spans that reproduce the pods' overhead (when the version was inferred).
    pub inferred: Vec<VersionSpan>,
    pub harvester: Option<HarvesterContext>,
    pub inputs: ClusterInputs,
    pub memory_overcommit: i64,
    /// Namespace quotas on limits.memory and their auto-limit ratio labels.
    pub namespaces: NamespaceLimits,
    /// The instance types VMs may name (few per cluster).
    pub instancetypes: Vec<Instancetype>,
}

pub fn cluster_facts(inv: &Inventory, opts: &ReportOptions) -> Cluster {
    let cr = inv.kubevirts.first();
    let images = inv.pods.iter().flat_map(|p| {
        p.spec
            .containers
            .iter()
            .filter(|c| c.name == "compute")
            .map(|c| c.image.as_str())
    });
    let mut detected = detect(
        cr.and_then(|c| c.status.observed_kube_virt_version.as_deref()),
        images,
        opts.version_flag,
    );
    let SizingFacts {
        harvester,
        inputs,
        memory_overcommit,
    } = SizingFacts::from_inventory(inv);
    let mut inferred = Vec::new();
    if detected.source == VersionSource::Assumed {
        if let Some((version, spans)) = from_pods::infer_version(inv, &inputs) {
            detected = version;
            inferred = spans;
        }
    }
    Cluster {
        detected,
        inferred,
        harvester,
        inputs,
        memory_overcommit,
        namespaces: NamespaceLimits::from_inventory(inv),
        instancetypes: inv.instancetypes.clone(),
    }
}
