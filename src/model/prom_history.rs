//! A VM's history from Prometheus (issue 20): the answers to [`super::prom_query`]'s queries,
//! joined to the VMs in scope and turned into per-VM figures: the peaks of the compute
//! container's working set and usage, the peak memory outside guest RAM (a lower bound, see
//! [`OverheadPeak`]), the OOM kills and the pod-limit changes, each with its time.
//!
//! A VM's series are those of every launcher pod it had in the window (`virt-launcher-<vm>-xxxxx`,
//! the name Kubernetes makes from KubeVirt's `generateName`, cut to 58 characters before the
//! 5 random ones) and, for KubeVirt's metrics, of its VMI (`name` label): a restart does not cut
//! its history. Where two pods overlap, the higher figure counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::evidence::{rfc3339, At, Bound, Evidence, EvidenceKind, Level, VmKey};
use super::prom_query::{Metric, Series, Window};

/// What the tool knows of a VM in scope before asking Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVm {
    pub key: VmKey,
    /// The guest's size from the spec (used where KubeVirt's domain metric is missing).
    pub guest_bytes: Option<i64>,
    /// When its VMI (else the VM) was created, Unix seconds.
    pub created: Option<i64>,
}

/// The answers, per metric: `None` when that query failed (its sentence is elsewhere).
pub type Answers = BTreeMap<Metric, Option<Vec<Series>>>;

/// A peak and when it was (the end of the step it was the highest in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeakAt {
    pub bytes: i64,
    #[serde(serialize_with = "unix_rfc3339")]
    pub at: i64,
}

/// The peak memory outside guest RAM: the compute container's anonymous memory (RSS) less the
/// guest's size. A LOWER bound: guest RAM not yet touched is not in the RSS, so the real figure
/// is higher while the guest is not fully resident; never above it (an unfilled guest is never
/// counted as overhead). Guest RAM in shared memory or hugepages is outside the RSS: then the
/// bound is lower still (below 0: no figure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverheadPeak {
    pub bytes: i64,
    #[serde(serialize_with = "unix_rfc3339")]
    pub at: i64,
    pub bound: Bound,
}

/// A change of the compute container's memory limit (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitChange {
    #[serde(serialize_with = "unix_rfc3339")]
    pub at: i64,
    pub from_bytes: i64,
    pub to_bytes: i64,
}

/// One point of the chart: the compute container's usage and the memory outside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartPoint {
    pub at: i64,
    pub usage: Option<i64>,
    pub overhead: Option<i64>,
    pub limit: Option<i64>,
}

/// One VM's history over the window, as `-o json` carries it (`prometheus`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmHistory {
    /// Which Prometheus (`monitoring/prometheus-k8s via the API server`, or the URL).
    pub source: String,
    #[serde(serialize_with = "unix_rfc3339")]
    pub start: i64,
    #[serde(serialize_with = "unix_rfc3339")]
    pub end: i64,
    /// Each point is the highest over this many seconds.
    pub step_seconds: i64,
    pub peak_working_set: Option<PeakAt>,
    pub peak_usage: Option<PeakAt>,
    pub peak_overhead: Option<OverheadPeak>,
    /// OOM kills of the compute container, at the end of the step they happened in.
    #[serde(serialize_with = "unix_rfc3339_all")]
    pub oom_kills: Vec<i64>,
    pub limit_changes: Vec<LimitChange>,
    /// The launcher pods the history spans.
    pub pods: Vec<String>,
    /// Why there is no (or little) history, as a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Points above the limit then, which no memory cgroup can hold, set aside (see
    /// [`guard`]), as a sentence: the report puts it in the row's notes.
    #[serde(skip)]
    pub set_aside: Option<String>,
    #[serde(skip)]
    pub chart: Vec<ChartPoint>,
}

fn unix_rfc3339<S: serde::Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn unix_rfc3339_all<S: serde::Serializer>(t: &[i64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.iter().map(|t| rfc3339(*t)))
}

impl VmHistory {
    /// The peak outside guest RAM as evidence for the recommendation.
    pub fn evidence(&self) -> Option<Evidence> {
        let p = self.peak_overhead?;
        Some(Evidence {
            kind: EvidenceKind::Prometheus,
            bytes: p.bytes,
            at: Some(At::Unix(p.at)),
            source: self.source.clone(),
            bound: p.bound,
            level: Level::Container,
        })
    }
}

/// The VM a launcher pod belongs to, by its name: `virt-launcher-<vmi>-xxxxx`, or for names
/// longer than 58 characters the first 58 of `virt-launcher-<vmi>-` and 5 more.
#[derive(Debug, Default)]
pub struct PodJoin {
    exact: HashMap<(String, String), VmKey>,
    cut: HashMap<(String, String), VmKey>,
}

const PREFIX: &str = "virt-launcher-";
const CUT: usize = 58;

impl PodJoin {
    pub fn new<'a>(vms: impl IntoIterator<Item = &'a VmKey>) -> PodJoin {
        let mut j = PodJoin::default();
        for k in vms {
            let base = format!("{PREFIX}{}-", k.name);
            if base.len() > CUT {
                let cut: String = base.chars().take(CUT).collect();
                j.cut.insert((k.namespace.clone(), cut), k.clone());
            }
            j.exact
                .insert((k.namespace.clone(), k.name.clone()), k.clone());
        }
        j
    }

    pub fn vm_of(&self, namespace: &str, pod: &str) -> Option<&VmKey> {
        let rest = pod.strip_prefix(PREFIX)?;
        if let Some((name, suffix)) = rest.rsplit_once('-') {
            if suffix.len() == 5 {
                let hit = self.exact.get(&(namespace.to_string(), name.to_string()));
                if hit.is_some() {
                    return hit;
                }
            }
        }
        if pod.len() == CUT + 5 && pod.is_char_boundary(CUT) {
            return self
                .cut
                .get(&(namespace.to_string(), pod[..CUT].to_string()));
        }
        None
    }
}

/// One VM's points of one metric: the highest of its pods' at each time.
type Merged = BTreeMap<i64, f64>;

#[derive(Default)]
struct VmSeries {
    by_metric: BTreeMap<Metric, Merged>,
    pods: BTreeSet<String>,
    /// Per pod, the first time kube-state-metrics said its compute container was OOM-killed.
    oom_reason_from: BTreeMap<String, i64>,
}

/// Sort every answer's series to their VMs.
/// Each VM's series, merged per metric; each answer's series is dropped once taken in (5,000
/// VMs' week is tens of MiB per metric: holding the answers and the merged series at once
/// doubled the peak).
fn gather(answers: Answers, join: &PodJoin) -> HashMap<VmKey, VmSeries> {
    let mut out: HashMap<VmKey, VmSeries> = HashMap::new();
    for (metric, series) in answers {
        for s in series.into_iter().flatten() {
            let ns = s.label("namespace").unwrap_or_default();
            let (key, pod) = if metric.by_vmi() {
                let Some(name) = s.label("name") else {
                    continue;
                };
                (VmKey::new(ns, name), None)
            } else {
                let Some(pod) = s.label("pod") else { continue };
                match join.vm_of(ns, pod) {
                    Some(k) => (k.clone(), Some(pod)),
                    None => continue,
                }
            };
            let vm = out.entry(key).or_default();
            if let Some(p) = pod {
                vm.pods.insert(p.to_string());
                if matches!(metric, Metric::OomKilledReason | Metric::OomKilledState) {
                    if let Some(&(t, _)) = s.points.iter().find(|(_, v)| *v >= 1.0) {
                        vm.oom_reason_from.insert(p.to_string(), t);
                    }
                }
            }
            let merged = vm.by_metric.entry(metric).or_default();
            for &(t, v) in &s.points {
                let e = merged.entry(t).or_insert(v);
                *e = e.max(v);
            }
        }
    }
    out
}

fn peak(m: Option<&Merged>) -> Option<PeakAt> {
    m?.iter()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(&at, &v)| PeakAt {
            bytes: v as i64,
            at,
        })
}

/// RSS less the guest at each time (the guest from KubeVirt's metric, else the spec).
fn overhead_points(s: &VmSeries, guest: Option<i64>) -> BTreeMap<i64, i64> {
    let domain = s.by_metric.get(&Metric::GuestSize);
    let mut out = BTreeMap::new();
    for (&t, &rss) in s.by_metric.get(&Metric::Rss).into_iter().flatten() {
        let g = domain.and_then(|d| d.get(&t).map(|&v| v as i64)).or(guest);
        if let Some(g) = g.filter(|&g| g > 0) {
            out.insert(t, rss as i64 - g);
        }
    }
    out
}

/// Kill times: the steps in which the OOM counter rose, and the first time kube-state-metrics
/// said each pod's compute container was OOM-killed, unless a counter step already holds it.
fn oom_kills(s: &VmSeries, step: i64) -> Vec<i64> {
    let mut kills: Vec<i64> = s
        .by_metric
        .get(&Metric::OomEvents)
        .into_iter()
        .flatten()
        .filter(|(_, &v)| v >= 0.5)
        .map(|(&t, _)| t)
        .collect();
    for &t in s.oom_reason_from.values() {
        if !kills.iter().any(|&k| (k - t).abs() <= step) {
            kills.push(t);
        }
    }
    kills.sort_unstable();
    kills
}

fn limit_changes(m: Option<&Merged>) -> Vec<LimitChange> {
    let mut out = Vec::new();
    let mut last: Option<i64> = None;
    for (&t, &v) in m.into_iter().flatten() {
        let v = v as i64;
        if let Some(from) = last.filter(|&l| l != v) {
            out.push(LimitChange {
                at: t,
                from_bytes: from,
                to_bytes: v,
            });
        }
        last = Some(v);
    }
    out
}

/// `2 h`, `3 d`, `40 min`.
pub fn ago_words(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 2 * 86_400 {
        format!("{} d", s / 86_400)
    } else if s >= 2 * 3600 {
        format!("{} h", s / 3600)
    } else {
        format!("{} min", s / 60)
    }
}

/// Why a VM has no history in the window, as a sentence.
fn no_history(vm: &KnownVm, w: &Window, now: i64) -> String {
    match vm.created {
        Some(c) if c > w.end => {
            "no history: started after the window (--prometheus-until) ended".to_string()
        }
        Some(c) if c > w.start => format!(
            "no history: started {} ago (Prometheus has no series of its launcher pod yet)",
            ago_words(now - c)
        ),
        _ if w.end < now => format!(
            "no history: Prometheus has no series of its launcher pods in the {} to {}",
            ago_words(w.seconds()),
            crate::model::evidence::rfc3339(w.end)
        ),
        _ => format!(
            "no history: Prometheus has no series of its launcher pods in the last {}",
            ago_words(w.seconds())
        ),
    }
}

/// Every VM's history from the answers.
pub fn histories(
    vms: &[KnownVm],
    answers: Answers,
    window: &Window,
    source: &str,
    now: i64,
) -> HashMap<VmKey, VmHistory> {
    let join = PodJoin::new(vms.iter().map(|v| &v.key));
    let mut series = gather(answers, &join);
    let mut out = HashMap::new();
    for vm in vms {
        let mut s = series.remove(&vm.key).unwrap_or_default();
        let set_aside = guard::set_aside_impossible(&mut s.by_metric);
        let overhead = overhead_points(&s, vm.guest_bytes);
        let usage = s.by_metric.get(&Metric::Usage);
        let limit = s.by_metric.get(&Metric::Limit);
        let times: BTreeSet<i64> = usage
            .into_iter()
            .flatten()
            .map(|(t, _)| *t)
            .chain(overhead.keys().copied())
            .collect();
        let chart = times
            .into_iter()
            .map(|t| ChartPoint {
                at: t,
                usage: usage.and_then(|u| u.get(&t)).map(|&v| v as i64),
                overhead: overhead.get(&t).copied(),
                limit: limit.and_then(|l| l.get(&t)).map(|&v| v as i64),
            })
            .collect::<Vec<_>>();
        let peak_overhead = overhead
            .iter()
            .filter(|(_, &b)| b > 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(&at, &bytes)| OverheadPeak {
                bytes,
                at,
                bound: Bound::Lower,
            });
        let h = VmHistory {
            source: source.to_string(),
            start: window.start,
            end: window.end,
            step_seconds: window.step,
            peak_working_set: peak(s.by_metric.get(&Metric::WorkingSet)),
            peak_usage: peak(usage),
            peak_overhead,
            oom_kills: oom_kills(&s, window.step),
            limit_changes: limit_changes(limit),
            pods: s.pods.iter().cloned().collect(),
            note: s.by_metric.is_empty().then(|| no_history(vm, window, now)),
            set_aside,
            chart,
        };
        out.insert(vm.key.clone(), h);
    }
    out
}

mod guard;

#[cfg(test)]
mod tests;
