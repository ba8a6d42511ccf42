//! JSON merge patch (RFC 7386): the difference between two documents, and applying a patch.
//! Pure. The planner builds the object it wants and sends exactly the difference.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`: changed members are set, removed members are
/// `null`. `None` when the documents are equal. Arrays are replaced whole (merge patch has no
/// array operations), and a `null` inside `new` cannot be expressed (it means "remove").
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// Apply a merge patch to a document (what the API server does with `Patch::Merge`).
pub fn apply(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, pv) in p {
                if pv.is_null() {
                    out.remove(k);
                } else {
                    let merged = apply(out.get(k).unwrap_or(&Value::Null), pv);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_then_apply_round_trips() {
        let old = json!({"a": {"b": "1", "c": [1, 2], "d": "x"}, "e": 1});
        let new = json!({"a": {"b": "2", "c": [1, 2], "f": {"g": true}}, "e": 1});
        let p = diff(&old, &new).unwrap();
        assert_eq!(p, json!({"a": {"b": "2", "f": {"g": true}, "d": null}}));
        assert_eq!(apply(&old, &p), new);
        assert_eq!(diff(&new, &new), None);
    }

    #[test]
    fn rfc7386_examples() {
        let t = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
                       "tags": ["example", "sample"], "content": "This will be unchanged"});
        let p = json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
                       "author": {"familyName": null}, "tags": ["example"]});
        let want = json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
                          "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"});
        assert_eq!(apply(&t, &p), want);
        assert_eq!(
            apply(&json!({"a": "b"}), &json!({"a": {"bb": null}})),
            json!({"a": {}})
        );
        assert_eq!(apply(&json!({"a": "foo"}), &json!("bar")), json!("bar"));
    }
}
