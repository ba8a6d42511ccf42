//! One side of a plan: the memory fields of a VirtualMachine document (as stored, or as the
//! plan leaves it) with what KubeVirt would build from them (the overhead, the compute
//! container's limit, the room left beside the guest).

use serde::Serialize;
use serde_json::Value;

use crate::fix::fields::Fields;
use crate::fix::target::{FixContext, Refusal};
use crate::model::instancetype::{self, Lookup};
use crate::model::objects::VirtualMachine;
use crate::model::overhead::overhead;
use crate::model::sidecars;
use crate::model::spec::{defaulted_vmi_spec, expected_pod, memory_numbers};

/// One side (before or after) of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// The fields as stored (`null` = absent).
    pub fields: Fields,
    pub guest_bytes: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub request_bytes: Option<i64>,
    /// limit − guest.
    pub reserved_bytes: Option<i64>,
    /// KubeVirt's overhead O for the VMI this spec starts.
    pub overhead_bytes: i64,
    /// The compute container's memory limit KubeVirt would set.
    pub expected_pod_limit_bytes: Option<i64>,
    /// Room for everything that is not guest RAM: expected pod limit − guest.
    pub overhead_budget_bytes: Option<i64>,
}

/// The numbers of a VM document under the cluster's current KubeVirt.
pub fn side(doc: &Value, ctx: &FixContext, vm_ref: &str) -> Result<Side, Refusal> {
    let vm: VirtualMachine =
        serde_json::from_value(doc.clone()).map_err(|e| Refusal::Malformed {
            vm: vm_ref.to_string(),
            problem: e.to_string(),
        })?;
    let applied = match instancetype::lookup(&vm, &ctx.instancetypes) {
        Lookup::Found(_, it) => Some(instancetype::apply(&vm.spec.template.spec, it)),
        _ => None,
    };
    let t = applied.as_ref().unwrap_or(&vm.spec.template.spec);
    let n = memory_numbers(t);
    if let Some(problem) = n.problems.first() {
        return Err(Refusal::Malformed {
            vm: vm_ref.to_string(),
            problem: problem.clone(),
        });
    }
    let spec = defaulted_vmi_spec(t, ctx.version, ctx.memory_overcommit);
    let o = overhead(&spec, ctx.version, &ctx.inputs).total;
    let beside = sidecars::predict(
        &spec,
        &vm.spec.template.metadata.annotations,
        &ctx.inputs.config,
        ctx.version,
    );
    let pod = expected_pod(&spec, o, ctx.auto_limit.map(|a| a.ratio), &beside);
    let charged_guest = if n.hugepages { 0 } else { n.guest.unwrap_or(0) };
    Ok(Side {
        fields: Fields::read(doc),
        guest_bytes: n.guest,
        limit_bytes: n.limit,
        request_bytes: n.request,
        reserved_bytes: n.limit.zip(n.guest).map(|(l, g)| l - g),
        overhead_bytes: o,
        expected_pod_limit_bytes: pod.compute_limit,
        overhead_budget_bytes: pod.compute_limit.map(|l| l - charged_guest),
    })
}
