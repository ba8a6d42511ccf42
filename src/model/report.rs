//! The report: one row per VM with the memory model, risk, flags and recommendation, shaped
//! like the `list -o json` contract (camelCase keys, bytes as integers, null when unknown).

use std::collections::HashMap;

use super::evidence::VmKey;
use super::inventory::{Inventory, Readings};
use super::join::join;
use super::objects;
use super::overhead::ratio_supported;
use super::version::VersionSource;

/// Build the report from an inventory and live readings (pure).
pub fn build(inv: &Inventory, readings: &Readings, opts: &ReportOptions) -> Report {
    let (head, rows) = parts(inv, readings, opts);
    Report {
        kind: head.kind,
        source: head.source,
        kubevirt: head.kubevirt,
        vms: rows.collect(),
        warnings: head.warnings,
    }
}

/// The full row of one VM, exactly as [`build`] makes it, without building the others': the
/// cluster's facts come from the whole inventory, the join only from this VM's objects.
pub fn vm_row(
    inv: &Inventory,
    readings: &Readings,
    opts: &ReportOptions,
    key: &VmKey,
) -> Option<VmRow> {
    let cluster = cluster_facts(inv, opts);
    let ours = |ns: &str, name: &str| ns == key.namespace && name == key.name;
    let one = Inventory {
        source: inv.source,
        vms: inv
            .vms
            .iter()
            .filter(|v| ours(&v.metadata.namespace, &v.metadata.name))
            .cloned()
            .collect(),
        vmis: inv
            .vmis
            .iter()
            .filter(|v| ours(&v.metadata.namespace, &v.metadata.name))
            .cloned()
            .collect(),
        // A launcher pod belongs to a VMI of its own namespace (join.rs).
        pods: inv
            .pods
            .iter()
            .filter(|p| p.metadata.namespace == key.namespace)
            .cloned()
            .collect(),
        ..Inventory::default()
    };
    let row = join(&one)
        .into_iter()
        .find(|j| ours(j.namespace(), j.name()))
        .map(|j| row(&j, &cluster, readings, opts));
    row
}

/// The report's fields but its rows, and an iterator building the rows one by one (the
/// dashboard keeps a [`TableRow`] of each).
pub fn parts<'a>(
    inv: &'a Inventory,
    readings: &'a Readings,
    opts: &'a ReportOptions,
) -> (ReportHead, impl Iterator<Item = VmRow> + 'a) {
    let cluster = cluster_facts(inv, opts);
    let ratio = cluster
        .inputs
        .ratio
        .clone()
        .filter(|r| !r.trim().is_empty() && ratio_supported(cluster.detected.version));
    let mut warnings = inv.warnings.clone();
    warnings.extend(stale_warnings(&opts.stale_nodes));
    let inferred_versions: Vec<String> = super::overhead::joined(&cluster.inferred)
        .iter()
        .map(|s| s.to_string())
        .collect();
    match cluster.detected.source {
        VersionSource::Assumed => warnings.push(format!(
            "the KubeVirt version is unknown: assumed {} (set --kubevirt-version)",
            cluster.detected.version
        )),
        VersionSource::InferredFromPod => warnings.push(format!(
            "the KubeVirt version is not stated (no KubeVirt CR, no launcher image tag): the \
             running pods' overhead is what KubeVirt {} gives, so {} is used (set \
             --kubevirt-version to be sure)",
            inferred_versions.join(", "),
            cluster.detected.version
        )),
        _ => {}
    }
    warnings.extend(assumed_ratio_warnings(inv, &cluster));
    let head = ReportHead {
        kind: "VmMemoryReport",
        source: inv.source,
        kubevirt: ClusterInfo {
            version: cluster.detected.version,
            version_source: cluster.detected.source.as_str(),
            inferred_versions,
            overhead_ratio: ratio,
            harvester: cluster.harvester.is_some(),
        },
        warnings,
    };
    let rows = join(inv)
        .into_iter()
        .map(move |j| row(&j, &cluster, readings, opts));
    (head, rows)
}

/// For each namespace whose quota makes KubeVirt limit VMs without a memory limit, when its
/// ratio label could not be read and such a VM is there.
fn assumed_ratio_warnings(inv: &Inventory, cluster: &cluster::Cluster) -> Vec<String> {
    let no_limit = |spec: &objects::VmiSpec| spec.domain.resources.limits.memory.is_none();
    let namespaces: std::collections::BTreeSet<&str> = inv
        .vms
        .iter()
        .filter(|v| no_limit(&v.spec.template.spec))
        .map(|v| v.metadata.namespace.as_str())
        .chain(
            inv.vmis
                .iter()
                .filter(|v| no_limit(&v.spec))
                .map(|v| v.metadata.namespace.as_str()),
        )
        .collect();
    let v = cluster.detected.version;
    namespaces
        .into_iter()
        .filter(|ns| {
            let auto = cluster.namespaces.auto_limit(ns, v, &cluster.inputs.config);
            auto.is_some_and(|a| a.assumed)
        })
        .map(|ns| cluster.namespaces.assumed_warning(ns))
        .collect()
}

/// One sentence per reason for the nodes whose live data is stale (nodes sorted), so a
/// refused exec or a hung node is said once, not only in each row's notes.
fn stale_warnings(stale: &HashMap<String, String>) -> Vec<String> {
    let mut by_reason: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (node, reason) in stale {
        by_reason.entry(reason).or_default().push(node);
    }
    let mut out: Vec<(Vec<&str>, &str)> = by_reason
        .into_iter()
        .map(|(reason, mut nodes)| {
            nodes.sort_unstable();
            (nodes, reason)
        })
        .collect();
    out.sort();
    out.into_iter()
        .map(|(nodes, reason)| match nodes.as_slice() {
            [one] => format!("live data for node {one} is stale: {reason}"),
            many => format!("live data for nodes {} is stale: {reason}", many.join(", ")),
        })
        .collect()
}

mod beside;
pub mod carry;
mod cluster;
mod flag;
mod from_pods;
mod oom_history;
mod pod_facts;
mod risk;
mod row;
mod row_evidence;
mod row_features;
mod row_kills;
mod row_live;
mod status_kills;
mod streamed;
mod table;
mod types;
use cluster::cluster_facts;
pub use cluster::SizingFacts;
pub use flag::{joined as flags_joined, Flag};
pub use risk::Risk;
use row::row;
pub use streamed::{streamed, ReportHead, StreamedReport};
pub use table::{Table, TableRow};
pub use types::{CgroupJson, ClusterInfo, Report, ReportOptions, VmRow};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_carry;
