//! OOM kills of a VM that its launcher pod's status shows: the `compute` container terminated
//! with reason `OOMKilled` (`state`, or `lastState` after a restart). The kubelet writes it
//! whatever reads the node, so a kill is known even without a kernel log (the kubelet as the
//! live source, RBAC without agents).

use crate::model::evidence::{parse_rfc3339, At, Bound, Evidence, EvidenceKind, Level};
use crate::model::join::Joined;
use crate::model::objects::{Pod, Terminated};
use crate::model::oom_verdict::OomExplanation;
use crate::model::oom_vm::COMPUTE_CONTAINER;

/// The container runtime's reason for a container its cgroup's OOM killer ended.
pub const OOM_KILLED: &str = "OOMKilled";

/// One `OOMKilled` termination of the compute container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusKill {
    /// `finishedAt` as the kubelet wrote it.
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
}

/// The compute container's `OOMKilled` terminations, its current state's first; a `lastState`
/// that repeats the current one (same time) is the same kill.
pub fn status_kills(pod: &Pod) -> Vec<StatusKill> {
    let Some(c) = pod
        .status
        .container_statuses
        .iter()
        .find(|c| c.name == COMPUTE_CONTAINER)
    else {
        return Vec::new();
    };
    let mut out: Vec<StatusKill> = Vec::new();
    for t in [&c.state.terminated, &c.last_state.terminated]
        .into_iter()
        .flatten()
        .filter(|t| t.reason.as_deref() == Some(OOM_KILLED))
    {
        let kill = kill_of(t);
        if !out.iter().any(|k| k.finished_at == kill.finished_at) {
            out.push(kill);
        }
    }
    out
}

fn kill_of(t: &Terminated) -> StatusKill {
    StatusKill {
        finished_at: t.finished_at.clone(),
        exit_code: t.exit_code,
    }
}

/// The kills the statuses of a VM's pods show that no kernel log has: its current pod's, and
/// those of its VMI's pods that ended.
pub fn of_vm(j: &Joined, history: &[OomExplanation]) -> (Vec<StatusKill>, Vec<StatusKill>) {
    let current = j.pod.map(|p| not_logged(p, history)).unwrap_or_default();
    let ended = j
        .ended_pods
        .iter()
        .flat_map(|p| not_logged(p, history))
        .collect();
    (current, ended)
}

/// The kills `pod`'s status shows that none of the kernel-log kills in `history` already counts.
pub fn not_logged(pod: &Pod, history: &[OomExplanation]) -> Vec<StatusKill> {
    let logged = history
        .iter()
        .filter(|e| e.kills_vm() && e.event.pod_uid.as_deref() == Some(&pod.metadata.uid))
        .count();
    not_in_kernel_log(status_kills(pod), logged)
}

/// The status kills no kernel-log kill already counts. A kernel log names the pod but prints
/// its own clock (seconds since boot, or the node's local time), which cannot be set against
/// `finishedAt`; the compute container of a launcher pod runs once (KubeVirt's launcher pods
/// never restart it), so a kill the log found in this pod's compute container is the kill its
/// status shows: each such log kill stands for one status kill.
pub fn not_in_kernel_log(kills: Vec<StatusKill>, log_kills_of_pod: usize) -> Vec<StatusKill> {
    kills.into_iter().skip(log_kills_of_pod).collect()
}

/// Each kill as evidence, when the budget is known (without a limit there is none).
pub fn evidence_all(kills: &[StatusKill], budget: Option<i64>) -> Vec<Evidence> {
    budget.map_or_else(Vec::new, |b| kills.iter().map(|k| evidence(k, b)).collect())
}

/// A status kill as evidence: at the kill the cgroup was at its limit and guest RAM can hold at
/// most the guest size, so at least `budget` (the limit less the charged guest) was outside
/// guest RAM: a lower bound, against the compute container's limit.
pub fn evidence(kill: &StatusKill, budget: i64) -> Evidence {
    let when = kill.finished_at.as_deref();
    Evidence {
        kind: EvidenceKind::OomKill,
        bytes: budget.max(0),
        at: when.map(|w| parse_rfc3339(w).map_or_else(|| At::Printed(w.to_string()), At::Unix)),
        source: match when {
            Some(w) => format!("pod status (OOMKilled at {w})"),
            None => "pod status (OOMKilled)".to_string(),
        },
        bound: Bound::Lower,
        level: Level::Container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::{ContainerState, ContainerStatus};

    fn terminated(reason: &str, at: &str) -> ContainerState {
        ContainerState {
            terminated: Some(Terminated {
                reason: Some(reason.into()),
                finished_at: Some(at.into()),
                exit_code: Some(137),
            }),
        }
    }

    fn pod(name: &str, state: ContainerState, last: ContainerState) -> Pod {
        let mut p = Pod::default();
        p.status.container_statuses.push(ContainerStatus {
            name: name.into(),
            state,
            last_state: last,
            ..Default::default()
        });
        p
    }

    #[test]
    fn only_the_compute_containers_oom_kills() {
        let at = "2024-05-21T09:14:03Z";
        let p = pod(
            "compute",
            terminated("OOMKilled", at),
            ContainerState::default(),
        );
        let k = status_kills(&p);
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].finished_at.as_deref(), Some(at));
        assert_eq!(k[0].exit_code, Some(137));
        let sidecar = pod(
            "guest-console-log",
            terminated("OOMKilled", at),
            Default::default(),
        );
        assert!(status_kills(&sidecar).is_empty());
        let error = pod("compute", terminated("Error", at), Default::default());
        assert!(status_kills(&error).is_empty());
        let both = pod(
            "compute",
            terminated("OOMKilled", at),
            terminated("OOMKilled", "2024-05-21T08:00:00Z"),
        );
        assert_eq!(status_kills(&both).len(), 2);
        let repeated = pod(
            "compute",
            terminated("OOMKilled", at),
            terminated("OOMKilled", at),
        );
        assert_eq!(status_kills(&repeated).len(), 1);
    }

    #[test]
    fn a_kill_the_kernel_log_has_counts_once() {
        let p = pod(
            "compute",
            terminated("OOMKilled", "2024-05-21T09:14:03Z"),
            ContainerState::default(),
        );
        assert_eq!(not_in_kernel_log(status_kills(&p), 0).len(), 1);
        assert!(not_in_kernel_log(status_kills(&p), 1).is_empty());
        assert!(not_in_kernel_log(status_kills(&p), 2).is_empty());
    }

    #[test]
    fn evidence_is_the_budget_at_the_kill() {
        let p = pod(
            "compute",
            terminated("OOMKilled", "2024-05-21T09:14:03Z"),
            ContainerState::default(),
        );
        let e = evidence(&status_kills(&p)[0], 369_797_121);
        assert_eq!(e.kind, EvidenceKind::OomKill);
        assert_eq!(e.bytes, 369_797_121);
        assert_eq!(e.bound, Bound::Lower);
        assert_eq!(e.level, Level::Container);
        assert_eq!(e.at, Some(At::Unix(1_716_282_843)));
        assert_eq!(e.source, "pod status (OOMKilled at 2024-05-21T09:14:03Z)");
        assert_eq!(e.words(), "the OOM kill at 2024-05-21 09:14 UTC");
    }
}
