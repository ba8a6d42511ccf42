//! Time passing: created pods start, scheduled VM restarts happen, and launchers whose memory
//! crosses their cgroup limit get qemu OOM-killed (kernel report, counters, VMI failure).

use std::io;

use serde_json::{json, Value};

use super::hosttree::{self, LauncherNow};
use super::kubevirt;
use super::oomlog::{self, OomReport, Task};
use super::resources::PODS;
use super::treefiles::TreeWriter;
use super::workload::{first_over, sample, Sample};
use super::world::{Launcher, NodeModel, Scheduled, World};

/// Keep at most this many kernel log lines per node.
const KERNEL_LOG_MAX: usize = 20_000;

/// Advance the world to the clock's current time.
pub fn tick(w: &mut World) {
    let now = w.now();
    let (due, later): (Vec<_>, Vec<_>) = w.scheduled.drain(..).partition(|(at, _)| *at <= now);
    w.scheduled = later;
    for (_, what) in due {
        match what {
            Scheduled::PodRunning { ns, name } => pod_running(w, &ns, &name),
            Scheduled::StartVm { ns, name } => kubevirt::start_after_failure(w, &ns, &name),
            Scheduled::DomainStarted { ns, name, vmi_uid } => {
                kubevirt::domain_started(w, &ns, &name, &vmi_uid)
            }
            Scheduled::PodGone { ns, name, vmi_uid } => {
                kubevirt::launcher_pod_gone(w, &ns, &name, &vmi_uid)
            }
            Scheduled::PodDeadline { ns, name, uid } => pod_deadline(w, &ns, &name, &uid),
            Scheduled::Hotplug { ns, name, vmi_uid } => {
                super::hotplug::hotplug(w, &ns, &name, &vmi_uid)
            }
            Scheduled::HotplugDone { ns, name, vmi_uid } => {
                super::hotplug::hotplug_done(w, &ns, &name, &vmi_uid)
            }
        }
    }
    let mut kills = Vec::new();
    for l in w.launchers.values_mut() {
        if l.killed_at.is_some() || l.never_over {
            continue;
        }
        let (from, to) = (l.checked_until - l.started, now - l.started);
        l.checked_until = now;
        if let Some((t, pod_level)) = first_memcg_over(l, from, to) {
            kills.push((l.pod_uid.clone(), t, pod_level));
        }
    }
    for (uid, t, pod_level) in kills {
        oom_kill(w, &uid, t, pod_level);
    }
    super::oomlog_sidecar::console_log_kills(w, now);
}

/// When, between `from` and `to`, the launcher's memory first crosses a limit, and whether that
/// limit is the pod's (`true`) or compute's. The kernel charges a page to compute's memcg and
/// then to each parent: the first limit crossed is the memcg that hits (compute's on a tie, as
/// it is charged first). The pod's limit is compute's plus the sidecars' (each held below its
/// own), so compute's binds first unless the containers without a limit of their own (pause)
/// take the pod over.
fn first_memcg_over(l: &Launcher, from: f64, to: f64) -> Option<(f64, bool)> {
    let compute = l
        .compute_limit
        .and_then(|lim| first_over(&l.shape, &l.params, from, to, lim, false));
    let pod = l
        .pod_limit
        .and_then(|lim| first_over(&l.shape, &l.params, from, to, lim, true));
    match (compute, pod) {
        (Some(c), Some(p)) if p < c => Some((p, true)),
        (Some(c), _) => Some((c, false)),
        (None, Some(p)) => Some((p, true)),
        (None, None) => None,
    }
}

/// The launcher's memory at `t` seconds after start, page cache reclaimed down to its limit,
/// without qemu once it was killed.
pub fn clamped(l: &Launcher, t: f64) -> Sample {
    let t = l.killed_at.map_or(t, |k| t.min(k - l.started));
    let mut s = sample(&l.shape, &l.params, t);
    if l.killed_at.is_some() {
        s.compute.retain(|p| p.comm != l.shape.qemu_comm);
        s.guest_resident = 0;
        s.pagetables /= 16;
    }
    if let Some(lim) = l.compute_limit {
        let excess = s.compute_usage() - lim;
        if excess > 0 {
            let from_inactive = excess.min(s.inactive_file);
            s.inactive_file -= from_inactive;
            s.active_file -= (excess - from_inactive).min(s.active_file);
        }
    }
    s
}

fn pod_running(w: &mut World, ns: &str, name: &str) {
    let Some(mut pod) = w.store.get(&PODS, ns, name).cloned() else {
        return;
    };
    if pod["status"]["phase"] != json!("Pending") {
        return;
    }
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
    let Some(host_ip) = w.nodes.get(&node).map(|n| n.ip.clone()) else {
        return;
    };
    let now = w.timestamp();
    let host_network = pod["spec"]["hostNetwork"].as_bool() == Some(true);
    let ip = if host_network {
        host_ip.clone()
    } else {
        w.alloc_ip()
    };
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let image = c["image"].as_str().unwrap_or("");
                    json!({"name": c["name"], "image": image, "imageID": format!("docker.io/library/{image}@sha256:{:064x}", 7),
                           "containerID": format!("containerd://{:064x}", rand::random::<u64>()), "ready": true, "started": true,
                           "restartCount": 0, "state": {"running": {"startedAt": now}}, "lastState": {}})
                })
                .collect()
        })
        .unwrap_or_default();
    let conditions = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        .map(|t| pod_condition(t, &json!(now)));
    pod["status"] = json!({
        "phase": "Running", "hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("Burstable"),
        "conditions": conditions,
        "containerStatuses": statuses
    });
    let deadline = pod["spec"]["activeDeadlineSeconds"].as_f64();
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let _ = w.store.replace(&PODS, pod);
    if let Some(secs) = deadline {
        w.schedule(
            secs,
            Scheduled::PodDeadline {
                ns: ns.into(),
                name: name.into(),
                uid,
            },
        );
    }
}

/// A pod condition that is true since `since`, as the kubelet writes it.
fn pod_condition(kind: &str, since: &Value) -> Value {
    json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": since})
}

/// Like the kubelet: a pod past its `activeDeadlineSeconds` is killed and fails.
fn pod_deadline(w: &mut World, ns: &str, name: &str, uid: &str) {
    let Some(mut pod) = w.store.get(&PODS, ns, name).cloned() else {
        return;
    };
    if pod["metadata"]["uid"] != json!(uid) || pod["status"]["phase"] != json!("Running") {
        return;
    }
    let now = w.timestamp();
    pod["status"]["phase"] = json!("Failed");
    pod["status"]["reason"] = json!("DeadlineExceeded");
    pod["status"]["message"] =
        json!("Pod was active on the node longer than the specified deadline");
    if let Some(cs) = pod["status"]["containerStatuses"].as_array_mut() {
        for c in cs.iter_mut().filter(|c| c.is_object()) {
            c["ready"] = json!(false);
            c["state"] =
                json!({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now}});
        }
    }
    let _ = w.store.replace(&PODS, pod);
}

fn oom_kill(w: &mut World, pod_uid: &str, t: f64, pod_level: bool) {
    let Some(l) = w.launchers.get(pod_uid).cloned() else {
        return;
    };
    let s = clamped(&l, t);
    let limit = if pod_level {
        l.pod_limit
    } else {
        l.compute_limit
    }
    .unwrap_or(0);
    let driver = w
        .nodes
        .get(&l.node)
        .map(|n| n.cgroup_driver)
        .unwrap_or_default();
    let slice = hosttree::pod_slice(driver, l.qos, &l.pod_uid);
    let scope = format!("{slice}/{}", hosttree::scope(driver, &l.container_ids[1]));
    let vcpu = (l.shape.seed % l.shape.vcpus.max(1) as u64) as u32;
    let qemu_pid = l.pids[5];
    let mut tasks = Vec::new();
    if pod_level {
        tasks.push(Task::from_proc(l.pids[0], &s.pause));
    }
    for (i, p) in s.compute.iter().enumerate() {
        tasks.push(Task::from_proc(hosttree::compute_pid(&l, i), p));
    }
    let failcnt = l.failcnt + 1000 + (l.shape.seed % 2000);
    let Some(node) = w.nodes.get_mut(&l.node) else {
        return;
    };
    let report = OomReport {
        uptime: node.uptime_at_start + l.started + t,
        kernel: node.kernel.clone(),
        trigger: format!("CPU {vcpu}/KVM"),
        trigger_pid: qemu_pid + 18 + vcpu,
        cpu: (l.shape.seed % node.cpus.max(1) as u64) as u32,
        oom_score_adj: l.oom_score_adj,
        limit_bytes: limit,
        failcnt,
        kmem_bytes: s.pagetables + s.kernel_stack + s.slab,
        oom_memcg: if pod_level {
            slice.clone()
        } else {
            scope.clone()
        },
        task_memcg: scope,
        cpuset: hosttree::scope(driver, &l.container_ids[1]),
        tasks,
        victim_pid: qemu_pid,
        victim: s.compute[4].clone(),
        stat: s,
    };
    node.kernel_log.extend(oomlog::render(&report));
    let n = node.kernel_log.len();
    if n > KERNEL_LOG_MAX {
        node.kernel_log.drain(..n - KERNEL_LOG_MAX);
    }
    if let Some(lm) = w.launchers.get_mut(pod_uid) {
        lm.killed_at = Some(lm.started + t);
        lm.oom_kills += 1;
        lm.failcnt = failcnt;
        lm.max_usage = limit;
        lm.killed_by_pod_limit = pod_level;
    }
    mark_pod_failed(w, &l);
    kubevirt::vmi_failed(w, &l.namespace, &l.vm_name, "Crashed");
}

fn mark_pod_failed(w: &mut World, l: &Launcher) {
    let Some(mut pod) = w.store.get(&PODS, &l.namespace, &l.pod_name).cloned() else {
        return;
    };
    let now = w.timestamp();
    pod["status"]["phase"] = json!("Failed");
    // As the kubelet writes them for a pod that ended (its generator's "PodCompleted").
    let since = |t: &str| {
        json!({"type": t, "status": "False", "reason": "PodCompleted",
                                 "lastProbeTime": null, "lastTransitionTime": now})
    };
    pod["status"]["conditions"] = json!([
        pod_condition("Initialized", &pod["status"]["startTime"]),
        since("Ready"),
        since("ContainersReady"),
        pod_condition("PodScheduled", &pod["status"]["startTime"]),
    ]);
    if let Some(cs) = pod["status"]["containerStatuses"].as_array_mut() {
        for c in cs.iter_mut().filter(|c| c["name"] == json!("compute")) {
            c["ready"] = json!(false);
            c["started"] = json!(false);
            // containerd calls an exit OOMKilled when the container's memcg (or one above it)
            // saw an OOM kill in its life: qemu's kill takes virt-launcher down with it.
            c["state"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
                "startedAt": c["state"]["running"]["startedAt"], "finishedAt": now,
                "containerID": c["containerID"],
                "message": "server error. command SyncVMI failed: qemu-system-x86 was killed (signal 9)"}});
        }
    }
    let _ = w.store.replace(&PODS, pod);
}

/// Write a node's host tree from the model at the current counter time (only what changed).
pub fn write_host_tree(w: &mut World, node: &str) -> io::Result<std::path::PathBuf> {
    write_host_tree_at(w, node).map(|(root, _)| root)
}

/// [`write_host_tree`], also giving the tree's generation (it moves only when the content does).
pub fn write_host_tree_at(w: &mut World, node: &str) -> io::Result<(std::path::PathBuf, u64)> {
    let root = hosttree::node_root(&w.host_root, node);
    let Some(model) = w.nodes.get(node) else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("node {node} is not in the simulated cluster"),
        ));
    };
    let at = w.exec.cpus.counter_time(w.now());
    let on_node: Vec<&Launcher> = w.launchers.values().filter(|l| l.node == node).collect();
    let inputs = tree_fingerprint(at, model, &on_node);
    let seen = w.exec.trees.entry(node.to_string()).or_default();
    if seen.inputs == Some(inputs) {
        return Ok((root, seen.generation()));
    }
    seen.inputs = None;
    let here: Vec<LauncherNow> = on_node
        .into_iter()
        .map(|l| LauncherNow {
            launcher: l,
            sample: clamped(l, at - l.started),
        })
        .collect();
    let mut writer = TreeWriter::new(seen);
    match hosttree::write_node(&mut writer, &root, model, &here) {
        Ok(()) => {
            let generation = writer.finish();
            if let Some(seen) = w.exec.trees.get_mut(node) {
                seen.inputs = Some(inputs);
            }
            Ok((root, generation))
        }
        Err(e) => {
            // Half written: next time, write it all again.
            writer.finish();
            if let Some(seen) = w.exec.trees.get_mut(node) {
                seen.clear();
            }
            Err(e)
        }
    }
}

/// A hash of everything a node's host tree is written from: the counter time, the node and
/// its launchers (all fields but the tick's bookkeeping). Equal inputs write equal files.
fn tree_fingerprint(at: f64, node: &NodeModel, launchers: &[&Launcher]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    at.to_bits().hash(&mut h);
    let NodeModel {
        name,
        memory,
        cpus,
        kernel,
        uptime_at_start,
        next_pid,
        kernel_log,
        ip,
        cgroup_v2,
        swap,
        cgroup_driver,
        housekeeping: _,
    } = node;
    (
        name,
        memory,
        cpus,
        kernel,
        uptime_at_start.to_bits(),
        next_pid,
        ip,
        cgroup_v2,
        swap,
        cgroup_driver,
    )
        .hash(&mut h);
    // Lines are only appended (and the oldest dropped): the count and the last line say
    // whether it changed.
    (kernel_log.len(), kernel_log.last()).hash(&mut h);
    for l in launchers {
        // Every field, so a new one cannot be forgotten here.
        let Launcher {
            pod_uid,
            pod_name,
            namespace,
            vm_name,
            vmi_uid,
            node,
            qos,
            shape,
            params,
            started,
            compute_limit,
            pod_limit,
            container_ids,
            pids,
            oom_score_adj,
            oom_kills,
            failcnt,
            max_usage,
            killed_at,
            checked_until: _,
            never_over: _,
            overhead,
            console_killed_at,
            killed_by_pod_limit,
        } = l;
        (console_killed_at.map(f64::to_bits), killed_by_pod_limit).hash(&mut h);
        (pod_uid, pod_name, namespace, vm_name, vmi_uid, node, qos).hash(&mut h);
        (
            format!("{shape:?}"),
            format!("{params:?}"),
            started.to_bits(),
        )
            .hash(&mut h);
        (compute_limit, pod_limit, container_ids, pids, oom_score_adj).hash(&mut h);
        (
            oom_kills,
            failcnt,
            max_usage,
            killed_at.map(f64::to_bits),
            overhead,
        )
            .hash(&mut h);
    }
    h.finish()
}

/// Rewrite the host trees of nodes with a running exec session (a long-lived probe keeps seeing
/// fresh numbers), at most once a second per node.
pub fn refresh_host_trees(w: &mut World) {
    let due: Vec<String> = w
        .exec
        .sessions
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(node, _)| node.clone())
        .filter(|node| {
            w.exec
                .written
                .get(node)
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        })
        .collect();
    for node in due {
        if write_host_tree(w, &node).is_ok() {
            w.exec.written.insert(node, std::time::Instant::now());
        }
    }
}

/// A container's own view inside a node's host tree, as exec into it sees on cgroup v1: a
/// `memory` controller that is the container's scope, and only its processes under `proc`.
/// Returns (cgroup root, proc root).
pub fn container_view(
    w: &World,
    node_root: &std::path::Path,
    pod_uid: &str,
    idx: usize,
) -> io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let l = w.launchers.get(pod_uid).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("pod {pod_uid} has no launcher"),
        )
    })?;
    let id = &l.container_ids[idx.min(2)];
    let view = node_root.join("containers").join(id);
    let cg = view.join("cgroup");
    let procs = view.join("proc");
    // A container's own cgroup as it sees it: v1, the scope as its memory hierarchy; v2 (a
    // private cgroup namespace), the scope as its whole /sys/fs/cgroup.
    let v2 = w.nodes.get(&l.node).is_some_and(|n| n.cgroup_v2);
    let driver = w
        .nodes
        .get(&l.node)
        .map(|n| n.cgroup_driver)
        .unwrap_or_default();
    let mem_root = hosttree::cgroup_root(node_root);
    let mem_root = if v2 {
        mem_root
    } else {
        mem_root.join("memory")
    };
    let scope = mem_root
        .join(hosttree::pod_slice(driver, l.qos, &l.pod_uid).trim_start_matches('/'))
        .join(hosttree::scope(driver, id));
    let pids: Vec<u32> = if idx == 1 {
        let at = w.exec.cpus.counter_time(w.now());
        let n = clamped(l, at - l.started).compute.len();
        (0..n).map(|i| hosttree::compute_pid(l, i)).collect()
    } else {
        vec![l.pids[6]]
    };
    let mut links = vec![
        (if v2 { cg.clone() } else { cg.join("memory") }, scope),
        (
            procs.join("sys"),
            hosttree::proc_root(node_root).join("sys"),
        ),
    ];
    for pid in pids {
        links.push((
            procs.join(pid.to_string()),
            hosttree::proc_root(node_root).join(pid.to_string()),
        ));
    }
    // Left alone when it already is this view.
    let entries = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, |r| r.count());
    let same = links
        .iter()
        .all(|(link, target)| std::fs::read_link(link).is_ok_and(|t| t == *target))
        && if v2 {
            entries(&procs) + 1 == links.len()
        } else {
            entries(&cg) + entries(&procs) == links.len()
        };
    if same {
        return Ok((cg, procs));
    }
    match std::fs::remove_dir_all(&view) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if !v2 {
        std::fs::create_dir_all(&cg)?;
    }
    std::fs::create_dir_all(&procs)?;
    for (link, target) in &links {
        symlink(target, link)?;
    }
    Ok((cg, procs))
}

#[cfg(unix)]
fn symlink(target: &std::path::Path, link: &std::path::Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &std::path::Path, _link: &std::path::Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "container views need symlinks (Unix only)",
    ))
}
