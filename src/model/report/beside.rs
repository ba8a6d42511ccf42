//! A row's containers beside `compute` (the pod's own, else KubeVirt's prediction) and its
//! hugepage-backed guest RAM.

use super::cluster::Cluster;
use crate::model::join::Joined;
use crate::model::objects::{StringMap, VmiSpec};
use crate::model::sidecars::{self, Sidecars};
use crate::model::spec::MemorySpecNumbers;
use crate::model::version::Version;

/// The running pod's containers beside compute, else those KubeVirt `version` would add for
/// the VMI (or, for a stopped VM, its template).
pub(super) fn sidecars_of(
    j: &Joined,
    running_spec: &VmiSpec,
    cluster: &Cluster,
    version: Version,
) -> Sidecars {
    let config = &cluster.inputs.config;
    if let Some(pod) = j.pod {
        return sidecars::of_pod(pod, config);
    }
    let empty = StringMap::default();
    let annotations = j
        .vmi
        .map(|v| &v.metadata.annotations)
        .or(j.vm.map(|v| &v.spec.template.metadata.annotations))
        .unwrap_or(&empty);
    sidecars::predict(running_spec, annotations, config, version)
}

/// A container beside compute without a memory limit leaves the pod without a pod-level
/// limit: say which.
pub(super) fn sidecar_note(beside: &Sidecars) -> Option<String> {
    let unlimited = beside.unlimited();
    if unlimited.is_empty() {
        return None;
    }
    let verb = if beside.from_pod { "has" } else { "would have" };
    Some(format!(
        "{} beside compute {verb} no memory limit, so the pod has no pod-level memory limit (KubeVirt gives hook and network binding sidecars a limit only with dedicated CPUs or Guaranteed QoS); compute keeps its own limit",
        unlimited.join(", ")
    ))
}

/// Guest RAM from hugepages (KubeVirt `WithHugePages`: the VMI's memory request, or the guest
/// when that is smaller); `None` for a guest not backed by hugepages.
pub(super) fn hugepages_bytes(n: &MemorySpecNumbers) -> Option<i64> {
    if !n.hugepages {
        return None;
    }
    match (n.request, n.guest) {
        (Some(r), Some(g)) => Some(r.min(g)),
        (r, g) => r.or(g),
    }
}
