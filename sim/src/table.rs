//! `meta.k8s.io/v1` Table responses (what `kubectl get` asks for), with the columns the real
//! server and KubeVirt's CRDs print.

use serde_json::{json, Value};

use super::clock::{human_age, parse_rfc3339};
use super::resources::ResourceType;

fn col(name: &str, ty: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": description, "priority": priority})
}

fn age(obj: &Value, now_epoch: i64) -> String {
    obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339)
        .map_or("<unknown>".into(), |t| human_age(now_epoch - t))
}

fn s(v: &Value) -> Value {
    match v {
        Value::Null => json!("<none>"),
        Value::String(_) => v.clone(),
        other => json!(other.to_string()),
    }
}

fn condition(obj: &Value, ty: &str) -> Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == json!(ty)))
        .map(|c| c["status"].clone())
        .unwrap_or(Value::Null)
}

/// A column: name, priority (1: only with `-o wide`) and description; every column is a string.
type Column = (&'static str, i64, &'static str);

const NAME: Column = ("Name", 0, "Name must be unique within a namespace.");
const AGE: Column = ("Age", 0, "CreationTimestamp");

/// The columns the real server (built-in types) and KubeVirt's and Harvester's CRDs print.
const COLUMNS: [(&str, &[Column]); 6] = [
    (
        "pods",
        &[
            NAME,
            (
                "Ready",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            (
                "Status",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                0,
                "The number of times the containers in this pod have been restarted.",
            ),
            AGE,
            ("IP", 1, "IP address allocated to the pod."),
            ("Node", 1, "Name of the node this pod is assigned to."),
        ],
    ),
    (
        "virtualmachines",
        &[
            NAME,
            AGE,
            ("Status", 0, "Human Readable Status"),
            ("Ready", 0, "Ready"),
        ],
    ),
    (
        "virtualmachineinstances",
        &[
            NAME,
            AGE,
            ("Phase", 0, ""),
            ("IP", 0, "The IP address of the VirtualMachineInstance"),
            ("NodeName", 0, ""),
            ("Ready", 0, ""),
            ("Live-Migratable", 1, ""),
        ],
    ),
    (
        "nodes",
        &[
            NAME,
            ("Status", 0, "The status of the node"),
            ("Roles", 0, "The roles of the node"),
            AGE,
            ("Version", 0, "Kubelet Version reported by the node."),
            ("Internal-IP", 1, ""),
            ("Kernel-Version", 1, ""),
        ],
    ),
    (
        "namespaces",
        &[NAME, ("Status", 0, "The status of the namespace"), AGE],
    ),
    ("settings", &[NAME, ("Value", 0, ""), AGE]),
];

fn columns(rt: &ResourceType) -> Vec<Value> {
    let columns: &[Column] = COLUMNS
        .iter()
        .find(|(plural, _)| *plural == rt.plural)
        .map_or(&[NAME, AGE], |(_, columns)| columns);
    columns
        .iter()
        .map(|(name, priority, description)| col(name, "string", *priority, description))
        .collect()
}

fn cells(rt: &ResourceType, o: &Value, now: i64) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    let a = json!(age(o, now));
    let st = &o["status"];
    match rt.plural {
        "pods" => pod_cells(o, name, a),
        "virtualmachines" => vec![
            name,
            a,
            s(&st["printableStatus"]),
            s(&condition(o, "Ready")),
        ],
        "virtualmachineinstances" => vec![
            name,
            a,
            s(&st["phase"]),
            s(&st["interfaces"][0]["ipAddress"]),
            s(&st["nodeName"]),
            s(&condition(o, "Ready")),
            s(&condition(o, "LiveMigratable")),
        ],
        "nodes" => node_cells(o, name, a),
        "namespaces" => vec![name, s(&st["phase"]), a],
        "settings" => vec![name, s(&o["value"]), a],
        _ => vec![name, a],
    }
}

/// Ready containers of all, the phase (or why a container is not running), restarts.
fn pod_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let st = &o["status"];
    let cs = st["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = cs.iter().filter(|c| c["ready"] == json!(true)).count();
    let restarts: i64 = cs.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
    let reason = cs
        .iter()
        .find_map(|c| {
            c["state"]["terminated"]["reason"]
                .as_str()
                .or(c["state"]["waiting"]["reason"].as_str())
        })
        .filter(|_| st["phase"] != json!("Running"));
    let status = reason.map_or(s(&st["phase"]), |r| json!(r));
    vec![
        name,
        json!(format!("{ready}/{total}")),
        status,
        json!(restarts.to_string()),
        age,
        s(&st["podIP"]),
        s(&o["spec"]["nodeName"]),
    ]
}

/// Ready or not, the roles from `node-role.kubernetes.io/` labels, versions and address.
fn node_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let st = &o["status"];
    let ready = if condition(o, "Ready") == json!("True") {
        "Ready"
    } else {
        "NotReady"
    };
    let roles: Vec<&str> = o["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    vec![
        name,
        json!(ready),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        age,
        s(&st["nodeInfo"]["kubeletVersion"]),
        s(&st["addresses"][0]["address"]),
        s(&st["nodeInfo"]["kernelVersion"]),
    ]
}

/// A Table of `items`; rows carry the object's metadata (`PartialObjectMetadata`).
pub fn table(rt: &ResourceType, items: &[Value], resource_version: u64, now_epoch: i64) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({"cells": cells(rt, o, now_epoch),
                   "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns(rt),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{PODS, VIRTUAL_MACHINES};

    #[test]
    fn vm_and_pod_rows() {
        let vm = json!({"metadata": {"name": "vm1", "creationTimestamp": "2024-05-09T14:52:38Z"},
                        "status": {"printableStatus": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let t = table(&VIRTUAL_MACHINES, &[vm], 5, 1_715_266_358 + 90);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["vm1", "90s", "Running", "True"])
        );
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "vm1");
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{}, {}], "nodeName": "n1"},
                         "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 1}, {"ready": false, "restartCount": 0}]}});
        let t = table(&PODS, &[pod], 5, 0);
        assert_eq!(t["rows"][0]["cells"][1], "1/2");
        assert_eq!(t["rows"][0]["cells"][3], "1");
        assert_eq!(t["rows"][0]["cells"][6], "n1");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 7);
    }
}
