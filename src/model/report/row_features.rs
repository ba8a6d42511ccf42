//! What a row says of the KubeVirt features that change a VM's memory picture: instance types
//! (the template has no memory values) and memory hotplug (qemu has less than the VMI asks for
//! until the hotplug is done).

use super::cluster::Cluster;
use super::flag::Flag;
use crate::model::hotplug::GuestRunning;
use crate::model::instancetype::{self, Lookup};
use crate::model::join::Joined;
use crate::model::objects::VmiSpec;
use crate::model::recommend::Strategy;
use crate::model::version::Version;

/// What the row says besides its figures, gathered step by step.
#[derive(Default)]
pub(super) struct Said {
    pub(super) flags: Vec<Flag>,
    pub(super) notes: Vec<String>,
}

/// The VM's template as KubeVirt turns it into a VMI spec: with its instance type's memory
/// applied (flagged `instancetype`; a missing one is a note, the VMI's values still count).
pub(super) fn template_spec<'a>(
    j: &Joined<'a>,
    cluster: &Cluster,
    said: &mut Said,
) -> Option<std::borrow::Cow<'a, VmiSpec>> {
    let vm = j.vm?;
    let found = instancetype::lookup(vm, &cluster.instancetypes);
    if found.named() {
        said.flags.push(Flag::Instancetype);
    }
    if let Some(note) = found.missing_note() {
        said.notes.push(note);
    }
    Some(match found {
        Lookup::Found(_, it) => {
            std::borrow::Cow::Owned(instancetype::apply(&vm.spec.template.spec, it))
        }
        _ => std::borrow::Cow::Borrowed(&vm.spec.template.spec),
    })
}

/// `hotplug-in-progress` while qemu has less (or more) than the VMI asks for: the pod is
/// judged with what its qemu has, against its own limit.
pub(super) fn flags(j: &Joined, running: &GuestRunning, said: &mut Said) {
    if j.vmi.is_none() || !running.in_progress() {
        return;
    }
    said.flags.push(Flag::HotplugInProgress);
    let (Some(asked), Some(has)) = (running.configured, running.current) else {
        return;
    };
    let migrating = if j.migrating() {
        ": the VMI migrates to a pod sized for the new guest, and the current pod is judged with what its qemu has"
    } else {
        ": the pod is judged with what its qemu has"
    };
    said.notes.push(format!(
        "memory hotplug in progress: the VMI asks for {asked} bytes of guest memory, the running qemu has {has}{migrating}"
    ));
}

/// How a reservation would be made: KubeVirt's `addedOverhead` for an instance-type VM on v1.8+
/// (its guest and limit belong to the instance type), else the cluster's usual way.
pub(super) fn strategy(j: &Joined, version: Version, cluster: &Cluster) -> Strategy {
    let instancetype = j.vm.is_some_and(|v| v.spec.instancetype.is_some());
    if instancetype && version >= Version::new(1, 8, 0) {
        Strategy::AddedOverhead
    } else {
        Strategy::auto(cluster.harvester.is_some())
    }
}
