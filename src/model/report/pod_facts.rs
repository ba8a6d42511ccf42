//! What a VM's launcher pod says about its sizing: the compute container, quantities as bytes,
//! and the overhead KubeVirt reports it applied.

use crate::model::join::Joined;
use crate::model::objects::{keys, Container, Pod};
use crate::units::Quantity;

pub fn compute_container(pod: &Pod) -> Option<&Container> {
    pod.spec.containers.iter().find(|c| c.name == "compute")
}

pub fn q_bytes(q: &Option<Quantity>) -> Option<i64> {
    q.as_ref().and_then(|q| q.bytes().ok())
}

pub fn observed_overhead(j: &Joined) -> Option<i64> {
    let from_pod = j
        .pod
        .and_then(|p| p.metadata.annotations.get(keys::MEMORY_OVERHEAD_ANNOTATION))
        .and_then(|v| crate::units::parse_memory(v).ok());
    let from_vmi = j
        .vmi
        .and_then(|v| v.status.memory.as_ref())
        .and_then(|m| q_bytes(&m.memory_overhead));
    from_pod.or(from_vmi)
}

/// The compute container's runtime ID (without the `containerd://` scheme).
pub(super) fn compute_container_id(j: &Joined) -> Option<String> {
    j.pod.and_then(|p| {
        p.status
            .container_statuses
            .iter()
            .find(|c| c.name == "compute")
            .map(|c| {
                c.container_id
                    .rsplit("://")
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
    })
}
