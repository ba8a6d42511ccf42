//! Why node readings, an agent pod or a kernel log could not be had: typed, each variant's text
//! the one sentence the user sees (the stale reason of a node, a warning, an error line).

use super::exec::{CommandFailure, ExecError};
use super::kubelet::KubeletError;
use crate::parse::probe::ProbeError;

/// Why an agent pod cannot serve a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// 403 from Pod Security admission: the namespace does not allow privileged pods.
    #[error("the agent pod was rejected in namespace {namespace}: {message}; pass --agent-namespace with a namespace that allows privileged pods (or --live pod-exec)")]
    PodSecurity { namespace: String, message: String },
    /// 403 from ResourceQuota admission.
    #[error("the agent pod was rejected in namespace {namespace} by a resource quota: {message}; pass --agent-namespace with room for it")]
    Quota { namespace: String, message: String },
    /// 403 from authorization: no `create` on pods.
    #[error("not allowed to create agent pods in namespace {namespace}: {message}; ask for pods create and pods/exec there, or use --live pod-exec or --live kubelet")]
    Forbidden { namespace: String, message: String },
    /// Any other answer (`code`), or none (`code` is `None`: the server could not be reached).
    #[error("creating the agent pod in namespace {namespace} failed: {message}")]
    Create {
        namespace: String,
        code: Option<u16>,
        message: String,
    },
    /// The pod's status says it will not run (stuck pulling or scheduling, or ended).
    #[error("agent pod on node {node}: {why}")]
    WillNotRun { node: String, why: String },
    #[error("the agent pod {namespace}/{pod} on node {node} was not Running after {secs}s (still {state}); it was deleted")]
    StartTimeout {
        namespace: String,
        pod: String,
        node: String,
        secs: u64,
        /// Phase and reason, e.g. `Pending: Unschedulable`.
        state: String,
    },
    #[error("the agent pod on node {node} went away while starting: {message}")]
    Vanished { node: String, message: String },
    /// `--live auto` decided before any request not to make agents (`why` says why).
    #[error("no agent pods ({why})")]
    NotUsed { why: String },
}

impl AgentError {
    /// Whether the connection failed rather than the node or the namespace: no answer, or a
    /// server that kept throttling. Such a start is tried again the next round.
    pub fn connection_failed(&self) -> bool {
        matches!(
            self,
            AgentError::Create {
                code: None | Some(429),
                ..
            }
        )
    }
}

/// Why earlier sessions' agent pods could not be swept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("listing agent pods in namespace {namespace}: {message}")]
    List { namespace: String, message: String },
    #[error("deleting agent pod {namespace}/{pod}: {message}")]
    Delete {
        namespace: String,
        pod: String,
        message: String,
    },
}

/// Why a node has no fresh readings this round.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error("live readings are off")]
    Off,
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The agent was gone and a new one could not be started.
    #[error("{exec}; a new agent: {agent}")]
    Renew { exec: ExecError, agent: AgentError },
    /// The probe ran and said why it could not read the node.
    #[error(transparent)]
    Node(ProbeError),
    /// The probe's output could not be read; with how the command ended and its stderr.
    #[error("{error}{}{stderr}", .failure.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Probe {
        error: ProbeError,
        failure: Option<CommandFailure>,
        stderr: StderrTail,
    },
    /// A VM's compute container's probe output could not be read (`--live pod-exec`).
    #[error("pod {namespace}/{pod}: {error}{stderr}")]
    PodProbe {
        namespace: String,
        pod: String,
        error: ProbeError,
        stderr: StderrTail,
    },
    #[error("no VM pods to read")]
    NoPods,
    #[error(transparent)]
    Kubelet(#[from] KubeletError),
    /// `--live auto`: the agent, exec into the compute containers and the kubelet all failed.
    #[error("{agent}; exec into the VMs' compute containers failed too: {exec}; and the kubelet: {kubelet}")]
    Exhausted {
        agent: AgentError,
        exec: Box<ReadError>,
        kubelet: KubeletError,
    },
}

/// Why a node's kernel log (or the OOM reports in it) could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KernelLogError {
    #[error("reading a node's kernel log needs the agent (--live auto or agent)")]
    NoAgent,
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("reading the kernel log of node {node}: {error}")]
    Exec { node: String, error: ExecError },
    #[error("reading the kernel log of node {node}: {failure}{stderr}")]
    Failed {
        node: String,
        failure: CommandFailure,
        stderr: StderrTail,
    },
    /// The parsing task ended without an answer (it panicked or was cancelled).
    #[error("parsing the kernel log of node {node}: {message}")]
    Parse { node: String, message: String },
}

/// The start of what a command wrote to stderr (the first 300 characters, trimmed), shown as
/// ` (…)` after an error, or nothing when it wrote nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StderrTail(String);

impl StderrTail {
    pub fn of(stderr: &str) -> StderrTail {
        StderrTail(stderr.trim().chars().take(300).collect())
    }
}

impl std::fmt::Display for StderrTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentences_stay_what_users_read() {
        let gone = ExecError::Gone {
            namespace: "ns".into(),
            name: "agent-1".into(),
        };
        assert!(gone.pod_gone());
        let renew = ReadError::Renew {
            exec: gone,
            agent: AgentError::StartTimeout {
                namespace: "ns".into(),
                pod: "agent-2".into(),
                node: "n1".into(),
                secs: 60,
                state: "Pending: Unschedulable".into(),
            },
        };
        assert_eq!(
            renew.to_string(),
            "exec into pod ns/agent-1 failed: pod ns/agent-1 is gone (404 Not Found); a new agent: \
             the agent pod ns/agent-2 on node n1 was not Running after 60s (still Pending: \
             Unschedulable); it was deleted"
        );
        let probe = ReadError::Probe {
            error: ProbeError::Empty,
            failure: Some(CommandFailure::Exit("2".into())),
            stderr: StderrTail::of("  sh: cat: not found\n"),
        };
        assert_eq!(
            probe.to_string(),
            "the node probe printed nothing (exit code 2) (sh: cat: not found)"
        );
        let log = KernelLogError::Failed {
            node: "n1".into(),
            failure: CommandFailure::Status("NonZeroExitCode".into()),
            stderr: StderrTail::of(""),
        };
        assert_eq!(
            log.to_string(),
            "reading the kernel log of node n1: NonZeroExitCode"
        );
        let timeout = ExecError::Timeout {
            namespace: "ns".into(),
            name: "p".into(),
            secs: 15.0,
        };
        assert_eq!(
            timeout.to_string(),
            "exec into pod ns/p did not finish within 15s"
        );
        assert_eq!(
            StderrTail::of(&"x".repeat(400)).to_string().len(),
            " ()".len() + 300
        );
    }
}
