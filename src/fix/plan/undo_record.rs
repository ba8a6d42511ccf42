//! The undo record a fix keeps on the VM (`vmmem.kubectl.io/previous`): reading it, checking
//! the VM still holds what the last fix wrote, keeping it across fixes, and putting the recorded
//! values back.

use serde_json::{json, Value};

use super::Side;
use crate::fix::fields::{self, Fields, UndoRecord, ALL_FIELDS, ALL_PARENTS};
use crate::fix::target::Refusal;
use crate::model::objects::keys;
use crate::units::to_quantity_string;

/// The undo record an earlier fix left on the VM (refused when it cannot be read).
pub(super) fn stored_undo_record(raw: &Value, vm_ref: &str) -> Result<Option<UndoRecord>, Refusal> {
    match UndoRecord::stored(raw) {
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(problem)) => Err(Refusal::BadUndoRecord {
            vm: vm_ref.to_string(),
            problem,
        }),
        None => Ok(None),
    }
}

/// Refuse unless the VM still holds every value the tool's last fix wrote (a record is checked
/// for them when read).
pub(super) fn still_written(raw: &Value, record: &UndoRecord, vm_ref: &str) -> Result<(), Refusal> {
    let now = Fields::read(raw);
    let written = record.written.clone().unwrap_or_default();
    for f in ALL_FIELDS {
        if now.get(f) != written.get(f) {
            return Err(Refusal::UndoChanged {
                vm: vm_ref.to_string(),
                field: f.label(),
                written: fields::shown(written.get(f)),
                now: fields::shown(now.get(f)),
                annotation: keys::UNDO_ANNOTATION,
            });
        }
    }
    Ok(())
}

/// Undo puts back older values: say so when that raises the memory limit (of the VM, or of the
/// pod KubeVirt would build).
pub(super) fn warn_if_raised(before: &Side, after: &Side, warnings: &mut Vec<String>) {
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

/// Keep what the first fix replaced (a second fix keeps the first record) and what this fix
/// writes; no record when the fields end as they were before the first fix.
pub(super) fn keep_undo_record(desired: &mut Value, raw: &Value, stored: Option<UndoRecord>) {
    let mut record = stored.unwrap_or_else(|| UndoRecord::of(raw));
    let written = Fields::read(desired);
    let path = ["metadata", "annotations", keys::UNDO_ANNOTATION];
    if written == record.fields {
        fields::remove(desired, &path);
        return;
    }
    record.written = Some(written);
    fields::set(desired, &path, json!(record.to_annotation()));
}

/// Restore the recorded fields, drop the record, and remove objects the fixes created.
pub(super) fn undo(desired: &mut Value, record: &UndoRecord) {
    for f in ALL_FIELDS {
        fields::put(desired, f, record.fields.get(f).cloned());
    }
    fields::remove(desired, &["metadata", "annotations", keys::UNDO_ANNOTATION]);
    for p in ALL_PARENTS {
        if record.absent.contains(&p) {
            fields::prune_if_empty(desired, p);
        }
    }
}
