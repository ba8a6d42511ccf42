//! A week of monitoring history for the simulated VMs, as Prometheus would hold it (one sample a
//! minute): each VM ran in an earlier launcher pod (its own name and UID) for the week before the
//! simulator started, then in its current pod. Every figure comes from the simulator's workload
//! model (`workload::sample` through `tick::clamped` and `hosttree::launcher_cgroups`, the same
//! cgroups the nodes' files and the cadvisor endpoint show), at the pod's age at that minute. Two
//! events are added, deterministically: the first VM (by namespace and name) with a memory limit
//! has a 4-minute spike on the third day, the second one is OOM-killed on the fifth day (the
//! compute container restarts in the same pod, cAdvisor counts an OOM event, kube-state-metrics
//! says `OOMKilled`).

use std::collections::BTreeMap;

use super::cadvisor::{container_labels, LAUNCHER_IMAGE};
use crate::hosttree::{launcher_cgroups, CgroupFiles};
use crate::promql::{Labels, Series};
use crate::tick::clamped;
use crate::world::{Launcher, World};

pub const SCRAPE_SECONDS: i64 = 60;
pub const WEEK: i64 = 7 * 86400;
const SPIKE_SECONDS: i64 = 240;
const LAST_TERMINATED: &str = "kube_pod_container_status_last_terminated_reason";

/// One launcher pod's life, in unix seconds.
struct PodLife<'a> {
    l: &'a Launcher,
    name: String,
    uid: String,
    /// Unix time of the pod's start (the workload's age 0).
    born: i64,
    /// Samples in `[from, until)`.
    until: i64,
    /// Its history's events (the earlier pods only).
    spike: Option<i64>,
    oom_at: Option<i64>,
    /// A workload that outgrows its limit within the window is OOM-killed each time it reaches
    /// it (the memcg never holds more than its limit): the seconds from start to each kill.
    kill_period: Option<i64>,
}

/// The earlier launcher `l` as its own pod: none of the current launcher's kills.
fn as_earlier_pod(l: &Launcher) -> Launcher {
    let mut l = l.clone();
    l.killed_at = None;
    l
}

/// The age at which `l`'s compute container first outgrows its limit, if before `horizon`
/// seconds: the kernel kills it there (found by bisection on the workload model).
fn kill_period(l: &Launcher, horizon: f64) -> Option<i64> {
    let limit = l.compute_limit?;
    let over = |age: f64| clamped(l, age).compute_usage() > limit;
    if !over(horizon) {
        return None;
    }
    let (mut lo, mut hi) = (0.0, horizon);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if over(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some((lo as i64).max(SCRAPE_SECONDS))
}

/// The unix time of model time `t` (seconds since the simulator started).
fn unix_of(w: &World, t: f64) -> i64 {
    let wall = w
        .clock
        .wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (wall - (w.now() - t)) as i64
}

/// A short deterministic hash for names.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn earlier_pod_name(l: &Launcher) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = hash(&format!("{}/{}", l.namespace, l.vm_name));
    let suffix: String = (0..5)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect();
    format!("virt-launcher-{}-{suffix}", l.vm_name)
}

fn earlier_pod_uid(l: &Launcher) -> String {
    let h = hash(&format!("earlier {}/{}", l.namespace, l.vm_name));
    let g = hash(&format!("uid {h}"));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        g >> 52,
        g & 0xffff_ffff_ffff
    )
}

/// Every pod life to draw history from: per VM its earlier pod (anchored at its first current
/// launcher) and every current launcher.
fn lives(w: &World) -> Vec<PodLife<'_>> {
    let now = unix_of(w, w.now());
    let mut first: BTreeMap<(&str, &str), &Launcher> = BTreeMap::new();
    for l in w.launchers.values() {
        let e = first.entry((&l.namespace, &l.vm_name)).or_insert(l);
        if l.started < e.started {
            *e = l;
        }
    }
    let limited: Vec<&Launcher> = first
        .values()
        .copied()
        .filter(|l| l.compute_limit.is_some())
        .collect();
    let mut out = Vec::new();
    for l in first.values() {
        let start = unix_of(w, l.started);
        let week_start = start - WEEK;
        let day = |d: i64, minute: i64| week_start + d * 86400 + minute * 60;
        let is = |k: usize| limited.get(k).is_some_and(|x| std::ptr::eq(*x, *l));
        let born = week_start - 3600;
        out.push(PodLife {
            l,
            name: earlier_pod_name(l),
            uid: earlier_pod_uid(l),
            born,
            until: start,
            spike: is(0).then(|| day(2, 14 * 60 + 20)),
            oom_at: is(1).then(|| day(4, 9 * 60 + 40)),
            kill_period: kill_period(&as_earlier_pod(l), (start - born) as f64),
        });
    }
    for l in w.launchers.values() {
        out.push(PodLife {
            l,
            name: l.pod_name.clone(),
            uid: l.pod_uid.clone(),
            born: unix_of(w, l.started),
            until: now + 1,
            spike: None,
            oom_at: None,
            // the current pod's own kills are in its launcher (`killed_at`)
            kill_period: None,
        });
    }
    out
}

/// What the cgroups of a pod life held at unix time `t`: (pod cgroup, compute container, OOM
/// kills of the compute container so far).
fn cgroups_at(life: &PodLife, t: i64) -> (CgroupFiles, CgroupFiles, u64) {
    let restarted = life.oom_at.filter(|o| *o < t);
    let age = (t - restarted.unwrap_or(life.born)).max(0);
    let l = if life.name != life.l.pod_name {
        as_earlier_pod(life.l)
    } else {
        life.l.clone()
    };
    // Killed at its limit each period, the container starts over (as a restarted container).
    let (kills, age) = life
        .kill_period
        .map_or((0, age), |p| ((age / p) as u64, age % p));
    let s = clamped(&l, age as f64);
    let cg = launcher_cgroups(&l, &s);
    let mut compute = cg
        .containers
        .iter()
        .find(|(name, _, _)| *name == "compute")
        .map(|(_, _, c)| c.clone())
        .unwrap_or_default();
    let mut pod = cg.pod;
    let limit = compute.limit.unwrap_or(0);
    let mut target = None;
    if life
        .spike
        .is_some_and(|at| (at..at + SPIKE_SECONDS).contains(&t))
    {
        target = Some(limit - limit / 32);
    }
    if life.oom_at == Some(t) {
        target = Some(limit);
    }
    if let Some(target) = target {
        let extra = (target - compute.total.usage()).max(0);
        compute.total.anon += extra;
        pod.total.anon += extra;
    }
    let ooms = if life.name == life.l.pod_name {
        life.l.killed_at.map_or(0, |_| life.l.oom_kills)
    } else {
        u64::from(restarted.is_some()) + kills
    };
    (pod, compute, ooms)
}

/// The series of `metric` with samples in `[from, to]`.
pub fn series(w: &World, metric: &str, from: i64, to: i64) -> Vec<Series> {
    let now = unix_of(w, w.now());
    let week_floor = now - WEEK - 86400;
    let from = from.max(week_floor);
    let mut out = Vec::new();
    for life in lives(w) {
        // scrapes every minute from the pod's start, the first one as it starts
        let first = from.max(life.born);
        let first = first
            + (SCRAPE_SECONDS - (first - life.born).rem_euclid(SCRAPE_SECONDS)) % SCRAPE_SECONDS;
        let last = to.min(life.until - 1).min(now);
        if first > last {
            continue;
        }
        if let Some(mut s) = life_series(w, &life, metric) {
            let mut max_usage = (0i64, 0i64);
            let mut t = first;
            while t <= last {
                if metric == LAST_TERMINATED && life.oom_at.is_some_and(|o| t <= o) {
                    t += SCRAPE_SECONDS;
                    continue;
                }
                let (pod, compute, ooms) = cgroups_at(&life, t);
                for (i, (series, value)) in s
                    .iter_mut()
                    .zip(values(metric, &pod, &compute, ooms, &life))
                    .enumerate()
                {
                    let value = if metric == "container_memory_max_usage_bytes" {
                        let m = if i == 0 {
                            &mut max_usage.0
                        } else {
                            &mut max_usage.1
                        };
                        *m = (*m).max(value);
                        *m
                    } else {
                        value
                    };
                    series.samples.push((t, value as f64));
                }
                t += SCRAPE_SECONDS;
            }
            out.extend(s.into_iter().filter(|s| !s.samples.is_empty()));
        }
    }
    out
}

/// The values of `metric` for its series of one pod (as `life_series` lists them).
fn values(
    metric: &str,
    pod: &CgroupFiles,
    compute: &CgroupFiles,
    ooms: u64,
    life: &PodLife,
) -> Vec<i64> {
    let ws = |c: &CgroupFiles| (c.total.usage() - c.total.inactive_file).max(0);
    let two = |f: &dyn Fn(&CgroupFiles) -> i64| vec![f(compute), f(pod)];
    match metric {
        "container_memory_working_set_bytes" => two(&ws),
        "container_memory_usage_bytes" | "container_memory_max_usage_bytes" => {
            two(&|c| c.total.usage())
        }
        "container_memory_rss" => two(&|c| c.total.anon),
        "container_memory_cache" => {
            two(&|c| c.total.active_file + c.total.inactive_file + c.total.shmem)
        }
        "container_spec_memory_limit_bytes" => two(&|c| c.limit.unwrap_or(0)),
        "container_oom_events_total" => vec![ooms as i64, ooms as i64],
        "kubevirt_vmi_memory_resident_bytes" => vec![compute.total.anon - ws(compute) / 64],
        "kubevirt_vmi_memory_domain_bytes" => vec![life.l.shape.guest],
        "kube_pod_container_resource_limits" => vec![compute.limit.unwrap_or(0)],
        "kube_pod_container_status_last_terminated_reason" | "kube_pod_labels" => vec![1],
        _ => Vec::new(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The (empty) series of `metric` for one pod life, labelled as its exporter does and as
/// rancher-monitoring's scrape configs add `job`, `instance`, `node`, `metrics_path`.
fn life_series(w: &World, life: &PodLife, metric: &str) -> Option<Vec<Series>> {
    let l = life.l;
    let node_ip = w
        .nodes
        .get(&l.node)
        .map_or("", |n| n.ip.as_str())
        .to_string();
    let series = |labels: Labels| Series {
        labels,
        samples: Vec::new(),
    };
    let named = |mut s: Labels| {
        s.insert("__name__".into(), metric.into());
        series(s)
    };
    let kubelet = |mut s: Labels| {
        s.extend(labels(&[
            ("instance", &format!("{node_ip}:10250")),
            ("job", "kubelet"),
            ("metrics_path", "/metrics/cadvisor"),
            ("node", &l.node),
        ]));
        s
    };
    let ksm = |extra: &[(&str, &str)]| {
        let mut s = labels(&[
            ("container", "compute"),
            ("instance", "10.42.0.17:8080"),
            ("job", "kube-state-metrics"),
            ("namespace", &l.namespace),
            ("node", &l.node),
            ("pod", &life.name),
            ("uid", &life.uid),
        ]);
        s.extend(labels(extra));
        s
    };
    let compute_id = if life.name == l.pod_name {
        l.container_ids[1].clone()
    } else {
        format!(
            "{:016x}{:016x}{:016x}{:016x}",
            hash(&life.uid),
            hash(&life.name),
            hash(&l.vm_name),
            hash(&l.namespace)
        )
    };
    Some(match metric {
        m if m.starts_with("container_") => {
            let pod = kubelet(container_labels(w, l, &life.uid, &life.name, None));
            let compute = kubelet(container_labels(
                w,
                l,
                &life.uid,
                &life.name,
                Some(("compute", &compute_id, LAUNCHER_IMAGE)),
            ));
            vec![named(compute), named(pod)]
        }
        "kubevirt_vmi_memory_resident_bytes" | "kubevirt_vmi_memory_domain_bytes" => {
            vec![named(labels(&[
                ("instance", &format!("{node_ip}:8443")),
                ("job", "kubevirt-prometheus-metrics"),
                ("name", &l.vm_name),
                ("namespace", &l.namespace),
                ("node", &l.node),
            ]))]
        }
        "kube_pod_container_resource_limits" => {
            vec![named(ksm(&[("resource", "memory"), ("unit", "byte")]))]
        }
        "kube_pod_container_status_last_terminated_reason" => {
            life.oom_at?;
            vec![named(ksm(&[("reason", "OOMKilled")]))]
        }
        "kube_pod_labels" => {
            let mut s = ksm(&[
                ("label_kubevirt_io", "virt-launcher"),
                ("label_kubevirt_io_created_by", &l.vmi_uid),
                ("label_vm_kubevirt_io_name", &l.vm_name),
            ]);
            s.remove("container");
            vec![named(s)]
        }
        _ => return None,
    })
}

/// The OOM kill times of the history, for tests: (namespace, VM, earlier pod, time).
pub fn events(w: &World) -> Vec<(String, String, String, &'static str, i64)> {
    lives(w)
        .into_iter()
        .flat_map(|life| {
            let who = (
                life.l.namespace.clone(),
                life.l.vm_name.clone(),
                life.name.clone(),
            );
            let spike = life
                .spike
                .map(|t| (who.0.clone(), who.1.clone(), who.2.clone(), "spike", t));
            let oom = life.oom_at.map(|t| (who.0, who.1, who.2, "oom", t));
            spike.into_iter().chain(oom)
        })
        .collect()
}
