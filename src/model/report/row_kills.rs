//! A row's OOM kills: of its current pod (or the pod a carried reading is of) and of earlier
//! ones, from the kernel logs, the cgroup counters and the pods' status, each kill counted once.

use super::oom_history::sidecar_kills_note;
use super::pod_facts::compute_container_id;
use super::row_features::Said;
use super::row_live::{sidecar_counter_note, LiveFigures};
use super::status_kills::{self, StatusKill};
use super::types::ReportOptions;
use crate::model::join::Joined;
use crate::model::oom_verdict::OomExplanation;

/// The VM's OOM kills: of its current pod and of earlier ones.
pub(super) struct OomKills {
    /// The kernel-log reports for this VM's pods, explained.
    pub(super) history: Vec<OomExplanation>,
    /// Kills of the current pod (its cgroup counter or the kernel log, whichever saw more).
    pub(super) current: u64,
    /// Kills of earlier pods found in kernel logs.
    pub(super) earlier: u64,
    /// Kills of the current pod its status shows that no kernel log has.
    pub(super) from_status: Vec<StatusKill>,
    /// Whether the count is known (counters or the node's kernel log were read).
    pub(super) known: bool,
}

pub(super) fn oom_kills(
    j: &Joined,
    live: &LiveFigures,
    opts: &ReportOptions,
    said: &mut Said,
) -> OomKills {
    // A carried reading's pod is the one the figures (and their kill counter) are of.
    let pod_uid = &live.pod_uid.clone().or_else(|| live.carried_pod.clone());
    let history: Vec<OomExplanation> = opts
        .oom_history
        .iter()
        .filter(|e| {
            let same_pod = pod_uid.is_some() && e.event.pod_uid == *pod_uid;
            let same_vm =
                e.vm.as_ref()
                    .is_some_and(|v| v.namespace == j.namespace() && v.name == j.name());
            same_pod || same_vm
        })
        .cloned()
        .collect();
    // Only kills in the compute container (or in a container not known) count as the VM's.
    let current_pod = |e: &OomExplanation| pod_uid.is_some() && e.event.pod_uid == *pod_uid;
    let log_current = history
        .iter()
        .filter(|e| e.kills_vm() && current_pod(e))
        .count() as u64;
    let earlier = history
        .iter()
        .filter(|e| e.kills_vm() && !current_pod(e))
        .count() as u64;
    let log_note = sidecar_kills_note(&history);
    let pod_reading = live
        .reading
        .zip(pod_uid.as_deref())
        .and_then(|(r, u)| r.pod(u));
    let compute_id = compute_container_id(j);
    let counter_note =
        sidecar_counter_note(j, pod_reading, compute_id.as_deref(), log_note.is_some());
    said.notes.extend(log_note.into_iter().chain(counter_note));
    let cgroup_kills = live.model.as_ref().map_or(0, |m| m.oom_kills);
    let (status_current, status_earlier) = status_kills::of_vm(j, &history);
    // Known when the VM's cgroup counters or its node's kernel log were read, or a log or the
    // pod's status named a kill; a VM with none of these (stopped, node unreachable, `--live
    // off`) has an unknown count.
    let known = !history.is_empty()
        || !status_current.is_empty()
        || !status_earlier.is_empty()
        || (live.model.is_some() && live.source.is_some_and(|s| s.has_oom_counters()))
        || opts.kernel_logs_read.covers(live.node.as_deref());
    OomKills {
        history,
        current: cgroup_kills.max(log_current + status_current.len() as u64),
        earlier: earlier + status_earlier.len() as u64,
        from_status: [status_current, status_earlier].concat(),
        known,
    }
}
