//! The kubelet Summary API (`/api/v1/nodes/{node}/proxy/stats/summary`): per-pod and
//! per-container memory as the kubelet reports it from cgroups (usage, working set, RSS), with no
//! per-process detail. Built from the same workload model as the host trees.

use serde_json::{json, Value};

use super::hosttree::{launcher_cgroups, CgroupFiles, Charge, LauncherCgroups};
use super::status::ApiError;
use super::tick::clamped;
use super::world::{Launcher, World};

/// A `memory` object as the kubelet fills it from a cgroup (cadvisor, cgroup v1): usage, working
/// set = usage − total_inactive_file, rss = total_rss, page faults = total_pgfault/pgmajfault, and
/// availableBytes = limit − working set only when the cgroup has a limit.
fn memory(time: &str, c: &CgroupFiles) -> Value {
    let usage = c.total.usage();
    let working_set = (usage - c.total.inactive_file).max(0);
    let mut m = json!({"time": time, "usageBytes": usage, "workingSetBytes": working_set,
                       "rssBytes": c.total.anon, "pageFaults": c.total.anon / 4096 * 2,
                       "majorPageFaults": 1});
    if let Some(l) = c.limit {
        m["availableBytes"] = json!((l - working_set).max(0));
    }
    m
}

/// A `swap` object (Kubernetes 1.28+, cgroup v2): swap in use, and what is left of the limit
/// when there is one.
fn swap(time: &str, c: &CgroupFiles) -> Value {
    let mut s = json!({"time": time, "swapUsageBytes": c.swap});
    if let Some(l) = c.swap_limit {
        s["swapAvailableBytes"] = json!((l - c.swap).max(0));
    }
    s
}

fn pod(l: &Launcher, cgroups: &LauncherCgroups, started: &str, time: &str, v2: bool) -> Value {
    // The sandbox (pause) is not a container to the kubelet.
    let containers: Vec<Value> = cgroups
        .containers
        .iter()
        .filter(|(name, _, _)| *name != "pause")
        .map(|(name, _, c)| {
            let mut v = json!({"name": name, "startTime": started, "memory": memory(time, c)});
            if v2 {
                v["swap"] = swap(time, c);
            }
            v
        })
        .collect();
    json!({
        "podRef": {"name": l.pod_name, "namespace": l.namespace, "uid": l.pod_uid},
        "startTime": started,
        "containers": containers,
        "memory": memory(time, &cgroups.pod),
    })
}

/// The summary of `node`: 404 when the node does not exist, 503 (as the API server's node proxy
/// says it) when the node hangs (`SimHandle::hang_node_exec`).
pub fn summary(w: &World, node: &str) -> Result<Value, ApiError> {
    let n = w
        .nodes
        .get(node)
        .ok_or_else(|| ApiError::not_found(&super::resources::NODES, node))?;
    if w.exec.hung_nodes.contains(node) {
        return Err(ApiError::service_unavailable(format!(
            "error trying to reach service: dial tcp {node}:10250: i/o timeout"
        )));
    }
    // The kubelet reports the same counters the node's cgroup files show.
    let now = w.exec.cpus.counter_time(w.now());
    let time = w.timestamp();
    let mut pods = Vec::new();
    let (mut used, mut inactive, mut rss) = (0i64, 0i64, 0i64);
    for l in w.launchers.values().filter(|l| l.node == node) {
        let s = clamped(l, now - l.started);
        let cgroups = launcher_cgroups(l, &s);
        used += cgroups.pod.total.usage();
        inactive += cgroups.pod.total.inactive_file;
        rss += cgroups.pod.total.anon;
        let started = w
            .store
            .get(&super::resources::PODS, &l.namespace, &l.pod_name)
            .and_then(|p| p["status"]["startTime"].as_str().map(str::to_string))
            .unwrap_or_else(|| time.clone());
        pods.push(pod(l, &cgroups, &started, &time, n.cgroup_v2));
    }
    // The node: its pods plus 3Gi of system memory, half of it anonymous.
    let system = 3 << 30;
    let whole = CgroupFiles {
        limit: Some(n.memory),
        total: Charge {
            anon: rss + system / 2,
            inactive_file: inactive,
            kernel: used + system - (rss + system / 2) - inactive,
            ..Charge::default()
        },
        ..CgroupFiles::default()
    };
    Ok(json!({
        "node": {"nodeName": node, "startTime": time, "memory": memory(&time, &whole)},
        "pods": pods,
    }))
}
