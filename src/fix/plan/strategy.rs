//! Which strategy a plan may use on a VM, and what a restart of it would build: instance-type
//! VMs take no guest or annotation change, and a template whose limit is below its guest (after
//! a memory hotplug) must not be restarted as it is.

use crate::fix::target::{Refusal, Target};
use crate::model::recommend::Strategy;
use crate::model::version::Version;
use crate::units::to_quantity_string;

/// `auto`: the annotation on Harvester, the guest elsewhere; on an instance-type VM (whose
/// guest and limit the instance type owns) `memory.reservedOverhead.addedOverhead` from
/// KubeVirt v1.8, and before it no strategy at all.
pub(super) fn auto_strategy(target: &Target, vm_ref: &str) -> Result<Strategy, Refusal> {
    let Some(it) = target.vm.spec.instancetype.as_ref() else {
        return Ok(Strategy::auto(target.context.harvester.is_some()));
    };
    if target.context.version >= Version::new(1, 8, 0) {
        return Ok(Strategy::AddedOverhead);
    }
    Err(Refusal::InstancetypeBeforeV18 {
        vm: vm_ref.to_string(),
        instancetype: it.name.clone(),
        version: target.context.version,
    })
}

/// The guest and annotation strategies change memory.guest (and the request): KubeVirt's
/// admission rejects those on a VM with `spec.instancetype`
/// (pkg/instancetype/apply/memory.go conflicts).
pub(super) fn refuse_on_instancetype(
    target: &Target,
    s: Strategy,
    vm_ref: &str,
) -> Result<(), Refusal> {
    match (target.vm.spec.instancetype.as_ref(), s) {
        (Some(it), Strategy::Guest | Strategy::Annotation) => Err(Refusal::InstancetypeStrategy {
            vm: vm_ref.to_string(),
            instancetype: it.name.clone(),
            strategy: s.as_str(),
        }),
        _ => Ok(()),
    }
}

/// The numbers of the template a restart would start from.
pub(super) struct TemplateSizes {
    pub(super) limit: Option<i64>,
    pub(super) guest: Option<i64>,
    /// Expected pod limit less the guest charged to the memory cgroup.
    pub(super) budget: Option<i64>,
    pub(super) overhead: i64,
}

/// A restart builds the pod from the VM's template: after a memory hotplug the template's
/// guest is the hotplugged one while its limit is still the old one (KubeVirt raises only the
/// VMI's), and a pod whose limit is below its guest is OOM-killed as the guest fills.
pub(super) fn template_below_guest(after: TemplateSizes, warnings: &mut Vec<String>) {
    let (Some(l), Some(g)) = (after.limit, after.guest) else {
        return;
    };
    if l < g && after.budget.is_some_and(|b| b < after.overhead) {
        warnings.push(format!(
            "do not restart as it is: a restart rebuilds the pod from the VM's template, whose memory limit {} is below its guest {} (a memory hotplug raises only the running VMI's limit); the new pod would be OOM-killed as the guest fills: raise limits.memory in the template first",
            to_quantity_string(l),
            to_quantity_string(g)
        ));
    }
}
