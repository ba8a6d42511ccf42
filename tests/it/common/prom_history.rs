//! A week (or any window) of launcher-pod metric history in the OpenMetrics text format, for
//! `promtool tsdb create-blocks-from openmetrics`: the series a Prometheus in a KubeVirt cluster
//! holds, named and labelled as their exporters do:
//! - cAdvisor through the kubelet's `/metrics/cadvisor` (job `kubelet`): `container_memory_*`,
//!   `container_oom_events_total`, `container_spec_memory_limit_bytes`, labels `namespace`, `pod`,
//!   `container`, `id` (the cgroup path), `image`, `name` (the runtime's container ID), for the
//!   `compute` container and for the pod's own cgroup (`container=""`, `image=""`, `name=""`);
//! - KubeVirt's virt-handler: `kubevirt_vmi_memory_resident_bytes`, `kubevirt_vmi_memory_domain_bytes`
//!   (labels `namespace`, `name` = the VMI's name, `node`);
//! - kube-state-metrics v2: `kube_pod_container_resource_limits` (`resource="memory"`,
//!   `unit="byte"`), `kube_pod_container_status_last_terminated_reason`, `kube_pod_labels` (with the
//!   launcher's labels allowlisted, `label_kubevirt_io_created_by` = the VMI's UID).
//!
//! Pure: no clock, no I/O but the writer it is given. The figures follow a small model of their own
//! (guest pages touched over the first hour of a container, a fixed overhead, a 10-step ripple, a
//! spike, an OOM kill at the limit) so a test knows exactly what the maxima are. Shared with
//! `benches/history.rs` (`#[path]`), so it uses nothing but std.

use std::io::{self, Write};

pub const MIB: i64 = 1 << 20;
pub const GIB: i64 = 1 << 30;
const CACHE: i64 = 48 * MIB;
const RAMP_SECONDS: i64 = 3600;

/// One launcher pod of a VM, alive in `[from, to)` (unix seconds).
#[derive(Debug, Clone)]
pub struct PodSpan {
    pub name: String,
    pub uid: String,
    /// The compute container's runtime ID (cAdvisor's `name` label).
    pub container_id: String,
    pub from: i64,
    pub to: i64,
    /// The compute container's memory limit (the pod's limit less the sidecars'), bytes.
    pub compute_limit: i64,
    /// The pod cgroup's limit, bytes.
    pub pod_limit: i64,
}

/// A few minutes at a fixed working set (`peak` bytes), starting at `at`.
#[derive(Debug, Clone, Copy)]
pub struct Spike {
    pub at: i64,
    pub seconds: i64,
    pub peak: i64,
}

/// One VM's history: its launcher pods (one after the other), guest size, how much of the guest its
/// workload touches, the overhead outside guest RAM, and its events.
#[derive(Debug, Clone)]
pub struct VmHistory {
    pub namespace: String,
    pub name: String,
    pub vmi_uid: String,
    pub node: String,
    pub guest: i64,
    pub touched: i64,
    pub overhead: i64,
    pub pods: Vec<PodSpan>,
    pub spike: Option<Spike>,
    /// The compute container is OOM-killed at the limit at this time and restarted in the same pod.
    pub oom_at: Option<i64>,
}

/// Samples of every VM every `step` seconds in `[start, end)`.
#[derive(Debug, Clone)]
pub struct History {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub vms: Vec<VmHistory>,
}

impl VmHistory {
    /// When the compute container of `pod` last started at or before `t` (an OOM kill restarts it).
    fn container_start(&self, pod: &PodSpan, t: i64) -> i64 {
        match self.oom_at {
            Some(o) if pod.from <= o && o < t && o < pod.to => o,
            _ => pod.from,
        }
    }

    /// The compute container's working set at `t` in `pod`, the model every series derives from.
    pub fn working_set(&self, pod: &PodSpan, t: i64, step: i64) -> i64 {
        if self.oom_at == Some(t) {
            return pod.compute_limit;
        }
        if let Some(s) = self.spike {
            if s.at <= t && t < s.at + s.seconds {
                return s.peak;
            }
        }
        let age = (t - self.container_start(pod, t)).clamp(0, RAMP_SECONDS);
        let ripple = (t / step).rem_euclid(10) * MIB;
        self.touched * age / RAMP_SECONDS + self.overhead + ripple
    }

    /// OOM kills of `pod`'s compute container up to and including `t`.
    fn ooms(&self, pod: &PodSpan, t: i64) -> i64 {
        match self.oom_at {
            Some(o) if pod.from <= o && o < pod.to && o <= t => 1,
            _ => 0,
        }
    }
}

/// One sample line's label set, written as OpenMetrics wants it (`{a="b",...}`), without the
/// empty ones (Prometheus drops them when it scrapes).
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// What cAdvisor labels a series of `pod` with, for the compute container or (`compute` false)
/// the pod's own cgroup. Prometheus' scrape adds `instance`, `job`, `metrics_path`, `node` the way
/// kube-prometheus' and rancher-monitoring's kubelet ServiceMonitor does.
fn cadvisor_labels(vm: &VmHistory, pod: &PodSpan, compute: bool) -> String {
    let pod_cgroup = format!("/kubepods/burstable/pod{}", pod.uid);
    let id = if compute {
        format!("{pod_cgroup}/{}", pod.container_id)
    } else {
        pod_cgroup
    };
    let (container, image, name) = if compute {
        ("compute", LAUNCHER_IMAGE, pod.container_id.as_str())
    } else {
        ("", "", "")
    };
    let instance = format!("{}:10250", node_ip(&vm.node));
    labels(&[
        ("container", container),
        ("id", &id),
        ("image", image),
        ("instance", &instance),
        ("job", "kubelet"),
        ("metrics_path", "/metrics/cadvisor"),
        ("name", name),
        ("namespace", &vm.namespace),
        ("node", &vm.node),
        ("pod", &pod.name),
    ])
}

pub const LAUNCHER_IMAGE: &str = "registry.suse.com/suse/sles/15.5/virt-launcher:1.1.1";

/// A stable private address for a node's name (the scrape's `instance`); never dialled.
fn node_ip(node: &str) -> String {
    let h = node
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    format!("10.52.{}.{}", (h >> 8) % 250 + 1, h % 250 + 1)
}

/// The metric families, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    WorkingSet,
    Usage,
    MaxUsage,
    Rss,
    Cache,
    OomEvents,
    SpecLimit,
    Resident,
    Domain,
    KsmLimits,
    KsmLastTerminated,
    KsmLabels,
}

pub const FAMILIES: [Family; 12] = [
    Family::WorkingSet,
    Family::Usage,
    Family::MaxUsage,
    Family::Rss,
    Family::Cache,
    Family::OomEvents,
    Family::SpecLimit,
    Family::Resident,
    Family::Domain,
    Family::KsmLimits,
    Family::KsmLastTerminated,
    Family::KsmLabels,
];

impl Family {
    /// The sample name (as queried) and the OpenMetrics family name and type.
    pub fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Family::WorkingSet => ("container_memory_working_set_bytes", "", "gauge"),
            Family::Usage => ("container_memory_usage_bytes", "", "gauge"),
            Family::MaxUsage => ("container_memory_max_usage_bytes", "", "gauge"),
            Family::Rss => ("container_memory_rss", "", "gauge"),
            Family::Cache => ("container_memory_cache", "", "gauge"),
            Family::OomEvents => (
                "container_oom_events_total",
                "container_oom_events",
                "counter",
            ),
            Family::SpecLimit => ("container_spec_memory_limit_bytes", "", "gauge"),
            Family::Resident => ("kubevirt_vmi_memory_resident_bytes", "", "gauge"),
            Family::Domain => ("kubevirt_vmi_memory_domain_bytes", "", "gauge"),
            Family::KsmLimits => ("kube_pod_container_resource_limits", "", "gauge"),
            Family::KsmLastTerminated => (
                "kube_pod_container_status_last_terminated_reason",
                "",
                "gauge",
            ),
            Family::KsmLabels => ("kube_pod_labels", "", "gauge"),
        }
    }

    pub fn metric(self) -> &'static str {
        self.names().0
    }
}

/// The series of one family for one pod: (labels, value at t) pairs.
type SeriesFn<'a> = Box<dyn Fn(i64) -> Option<i64> + 'a>;

fn pod_series<'a>(
    fam: Family,
    vm: &'a VmHistory,
    pod: &'a PodSpan,
    step: i64,
) -> Vec<(String, SeriesFn<'a>)> {
    let ws = move |t: i64| vm.working_set(pod, t, step);
    let both = |f: SeriesFn<'a>, g: SeriesFn<'a>| {
        vec![
            (cadvisor_labels(vm, pod, true), f),
            (cadvisor_labels(vm, pod, false), g),
        ]
    };
    // The pod cgroup holds the compute container plus the sidecars' and pause's few MiB.
    const SIDECARS: i64 = 12 * MIB;
    let virt = || {
        labels(&[
            ("instance", "10.52.0.9:8443"),
            ("job", "kubevirt-prometheus-metrics"),
            ("name", &vm.name),
            ("namespace", &vm.namespace),
            ("node", &vm.node),
        ])
    };
    let ksm = |extra: &[(&str, &str)]| {
        let mut l = vec![
            ("container", "compute"),
            ("instance", "10.52.0.7:8080"),
            ("job", "kube-state-metrics"),
            ("namespace", vm.namespace.as_str()),
            ("node", vm.node.as_str()),
            ("pod", pod.name.as_str()),
            ("uid", pod.uid.as_str()),
        ];
        l.extend_from_slice(extra);
        l.sort();
        labels(&l)
    };
    match fam {
        Family::WorkingSet => both(
            Box::new(move |t| Some(ws(t))),
            Box::new(move |t| Some(ws(t) + SIDECARS)),
        ),
        // Usage never passes a cgroup's limit: the kernel reclaims the page cache before it
        // kills (at the OOM kill the working set is the limit and the cache is gone).
        Family::Usage => both(
            Box::new(move |t| Some((ws(t) + CACHE).min(pod.compute_limit))),
            Box::new(move |t| Some((ws(t) + CACHE + SIDECARS).min(pod.pod_limit))),
        ),
        Family::MaxUsage => {
            // cgroup v1's memory.max_usage_in_bytes: the highest usage since the cgroup was made;
            // an OOM kill makes a new container cgroup, the pod's stays.
            // The working set's ramp never falls, so the highest sample so far is among the last
            // ten (one ripple period), or the spike or the OOM kill when they came since `from`.
            let running_max = move |t: i64, from: i64, extra: i64| {
                let recent = (0..10)
                    .map(|k| t - k * step)
                    .filter(|u| *u >= from)
                    .map(ws)
                    .max()?;
                let spike = vm
                    .spike
                    .filter(|s| s.at + s.seconds > from && s.at <= t)
                    .map_or(0, |s| s.peak);
                let oom = vm
                    .oom_at
                    .filter(|o| (from..=t).contains(o))
                    .map_or(0, |_| pod.compute_limit);
                let limit = match extra {
                    0 => pod.compute_limit,
                    _ => pod.pod_limit,
                };
                Some((recent.max(spike).max(oom) + CACHE + extra).min(limit))
            };
            both(
                Box::new(move |t| {
                    // a container restarted by an OOM kill has a new cgroup: its maximum starts after
                    let c = vm.container_start(pod, t);
                    let c = if Some(c) == vm.oom_at { c + step } else { c };
                    running_max(t, c, 0)
                }),
                Box::new(move |t| running_max(t, pod.from, SIDECARS)),
            )
        }
        Family::Rss => both(
            Box::new(move |t| Some(ws(t) - 16 * MIB)),
            Box::new(move |t| Some(ws(t) - 16 * MIB + SIDECARS)),
        ),
        Family::Cache => both(Box::new(|_| Some(CACHE)), Box::new(|_| Some(CACHE))),
        Family::OomEvents => both(
            Box::new(move |t| Some(vm.ooms(pod, t))),
            Box::new(move |t| Some(vm.ooms(pod, t))),
        ),
        Family::SpecLimit => both(
            Box::new(|_| Some(pod.compute_limit)),
            Box::new(|_| Some(pod.pod_limit)),
        ),
        Family::Resident => vec![(
            virt(),
            Box::new(move |t| Some(ws(t) - vm.overhead + 180 * MIB)),
        )],
        Family::Domain => vec![(virt(), Box::new(|_| Some(vm.guest)))],
        Family::KsmLimits => vec![(
            ksm(&[("resource", "memory"), ("unit", "byte")]),
            Box::new(|_| Some(pod.compute_limit)),
        )],
        Family::KsmLastTerminated => match vm.oom_at {
            Some(o) if pod.from <= o && o < pod.to => vec![(
                ksm(&[("reason", "OOMKilled")]),
                Box::new(move |t| (t > o).then_some(1)),
            )],
            _ => Vec::new(),
        },
        Family::KsmLabels => {
            let mut l = vec![
                ("instance", "10.52.0.7:8080"),
                ("job", "kube-state-metrics"),
                ("label_kubevirt_io", "virt-launcher"),
                ("label_kubevirt_io_created_by", vm.vmi_uid.as_str()),
                ("label_vm_kubevirt_io_name", vm.name.as_str()),
                ("namespace", vm.namespace.as_str()),
                ("node", vm.node.as_str()),
                ("pod", pod.name.as_str()),
                ("uid", pod.uid.as_str()),
            ];
            l.sort();
            vec![(labels(&l), Box::new(|_| Some(1)))]
        }
    }
}

impl History {
    /// Write the samples with `from <= t < to` as one OpenMetrics exposition (every family in
    /// turn, each series' samples in time order, `# EOF` at the end). promtool reads a file once per
    /// 2-hour block, so callers write 2-hour windows to separate files for large histories.
    pub fn write_window(&self, from: i64, to: i64, out: &mut impl Write) -> io::Result<u64> {
        let (lo, hi) = (from.max(self.start), to.min(self.end));
        let mut samples = 0u64;
        for fam in FAMILIES {
            let (sample, family, kind) = fam.names();
            let family = if family.is_empty() { sample } else { family };
            writeln!(out, "# TYPE {family} {kind}")?;
            for vm in &self.vms {
                for pod in &vm.pods {
                    let (a, b) = (lo.max(pod.from), hi.min(pod.to));
                    if a >= b {
                        continue;
                    }
                    let first =
                        a + (self.step - (a - self.start).rem_euclid(self.step)) % self.step;
                    for (labels, value) in pod_series(fam, vm, pod, self.step) {
                        for t in (first..b).step_by(self.step as usize) {
                            if let Some(v) = value(t) {
                                writeln!(out, "{sample}{labels} {v} {t}")?;
                                samples += 1;
                            }
                        }
                    }
                }
            }
        }
        writeln!(out, "# EOF")?;
        Ok(samples)
    }
}

/// A UUID-shaped identifier from `seed` (deterministic).
pub fn uid(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 33;
        x
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// A 64-hex-digit container ID from `seed`.
pub fn container_id(seed: u64) -> String {
    let u = uid(seed).replace('-', "");
    let v = uid(seed ^ 0x5555).replace('-', "");
    format!("{u}{v}")
}

/// The launcher pod name KubeVirt gives a VMI (`virt-launcher-NAME-xxxxx`).
pub fn launcher_pod_name(vm: &str, seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    let suffix: String = (0..5)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ALPHABET[(s % ALPHABET.len() as u64) as usize] as char
        })
        .collect();
    format!("virt-launcher-{vm}-{suffix}")
}

/// promtool cuts blocks of 2 hours and reads its whole input once per block: a history is written
/// as one file per 2-hour window so each file is read once.
pub const BLOCK_SECONDS: i64 = 2 * 3600;

/// Write `history` into `dir` as one OpenMetrics file per 2-hour window (aligned like promtool's
/// blocks); the files in time order and the number of samples.
pub fn write_block_files(
    history: &History,
    dir: &std::path::Path,
) -> io::Result<(Vec<std::path::PathBuf>, u64)> {
    let mut files = Vec::new();
    let mut samples = 0;
    let mut from = history.start - history.start.rem_euclid(BLOCK_SECONDS);
    while from < history.end {
        let path = dir.join(format!("history-{from}.om"));
        let mut out = io::BufWriter::new(std::fs::File::create(&path)?);
        samples += history.write_window(from, from + BLOCK_SECONDS, &mut out)?;
        out.flush()?;
        files.push(path);
        from += BLOCK_SECONDS;
    }
    Ok((files, samples))
}

/// `vms` VMs over `[end - days, end)` every `step` seconds, 25 to a node, in 20 namespaces: each
/// has one launcher pod for the window, except that every 50th restarts mid-window (a new pod name
/// and UID, and a 25% higher limit), every 100th is OOM-killed on the second day and every 20th
/// has a 4-minute spike on the third. For the history bench.
pub fn fleet(vms: usize, end: i64, days: i64, step: i64) -> History {
    let start = end - days * 86400;
    let vms = (0..vms)
        .map(|i| {
            let seed = i as u64;
            let guest = GIB * (1 + (i % 8) as i64);
            let limit = guest + 300 * MIB + 50 * MIB * (i % 5) as i64;
            let name = format!("vm-{i:05}");
            let pod = |k: u64, from: i64, to: i64, limit: i64| PodSpan {
                name: launcher_pod_name(&name, seed * 4 + k),
                uid: uid(seed * 4 + k + 1_000_000),
                container_id: container_id(seed * 4 + k),
                from,
                to,
                compute_limit: limit,
                pod_limit: limit + 100 * MIB,
            };
            let pods = if i % 50 == 7 {
                let mid = start + 4 * 86400 + (i as i64 % 97) * 60;
                vec![
                    pod(0, start - 86400, mid, limit),
                    pod(1, mid + 300, end + 86400, limit + limit / 4),
                ]
            } else {
                vec![pod(0, start - 86400, end + 86400, limit)]
            };
            VmHistory {
                namespace: format!("ns-{:02}", i % 20),
                vmi_uid: uid(seed + 2_000_000),
                node: format!("node-{:03}", i / 25),
                guest,
                touched: guest * (40 + (i % 50) as i64) / 100,
                overhead: 200 * MIB + (i % 7) as i64 * 10 * MIB,
                pods,
                spike: (i % 20 == 3).then(|| Spike {
                    at: start + 2 * 86400 + (i as i64 % 1000) * 60,
                    seconds: 240,
                    peak: guest + 200 * MIB,
                }),
                oom_at: (i % 100 == 11).then(|| start + (86400 + 3 * 3600) / step * step),
                name,
            }
        })
        .collect();
    History {
        start,
        end,
        step,
        vms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(oom_at: Option<i64>) -> History {
        let pod = PodSpan {
            name: launcher_pod_name("a", 1),
            uid: uid(1),
            container_id: container_id(1),
            from: 0,
            to: 7200,
            compute_limit: 3 * GIB,
            pod_limit: 3 * GIB + 100 * MIB,
        };
        History {
            start: 0,
            end: 7200,
            step: 60,
            vms: vec![VmHistory {
                namespace: "ns".into(),
                name: "a".into(),
                vmi_uid: uid(2),
                node: "n1".into(),
                guest: 2 * GIB,
                touched: GIB,
                overhead: 300 * MIB,
                pods: vec![pod],
                spike: None,
                oom_at,
            }],
        }
    }

    #[test]
    fn the_ramp_reaches_the_touched_share_after_an_hour_and_an_oom_restarts_it() {
        let h = one(Some(4800));
        let (vm, pod) = (&h.vms[0], &h.vms[0].pods[0]);
        assert_eq!(vm.working_set(pod, 0, 60), 300 * MIB);
        assert_eq!(vm.working_set(pod, 3600, 60), GIB + 300 * MIB);
        assert_eq!(vm.working_set(pod, 4800, 60), 3 * GIB);
        assert_eq!(vm.working_set(pod, 4860, 60), GIB / 60 + 300 * MIB + MIB);
        assert_eq!((vm.ooms(pod, 4799), vm.ooms(pod, 4800)), (0, 1));
    }

    #[test]
    fn a_window_holds_only_its_samples_each_family_once_and_ends_with_eof() {
        let h = one(Some(4800));
        let mut out = Vec::new();
        h.write_window(3600, 7200, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# TYPE ").count(), FAMILIES.len());
        assert!(text.contains("# TYPE container_oom_events counter\n"));
        let times: Vec<i64> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(times.iter().all(|t| (3600..7200).contains(t)));
        assert!(text.contains("reason=\"OOMKilled\""));
    }

    #[test]
    fn the_fleet_has_restarts_ooms_and_spikes_and_every_family_its_own_name() {
        let h = fleet(100, 1_795_298_400, 7, 300);
        assert_eq!(h.vms.len(), 100);
        assert_eq!(h.vms[7].pods.len(), 2);
        assert!(h.vms[7].pods[1].compute_limit > h.vms[7].pods[0].compute_limit);
        assert!(h.vms[11].oom_at.is_some_and(|t| (t - h.start) % 300 == 0));
        assert!(h.vms[3].spike.is_some() && h.vms[4].spike.is_none());
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.metric()).collect();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len());
    }
}
