//! The fields of a VirtualMachine a fix may change, read and written on the object as the
//! server sent it (raw JSON), so values keep their exact spelling; and the undo record kept in
//! the tool's own annotation. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::objects::keys;

/// One field a fix can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ReservedAnnotation,
    Guest,
    LimitsMemory,
    RequestsMemory,
    AddedOverhead,
}

pub const ALL_FIELDS: [Field; 5] = [
    Field::ReservedAnnotation,
    Field::Guest,
    Field::LimitsMemory,
    Field::RequestsMemory,
    Field::AddedOverhead,
];

const DOMAIN: [&str; 4] = ["spec", "template", "spec", "domain"];

impl Field {
    /// The JSON path of the field in a VirtualMachine.
    pub fn path(self) -> Vec<&'static str> {
        let tail: &[&'static str] = match self {
            Field::ReservedAnnotation => {
                return vec!["metadata", "annotations", keys::HARVESTER_RESERVED_MEMORY]
            }
            Field::Guest => &["memory", "guest"],
            Field::LimitsMemory => &["resources", "limits", "memory"],
            Field::RequestsMemory => &["resources", "requests", "memory"],
            Field::AddedOverhead => &["memory", "reservedOverhead", "addedOverhead"],
        };
        DOMAIN.iter().chain(tail).copied().collect()
    }

    /// How the plan names the field.
    pub fn label(self) -> &'static str {
        match self {
            Field::ReservedAnnotation => keys::HARVESTER_RESERVED_MEMORY,
            Field::Guest => "memory.guest",
            Field::LimitsMemory => "resources.limits.memory",
            Field::RequestsMemory => "resources.requests.memory",
            Field::AddedOverhead => "memory.reservedOverhead.addedOverhead",
        }
    }
}

/// Objects a fix may create, deepest first: if one did not exist before the first fix, undo
/// removes it again when it is left empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Parent {
    Annotations,
    ReservedOverhead,
    Memory,
    Limits,
    Requests,
}

pub const ALL_PARENTS: [Parent; 5] = [
    Parent::Annotations,
    Parent::ReservedOverhead,
    Parent::Memory,
    Parent::Limits,
    Parent::Requests,
];

impl Parent {
    pub fn path(self) -> Vec<&'static str> {
        let tail: &[&'static str] = match self {
            Parent::Annotations => return vec!["metadata", "annotations"],
            Parent::ReservedOverhead => &["memory", "reservedOverhead"],
            Parent::Memory => &["memory"],
            Parent::Limits => &["resources", "limits"],
            Parent::Requests => &["resources", "requests"],
        };
        DOMAIN.iter().chain(tail).copied().collect()
    }
}

pub fn get<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, k| v.get(*k))
}

/// Set a value, creating objects on the way (a non-object on the way is replaced).
pub fn set(doc: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *doc = value;
        return;
    };
    let mut cur = doc;
    for k in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        cur = m
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(m) = cur {
        m.insert(last.to_string(), value);
    }
}

pub fn remove(doc: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = doc;
    for k in parents {
        match cur.get_mut(*k) {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let Value::Object(m) = cur {
        m.remove(*last);
    }
}

/// Set a field to `Some(value)` or remove it (`None`).
pub fn put(doc: &mut Value, field: Field, value: Option<Value>) {
    match value {
        Some(v) => set(doc, &field.path(), v),
        None => remove(doc, &field.path()),
    }
}

/// Remove a parent object when it is an empty object.
pub fn prune_if_empty(doc: &mut Value, parent: Parent) {
    let path = parent.path();
    if get(doc, &path).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) {
        remove(doc, &path);
    }
}

/// The values of the fields a fix can touch, exactly as stored (`None` = absent). Quantities
/// may be strings or numbers in JSON; they are kept as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fields {
    pub reserved_memory: Option<Value>,
    pub guest: Option<Value>,
    pub limits_memory: Option<Value>,
    pub requests_memory: Option<Value>,
    pub added_overhead: Option<Value>,
}

impl Fields {
    pub fn read(doc: &Value) -> Fields {
        let f = |field: Field| get(doc, &field.path()).filter(|v| !v.is_null()).cloned();
        Fields {
            reserved_memory: f(Field::ReservedAnnotation),
            guest: f(Field::Guest),
            limits_memory: f(Field::LimitsMemory),
            requests_memory: f(Field::RequestsMemory),
            added_overhead: f(Field::AddedOverhead),
        }
    }

    pub fn get(&self, field: Field) -> Option<&Value> {
        match field {
            Field::ReservedAnnotation => self.reserved_memory.as_ref(),
            Field::Guest => self.guest.as_ref(),
            Field::LimitsMemory => self.limits_memory.as_ref(),
            Field::RequestsMemory => self.requests_memory.as_ref(),
            Field::AddedOverhead => self.added_overhead.as_ref(),
        }
    }
}

/// Text of a stored value for people: strings as they are, numbers as digits, absent as `-`.
pub fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// What the first fix replaced and what the last fix wrote, kept as JSON in
/// [`keys::UNDO_ANNOTATION`]. A later fix keeps the replaced values it finds and records what it
/// wrote, so `--undo` always goes back to the values before the first fix, and only while the VM
/// still holds what the tool wrote (anyone who may edit the VM can write this annotation too: a
/// record is read as a claim, checked against the VM and bounded, never trusted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoRecord {
    /// The tool that wrote it and the record format.
    pub version: u32,
    /// The values the first fix replaced.
    pub fields: Fields,
    /// The values the last fix wrote (absent in records of format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Fields>,
    /// Objects that did not exist before the first fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<Parent>,
}

pub const UNDO_RECORD_VERSION: u32 = 2;
/// A record longer than this is not one this tool wrote (its own are a few hundred bytes).
pub const UNDO_RECORD_MAX_BYTES: usize = 4096;
/// The largest quantity a record may hold: 1 PiB, above any VM's memory.
pub const UNDO_MAX_BYTES: i64 = 1 << 50;

impl UndoRecord {
    /// The record of a VM before any fix.
    pub fn of(doc: &Value) -> UndoRecord {
        UndoRecord {
            version: UNDO_RECORD_VERSION,
            fields: Fields::read(doc),
            written: None,
            absent: ALL_PARENTS
                .into_iter()
                .filter(|p| get(doc, &p.path()).is_none_or(Value::is_null))
                .collect(),
        }
    }

    /// The record stored on a VM: `None` without one, `Some(Err(sentence))` when unreadable,
    /// of another format, too long, or holding a value that is not a bounded quantity.
    pub fn stored(doc: &Value) -> Option<Result<UndoRecord, String>> {
        let raw = get(doc, &["metadata", "annotations", keys::UNDO_ANNOTATION])?;
        let text = raw.as_str().unwrap_or_default();
        Some(Self::checked(text))
    }

    fn checked(text: &str) -> Result<UndoRecord, String> {
        let a = keys::UNDO_ANNOTATION;
        if text.len() > UNDO_RECORD_MAX_BYTES {
            return Err(format!(
                "the annotation {a} is {} bytes, longer than any record this tool writes ({UNDO_RECORD_MAX_BYTES})",
                text.len()
            ));
        }
        let record: UndoRecord = serde_json::from_str(text)
            .map_err(|e| format!("the annotation {a} is not a record this tool wrote ({e})"))?;
        if record.version != UNDO_RECORD_VERSION {
            return Err(format!(
                "the annotation {a} is a record of format {}, not {UNDO_RECORD_VERSION}: it does not say which values were written, so undo cannot check them",
                record.version
            ));
        }
        let Some(written) = &record.written else {
            return Err(format!(
                "the annotation {a} does not say which values were written"
            ));
        };
        for (what, fields) in [("replaced", &record.fields), ("written", written)] {
            for f in ALL_FIELDS {
                if let Some(v) = fields.get(f) {
                    bounded_quantity(v).map_err(|why| {
                        format!("the annotation {a}: the {what} {}: {why}", f.label())
                    })?;
                }
            }
        }
        Ok(record)
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The bytes of a stored quantity (a string like `2Gi` or a JSON number), checked: from 0 to
/// [`UNDO_MAX_BYTES`].
pub fn bounded_quantity(v: &Value) -> Result<i64, String> {
    let bytes = match v {
        Value::String(s) => {
            crate::units::parse_memory(s).map_err(|e| format!("{s:?} is not a quantity ({e})"))?
        }
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{n} is not a whole number of bytes"))?,
        other => return Err(format!("{other} is not a quantity")),
    };
    if !(0..=UNDO_MAX_BYTES).contains(&bytes) {
        return Err(format!("{} is outside 0 to 1Pi", shown(Some(v))));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_keep_their_spelling_and_absence() {
        let vm = json!({"metadata": {"annotations": {"harvesterhci.io/reservedMemory": "256Mi"}},
            "spec": {"template": {"spec": {"domain": {"memory": {"guest": 2147483648u64},
            "resources": {"limits": {"memory": "2G"}}}}}}});
        let f = Fields::read(&vm);
        assert_eq!(f.reserved_memory, Some(json!("256Mi")));
        assert_eq!(f.guest, Some(json!(2147483648u64)));
        assert_eq!(f.limits_memory, Some(json!("2G")));
        assert_eq!(f.requests_memory, None);
        let mut r = UndoRecord::of(&vm);
        r.written = Some(f.clone());
        assert_eq!(
            r.absent,
            vec![Parent::ReservedOverhead, Parent::Requests],
            "annotations, memory and limits exist"
        );
        let mut stored = vm.clone();
        set(
            &mut stored,
            &["metadata", "annotations", keys::UNDO_ANNOTATION],
            json!(r.to_annotation()),
        );
        assert_eq!(UndoRecord::stored(&stored), Some(Ok(r)));
        assert_eq!(UndoRecord::stored(&vm), None);
    }

    #[test]
    fn set_remove_prune() {
        let mut v = json!({});
        put(&mut v, Field::AddedOverhead, Some(json!("1Gi")));
        assert_eq!(
            v,
            json!({"spec": {"template": {"spec": {"domain": {"memory": {"reservedOverhead": {"addedOverhead": "1Gi"}}}}}}})
        );
        put(&mut v, Field::AddedOverhead, None);
        prune_if_empty(&mut v, Parent::ReservedOverhead);
        prune_if_empty(&mut v, Parent::Memory);
        assert_eq!(v, json!({"spec": {"template": {"spec": {"domain": {}}}}}));
        let bad = json!({"metadata": {"annotations": {keys::UNDO_ANNOTATION: "{"}}});
        assert!(UndoRecord::stored(&bad).unwrap().is_err());
    }

    /// Planted records: another format, no written values, quantities out of bounds or not
    /// quantities, and sheer size, are each refused with the reason.
    #[test]
    fn planted_records_are_refused_with_the_reason() {
        let refused = |record: Value| -> String {
            let doc =
                json!({"metadata": {"annotations": {keys::UNDO_ANNOTATION: record.to_string()}}});
            UndoRecord::stored(&doc).unwrap().unwrap_err()
        };
        let w = json!({"limitsMemory": "4Gi"});
        assert!(
            refused(json!({"version": 1, "fields": {"limitsMemory": "64Gi"}}))
                .contains("format 1, not 2")
        );
        assert!(
            refused(json!({"version": 2, "fields": {"limitsMemory": "64Gi"}}))
                .contains("does not say which values were written")
        );
        assert!(
            refused(json!({"version": 2, "fields": {"limitsMemory": "-5Gi"}, "written": w}))
                .contains("the replaced resources.limits.memory")
        );
        assert!(
            refused(json!({"version": 2, "fields": {"guest": "2Pi"}, "written": w}))
                .contains("memory.guest")
        );
        assert!(
            refused(json!({"version": 2, "fields": {"guest": {"a": 1}}, "written": w}))
                .contains("is not a quantity")
        );
        assert!(
            refused(json!({"version": 2, "fields": {"guest": 1.5}, "written": w}))
                .contains("not a whole number")
        );
        let long = "x".repeat(UNDO_RECORD_MAX_BYTES);
        assert!(
            refused(json!({"version": 2, "fields": {}, "written": w, "pad": long}))
                .contains("longer than any record")
        );
        let ok = json!({"version": 2, "fields": {"limitsMemory": 4294967296u64}, "written": w});
        let doc = json!({"metadata": {"annotations": {keys::UNDO_ANNOTATION: ok.to_string()}}});
        assert!(UndoRecord::stored(&doc).unwrap().is_ok());
    }
}
