//! cAdvisor's container memory metrics as the kubelet serves them at `/metrics/cadvisor`
//! (Prometheus text format 0.0.4), from the node's simulated cgroups right now: one series per
//! container of each launcher pod (`container`, `id` = the cgroup path, `image`, `name` = the
//! runtime's container ID, `namespace`, `pod`), one for the sandbox (pause: `container` empty,
//! `image` and `name` set) and one for the pod's own cgroup, where cAdvisor leaves `container`,
//! `image` and `name` empty, as kubelet v1.20.2 does with containerd. cgroup v1 figures: usage =
//! memory.usage_in_bytes, working set = usage − total_inactive_file, rss = total_rss, cache =
//! total_cache.

use std::fmt::Write;

use crate::hosttree::{launcher_cgroups, pod_slice, scope, CgroupFiles};
use crate::promql::Labels;
use crate::status::ApiError;
use crate::tick::clamped;
use crate::world::{Launcher, World};

pub const LAUNCHER_IMAGE: &str = "registry.suse.com/suse/sles/15.5/virt-launcher:1.3.0";
const SIDECAR_IMAGE: &str = "registry.suse.com/suse/sles/15.5/virt-launcher:1.3.0";
const PAUSE_IMAGE: &str = "registry.rancher.com/rancher/mirrored-pause:3.6";

/// The labels cAdvisor gives a series of pod `pod_name` (UID `pod_uid`) of launcher `l`: the
/// pod's cgroup for `None`, else the container `(name, runtime ID, image)`.
pub fn container_labels(
    w: &World,
    l: &Launcher,
    pod_uid: &str,
    pod_name: &str,
    container: Option<(&str, &str, &str)>,
) -> Labels {
    let driver = w
        .nodes
        .get(&l.node)
        .map(|n| n.cgroup_driver)
        .unwrap_or_default();
    let slice = pod_slice(driver, l.qos, pod_uid);
    let (container, id, image, name) = match container {
        Some((c, cid, image)) => (c, format!("{slice}/{}", scope(driver, cid)), image, cid),
        None => ("", slice, "", ""),
    };
    [
        ("container", container),
        ("id", id.as_str()),
        ("image", image),
        ("name", name),
        ("namespace", l.namespace.as_str()),
        ("pod", pod_name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&CgroupFiles) -> i64,
}

const FAMILIES: [Family; 7] = [
    Family {
        name: "container_memory_cache",
        help: "Number of bytes of page cache memory.",
        kind: "gauge",
        value: |c| c.total.active_file + c.total.inactive_file + c.total.shmem,
    },
    Family {
        name: "container_memory_max_usage_bytes",
        help: "Maximum memory usage recorded in bytes",
        kind: "gauge",
        value: |c| c.max_usage.max(c.total.usage()),
    },
    Family {
        name: "container_memory_rss",
        help: "Size of RSS in bytes.",
        kind: "gauge",
        value: |c| c.total.anon,
    },
    Family {
        name: "container_memory_usage_bytes",
        help:
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
        kind: "gauge",
        value: |c| c.total.usage(),
    },
    Family {
        name: "container_memory_working_set_bytes",
        help: "Current working set in bytes.",
        kind: "gauge",
        value: |c| (c.total.usage() - c.total.inactive_file).max(0),
    },
    Family {
        name: "container_oom_events_total",
        help: "Count of out of memory events observed for the container",
        kind: "counter",
        value: |c| c.oom_kill as i64,
    },
    Family {
        name: "container_spec_memory_limit_bytes",
        help: "Memory limit for the container.",
        kind: "gauge",
        value: |c| c.limit.unwrap_or(0),
    },
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition for `node`: 404 when there is no such node, 503 when it hangs.
pub fn exposition(w: &World, node: &str) -> Result<String, ApiError> {
    if !w.nodes.contains_key(node) {
        return Err(ApiError::not_found(&crate::resources::NODES, node));
    }
    if w.exec.hung_nodes.contains(node) {
        return Err(ApiError::service_unavailable(format!(
            "error trying to reach service: dial tcp {node}:10250: i/o timeout"
        )));
    }
    let now = w.exec.cpus.counter_time(w.now());
    let millis = w
        .clock
        .wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut rows: Vec<(Labels, CgroupFiles)> = Vec::new();
    for l in w.launchers.values().filter(|l| l.node == node) {
        let cg = launcher_cgroups(l, &clamped(l, now - l.started));
        for (name, id, files) in &cg.containers {
            // the sandbox (pause) has no container name, but its image and ID
            let (container, image) = match *name {
                "compute" => ("compute", LAUNCHER_IMAGE),
                "pause" => ("", PAUSE_IMAGE),
                other => (other, SIDECAR_IMAGE),
            };
            let labels =
                container_labels(w, l, &l.pod_uid, &l.pod_name, Some((container, id, image)));
            rows.push((labels, files.clone()));
        }
        rows.push((
            container_labels(w, l, &l.pod_uid, &l.pod_name, None),
            cg.pod.clone(),
        ));
    }
    let mut out = String::new();
    for f in &FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, files) in &rows {
            let body: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(
                out,
                "{}{{{}}} {} {millis}",
                f.name,
                body.join(","),
                (f.value)(files)
            );
        }
    }
    Ok(out)
}
