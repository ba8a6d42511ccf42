//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902), applied to stored objects.

use serde_json::Value;

use super::status::ApiError;

/// RFC 7386: objects merge recursively, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(path: &str) -> Result<Vec<String>, ApiError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    toks: &[String],
    path: &str,
) -> Result<&'a mut Value, ApiError> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| missing(path))?;
    }
    Ok(cur)
}

fn missing(path: &str) -> ApiError {
    ApiError::invalid_patch(format!("the server rejected our request due to an error in our request: path {path:?} does not exist"))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let toks = tokens(path)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|&i| i <= a.len())
                    .ok_or_else(|| missing(path))?
            };
            a.insert(i, value);
        }
        _ => return Err(missing(path)),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let toks = tokens(path)?;
    let Some((last, parents)) = toks.split_last() else {
        return Err(missing(path));
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(path)),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|&i| i < a.len())
                .ok_or_else(|| missing(path))?;
            Ok(a.remove(i))
        }
        _ => Err(missing(path)),
    }
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, ApiError> {
    let toks = tokens(path)?;
    let mut cur = doc;
    for t in &toks {
        cur = match cur {
            Value::Object(m) => m.get(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| missing(path))?;
    }
    Ok(cur)
}

/// RFC 6902: apply the operations in order; any failure leaves `doc` unchanged.
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut work = doc.clone();
    for op in ops {
        let path = op["path"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("JSON patch operation without \"path\""))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| ApiError::bad_request("JSON patch operation without \"value\""))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request("JSON patch operation without \"from\""))
        };
        match op["op"].as_str().unwrap_or("") {
            "add" => add(&mut work, path, value()?)?,
            "remove" => {
                remove(&mut work, path)?;
            }
            "replace" => {
                get(&work, path)?;
                remove(&mut work, path).or_else(|e| {
                    if path.is_empty() {
                        Ok(Value::Null)
                    } else {
                        Err(e)
                    }
                })?;
                add(&mut work, path, value()?)?;
            }
            "move" => {
                let v = remove(&mut work, from()?)?;
                add(&mut work, path, v)?;
            }
            "copy" => {
                let v = get(&work, from()?)?.clone();
                add(&mut work, path, v)?;
            }
            "test" => {
                if *get(&work, path)? != value()? {
                    return Err(ApiError::invalid_patch(format!(
                        "the server rejected our request due to an error in our request: testing value {path} failed"
                    )));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown JSON patch operation {other:?}"
                )))
            }
        }
    }
    *doc = work;
    Ok(())
}

impl ApiError {
    /// A patch that cannot be applied (422, like the real server).
    pub fn invalid_patch(message: String) -> ApiError {
        ApiError {
            code: 422,
            reason: "Invalid",
            message,
            details: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut d = json!({"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1});
        merge_patch(
            &mut d,
            &json!({"a": {"b": null, "d": 3}, "l": [3], "x": {"y": 1}}),
        );
        assert_eq!(d, json!({"a": {"c": 2, "d": 3}, "l": [3], "x": {"y": 1}}));
    }

    #[test]
    fn json_patch_rfc6902() {
        let mut d = json!({"metadata": {"annotations": {"a/b": "1"}}, "l": [1, 2]});
        json_patch(
            &mut d,
            &json!([
                {"op": "test", "path": "/metadata/annotations/a~1b", "value": "1"},
                {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "2"},
                {"op": "add", "path": "/l/-", "value": 3},
                {"op": "add", "path": "/l/0", "value": 0},
                {"op": "remove", "path": "/l/1"},
                {"op": "copy", "from": "/l", "path": "/m"},
                {"op": "move", "from": "/m", "path": "/n"}
            ]),
        )
        .unwrap();
        assert_eq!(
            d,
            json!({"metadata": {"annotations": {"a/b": "2"}}, "l": [0, 2, 3], "n": [0, 2, 3]})
        );
        let before = d.clone();
        let err = json_patch(
            &mut d,
            &json!([{"op": "remove", "path": "/l/0"}, {"op": "test", "path": "/n/0", "value": 9}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(d, before, "a failed patch changes nothing");
        assert!(json_patch(
            &mut d,
            &json!([{"op": "replace", "path": "/nope", "value": 1}])
        )
        .is_err());
    }
}
