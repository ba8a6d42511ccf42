//! The KubeVirt version when nothing states it (no KubeVirt CR, launcher images by digest): the
//! overhead the running pods show, and the versions whose formula gives it.

use super::pod_facts::{compute_container, observed_overhead, q_bytes};
use crate::model::hotplug::GuestRunning;
use crate::model::inventory::Inventory;
use crate::model::join::{join, Joined};
use crate::model::overhead::{spans_reproducing, AppliedOverhead, ClusterInputs, VersionSpan};
use crate::model::spec::expected_pod;
use crate::model::version::{DetectedVersion, VersionSource};

/// Cap on the pods read to infer the version: a few hundred agree or disagree as well as all.
const MAX_PODS_FOR_VERSION: usize = 200;

/// The overhead each running launcher pod shows, beside its VMI's spec (for inferring the
/// version when nothing states it).
fn applied_overheads(inv: &Inventory) -> Vec<AppliedOverhead<'_>> {
    join(inv)
        .into_iter()
        .filter_map(|j| {
            let vmi = j.vmi?;
            // A hotplug under way: the pod was sized for the guest before it.
            if GuestRunning::of(vmi).in_progress() {
                return None;
            }
            let bytes = observed_overhead(&j).or_else(|| overhead_from_request(&j))?;
            Some(AppliedOverhead {
                spec: &vmi.spec,
                bytes,
            })
        })
        .take(MAX_PODS_FOR_VERSION)
        .collect()
}

/// O as the pod's numbers show it: the compute container's memory request minus the request
/// KubeVirt built it from (the VMI's request, else its limit, else its guest); `None` when
/// KubeVirt left O out of the request (`overcommitGuestOverhead`) or a number is missing.
pub(super) fn overhead_from_request(j: &Joined) -> Option<i64> {
    let vmi = j.vmi?;
    if vmi.spec.domain.resources.overcommit_guest_overhead == Some(true) {
        return None;
    }
    let pod_request = q_bytes(&compute_container(j.pod?)?.resources.requests.memory)?;
    let without_o = expected_pod(&vmi.spec, 0, None, &Default::default()).compute_request?;
    Some(pod_request - without_o)
}

/// The newest version whose formula gives every running pod's overhead, and all the spans that
/// do; `None` when no pod shows its overhead or no single span explains them all.
pub(super) fn infer_version(
    inv: &Inventory,
    inputs: &ClusterInputs,
) -> Option<(DetectedVersion, Vec<VersionSpan>)> {
    let spans = spans_reproducing(&applied_overheads(inv), inputs);
    let newest = spans.last()?;
    let detected = DetectedVersion {
        version: newest.first,
        source: VersionSource::InferredFromPod,
    };
    Some((detected, spans))
}
