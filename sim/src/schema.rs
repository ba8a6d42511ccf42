//! The structural checks a real API server makes before storing an object (what CRD schemas
//! and built-in types guarantee): the fields controllers write into must be objects, labels and
//! annotations maps of strings. Violations are 422 Invalid, never a crash.

use serde_json::Value;

use super::resources::{
    ResourceType, KUBEVIRTS, PODS, VIRTUAL_MACHINES, VIRTUAL_MACHINE_INSTANCES,
};
use super::status::ApiError;

const COMMON: &[&str] = &["metadata", "spec", "status"];
const VM: &[&str] = &[
    "spec.template",
    "spec.template.metadata",
    "spec.template.metadata.labels",
    "spec.template.spec",
    "spec.template.spec.domain",
    "spec.template.spec.domain.memory",
    "spec.template.spec.domain.resources",
    "spec.template.spec.domain.resources.requests",
    "spec.template.spec.domain.resources.limits",
    "spec.template.spec.domain.cpu",
    "spec.template.spec.domain.devices",
    "spec.template.spec.domain.firmware",
];
const VMI: &[&str] = &[
    "spec.domain",
    "spec.domain.memory",
    "spec.domain.resources",
    "status.memory",
];
const KUBEVIRT: &[&str] = &["spec.configuration"];
const POD: &[&str] = &["status.containerStatuses"];

fn at<'a>(obj: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(obj, |v, k| &v[k])
}

/// Check `obj` before it is stored as `rt`.
pub fn check(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let invalid = |field: &str, what: &str| {
        ApiError::invalid(rt, name, format!("{field}: Invalid value: {what}"))
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request("the object must be a JSON object"));
    }
    let specific: &[&str] = if rt == &VIRTUAL_MACHINES {
        VM
    } else if rt == &VIRTUAL_MACHINE_INSTANCES {
        VMI
    } else if rt == &KUBEVIRTS {
        KUBEVIRT
    } else {
        &[]
    };
    for path in COMMON.iter().chain(specific) {
        let v = at(obj, path);
        if !(v.is_null() || v.is_object()) {
            return Err(invalid(path, "must be an object"));
        }
    }
    if rt == &PODS {
        for path in POD {
            let v = at(obj, path);
            if !(v.is_null() || v.is_array()) {
                return Err(invalid(path, "must be a list"));
            }
        }
    }
    for map in ["metadata.labels", "metadata.annotations"] {
        match at(obj, map) {
            Value::Null => {}
            Value::Object(m) if m.values().all(Value::is_string) => {}
            _ => return Err(invalid(map, "must be a map of strings")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_shapes_controllers_cannot_write_into() {
        let ok = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"template": {"spec": {"domain": {}}}}});
        check(&VIRTUAL_MACHINES, &ok).unwrap();
        for bad in [
            json!(5),
            json!({"metadata": "x"}),
            json!({"metadata": {"name": "a", "annotations": {"k": 1}}}),
            json!({"metadata": {"name": "a"}, "spec": {"template": {"spec": {"domain": {"memory": "2Gi"}}}}}),
            json!({"metadata": {"name": "a"}, "spec": []}),
        ] {
            let e = check(&VIRTUAL_MACHINES, &bad).unwrap_err();
            assert!(e.code == 422 || e.code == 400, "{bad}");
        }
        assert!(check(
            &PODS,
            &json!({"metadata": {"name": "p"}, "status": {"containerStatuses": {}}})
        )
        .is_err());
    }
}
