//! A running VM's last reading, carried into a refresh that could not read it (issue 21).
//!
//! A VM that restarts or moves while a refresh runs can end the refresh without live data even
//! though its node answered: the pod the objects name is gone from the node, or the objects
//! still say `Running` while the old pod is gone and the new one is not listed yet (the pod and
//! VMI watches do not move in step). Such a VM keeps the reading an earlier refresh had of it,
//! marked stale with its time, instead of a blank row; a refresh that reads its pod again drops
//! the carried reading.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::evidence::VmKey;
use crate::model::inventory::{Inventory, Readings};
use crate::model::join::{join, Joined};
use crate::model::phase::VmPhase;
use crate::model::readings::NodeReadings;

use super::pod_facts::compute_container_id;

/// How long a reading may be carried: after this a VM that still cannot be read shows no live
/// data (its objects say running, but nothing on its node has shown it for this long).
pub const CARRY_AT_MOST_SECONDS: i64 = 300;

/// The reading an earlier refresh had of a VM's pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The node's reading that holds the pod (shared with the refresh that took it).
    pub node: Arc<NodeReadings>,
    pub pod_uid: String,
    /// The compute container's ID in that pod (to tell qemu's container from the others).
    pub compute_id: Option<String>,
}

impl Carried {
    pub fn taken_at(&self) -> i64 {
        self.node.taken_at
    }
}

/// What a refresh reported on, for the next one to carry readings from.
pub struct Earlier<'a> {
    pub inventory: &'a Inventory,
    pub readings: &'a Readings,
    pub carried: &'a HashMap<VmKey, Carried>,
}

fn running(j: &Joined) -> bool {
    j.vmi.and_then(|v| v.status.phase.as_ref()) == Some(&VmPhase::Running)
}

fn node_of<'a>(j: &Joined<'a>) -> Option<&'a str> {
    j.pod
        .and_then(|p| p.spec.node_name.as_deref())
        .or_else(|| j.vmi.and_then(|v| v.status.node_name.as_deref()))
}

/// The VMs of `inv` whose pod `readings` does not hold (or that have no pod listed), but not
/// those on a stale node (they show the node's last reading). A VM restarting passes through
/// states without a pod, even without a VMI for a moment: what is carried for it then waits
/// for it to run again.
pub fn wanted(
    inv: &Inventory,
    readings: &Readings,
    stale_nodes: &HashMap<String, String>,
) -> Vec<VmKey> {
    join(inv)
        .iter()
        .filter(|j| {
            let node = node_of(j);
            let read = j.pod.is_some_and(|p| {
                node.and_then(|n| readings.get(n))
                    .is_some_and(|r| r.pod(&p.metadata.uid).is_some())
            });
            !read && !node.is_some_and(|n| stale_nodes.contains_key(n))
        })
        .map(|j| VmKey::new(j.namespace(), j.name()))
        .collect()
}

/// The last readings of `wanted`: of the pod `earlier` listed for the VM, this refresh's reading
/// (the pod may be read once more as it ends) or else `earlier`'s; else what `earlier` carried
/// itself. None older than [`CARRY_AT_MOST_SECONDS`] before `now`.
pub fn carry(
    wanted: &[VmKey],
    earlier: &Earlier,
    readings_now: &Readings,
    now: i64,
) -> HashMap<VmKey, Carried> {
    if wanted.is_empty() {
        return HashMap::new();
    }
    let joined = join(earlier.inventory);
    let mut out = HashMap::new();
    for key in wanted {
        // `join` gives the VMs in namespace and name order.
        let own = joined
            .binary_search_by(|j| (j.namespace(), j.name()).cmp(&(&key.namespace, &key.name)))
            .ok()
            .and_then(|i| {
                let j = &joined[i];
                read_in(j, readings_now).or_else(|| read_in(j, earlier.readings))
            });
        let found = own.or_else(|| earlier.carried.get(key).cloned());
        if let Some(c) = found.filter(|c| now - c.taken_at() <= CARRY_AT_MOST_SECONDS) {
            out.insert(key.clone(), c);
        }
    }
    out
}

fn read_in(j: &Joined, readings: &Readings) -> Option<Carried> {
    let pod = j.pod?;
    let node = readings.get(pod.spec.node_name.as_deref()?)?;
    node.pod(&pod.metadata.uid)?;
    Some(Carried {
        node: node.clone(),
        pod_uid: pod.metadata.uid.clone(),
        compute_id: compute_container_id(j).filter(|s| !s.is_empty()),
    })
}

/// The reading carried for the VM of `j`, if it is running.
pub fn carried_for<'a>(carried: &'a HashMap<VmKey, Carried>, j: &Joined) -> Option<&'a Carried> {
    if carried.is_empty() || !running(j) {
        return None;
    }
    carried.get(&VmKey::new(j.namespace(), j.name()))
}

/// What the row says of its carried figures.
pub fn note(c: &Carried) -> String {
    format!(
        "this refresh could not read the VM (it restarted or moved meanwhile): its live figures \
         are the reading of its pod {} on node {} at Unix time {}, marked stale",
        c.pod_uid,
        c.node.node,
        c.taken_at()
    )
}
