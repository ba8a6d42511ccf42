//! The planner: a VM and the user's choice → exactly what will change, the JSON merge patch of
//! the VirtualMachine, and the warnings. Pure (no I/O): the CLI and the dashboard share it.

use serde::Serialize;
use serde_json::{json, Value};

use super::fields::{self, Field, Parent, UndoRecord};
use super::merge;
use super::target::{Refusal, Target};
use crate::model::evidence::Evidence;
use crate::model::harvester;
use crate::model::objects::keys;
use crate::model::overhead::{dedicated_cpu, MI};
use crate::model::phase::VmPhase;
use crate::model::recommend::Strategy;
use crate::model::version::Version;
use crate::units::to_quantity_string;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reserve this many bytes beyond KubeVirt's overhead (`None`: the recommendation).
    Reserve(Option<i64>),
    /// Drop `limits.memory`: no cgroup limit, so no cgroup OOM kill (and no protection for the node).
    RemoveLimit,
    /// Put back the values recorded by the first fix.
    Undo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub action: Action,
    /// How to reserve; `None` is `auto`: the annotation on Harvester, the guest elsewhere
    /// (`RemoveLimit` is an action, not a way to reserve, and also means `auto` here).
    pub strategy: Option<Strategy>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The resourceVersion the plan was made from; the patch carries it.
    pub resource_version: String,
    /// `reserve`, `remove-limit` or `undo`.
    pub action: &'static str,
    pub strategy: Option<Strategy>,
    pub reserve_bytes: Option<i64>,
    /// Why this reservation (the recommendation's reason, or "as asked").
    pub reason: String,
    /// The evidence the recommendation was decided from (the same items `list` shows).
    pub evidence: Vec<Evidence>,
    pub before: Side,
    pub after: Side,
    /// The pod's memory limit now (from the running pod), for comparison.
    pub current_pod_limit_bytes: Option<i64>,
    /// JSON merge patch of the VirtualMachine; `null` when there is nothing to do.
    pub patch: Option<Value>,
    pub restart_needed: bool,
    pub warnings: Vec<String>,
    /// The VM as it will be stored (before the server's own defaulting/webhooks).
    #[serde(skip)]
    pub desired: Value,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.patch.is_some()
    }
    pub fn vm_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Plan a change of `target` for `choice`.
pub fn plan(target: &Target, choice: &Choice) -> Result<Plan, Refusal> {
    let vm_ref = format!("{}/{}", target.row.namespace, target.row.name);
    let ctx = &target.context;
    let raw = &target.raw;
    let before = side(raw, ctx, &vm_ref)?;
    let stored = stored_undo_record(raw, &vm_ref)?;
    let mut change = Change {
        desired: raw.clone(),
        warnings: target.warnings.clone(),
    };
    let decided = match choice.action {
        Action::Undo => decide_undo(&mut change, stored.as_ref(), &vm_ref)?,
        Action::RemoveLimit => decide_remove_limit(&mut change, target, &before),
        Action::Reserve(asked) => {
            decide_reserve(&mut change, target, choice.strategy, asked, &before)?
        }
    };
    if choice.action != Action::Undo {
        keep_undo_record(&mut change.desired, raw, stored);
    }
    let patch = patch_of(raw, &change.desired, target);
    let after = side(&change.desired, ctx, &vm_ref)?;
    if choice.action == Action::Undo && patch.is_some() {
        warn_if_raised(&before, &after, &mut change.warnings);
    }
    let restart_needed = patch.is_some() && pod_memory_changes(&before, &after);
    let sizes = TemplateSizes {
        limit: after.limit_bytes,
        guest: after.guest_bytes,
        budget: after.overhead_budget_bytes,
        overhead: after.overhead_bytes,
    };
    template_below_guest(sizes, &mut change.warnings);
    if patch.is_some() {
        common_warnings(
            target,
            &before,
            &after,
            restart_needed,
            &mut change.warnings,
        );
    }
    Ok(Plan {
        kind: "VmMemoryFixPlan",
        namespace: target.row.namespace.clone(),
        name: target.row.name.clone(),
        resource_version: target.vm.metadata.resource_version.clone(),
        action: decided.action,
        strategy: decided.strategy,
        reserve_bytes: decided.reserve_bytes,
        reason: decided.reason,
        evidence: target.row.recommendation.evidence.clone(),
        current_pod_limit_bytes: target.row.pod_limit_bytes,
        restart_needed,
        patch,
        before,
        after,
        warnings: change.warnings,
        desired: change.desired,
    })
}

/// The VM document being changed, and what to warn about.
struct Change {
    desired: Value,
    warnings: Vec<String>,
}

/// What the action decided: its name, strategy, reservation and reason.
struct Decided {
    action: &'static str,
    strategy: Option<Strategy>,
    reserve_bytes: Option<i64>,
    reason: String,
}

fn decide_undo(
    change: &mut Change,
    stored: Option<&UndoRecord>,
    vm_ref: &str,
) -> Result<Decided, Refusal> {
    let reason = match stored {
        None => format!("no values recorded by kubectl vmmem on {vm_ref}: nothing to undo"),
        Some(record) => {
            still_written(&change.desired, record, vm_ref)?;
            undo(&mut change.desired, record);
            "restore the values recorded before the first fix".to_string()
        }
    };
    Ok(Decided {
        action: "undo",
        strategy: None,
        reserve_bytes: None,
        reason,
    })
}

fn decide_remove_limit(change: &mut Change, target: &Target, before: &Side) -> Decided {
    remove_limit(&mut change.desired, target, before, &mut change.warnings);
    Decided {
        action: "remove-limit",
        strategy: Some(Strategy::RemoveLimit),
        reserve_bytes: None,
        reason: "no memory limit, so no cgroup OOM kill (and no cgroup protecting the node)"
            .to_string(),
    }
}

fn decide_reserve(
    change: &mut Change,
    target: &Target,
    chosen: Option<Strategy>,
    asked: Option<i64>,
    before: &Side,
) -> Result<Decided, Refusal> {
    let vm_ref = format!("{}/{}", target.row.namespace, target.row.name);
    let s = match chosen {
        None | Some(Strategy::RemoveLimit) => auto_strategy(target, &vm_ref)?,
        Some(s) => s,
    };
    refuse_on_instancetype(target, s, &vm_ref)?;
    let bytes = asked.unwrap_or(target.row.recommendation.reserve_bytes);
    let reason = match asked {
        Some(_) => format!("reserve {} as asked", to_quantity_string(bytes)),
        None => target.row.recommendation.reason.clone(),
    };
    let limit = match before.limit_bytes {
        Some(l) => l,
        None if asked.is_none() => {
            change
                .warnings
                .push(format!("{vm_ref} has no memory limit: nothing to reserve"));
            0
        }
        None => return Err(Refusal::NoLimit(vm_ref)),
    };
    let current = current_reserve(s, before, &target.raw);
    let satisfied = asked.is_none() && current.is_some_and(|c| c >= bytes);
    if limit > 0 && !satisfied {
        let ask = Ask { s, bytes, limit };
        reserve(
            &mut change.desired,
            target,
            ask,
            before,
            &mut change.warnings,
        )?;
    } else if satisfied {
        change.warnings.push(format!(
            "{vm_ref} already reserves {}, at least the recommended {}",
            to_quantity_string(current.unwrap_or(0)),
            to_quantity_string(bytes)
        ));
    }
    Ok(Decided {
        action: "reserve",
        strategy: Some(s),
        reserve_bytes: Some(bytes),
        reason,
    })
}

/// Undo puts back older values: say so when that raises the memory limit (of the VM, or of the
/// pod KubeVirt would build).
fn warn_if_raised(before: &Side, after: &Side, warnings: &mut Vec<String>) {
    let raised = |what: &str, b: Option<i64>, a: Option<i64>| match (b, a) {
        (Some(b), Some(a)) if a > b => Some(format!(
            "undo raises {what} from {} to {}",
            to_quantity_string(b),
            to_quantity_string(a)
        )),
        (Some(b), None) => Some(format!(
            "undo removes {what} (now {}): the VM's pod then has no memory limit",
            to_quantity_string(b)
        )),
        _ => None,
    };
    warnings.extend(raised(
        "the memory limit",
        before.limit_bytes,
        after.limit_bytes,
    ));
    warnings.extend(raised(
        "the pod's memory limit",
        before.expected_pod_limit_bytes,
        after.expected_pod_limit_bytes,
    ));
}

/// The merge patch from `raw` to `desired`, carrying the resourceVersion it was made from.
fn patch_of(raw: &Value, desired: &Value, target: &Target) -> Option<Value> {
    merge::diff(raw, desired).map(|mut p| {
        fields::set(
            &mut p,
            &["metadata", "resourceVersion"],
            json!(target.vm.metadata.resource_version),
        );
        p
    })
}

/// Whether the change alters what the VM's pod gets (so it needs a restart).
fn pod_memory_changes(before: &Side, after: &Side) -> bool {
    (
        before.guest_bytes,
        before.limit_bytes,
        before.request_bytes,
        before.expected_pod_limit_bytes,
    ) != (
        after.guest_bytes,
        after.limit_bytes,
        after.request_bytes,
        after.expected_pod_limit_bytes,
    )
}

/// What the VM reserves today in the strategy's own terms.
fn current_reserve(s: Strategy, before: &Side, raw: &Value) -> Option<i64> {
    match s {
        Strategy::AddedOverhead => {
            let added = before
                .fields
                .added_overhead
                .as_ref()
                .and_then(quantity_bytes)
                .unwrap_or(0);
            Some(added + before.reserved_bytes.unwrap_or(0).max(0))
        }
        Strategy::Annotation => fields::get(raw, &Field::ReservedAnnotation.path())
            .and_then(quantity_bytes)
            .or(before.reserved_bytes),
        _ => before.reserved_bytes,
    }
}

fn quantity_bytes(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => crate::units::parse_memory(s).ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A reservation asked of a VM with a memory limit.
#[derive(Clone, Copy)]
struct Ask {
    s: Strategy,
    bytes: i64,
    limit: i64,
}

fn reserve(
    desired: &mut Value,
    target: &Target,
    ask: Ask,
    before: &Side,
    warnings: &mut Vec<String>,
) -> Result<(), Refusal> {
    if ask.s == Strategy::AddedOverhead {
        return reserve_added_overhead(desired, target, ask.bytes, warnings);
    }
    let Ask { s, bytes, limit } = ask;
    let hotplug = harvester::hotplug(&target.vm) && before.fields.guest.is_some();
    let guest = if s == Strategy::Annotation && hotplug {
        before.guest_bytes.unwrap_or(limit)
    } else {
        limit - bytes
    };
    webhook_checks(ask, guest)?;
    if s == Strategy::Annotation {
        put_annotation(desired, target, bytes, hotplug, warnings);
    } else if target.context.harvester.is_some() {
        warnings.push("on Harvester the webhook recomputes the guest from the reservedMemory annotation whenever the limit or the annotation changes, which would undo this; prefer --strategy annotation".into());
    }
    if !(s == Strategy::Annotation && hotplug) && before.guest_bytes != Some(guest) {
        fields::put(
            desired,
            Field::Guest,
            Some(json!(to_quantity_string(guest))),
        );
    }
    if s == Strategy::Annotation && !hotplug {
        predict_harvester_request(desired, target, limit, guest, before);
    }
    Ok(())
}

/// `memory.reservedOverhead.addedOverhead` (KubeVirt v1.8+): the guest keeps its size.
fn reserve_added_overhead(
    desired: &mut Value,
    target: &Target,
    bytes: i64,
    warnings: &mut Vec<String>,
) -> Result<(), Refusal> {
    let q = to_quantity_string(bytes);
    if bytes < 0 {
        return Err(Refusal::Webhook(format!(
            "addedOverhead {q} must be at least 0"
        )));
    }
    fields::put(desired, Field::AddedOverhead, Some(json!(q)));
    if target.context.version < Version::new(1, 8, 0) {
        warnings.push(format!(
            "memory.reservedOverhead.addedOverhead needs KubeVirt v1.8 or newer; this cluster runs {}, which ignores it",
            target.context.version
        ));
    }
    Ok(())
}

/// What Harvester's webhook checks (harvester/harvester
/// pkg/webhook/resources/virtualmachine/validator.go).
fn webhook_checks(ask: Ask, guest: i64) -> Result<(), Refusal> {
    let q = to_quantity_string(ask.bytes);
    if ask.bytes < 0 || ask.bytes >= ask.limit {
        return Err(Refusal::Webhook(format!(
            "reservedMemory {q} must be at least 0 and less than the memory limit {}",
            to_quantity_string(ask.limit)
        )));
    }
    if guest < 10 * MI {
        return Err(Refusal::Webhook(format!(
            "guest memory {} is less than 10Mi",
            to_quantity_string(guest)
        )));
    }
    if guest + ask.bytes > ask.limit {
        return Err(Refusal::Webhook(format!(
            "guest memory {} plus reservedMemory {q} is more than the memory limit {}",
            to_quantity_string(guest),
            to_quantity_string(ask.limit)
        )));
    }
    Ok(())
}

/// Harvester's `reservedMemory` annotation, with what it does and does not do here.
fn put_annotation(
    desired: &mut Value,
    target: &Target,
    bytes: i64,
    hotplug: bool,
    warnings: &mut Vec<String>,
) {
    fields::put(
        desired,
        Field::ReservedAnnotation,
        Some(json!(to_quantity_string(bytes))),
    );
    if hotplug {
        warnings.push(format!(
            "{} is on and the VM sets memory.guest: Harvester leaves the guest alone, so the annotation does nothing here (limits.memory is the hotplug maximum)",
            keys::HARVESTER_HOTPLUG
        ));
    }
    if target.context.harvester.is_none() {
        warnings.push("this is not a Harvester cluster: the annotation is only a note; the guest change does the work".into());
    }
}

/// The webhook also rewrites the request; predict it so the plan is exact.
fn predict_harvester_request(
    desired: &mut Value,
    target: &Target,
    limit: i64,
    guest: i64,
    before: &Side,
) {
    let Some(h) = target.context.harvester.as_ref() else {
        return;
    };
    let spec = &target.vm.spec.template.spec;
    // Host devices and GPUs (vGPUs among them) alike: the request is the guest (Harvester v1.3+).
    let devices = &spec.domain.devices;
    let host_devices = !devices.host_devices.is_empty() || !devices.gpus.is_empty();
    let request = if dedicated_cpu(spec) {
        limit
    } else if host_devices {
        guest
    } else {
        (limit as i128 * 100 / h.overcommit_memory.max(100) as i128) as i64 / MI * MI
    };
    if before.request_bytes != Some(request) {
        fields::put(
            desired,
            Field::RequestsMemory,
            Some(json!(to_quantity_string(request))),
        );
    }
}

fn remove_limit(desired: &mut Value, target: &Target, before: &Side, warnings: &mut Vec<String>) {
    if before.fields.limits_memory.is_none() {
        warnings.push(format!(
            "{}/{} has no memory limit already: nothing to remove",
            target.row.namespace, target.row.name
        ));
        return;
    }
    // Without the limit the guest would fall back to the request: pin it at today's size.
    if before.fields.guest.is_none() {
        if let Some(g) = before.guest_bytes {
            fields::put(desired, Field::Guest, Some(json!(to_quantity_string(g))));
        }
    }
    fields::put(desired, Field::LimitsMemory, None);
    fields::prune_if_empty(desired, Parent::Limits);
    warnings.push("without a memory limit nothing protects the host: the VM's pod can use the node's memory without bound".into());
    if dedicated_cpu(&target.vm.spec.template.spec) {
        warnings.push("the VM has dedicated CPUs: KubeVirt sets the pod's limit equal to its request, so the pod keeps a limit".into());
    }
    if let Some(auto) = target.context.auto_limit {
        warnings.push(format!(
            "namespace {} has a ResourceQuota on limits.memory: KubeVirt then sets a limit of (request + overhead) x {} anyway",
            target.row.namespace, auto.ratio
        ));
        warnings.extend(target.context.namespace_warnings.iter().cloned());
    } else if target.context.quota_on_limits {
        warnings.push(format!(
            "namespace {} has a ResourceQuota on limits.memory, which KubeVirt {} meets with a limit only with the feature gate AutoResourceLimitsGate (v1.1-v1.4; always from v1.5): without a limit the VM will not start there",
            target.row.namespace, target.context.version
        ));
    }
}

fn common_warnings(
    target: &Target,
    before: &Side,
    after: &Side,
    restart_needed: bool,
    warnings: &mut Vec<String>,
) {
    if let (Some(b), Some(a)) = (before.guest_bytes, after.guest_bytes) {
        if a < b {
            warnings.push(format!(
                "the guest shrinks by {} ({} -> {}): the OS inside sees less memory after the restart",
                to_quantity_string(b - a),
                to_quantity_string(b),
                to_quantity_string(a)
            ));
        }
        if a < 256 * MI {
            warnings.push(format!(
                "guest memory {} is below 256Mi",
                to_quantity_string(a)
            ));
        }
    }
    if !restart_needed {
        warnings.push("the change does not alter the VM's memory or its pod's limit".into());
    } else if target.row.phase == VmPhase::Stopped {
        warnings.push("the VM is stopped: the change applies when it next starts".into());
    } else {
        warnings.push("a restart is needed: the running VM keeps its old pod until it restarts (--restart does it now)".into());
    }
}

mod side;
mod strategy;
mod undo_record;
pub use side::{side, Side};
use strategy::{auto_strategy, refuse_on_instancetype, template_below_guest, TemplateSizes};
use undo_record::{keep_undo_record, still_written, stored_undo_record, undo};

#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod undo_tests;
