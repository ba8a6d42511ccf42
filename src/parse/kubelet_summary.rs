//! The kubelet Summary API (`GET /api/v1/nodes/{node}/proxy/stats/summary`) → [`NodeReadings`].
//! Pure; never panics.
//!
//! The kubelet reports per pod and per container what it reads from their memory cgroups
//! (`usageBytes`, `workingSetBytes` = usage − inactive file, `rssBytes` = anonymous memory,
//! `availableBytes` = limit − working set when there is a limit), but no processes, no smaps, no
//! peak, failcnt or OOM kill counters and not the node's cgroup version. What it does not say stays
//! unknown here (`None`, no processes, [`CgroupVersion::Unknown`]); the memory model then
//! estimates the guest's resident RAM from the compute container's RSS.

use serde::Deserialize;

use crate::units::MAX_MEMORY_BYTES;

use crate::model::readings::{
    CgroupCounters, CgroupLevel, CgroupVersion, LiveSource, MemoryStat, NodeReadings, PodReading,
};

/// Why a Summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("the kubelet's stats summary is not the JSON it should be: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Summary {
    pods: Vec<PodStats>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodStats {
    pod_ref: PodRef,
    containers: Vec<ContainerStats>,
    memory: Option<MemoryStats>,
    swap: Option<SwapStats>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodRef {
    name: String,
    namespace: String,
    uid: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContainerStats {
    name: String,
    memory: Option<MemoryStats>,
    swap: Option<SwapStats>,
}

/// The kubelet's `SwapStats` (Kubernetes 1.28+, pods and containers; both optional):
/// `swapAvailableBytes` = swap limit − swap in use, only when there is a limit.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SwapStats {
    swap_usage_bytes: Option<u64>,
    swap_available_bytes: Option<u64>,
}

/// The kubelet's `MemoryStats`: every field is optional there too.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MemoryStats {
    /// When cAdvisor sampled the cgroup (RFC 3339): up to ~15 s before the Summary is read.
    time: Option<String>,
    available_bytes: Option<u64>,
    usage_bytes: Option<u64>,
    working_set_bytes: Option<u64>,
    rss_bytes: Option<u64>,
}

/// One pod of the Summary, as counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The pod's own cgroup; `None` when the kubelet gave no memory figures for it.
    pub memory: Option<CgroupCounters>,
    /// Containers (by name) with memory figures.
    pub containers: Vec<(String, CgroupCounters)>,
    /// The oldest sample time (Unix seconds) of the figures above, when the kubelet gave one.
    pub sampled_at: Option<i64>,
}

/// Parse a Summary response. Pods without a UID are left out (nothing could match them).
pub fn parse(text: &str) -> Result<Vec<SummaryPod>, SummaryError> {
    let s: Summary = serde_json::from_str(text)?;
    Ok(s.pods
        .into_iter()
        .filter(|p| !p.pod_ref.uid.is_empty())
        .map(pod_of)
        .collect())
}

/// One pod's counters. A kubelet on cgroup v1 serves a new pod's own figures as zeros (its
/// limit in availableBytes) until cAdvisor's second sample of the pod cgroup, ~30 s after the
/// start (measured on v1.20): not a reading, so the pod's figures are then its containers' sum.
fn pod_of(p: PodStats) -> SummaryPod {
    let where_ = format!("pod {}/{}", p.pod_ref.namespace, p.pod_ref.name);
    let of_containers = |f: fn(&MemoryStats) -> Option<u64>| {
        p.containers
            .iter()
            .filter_map(|c| c.memory.as_ref().and_then(f))
            .fold(0u64, u64::saturating_add)
    };
    let used = of_containers(|m| m.usage_bytes);
    let unsampled = p
        .memory
        .as_ref()
        .is_some_and(|m| m.usage_bytes == Some(0) && used > 0);
    let summed;
    let (own, path) = if unsampled {
        let working_set = of_containers(|m| m.working_set_bytes.or(m.usage_bytes));
        let pod = p.memory.as_ref();
        summed = MemoryStats {
            time: None,
            // The limit stays what the pod's zeros said: availableBytes = limit − 0.
            available_bytes: pod
                .and_then(|m| m.available_bytes)
                .map(|limit| limit.saturating_sub(working_set)),
            usage_bytes: Some(used),
            working_set_bytes: Some(working_set),
            rss_bytes: Some(of_containers(|m| m.rss_bytes)),
        };
        let path = format!("{where_} (its containers' sum in the kubelet stats summary)");
        (Some(&summed), path)
    } else {
        (
            p.memory.as_ref(),
            format!("{where_} (kubelet stats summary)"),
        )
    };
    let sampled_at = p
        .memory
        .iter()
        .filter(|_| !unsampled)
        .chain(p.containers.iter().filter_map(|c| c.memory.as_ref()))
        .filter_map(|m| crate::model::evidence::parse_rfc3339(m.time.as_deref()?))
        .min();
    let memory = own
        .and_then(|m| counters(m, CgroupLevel::Pod, path))
        .map(|c| with_swap(c, p.swap.as_ref()));
    let containers = p
        .containers
        .iter()
        .filter_map(|c| {
            let m = c.memory.as_ref()?;
            let path = format!("{where_}, container {} (kubelet stats summary)", c.name);
            let counters = counters(m, CgroupLevel::Container, path)?;
            Some((c.name.clone(), with_swap(counters, c.swap.as_ref())))
        })
        .collect();
    SummaryPod {
        namespace: p.pod_ref.namespace,
        name: p.pod_ref.name,
        uid: p.pod_ref.uid,
        memory,
        containers,
        sampled_at,
    }
}

/// Counters from one `memory` object; `None` without a usage figure.
fn counters(m: &MemoryStats, level: CgroupLevel, path: String) -> Option<CgroupCounters> {
    // A figure past any machine's memory (8 PiB) is garbage, not a reading: the model's sums
    // would overflow on it. Such a figure is unknown; without a usage the pod has no numbers.
    let sane = |v: Option<u64>| v.filter(|&v| v <= MAX_MEMORY_BYTES.unsigned_abs());
    let m = MemoryStats {
        time: None,
        available_bytes: sane(m.available_bytes),
        usage_bytes: sane(m.usage_bytes),
        working_set_bytes: sane(m.working_set_bytes),
        rss_bytes: sane(m.rss_bytes),
    };
    let usage = m.usage_bytes?;
    // The kubelet's working set is usage − inactive file, floored at 0.
    let working_set = m.working_set_bytes.unwrap_or(usage).min(usage);
    Some(CgroupCounters {
        level,
        path,
        container_id: None,
        // availableBytes is only there when the cgroup has a limit.
        limit_bytes: m
            .available_bytes
            .map(|a| a.saturating_add(working_set))
            .filter(|&l| l < 1 << 62),
        usage_bytes: usage,
        working_set_bytes: working_set,
        peak_bytes: None,
        failcnt: None,
        oom_kills: 0,
        oom_group_kills: None,
        stat: MemoryStat {
            anon: m.rss_bytes,
            inactive_file: m.working_set_bytes.map(|_| usage - working_set),
            ..MemoryStat::default()
        },
        swap_bytes: None,
        swap_limit_bytes: None,
    })
}

/// `c` with the swap figures of `swap`, when the kubelet gave them (its limit is in use +
/// available; without `swapAvailableBytes` there is no limit).
fn with_swap(c: CgroupCounters, swap: Option<&SwapStats>) -> CgroupCounters {
    let sane = |v: Option<u64>| v.filter(|&v| v <= MAX_MEMORY_BYTES.unsigned_abs());
    let Some(s) = swap else { return c };
    let used = sane(s.swap_usage_bytes);
    CgroupCounters {
        swap_bytes: used,
        swap_limit_bytes: sane(s.swap_available_bytes).map(|a| a.saturating_add(used.unwrap_or(0))),
        ..c
    }
}

/// One pod to take from a Summary: its UID and its compute container's runtime id, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub uid: String,
    pub compute_id: Option<String>,
}

/// The readings of the `wanted` pods of `node`; a wanted pod the Summary does not have (or has
/// without memory figures) is missing. The compute container is the one named `compute`.
pub fn readings(pods: &[SummaryPod], node: &str, wanted: &[Wanted], taken_at: i64) -> NodeReadings {
    let mut out = NodeReadings {
        node: node.to_string(),
        cgroup_version: CgroupVersion::Unknown,
        kernel: String::new(),
        source: LiveSource::Kubelet,
        taken_at,
        pods: Vec::new(),
        missing_pods: Vec::new(),
    };
    for w in wanted {
        let found = pods
            .iter()
            .find(|p| p.uid == w.uid)
            .and_then(|p| Some((p, p.memory.clone()?)));
        let Some((p, cgroup)) = found else {
            out.missing_pods.push(w.uid.clone());
            continue;
        };
        // The figures are as old as cAdvisor's sample, not as the read.
        if let Some(at) = p.sampled_at {
            out.taken_at = out.taken_at.min(at);
        }
        let containers = p
            .containers
            .iter()
            .map(|(name, c)| CgroupCounters {
                container_id: if name == "compute" {
                    w.compute_id.as_deref().map(std::sync::Arc::from)
                } else {
                    None
                },
                ..c.clone()
            })
            .collect();
        out.pods.push(PodReading {
            uid: p.uid.clone(),
            cgroup,
            guest_resident_bytes: None,
            guest_hugetlb_bytes: None,
            usage_after_smaps_bytes: None,
            guest_grown_since_bytes: None,
            guest_resident_taken_at: None,
            containers,
            processes: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests;
