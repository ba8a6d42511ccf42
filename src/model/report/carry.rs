//! A running VM's last reading, carried into a refresh that could not read it (issue 21).
//!
//! A VM that moves or loses its pod while a refresh runs can end the refresh without live data
//! even though its node answered: the pod the objects name is gone from the node, or the VMI
//! still says `Running` while its pod is gone from the objects (a VMI says so until virt-handler
//! reports the domain gone, and the pod and VMI watches do not move in step). Such a VM keeps
//! the reading an earlier refresh had of the same VMI, marked stale with its time, instead of a
//! blank row; a refresh that reads its pod again drops the carried reading. A new VMI (the VM
//! restarted, or was deleted and made again under its name) is a new boot: nothing is carried
//! to it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::evidence::VmKey;
use crate::model::inventory::{Inventory, Readings};
use crate::model::join::{join, Joined};
use crate::model::phase::VmPhase;
use crate::model::readings::NodeReadings;

use super::pod_facts::compute_container_id;

/// How long a reading may be carried: after this a VM that still cannot be read shows no live
/// data (its VMI says running, but nothing on its node has shown it for this long).
pub const CARRY_AT_MOST_SECONDS: i64 = 300;

/// The reading an earlier refresh had of a VM's pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The VMI the pod ran (a carried reading is shown only while that VMI runs).
    pub vmi_uid: String,
    /// The node's reading, holding only this pod.
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

/// A running VMI this refresh has no reading of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub key: VmKey,
    pub vmi_uid: String,
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

/// The VMs of `inv` whose VMI runs on a node `readings` has a fresh reading of (not a stale
/// one: those VMs show the node's last reading), whose pod that reading does not hold or that
/// have no pod listed.
pub fn wanted(
    inv: &Inventory,
    readings: &Readings,
    stale_nodes: &HashMap<String, String>,
) -> Vec<Wanted> {
    join(inv)
        .iter()
        .filter(|j| running(j))
        .filter(|j| {
            let Some(node) = node_of(j) else { return false };
            let Some(r) = readings.get(node) else {
                return false;
            };
            let read = j.pod.is_some_and(|p| r.pod(&p.metadata.uid).is_some());
            !read && !stale_nodes.contains_key(node)
        })
        .filter_map(|j| {
            Some(Wanted {
                key: VmKey::new(j.namespace(), j.name()),
                vmi_uid: j.vmi?.metadata.uid.clone(),
            })
        })
        .collect()
}

/// The last readings of `wanted` of the same VMI: of the pod `earlier` listed for the VM, this
/// refresh's reading (the pod may be read once more as it ends) or else `earlier`'s; else what
/// `earlier` carried itself. None older than [`CARRY_AT_MOST_SECONDS`] before `now`.
pub fn carry(
    wanted: &[Wanted],
    earlier: &Earlier,
    readings_now: &Readings,
    now: i64,
) -> HashMap<VmKey, Carried> {
    if wanted.is_empty() {
        return HashMap::new();
    }
    let joined = join(earlier.inventory);
    let mut out = HashMap::new();
    for w in wanted {
        let key = &w.key;
        // `join` gives the VMs in namespace and name order.
        let own = joined
            .binary_search_by(|j| (j.namespace(), j.name()).cmp(&(&key.namespace, &key.name)))
            .ok()
            .and_then(|i| {
                let j = &joined[i];
                read_in(j, readings_now).or_else(|| read_in(j, earlier.readings))
            });
        let found = own
            .filter(|c| c.vmi_uid == w.vmi_uid)
            .or_else(|| earlier.carried.get(key).cloned())
            .filter(|c| c.vmi_uid == w.vmi_uid);
        if let Some(c) = found.filter(|c| now - c.taken_at() <= CARRY_AT_MOST_SECONDS) {
            out.insert(key.clone(), c);
        }
    }
    out
}

fn read_in(j: &Joined, readings: &Readings) -> Option<Carried> {
    let (pod, vmi) = (j.pod?, j.vmi?);
    let node = readings.get(pod.spec.node_name.as_deref()?)?;
    let reading = node.pod(&pod.metadata.uid)?;
    // Only this pod's reading is kept, not the whole node's (the node's other readings move on).
    let alone = NodeReadings {
        node: node.node.clone(),
        cgroup_version: node.cgroup_version,
        kernel: node.kernel.clone(),
        source: node.source,
        taken_at: node.taken_at,
        pods: vec![reading.clone()],
        missing_pods: Vec::new(),
    };
    Some(Carried {
        vmi_uid: vmi.metadata.uid.clone(),
        node: Arc::new(alone),
        pod_uid: pod.metadata.uid.clone(),
        compute_id: compute_container_id(j).filter(|s| !s.is_empty()),
    })
}

/// The reading carried for the VM of `j`: only while the VMI it was taken from runs.
pub fn carried_for<'a>(carried: &'a HashMap<VmKey, Carried>, j: &Joined) -> Option<&'a Carried> {
    if carried.is_empty() || !running(j) {
        return None;
    }
    let vmi_uid = &j.vmi?.metadata.uid;
    carried
        .get(&VmKey::new(j.namespace(), j.name()))
        .filter(|c| c.vmi_uid == *vmi_uid)
}

/// What the row says of its carried figures.
pub fn note(c: &Carried) -> String {
    format!(
        "this refresh could not read the VM (its pod ended or moved after it was listed): its \
         live figures are the reading of its pod {} on node {} at Unix time {}, marked stale",
        c.pod_uid,
        c.node.node,
        c.taken_at()
    )
}
