//! The virt-launcher pods a reading round reads, by node.

use std::collections::BTreeMap;

use super::probe::ProbeTarget;
use crate::model::hotplug::GuestRunning;
use crate::model::inventory::Inventory;
use crate::model::join::join;
use crate::model::phase::PodPhase;
use crate::model::spec::memory_numbers;

/// One virt-launcher pod to read.
#[derive(Debug, Clone)]
pub struct Target {
    pub probe: ProbeTarget,
    pub namespace: String,
    pub pod: String,
    /// The compute container's id (from the pod status), when known.
    pub compute_id: Option<String>,
}

/// The nodes with running VMs and, for each, the pods to read (UID and guest size).
pub fn targets(inv: &Inventory) -> BTreeMap<String, Vec<Target>> {
    let mut out: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for j in join(inv) {
        let Some(pod) = j.pod else { continue };
        let Some(node) = pod.spec.node_name.clone().filter(|n| !n.is_empty()) else {
            continue;
        };
        if pod.status.phase != Some(PodPhase::Running) {
            continue;
        }
        let mut probe = ProbeTarget::new(pod.metadata.uid.clone());
        if let Some(vmi) = j.vmi.filter(|v| !memory_numbers(&v.spec).hugepages) {
            // qemu's guest RAM: the boot RAM and, with memory hotplug, the virtio-mem device.
            probe.guest_bytes = GuestRunning::of(vmi).mapping_sizes();
        }
        let compute_id = pod
            .status
            .container_statuses
            .iter()
            .find(|c| c.name == "compute")
            .and_then(|c| c.container_id.rsplit("://").next())
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        out.entry(node).or_default().push(Target {
            probe,
            namespace: pod.metadata.namespace.clone(),
            pod: pod.metadata.name.clone(),
            compute_id,
        });
    }
    out
}
