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

/// The pod's own `memory` before cAdvisor has sampled its cgroup a second time: all zeros (and
/// availableBytes = the whole limit), as a kubelet v1.20 on cgroup v1 serves it for a new pod.
fn unsampled(time: &str, c: &CgroupFiles) -> Value {
    let empty = CgroupFiles {
        limit: c.limit,
        ..CgroupFiles::default()
    };
    let mut m = memory(time, &empty);
    m["majorPageFaults"] = json!(0);
    m
}

/// When cAdvisor last sampled launcher `l`'s cgroups, as of model time `now`: every `period`
/// seconds from the pod's start (`period` 0: at `now`). Also whether that is its first sample.
pub fn sampled_at(l: &Launcher, now: f64, period: f64) -> (f64, bool) {
    if period <= 0.0 {
        return (now, false);
    }
    let rounds = ((now - l.started).max(0.0) / period).floor();
    (l.started + rounds * period, rounds == 0.0)
}

/// One pod of the Summary: its containers' and its own memory as sampled at `time` (the pod's
/// own all zeros at its `first` sample).
fn pod(
    l: &Launcher,
    cgroups: &LauncherCgroups,
    started: &str,
    (time, first): (&str, bool),
    v2: bool,
) -> Value {
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
        "memory": if first { unsampled(time, &cgroups.pod) } else { memory(time, &cgroups.pod) },
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
    // The kubelet reports the same counters the node's cgroup files show, as cAdvisor last
    // sampled them (every `housekeeping` seconds; the files step every counter period).
    let period = n.housekeeping;
    let node_at = if period > 0.0 {
        (w.now() / period).floor() * period
    } else {
        w.now()
    };
    let time = w.clock.timestamp_at(node_at);
    let mut pods = Vec::new();
    let (mut used, mut inactive, mut rss) = (0i64, 0i64, 0i64);
    for l in w.launchers.values().filter(|l| l.node == node) {
        let (at, first) = sampled_at(l, w.now(), period);
        let sample_time = w.clock.timestamp_at(at);
        let s = clamped(l, w.exec.cpus.counter_time(at) - l.started);
        let cgroups = launcher_cgroups(l, &s);
        used += cgroups.pod.total.usage();
        inactive += cgroups.pod.total.inactive_file;
        rss += cgroups.pod.total.anon;
        let started = w
            .store
            .get(&super::resources::PODS, &l.namespace, &l.pod_name)
            .and_then(|p| p["status"]["startTime"].as_str().map(str::to_string))
            .unwrap_or_else(|| time.clone());
        pods.push(pod(
            l,
            &cgroups,
            &started,
            (&sample_time, first),
            n.cgroup_v2,
        ));
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
