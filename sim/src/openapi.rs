//! A minimal OpenAPI v3 (`/openapi/v3`, `/openapi/v3/apis/{g}/{v}`): enough for kubectl to learn
//! that the server validates fields itself (`fieldValidation` on PATCH), so `kubectl apply` and
//! `kubectl edit` work. Schemas are open (`x-kubernetes-preserve-unknown-fields`), like
//! structural CRDs that keep unknown fields.

use serde_json::{json, Map, Value};

use super::resources::{ResourceType, ALL};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn schema_name(r: &ResourceType) -> String {
    match r.group {
        "" => format!("io.k8s.api.core.{}.{}", r.version, r.kind),
        g => {
            let reversed: Vec<&str> = g.split('.').rev().collect();
            format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
        }
    }
}

fn served(harvester: bool) -> impl Iterator<Item = &'static ResourceType> {
    ALL.iter()
        .copied()
        .filter(move |r| harvester || !r.harvester_only)
}

/// `GET /openapi/v3`: the group-versions with a document each.
pub fn root(harvester: bool) -> Value {
    let mut paths = Map::new();
    for r in served(harvester) {
        let p = gv_path(r.group, r.version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=0")}),
        );
    }
    json!({ "paths": paths })
}

fn operation(r: &ResourceType, action: &str) -> Value {
    json!({
        "operationId": format!("{action}{}", r.kind),
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
        ],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", schema_name(r))}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind}
    })
}

/// `GET /openapi/v3/{api/v1 | apis/g/v}`, or `None` for a group-version not served.
pub fn group_version(path: &str, harvester: bool) -> Option<Value> {
    let members: Vec<&ResourceType> = served(harvester)
        .filter(|r| gv_path(r.group, r.version) == path)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in members {
        let item = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{path}/{}/{{name}}", r.plural)
        };
        paths.insert(item, json!({"get": operation(r, "get"), "put": operation(r, "put"), "patch": operation(r, "patch"), "delete": operation(r, "delete")}));
        let collection = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("/{path}/{}", r.plural)
        };
        paths.insert(
            collection,
            json!({"post": operation(r, "post"), "get": operation(r, "list")}),
        );
        schemas.insert(
            schema_name(r),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                   "x-kubernetes-group-version-kind": [{"group": r.group, "version": r.version, "kind": r.kind}]}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_every_group_version_and_field_validation() {
        let r = root(true);
        assert!(r["paths"]["apis/kubevirt.io/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/kubevirt.io/v1"));
        assert!(r["paths"]["apis/harvesterhci.io/v1beta1"].is_object());
        assert!(root(false)["paths"]["apis/harvesterhci.io/v1beta1"].is_null());
        let kv = group_version("apis/kubevirt.io/v1", false).unwrap();
        let patch = &kv["paths"]
            ["/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "VirtualMachine"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(kv["components"]["schemas"]["io.kubevirt.v1.VirtualMachine"].is_object());
        assert!(
            group_version("api/v1", false).unwrap()["paths"]["/api/v1/nodes/{name}"].is_object()
        );
        assert!(group_version("apis/nope/v1", false).is_none());
    }
}
