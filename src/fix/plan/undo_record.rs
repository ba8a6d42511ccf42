//! The undo record a fix keeps on the VM (`vmmem.kubectl.io/previous`): reading it, checking
//! the VM still holds what the last fix wrote, keeping it across fixes, and putting the recorded
//! values back.

use serde_json::{json, Value};

use crate::fix::fields::{self, Fields, UndoRecord, ALL_FIELDS, ALL_PARENTS};
use crate::fix::target::Refusal;
use crate::model::objects::keys;

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
