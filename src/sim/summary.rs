//! The kubelet Summary API (`/api/v1/nodes/{node}/proxy/stats/summary`): per-pod and
//! per-container memory as the kubelet reports it from cgroups (usage, working set, RSS), with no
//! per-process detail. Built from the same workload model as the host trees.

use serde_json::{json, Value};

use super::tick::clamped;
use super::workload::Sample;
use super::world::{Launcher, World};

fn memory(time: &str, usage: i64, inactive_file: i64, rss: i64, limit: Option<i64>) -> Value {
    let working_set = usage - inactive_file;
    let mut m = json!({"time": time, "usageBytes": usage, "workingSetBytes": working_set, "rssBytes": rss,
                       "pageFaults": rss / 4096 * 2, "majorPageFaults": 0});
    if let Some(l) = limit {
        m["availableBytes"] = json!((l - working_set).max(0));
    }
    m
}

fn container(
    name: &str,
    started: &str,
    time: &str,
    usage: i64,
    inactive: i64,
    rss: i64,
    limit: Option<i64>,
) -> Value {
    json!({"name": name, "startTime": started, "memory": memory(time, usage, inactive, rss, limit)})
}

fn pod(l: &Launcher, s: &Sample, started: &str, time: &str) -> Value {
    let compute_rss = s.compute_anon();
    let mut containers = vec![container(
        "compute",
        started,
        time,
        s.compute_usage(),
        s.inactive_file,
        compute_rss,
        l.compute_limit,
    )];
    if l.has_console_sidecar() {
        containers.push(container(
            "guest-console-log",
            started,
            time,
            s.sidecar.anon,
            0,
            s.sidecar.anon,
            Some(60_000_000 / 4096 * 4096),
        ));
    }
    json!({
        "podRef": {"name": l.pod_name, "namespace": l.namespace, "uid": l.pod_uid},
        "startTime": started,
        "containers": containers,
        "memory": memory(time, s.pod_usage(), s.inactive_file, compute_rss + s.sidecar.anon + s.pause.anon, l.pod_limit),
    })
}

/// The summary of `node`, or `None` when the node does not exist.
pub fn summary(w: &World, node: &str) -> Option<Value> {
    let n = w.nodes.get(node)?;
    let now = w.now();
    let time = w.timestamp();
    let mut pods = Vec::new();
    let (mut used, mut inactive, mut rss) = (0i64, 0i64, 0i64);
    for l in w.launchers.values().filter(|l| l.node == node) {
        let s = clamped(l, now - l.started);
        used += s.pod_usage();
        inactive += s.inactive_file;
        rss += s.compute_anon() + s.sidecar.anon + s.pause.anon;
        let started = w
            .store
            .get(&super::resources::PODS, &l.namespace, &l.pod_name)
            .and_then(|p| p["status"]["startTime"].as_str().map(str::to_string))
            .unwrap_or_else(|| time.clone());
        pods.push(pod(l, &s, &started, &time));
    }
    let system = 3 << 30;
    Some(json!({
        "node": {"nodeName": node, "startTime": time,
                 "memory": memory(&time, used + system, inactive, rss + system / 2, Some(n.memory))},
        "pods": pods,
    }))
}
