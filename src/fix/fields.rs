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

/// What the first fix replaced, kept as JSON in [`keys::UNDO_ANNOTATION`]. A later fix keeps
/// the record it finds, so `--undo` always goes back to the values before the first fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoRecord {
    /// The tool that wrote it and the record format.
    pub version: u32,
    pub fields: Fields,
    /// Objects that did not exist before the first fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<Parent>,
}

pub const UNDO_RECORD_VERSION: u32 = 1;

impl UndoRecord {
    /// The record of a VM before any fix.
    pub fn of(doc: &Value) -> UndoRecord {
        UndoRecord {
            version: UNDO_RECORD_VERSION,
            fields: Fields::read(doc),
            absent: ALL_PARENTS
                .into_iter()
                .filter(|p| get(doc, &p.path()).is_none_or(Value::is_null))
                .collect(),
        }
    }

    /// The record stored on a VM: `None` without one, `Some(Err(sentence))` when unreadable.
    pub fn stored(doc: &Value) -> Option<Result<UndoRecord, String>> {
        let raw = get(doc, &["metadata", "annotations", keys::UNDO_ANNOTATION])?;
        let text = raw.as_str().unwrap_or_default();
        Some(serde_json::from_str(text).map_err(|e| {
            format!(
                "the annotation {} is not a record this tool wrote ({e})",
                keys::UNDO_ANNOTATION
            )
        }))
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
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
        let r = UndoRecord::of(&vm);
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
}
