//! Impossible peaks: a memory cgroup never holds more than its limit (the kernel reclaims, and
//! OOM-kills when it cannot, before a charge would pass `memory.max` / `memory.limit_in_bytes`),
//! so a point of the compute container's usage, working set or RSS above the compute
//! container's limit at the same time is a broken scrape or a relabelled series, not memory the
//! VM used. Such a point is set aside before the peaks are taken: it is neither a figure nor
//! evidence, and the VM's history says so once.
//!
//! Both series are `max_over_time` over the same step, so the limit point is the highest limit
//! of that step: a usage point above it is above every limit the step had. The limit and the
//! usage are separate series of the scrape (and cgroup v1's `usage_in_bytes` is batched per
//! CPU), so a point within [`TOLERANCE`] of the limit is kept. The queries ask the compute
//! container's series only, so the limit in effect is the compute container's; a limit of 0
//! (cAdvisor's "unlimited") or no limit point at that time sets nothing aside.

use std::collections::BTreeMap;

use crate::model::evidence::{utc_minute, weekday};
use crate::model::prom_query::Metric;
use crate::units::human;

/// One VM's points of one metric (Unix seconds → value).
type Points = BTreeMap<i64, f64>;

/// How far above the limit a point may be and still be kept (separate scrapes of two series).
pub const TOLERANCE: i64 = 1 << 20;

/// The metrics a cgroup's limit bounds, with how the sentence names them.
const BOUNDED: [(Metric, &str); 3] = [
    (Metric::Usage, "in use"),
    (Metric::WorkingSet, "in the working set"),
    (Metric::Rss, "resident (RSS)"),
];

/// The worst point set aside, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Worst {
    what: &'static str,
    bytes: i64,
    at: i64,
    limit: i64,
}

/// Take every impossible point out of one VM's series; the sentence saying so (the worst point,
/// and how many others), or `None` when every point is possible.
pub(super) fn set_aside_impossible(by_metric: &mut BTreeMap<Metric, Points>) -> Option<String> {
    let limits: Vec<(i64, i64)> = by_metric
        .get(&Metric::Limit)?
        .iter()
        .map(|(&t, &v)| (t, v as i64))
        .filter(|&(_, l)| l > 0)
        .collect();
    let mut worst: Option<Worst> = None;
    let mut count = 0usize;
    for (metric, what) in BOUNDED {
        let Some(points) = by_metric.get_mut(&metric) else {
            continue;
        };
        for &(t, limit) in &limits {
            let Some(bytes) = above(points, t, limit) else {
                continue;
            };
            points.remove(&t);
            count += 1;
            if worst.is_none_or(|w| bytes - w.limit > w.bytes - w.limit) {
                worst = Some(Worst {
                    what,
                    bytes,
                    at: t,
                    limit,
                });
            }
        }
    }
    let w = worst?;
    let others = match count - 1 {
        0 => String::new(),
        1 => " (nor is 1 other such point)".to_string(),
        n => format!(" (nor are {n} other such points)"),
    };
    Some(format!(
        "Prometheus reports {} {} on {} {}, above the {} limit then: that point is not used{others}",
        human(w.bytes),
        w.what,
        weekday(w.at),
        utc_minute(w.at),
        human(w.limit),
    ))
}

/// The point at `t` when it is above `limit` by more than the tolerance.
fn above(points: &Points, t: i64, limit: i64) -> Option<i64> {
    let bytes = *points.get(&t)? as i64;
    (bytes > limit.saturating_add(TOLERANCE)).then_some(bytes)
}
