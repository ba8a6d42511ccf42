//! The agent pods of one session: created on demand (one per node), waited for with a time limit
//! and a reason when they will not run, reused across refreshes, renewed before their deadline,
//! deleted at the end; earlier sessions' leftovers swept at start-up and by `agent cleanup`.
//!
//! Exit paths: [`Agents::delete_all`] runs on normal exit and on Ctrl-C, SIGTERM and SIGHUP (the
//! caller selects on the signals). A panic or SIGKILL cannot delete anything: there the pods'
//! `activeDeadlineSeconds` makes the kubelet end them, and the next session's sweep deletes
//! what is left: pods past their deadline, and at once the pods of sessions this machine
//! recorded whose process is gone ([`super::owners`]). Another machine's agents are never swept
//! before their deadline.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use super::agent_spec::{
    agent_state, create_refused, managed_selector, AgentConfig, AgentState, Session, CONTAINER,
    DEFAULT_DEADLINE_SECS, SESSION_LABEL,
};
use super::error::{AgentError, SweepError};
use super::exec::kube_message;
use super::owners::Owners;

/// How long a failed node waits before its agent is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Recreate an agent this long before its deadline.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// How often a starting agent's status is looked at.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Agent creates in flight at once (the waits after them are not bounded: they share one list).
const CREATES_AT_ONCE: usize = 32;

#[derive(Debug, Clone)]
struct Agent {
    name: String,
    created: Instant,
}

/// The agents of this session.
pub struct Agents {
    client: kube::Client,
    config: AgentConfig,
    start_timeout: Duration,
    running: Mutex<HashMap<String, Agent>>,
    failed: Mutex<HashMap<String, (Instant, AgentError)>>,
    /// Every pod created and not yet deleted (also those still starting).
    created: Mutex<Vec<String>>,
    /// The statuses of this session's pods from the last list (one list per poll round
    /// answers every agent that is starting, instead of one GET per agent per round).
    board: tokio::sync::Mutex<Board>,
    creates: tokio::sync::Semaphore,
    /// This machine's record of its sessions (written before the first agent is created).
    owners: Owners,
    recorded: std::sync::Once,
}

/// This session's agent pods as one list saw them.
#[derive(Default)]
struct Board {
    /// When the list was sent: it shows every pod created before then.
    listed_at: Option<Instant>,
    /// Pod name to status.
    pods: HashMap<String, Option<PodStatus>>,
    /// The server refused the list (no `list` right): starting agents are polled one by one.
    unlisted: bool,
}

impl Agents {
    pub fn new(client: kube::Client, config: AgentConfig, start_timeout: Duration) -> Agents {
        Agents::with_owners(client, config, start_timeout, Owners::in_state_dir())
    }

    /// The agents of a session recorded in `owners`.
    pub fn with_owners(
        client: kube::Client,
        config: AgentConfig,
        start_timeout: Duration,
        owners: Owners,
    ) -> Agents {
        Agents {
            client,
            config,
            start_timeout,
            running: Mutex::default(),
            failed: Mutex::default(),
            created: Mutex::default(),
            board: tokio::sync::Mutex::default(),
            creates: tokio::sync::Semaphore::new(CREATES_AT_ONCE),
            owners,
            recorded: std::sync::Once::new(),
        }
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.config.namespace)
    }

    /// The container to exec into.
    pub fn container(&self) -> &'static str {
        CONTAINER
    }

    /// A Running agent on `node` (its pod name), creating it when needed; why when it cannot
    /// run.
    pub async fn ensure(&self, node: &str) -> Result<String, AgentError> {
        let deadline = Duration::from_secs(self.config.deadline_secs.max(0) as u64);
        let old = lock(&self.running).get(node).cloned();
        if let Some(a) = old {
            if a.created.elapsed() + RENEW_BEFORE < deadline {
                return Ok(a.name);
            }
            // Close to its deadline: replace it.
            lock(&self.running).remove(node);
            self.delete(&a.name).await;
        }
        if let Some((at, why)) = lock(&self.failed).get(node).cloned() {
            if at.elapsed() < RETRY_AFTER {
                return Err(why);
            }
        }
        match self.start(node).await {
            Ok(name) => {
                lock(&self.failed).remove(node);
                lock(&self.running).insert(
                    node.to_string(),
                    Agent {
                        name: name.clone(),
                        created: Instant::now(),
                    },
                );
                Ok(name)
            }
            // The server could not be reached: try again next round, not after RETRY_AFTER.
            Err(why) if why.connection_failed() => Err(why),
            Err(why) => {
                lock(&self.failed).insert(node.to_string(), (Instant::now(), why.clone()));
                Err(why)
            }
        }
    }

    /// Forget a node's agent (its exec failed: it may be gone); the next round makes a new one.
    pub async fn forget(&self, node: &str) {
        let gone = lock(&self.running).remove(node);
        if let Some(a) = gone {
            self.delete(&a.name).await;
        }
    }

    async fn start(&self, node: &str) -> Result<String, AgentError> {
        let ns = &self.config.namespace;
        let permit = self.creates.acquire().await.ok();
        // Without a record a killed session's agents wait for their deadline: that is all.
        self.recorded.call_once(|| {
            let _ = self.owners.record(&self.config.session);
        });
        let created = self
            .api()
            .create(&PostParams::default(), &self.config.pod(node))
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code != 429 => create_refused(ns, s),
                other => AgentError::Create {
                    namespace: ns.clone(),
                    code: match other {
                        kube::Error::Api(s) => Some(s.code),
                        _ => None,
                    },
                    message: kube_message(other),
                },
            })?;
        drop(permit);
        self.wait_running(node, created).await
    }

    async fn wait_running(&self, node: &str, created: Pod) -> Result<String, AgentError> {
        let ns = &self.config.namespace;
        let name = created.metadata.name.unwrap_or_default();
        lock(&self.created).push(name.clone());
        let until = Instant::now() + self.start_timeout;
        // Statuses must come from a list sent after this point (one that shows the pod), and
        // each look from a newer list than the one before.
        let mut seen = Instant::now();
        let mut last = created.status;
        loop {
            match agent_state(last.as_ref(), &self.config.image) {
                AgentState::Running => return Ok(name),
                AgentState::Stuck(why) | AgentState::Ended(why) => {
                    self.delete(&name).await;
                    return Err(AgentError::WillNotRun {
                        node: node.to_string(),
                        why,
                    });
                }
                AgentState::Starting => {}
            }
            if Instant::now() >= until {
                self.delete(&name).await;
                return Err(AgentError::StartTimeout {
                    namespace: ns.clone(),
                    pod: name,
                    node: node.to_string(),
                    secs: self.start_timeout.as_secs(),
                    state: phase_and_reason(last.as_ref()),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
            last = match self.status_now(&name, &mut seen).await {
                Ok(status) => status,
                Err(e) => {
                    self.delete(&name).await;
                    return Err(AgentError::Vanished {
                        node: node.to_string(),
                        message: kube_message(&e),
                    });
                }
            };
        }
    }

    /// Pod `name`'s status from a list of this session's pods sent after `seen` (the list
    /// before, or the pod's creation), shared with every other agent waiting at the same time:
    /// the first waiter of a poll round lists, the others of that round read its answer. From a
    /// GET of the pod when the list is refused or does not show it (the GET says why it is
    /// gone).
    async fn status_now(
        &self,
        name: &str,
        seen: &mut Instant,
    ) -> Result<Option<PodStatus>, kube::Error> {
        let listed = {
            let mut board = self.board.lock().await;
            let mut failed = false;
            if board.listed_at.is_none_or(|t| t <= *seen) && !board.unlisted {
                let sent = Instant::now();
                let lp = ListParams::default().labels(&format!(
                    "{},{SESSION_LABEL}={}",
                    managed_selector(),
                    self.config.session.id
                ));
                match self.api().list(&lp).await {
                    Ok(list) => {
                        board.pods = list
                            .items
                            .into_iter()
                            .map(|p| (p.metadata.name.unwrap_or_default(), p.status))
                            .collect();
                        board.listed_at = Some(sent);
                    }
                    // No right to list: each agent asks for itself from now on.
                    Err(kube::Error::Api(s)) if s.code == 403 => board.unlisted = true,
                    // This round only: the GET then reports what is wrong.
                    Err(_) => failed = true,
                }
            }
            if board.unlisted || failed {
                None
            } else {
                if let Some(t) = board.listed_at {
                    *seen = t;
                }
                board.pods.get(name).cloned()
            }
        };
        match listed {
            Some(status) => Ok(status),
            None => self.api().get(name).await.map(|p| p.status),
        }
    }

    async fn delete(&self, name: &str) {
        let _ = self
            .api()
            .delete(name, &DeleteParams::default().grace_period(0))
            .await;
        lock(&self.created).retain(|n| n != name);
    }

    /// Delete every agent of this session (also those still starting).
    pub async fn delete_all(&self) {
        let names: Vec<String> = lock(&self.created).clone();
        futures::future::join_all(names.iter().map(|n| self.delete(n))).await;
        lock(&self.running).clear();
        // Anything created by a request whose answer never came.
        let lp = ListParams::default().labels(&format!(
            "{},{SESSION_LABEL}={}",
            managed_selector(),
            self.config.session.id
        ));
        let swept = self
            .api()
            .delete_collection(&DeleteParams::default().grace_period(0), &lp)
            .await;
        if swept.is_ok() {
            self.owners.forget(&self.config.session.id);
        }
    }

    /// Delete agent pods of earlier sessions of this machine whose process is gone, and any
    /// past their deadline.
    pub async fn sweep(&self) -> Result<Vec<String>, SweepError> {
        sweep(
            &self.client,
            &self.config.namespace,
            Sweep::Stale {
                keep: &self.config.session,
                owners: &self.owners,
            },
        )
        .await
    }
}

/// `Pending`, with the status's or a condition's reason when there is one (`Pending:
/// Unschedulable`); a pod nothing picked up has none.
fn phase_and_reason(status: Option<&k8s_openapi::api::core::v1::PodStatus>) -> String {
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let reason = status.and_then(|s| {
        s.reason.clone().or_else(|| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.status != "True")
                .and_then(|c| c.reason.clone())
        })
    });
    match reason {
        Some(r) if !r.is_empty() => format!("{phase}: {r}"),
        _ => format!("{phase}, no node has picked it up"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which agent pods a sweep deletes.
#[derive(Debug, Clone, Copy)]
pub enum Sweep<'a> {
    /// Every one (`agent cleanup --all`).
    All,
    /// Not `keep`'s; those of sessions `owners` recorded whose process is gone, and those past
    /// their deadline (creation plus `activeDeadlineSeconds`, at `keep.started`).
    Stale {
        keep: &'a Session,
        owners: &'a Owners,
    },
}

impl Sweep<'_> {
    fn deletes(&self, pod: &Pod) -> bool {
        let Sweep::Stale { keep, owners } = self else {
            return true;
        };
        let session = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SESSION_LABEL))
            .map(String::as_str)
            .unwrap_or_default();
        if session == keep.id {
            return false;
        }
        owners.ours_and_gone(session) || past_deadline(pod, keep.started)
    }
}

/// Whether `pod` was created more than its `activeDeadlineSeconds` (else the default) before
/// `now` (Unix seconds): the kubelet has ended it, or it outlived every session that could use it.
fn past_deadline(pod: &Pod, now: i64) -> bool {
    let Some(created) = pod.metadata.creation_timestamp.as_ref() else {
        return false;
    };
    let deadline = pod
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .unwrap_or(DEFAULT_DEADLINE_SECS);
    created.0.as_second().saturating_add(deadline) < now
}

/// Delete the agent pods in `namespace` that `which` says. Returns the deleted pods' names.
pub async fn sweep(
    client: &kube::Client,
    namespace: &str,
    which: Sweep<'_>,
) -> Result<Vec<String>, SweepError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&managed_selector()))
        .await
        .map_err(|e| SweepError::List {
            namespace: namespace.to_string(),
            message: kube_message(&e),
        })?;
    let mut deleted = Vec::new();
    let mut sessions = std::collections::BTreeSet::new();
    for pod in list.items {
        if !which.deletes(&pod) {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        match api
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(SweepError::Delete {
                    namespace: namespace.to_string(),
                    pod: name,
                    message: kube_message(&e),
                })
            }
        }
        sessions.extend(
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SESSION_LABEL))
                .cloned(),
        );
    }
    if let Sweep::Stale { owners, .. } = which {
        sessions
            .iter()
            .filter(|s| owners.ours_and_gone(s))
            .for_each(|s| owners.forget(s));
    }
    Ok(deleted)
}
