//! The queries the tool sends to Prometheus for a VM's history (issue 20), as text: one query per
//! metric for every VM in scope, each `max by (LABELS) (FUNC(METRIC{MATCHERS}[STEP]))`, and the
//! window and step they are asked over. Pure: the caller sends them (`cluster::prometheus`) and
//! turns the answers into figures (`model::prom_history`).
//!
//! The metrics and what they mean (looked up in the exporters' own documentation):
//! - cAdvisor, as the kubelet's `/metrics/cadvisor` exposes it (labels `namespace`, `pod`,
//!   `container`): `container_memory_working_set_bytes` (usage less inactive file pages),
//!   `container_memory_usage_bytes` (everything charged, page cache included),
//!   `container_memory_rss` (anonymous memory: `total_rss` on cgroup v1, `anon` on v2),
//!   `container_oom_events_total` (a counter of OOM events of the container) and
//!   `container_spec_memory_limit_bytes` (0 when unlimited).
//! - KubeVirt's virt-handler (labels `namespace`, `name` = the VMI): `kubevirt_vmi_memory_domain_bytes`,
//!   the `memory` of the domain XML (the guest's size; named `kubevirt_vmi_memory_domain_total_bytes`
//!   up to KubeVirt v0.59 and `kubevirt_vmi_memory_domain_bytes_total` in v1.0, see KubeVirt's
//!   docs/metrics.md of each release). `kubevirt_vmi_memory_resident_bytes` is qemu's whole RSS
//!   (guest pages and qemu's own), so on its own it tells no overhead: not used.
//! - kube-state-metrics (labels `namespace`, `pod`, `container`, `reason`):
//!   `kube_pod_container_status_terminated_reason` (1 while the container is terminated for that
//!   reason: a launcher pod's compute container is never restarted, so its OOM kill shows here)
//!   and `kube_pod_container_status_last_terminated_reason` (1 while the last termination before
//!   a restart had that reason).

use std::fmt::Write as _;

/// A series as Prometheus answers it: its labels and its (Unix seconds, value) points in time
/// order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub labels: std::collections::BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Who exports a metric: what to install when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exporter {
    /// cAdvisor, scraped from each kubelet's `/metrics/cadvisor`.
    Cadvisor,
    /// KubeVirt's virt-handler `/metrics`.
    KubeVirt,
    /// kube-state-metrics.
    KubeStateMetrics,
}

impl Exporter {
    /// What is missing, in words.
    pub fn words(self) -> &'static str {
        match self {
            Exporter::Cadvisor => {
                "cAdvisor's container metrics (the kubelet's /metrics/cadvisor is not scraped)"
            }
            Exporter::KubeVirt => "KubeVirt's VMI metrics (virt-handler's /metrics is not scraped)",
            Exporter::KubeStateMetrics => "kube-state-metrics",
        }
    }
}

/// The range functions the product uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    MaxOverTime,
    Increase,
}

impl Func {
    fn as_str(self) -> &'static str {
        match self {
            Func::MaxOverTime => "max_over_time",
            Func::Increase => "increase",
        }
    }
}

/// One metric of a VM's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    WorkingSet,
    Usage,
    Rss,
    OomEvents,
    Limit,
    GuestSize,
    OomKilledReason,
    OomKilledState,
}

impl Metric {
    /// Every metric, in the order they are asked.
    pub const ALL: [Metric; 8] = [
        Metric::WorkingSet,
        Metric::Usage,
        Metric::Rss,
        Metric::OomEvents,
        Metric::Limit,
        Metric::GuestSize,
        Metric::OomKilledReason,
        Metric::OomKilledState,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::WorkingSet => "container_memory_working_set_bytes",
            Metric::Usage => "container_memory_usage_bytes",
            Metric::Rss => "container_memory_rss",
            Metric::OomEvents => "container_oom_events_total",
            Metric::Limit => "container_spec_memory_limit_bytes",
            Metric::GuestSize => "kubevirt_vmi_memory_domain_bytes",
            Metric::OomKilledReason => "kube_pod_container_status_last_terminated_reason",
            Metric::OomKilledState => "kube_pod_container_status_terminated_reason",
        }
    }

    pub fn exporter(self) -> Exporter {
        match self {
            Metric::GuestSize => Exporter::KubeVirt,
            Metric::OomKilledReason | Metric::OomKilledState => Exporter::KubeStateMetrics,
            _ => Exporter::Cadvisor,
        }
    }

    fn func(self) -> Func {
        match self {
            Metric::OomEvents => Func::Increase,
            _ => Func::MaxOverTime,
        }
    }

    /// Whether the series are by VMI (`name`) rather than by pod.
    pub fn by_vmi(self) -> bool {
        self == Metric::GuestSize
    }

    fn matchers(self) -> &'static [(&'static str, &'static str, &'static str)] {
        const LAUNCHER: (&str, &str, &str) = ("pod", "=~", "virt-launcher-.+");
        const COMPUTE: (&str, &str, &str) = ("container", "=", "compute");
        match self {
            Metric::GuestSize => &[],
            Metric::OomKilledReason | Metric::OomKilledState => {
                &[COMPUTE, LAUNCHER, ("reason", "=", "OOMKilled")]
            }
            _ => &[COMPUTE, LAUNCHER],
        }
    }
}

/// The time span asked and the step between points (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// The finest step asked: scrapes are usually 30 s to 1 min apart.
pub const MIN_STEP: i64 = 60;
/// Points per series for a few VMs: a week at one point an hour.
pub const MAX_POINTS: i64 = 168;
/// Points per series for many VMs: fewer, never less than one per 7 h of a week.
pub const MIN_POINTS: i64 = 24;
/// Points of all series of one answer together: about 30 bytes of JSON each, so an answer
/// stays near 6 MiB however many VMs there are.
pub const POINT_BUDGET: i64 = 200_000;

impl Window {
    /// The window ending at `now`, `seconds` long, for `vms` VMs: as many points as
    /// [`POINT_BUDGET`] allows between [`MIN_POINTS`] and [`MAX_POINTS`], each the max over
    /// its step (so no peak between samples is lost: only its time is known to a step).
    pub fn new(now: i64, seconds: i64, vms: usize) -> Window {
        let seconds = seconds.max(MIN_STEP);
        let vms = i64::try_from(vms.max(1)).unwrap_or(i64::MAX);
        let points = (POINT_BUDGET / vms).clamp(MIN_POINTS, MAX_POINTS);
        let step = ((seconds + points - 1) / points).max(MIN_STEP);
        // Whole steps, aligned, so two runs a minute apart ask the same points.
        let end = now - now.rem_euclid(step);
        Window {
            start: end - seconds,
            end,
            step,
        }
    }

    /// The same span with a step four times coarser (after a refusal for too many points).
    pub fn coarser(&self) -> Window {
        let step = self.step.saturating_mul(4);
        Window {
            start: self.end - (self.end - self.start).max(step),
            end: self.end,
            step,
        }
    }

    pub fn seconds(&self) -> i64 {
        self.end - self.start
    }
}

/// A label value inside double quotes, as PromQL reads it.
fn quoted(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A duration as Prometheus reads it, in whole seconds (`3600s`).
pub fn duration(seconds: i64) -> String {
    format!("{}s", seconds.max(1))
}

/// The query for `metric` over the VMs of `namespace` (every namespace when `None`), each point
/// the function over one `step`.
pub fn promql(metric: Metric, namespace: Option<&str>, step: i64) -> String {
    let by = if metric.by_vmi() {
        "namespace,name"
    } else {
        "namespace,pod"
    };
    let mut matchers: Vec<String> = metric
        .matchers()
        .iter()
        .map(|(n, op, v)| format!("{n}{op}{}", quoted(v)))
        .collect();
    if let Some(ns) = namespace {
        matchers.insert(0, format!("namespace={}", quoted(ns)));
    }
    let mut q = String::new();
    let _ = write!(
        q,
        "max by ({by}) ({}({}{{{}}}[{}]))",
        metric.func().as_str(),
        metric.name(),
        matchers.join(","),
        duration(step)
    );
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_have_the_contract_shape() {
        assert_eq!(
            promql(Metric::WorkingSet, Some("prod"), 3600),
            r#"max by (namespace,pod) (max_over_time(container_memory_working_set_bytes{namespace="prod",container="compute",pod=~"virt-launcher-.+"}[3600s]))"#
        );
        assert_eq!(
            promql(Metric::GuestSize, None, 60),
            "max by (namespace,name) (max_over_time(kubevirt_vmi_memory_domain_bytes{}[60s]))"
        );
        assert_eq!(
            promql(Metric::OomEvents, None, 300),
            r#"max by (namespace,pod) (increase(container_oom_events_total{container="compute",pod=~"virt-launcher-.+"}[300s]))"#
        );
        assert!(promql(Metric::OomKilledReason, None, 60).contains(r#"reason="OOMKilled""#));
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn a_week_of_many_vms_stays_within_the_point_budget() {
        let now = 1_796_625_612;
        let week = 7 * 86_400;
        let few = Window::new(now, week, 10);
        assert_eq!(few.step, 3600);
        assert_eq!(few.seconds(), week);
        assert_eq!(few.end % 3600, 0);
        assert!(few.end <= now && few.end > now - 3600);
        let many = Window::new(now, week, 5000);
        let points = many.seconds() / many.step;
        assert!(points * 5000 <= POINT_BUDGET, "{points}");
        assert!(points >= MIN_POINTS - 1, "{points}");
        // An hour: one point a minute at most.
        assert_eq!(Window::new(now, 3600, 1).step, MIN_STEP);
        let c = few.coarser();
        assert_eq!((c.step, c.end, c.seconds()), (4 * 3600, few.end, week));
    }
}
