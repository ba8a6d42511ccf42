//! Live readings for a whole inventory, one round per refresh: one exec (or one kubelet summary
//! request) per node, never per VM, nodes in parallel with a bound, each with a time limit. A slow or failing node marks only its
//! own VMs stale (its last good readings are kept); the others get fresh numbers.
//!
//! Used by `list` (one round) and the dashboard (a round per refresh, merged into each snapshot):
//! ```text
//! let mut live = LiveReadings::start(client, &inventory, flags, ReadOptions::default()).await?;
//! loop { let round = live.read(&inventory, now).await; /* round.readings, round.stale */ }
//! live.close().await;   // deletes the agent pods: call it on every exit path
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::agent_spec::{AgentConfig, AgentConfigError, AgentFlags, Session, NAMESPACE_MANIFEST};
use super::agents::Agents;
use super::error::{AgentError, KernelLogError, ReadError, StderrTail};
use super::exec;
use super::probe::{exec_command, ProbeSettings, ProbeTarget};
use super::smaps_policy::{GuestMemory, SmapsPolicy};
pub use super::targets::{targets, Target};

mod missed;
use crate::model::inventory::{Inventory, Readings};
use crate::model::join::join;
use crate::model::oom_event::OomEvent;
use crate::model::readings::{LiveSource, NodeReadings};

/// Where live numbers come from (`--live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The agent where it can run, else exec into each VM's compute container, else the kubelet's
    /// stats summary.
    Auto,
    Agent,
    /// `sh` in each VM's compute container: its own cgroup and processes (no privileges needed
    /// beyond pods/exec).
    PodExec,
    /// The kubelet's stats summary through the API server's node proxy: usage, working set and
    /// RSS per pod and container, no processes (guest RAM estimated).
    Kubelet,
    Off,
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub mode: Mode,
    /// Nodes read at the same time.
    pub parallel: usize,
    /// Time limit of one node's exec.
    pub exec_timeout: Duration,
    /// Time limit for an agent pod to turn Running.
    pub start_timeout: Duration,
    /// How often qemu's smaps is read for the exact guest resident.
    pub smaps: SmapsPolicy,
    /// Read each node's kernel log in the round too (through its agent, beside the probe), for
    /// the OOM kills of pods that are gone. One-shot readers (`list`, `fix`) want this; the
    /// dashboard reads logs in the background when something suggests a kill.
    pub kernel_logs: bool,
    /// `--readonly`: change nothing in the cluster, so no agent pods (and no sweep of old ones);
    /// `Auto` reads through pod-exec, else the kubelet.
    pub readonly: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            mode: Mode::Auto,
            // An exec is mostly waiting (API server to kubelet to runtime, then the probe on
            // the node): 200 nodes at 16 at once were 13 exec latencies in a row.
            parallel: 32,
            exec_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(60),
            smaps: SmapsPolicy::default(),
            kernel_logs: false,
            readonly: false,
        }
    }
}

/// One round's result, to merge into a snapshot: `readings` for `model::report::build`, `stale`
/// for `ReportOptions::stale_nodes`.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub readings: Readings,
    /// Nodes whose numbers are old or missing this round, with the reason.
    pub stale: HashMap<String, String>,
    /// Session-wide remarks (e.g. the sweep of earlier agents).
    pub warnings: Vec<String>,
    /// With [`ReadOptions::kernel_logs`]: the OOM reports in each node's kernel log, or why the
    /// log could not be read.
    pub kernel_logs: BTreeMap<String, Result<Vec<OomEvent>, KernelLogError>>,
}

/// Why live readings cannot start at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadersError {
    #[error(transparent)]
    Config(#[from] AgentConfigError),
    #[error("--readonly makes no change to the cluster, and the agent is a pod this tool creates; use --live pod-exec or --live kubelet (or leave out --readonly)")]
    Readonly,
    #[error("the agent namespace {0} does not exist; a cluster admin creates it with `kubectl apply -f {NAMESPACE_MANIFEST}` (or pass --agent-namespace, or use --live pod-exec or --live kubelet)")]
    NoNamespace(String),
}

/// What `--live auto` says when it makes no agent pods: `why`, then where the numbers come from.
fn without_agents(why: &str) -> String {
    format!("no agent pods: {why}; live numbers come from each VM's compute container (pod-exec), else the kubelet")
}

/// The nodes whose kernel logs tell the OOM kills of the inventory's VMs: every node with a
/// launcher pod or a VMI on it, in any phase (a VM just killed may have no running pod).
pub fn log_nodes(inv: &Inventory) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for j in join(inv) {
        let pods = j.pod.into_iter().chain(j.other_pods.iter().copied());
        let nodes = pods
            .filter_map(|p| p.spec.node_name.as_deref())
            .chain(j.vmi.and_then(|v| v.status.node_name.as_deref()));
        out.extend(nodes.filter(|n| !n.is_empty()).map(str::to_string));
    }
    out
}

/// Live readings across refreshes: the session's agents and the last good readings per node.
pub struct LiveReadings {
    client: kube::Client,
    agents: Option<Agents>,
    opts: ReadOptions,
    last: Readings,
    warnings: Vec<String>,
    /// Rounds read so far.
    round: u64,
    guest: GuestMemory,
}

impl LiveReadings {
    /// Prepare (and sweep earlier sessions' agents). `now` is Unix seconds.
    pub async fn start(
        client: kube::Client,
        inv: &Inventory,
        flags: &AgentFlags,
        opts: ReadOptions,
        now: i64,
    ) -> Result<LiveReadings, ReadersError> {
        let mut warnings = Vec::new();
        let agents = match opts.mode {
            Mode::Off | Mode::PodExec | Mode::Kubelet => None,
            Mode::Agent if opts.readonly => return Err(ReadersError::Readonly),
            Mode::Auto if opts.readonly => {
                warnings.push(without_agents("--readonly changes nothing in the cluster"));
                None
            }
            Mode::Auto | Mode::Agent => {
                let config = AgentConfig::for_cluster(inv, flags, Session::new(now))?;
                match super::agent_ns::check(&client, &config.namespace).await {
                    super::agent_ns::Verdict::Usable => {}
                    super::agent_ns::Verdict::Missing if opts.mode == Mode::Agent => {
                        return Err(ReadersError::NoNamespace(config.namespace))
                    }
                    super::agent_ns::Verdict::Missing => {
                        warnings.push(without_agents(&format!(
                            "the agent namespace {} does not exist (a cluster admin creates it with `kubectl apply -f {NAMESPACE_MANIFEST}`)",
                            config.namespace
                        )));
                        return Ok(Self::without(client, opts, warnings));
                    }
                    super::agent_ns::Verdict::Restricted(level) if opts.mode == Mode::Auto => {
                        warnings.push(without_agents(&format!(
                            "the agent namespace {} enforces Pod Security level {level}, which refuses the agent's hostPID and host mount (it needs privileged)",
                            config.namespace
                        )));
                        return Ok(Self::without(client, opts, warnings));
                    }
                    // --live agent: try, and say what the server answers.
                    super::agent_ns::Verdict::Restricted(_) => {}
                }
                let agents = Agents::new(client.clone(), config, opts.start_timeout);
                match agents.sweep().await {
                    Ok(gone) if !gone.is_empty() => warnings.push(format!(
                        "deleted {} agent pod(s) left behind by earlier runs: {}",
                        gone.len(),
                        gone.join(", ")
                    )),
                    Ok(_) => {}
                    Err(e) => warnings.push(e.to_string()),
                }
                Some(agents)
            }
        };
        Ok(LiveReadings {
            client,
            agents,
            opts,
            last: Readings::new(),
            warnings,
            round: 0,
            guest: GuestMemory::default(),
        })
    }

    /// Readings without agents (pod-exec, else the kubelet, in `Auto`).
    fn without(client: kube::Client, opts: ReadOptions, warnings: Vec<String>) -> LiveReadings {
        LiveReadings {
            client,
            agents: None,
            opts,
            last: Readings::new(),
            warnings,
            round: 0,
            guest: GuestMemory::default(),
        }
    }

    pub fn agents(&self) -> Option<&Agents> {
        self.agents.as_ref()
    }

    /// One round over every node with running VMs.
    pub async fn read(&mut self, inv: &Inventory, now: i64) -> Round {
        let mut round = Round {
            warnings: std::mem::take(&mut self.warnings),
            ..Round::default()
        };
        if self.opts.mode == Mode::Off {
            return round;
        }
        let mut per_node = targets(inv);
        let round_no = self.round;
        self.round += 1;
        let exact = self.smaps_this_round(&mut per_node, round_no);
        let timeout = self.opts.exec_timeout;
        let client = &self.client;
        let agents = self.agents.as_ref();
        let mode = self.opts.mode;
        let logs_of = match agents {
            Some(_) if self.opts.kernel_logs => log_nodes(inv),
            _ => BTreeSet::new(),
        };
        let nodes: BTreeSet<String> = per_node.keys().cloned().chain(logs_of.clone()).collect();
        let mut started = start_agents(agents, &nodes).await;
        let mut results = futures::stream::iter(nodes)
            .map(|node| {
                let targets = per_node.remove(&node);
                let agent = agents.zip(started.remove(&node));
                let log = logs_of.contains(&node);
                let started_ok = agent.as_ref().map(|(_, r)| r.clone());
                async move {
                    let probe = async {
                        match &targets {
                            Some(t) => {
                                Some(read_one(client, agent, mode, &node, t, timeout, now).await)
                            }
                            None => None,
                        }
                    };
                    let kernel_log = async {
                        match started_ok {
                            Some(Ok(_)) if log => {
                                let a = agents.expect("an agent was started");
                                Some(log_events(client, a, &node, timeout).await)
                            }
                            Some(Err(why)) if log => Some(Err(why.into())),
                            _ => None,
                        }
                    };
                    let (r, log) = futures::join!(probe, kernel_log);
                    (node, r, log)
                }
            })
            .buffer_unordered(self.opts.parallel.max(1));
        // Each node's reading is compacted and replaces that node's last one as soon as it is
        // in: a round never holds all nodes' new readings uncompacted beside all the old ones.
        while let Some((node, result, log)) = results.next().await {
            if let Some(log) = log {
                round.kernel_logs.insert(node.clone(), log);
            }
            let Some(result) = result else { continue };
            match result {
                Ok(mut r) => {
                    self.guest.absorb(&mut r, &exact, round_no);
                    r.compact();
                    let r = Arc::new(r);
                    self.last.insert(node.clone(), r.clone());
                    round.readings.insert(node, r);
                }
                Err(why) => {
                    if let Some(old) = self.last.get(&node) {
                        round.readings.insert(node.clone(), old.clone());
                    }
                    round.stale.insert(node, why.to_string());
                }
            }
        }
        round
    }

    /// Which pods' smaps is read this round (their guest sizes, by pod UID); the others' guest
    /// sizes are cleared from the targets and carry the last figure.
    fn smaps_this_round(
        &mut self,
        per_node: &mut BTreeMap<String, Vec<Target>>,
        round_no: u64,
    ) -> HashMap<String, Vec<u64>> {
        self.guest
            .retain(per_node.values().flatten().map(|t| t.probe.uid.as_str()));
        let mut exact: HashMap<String, Vec<u64>> = HashMap::new();
        for t in per_node.values_mut().flatten() {
            let sizes = &t.probe.guest_bytes;
            if self
                .guest
                .wants_smaps(&self.opts.smaps, &t.probe.uid, sizes, round_no)
            {
                exact.insert(t.probe.uid.clone(), sizes.clone());
            } else {
                t.probe.guest_bytes.clear();
            }
        }
        exact
    }

    /// Read a node's kernel log through its agent (`dmesg`; the simulator's nodes name theirs in
    /// `VMMEM_KERNEL_LOG`).
    pub async fn kernel_log(&self, node: &str) -> Result<String, KernelLogError> {
        let agents = self.agents.as_ref().ok_or(KernelLogError::NoAgent)?;
        kernel_log(&self.client, agents, node, self.opts.exec_timeout).await
    }

    /// The OOM reports in a node's kernel log (read through its agent).
    pub async fn kernel_log_events(&self, node: &str) -> Result<Vec<OomEvent>, KernelLogError> {
        let agents = self.agents.as_ref().ok_or(KernelLogError::NoAgent)?;
        log_events(&self.client, agents, node, self.opts.exec_timeout).await
    }

    /// Delete this session's agents.
    pub async fn close(self) {
        if let Some(a) = &self.agents {
            a.delete_all().await;
        }
    }
}

/// One node's readings as `mode` says: in `Auto`, the agent, else (when no agent can run there)
/// exec into each VM's compute container, else the kubelet's summary.
/// One node's readings; `agent` is the session's agents with this node's started agent (its pod
/// name, or why it cannot run).
async fn read_one(
    client: &kube::Client,
    agent: Option<(&Agents, Result<String, AgentError>)>,
    mode: Mode,
    node: &str,
    targets: &[Target],
    timeout: Duration,
    now: i64,
) -> Result<NodeReadings, ReadError> {
    match (mode, agent) {
        (Mode::Off, _) => Err(ReadError::Off),
        (Mode::Kubelet, _) => {
            Ok(super::kubelet::read_node(client, node, targets, timeout, now).await?)
        }
        (Mode::PodExec, _) | (Mode::Agent, None) => {
            pod_exec(client, node, targets, timeout, now).await
        }
        // No agents this session (--readonly, or no namespace for them): the same order without.
        (Mode::Auto, None) => {
            let exec_why = match pod_exec(client, node, targets, timeout, now).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            super::kubelet::read_node(client, node, targets, timeout, now)
                .await
                .map_err(|kubelet| ReadError::Exhausted {
                    agent: AgentError::NotUsed {
                        why: "none this session".into(),
                    },
                    exec: Box::new(exec_why),
                    kubelet,
                })
        }
        (Mode::Agent, Some((a, started))) => {
            let pod = started?;
            read_node(client, a, &pod, node, targets, timeout, now).await
        }
        (Mode::Auto, Some((a, started))) => {
            // An agent that runs but does not answer in time means the node is slow: it is stale
            // this round (trying the other ways would cost their timeouts too).
            let why = match started {
                Ok(pod) => return read_node(client, a, &pod, node, targets, timeout, now).await,
                Err(e) => e,
            };
            // The agent cannot run here: read each VM's own container instead.
            let exec_why = match pod_exec(client, node, targets, timeout, now).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            // No exec either: the kubelet's summary (no processes, guest RAM estimated).
            super::kubelet::read_node(client, node, targets, timeout, now)
                .await
                .map_err(|kubelet| ReadError::Exhausted {
                    agent: why,
                    exec: Box::new(exec_why),
                    kubelet,
                })
        }
    }
}

/// Start the agents of `nodes`, all at once: starting is mostly waiting for the kubelet, so doing
/// it inside the exec bound would serialise the waits by the bound (200 nodes / 32 = 7 waits of
/// a pod start, one after another). The creates are bounded inside `Agents`; the waits share
/// one list per poll round. Each node's agent pod name, or why it cannot run there.
async fn start_agents(
    agents: Option<&Agents>,
    nodes: &BTreeSet<String>,
) -> HashMap<String, Result<String, AgentError>> {
    let Some(a) = agents else {
        return HashMap::new();
    };
    futures::stream::iter(nodes.iter().cloned())
        .map(|node| async move {
            let r = a.ensure(&node).await;
            (node, r)
        })
        .buffer_unordered(nodes.len().max(1))
        .collect()
        .await
}

/// What the agent runs for the kernel log: `dmesg` (syslog(2): the agent's `SYSLOG` capability;
/// the simulator's nodes name a file in `VMMEM_KERNEL_LOG` instead).
pub const KERNEL_LOG_COMMAND: [&str; 3] = [
    "sh",
    "-c",
    "if [ -n \"$VMMEM_KERNEL_LOG\" ]; then cat \"$VMMEM_KERNEL_LOG\"; else dmesg; fi",
];

/// A node's kernel log through its agent.
async fn kernel_log(
    client: &kube::Client,
    agents: &Agents,
    node: &str,
    timeout: Duration,
) -> Result<String, KernelLogError> {
    let pod = agents.ensure(node).await?;
    let argv: Vec<String> = KERNEL_LOG_COMMAND.iter().map(|s| s.to_string()).collect();
    let out = exec::run(
        client,
        &agents.config().namespace,
        &pod,
        agents.container(),
        argv,
        timeout,
    )
    .await
    .map_err(|error| KernelLogError::Exec {
        node: node.to_string(),
        error,
    })?;
    match out.failure {
        None => Ok(out.stdout),
        Some(failure) => Err(KernelLogError::Failed {
            node: node.to_string(),
            failure,
            stderr: StderrTail::of(&out.stderr),
        }),
    }
}

/// The OOM reports in a node's kernel log, parsed off the async workers (a log can be
/// megabytes).
async fn log_events(
    client: &kube::Client,
    agents: &Agents,
    node: &str,
    timeout: Duration,
) -> Result<Vec<OomEvent>, KernelLogError> {
    let text = kernel_log(client, agents, node, timeout).await?;
    let n = node.to_string();
    tokio::task::spawn_blocking(move || crate::parse::oom::parse_node_kernel_log(&text, &n))
        .await
        .map_err(|e| KernelLogError::Parse {
            node: node.to_string(),
            message: e.to_string(),
        })
}

/// The probe in the agent `pod` on `node`.
async fn read_node(
    client: &kube::Client,
    agents: &Agents,
    pod: &str,
    node: &str,
    targets: &[Target],
    timeout: Duration,
    now: i64,
) -> Result<NodeReadings, ReadError> {
    let probes: Vec<ProbeTarget> = targets.iter().map(|t| t.probe.clone()).collect();
    let argv = exec_command(&probes, &ProbeSettings::default());
    let ns = agents.config().namespace.clone();
    let mut pod = pod.to_string();
    let mut retried = false;
    let out = loop {
        match exec::run(client, &ns, &pod, agents.container(), argv.clone(), timeout).await {
            Ok(o) => break o,
            Err(e @ exec::ExecError::Timeout { .. }) => return Err(e.into()),
            Err(e) => {
                agents.forget(node).await;
                // Someone deleted the agent (or it passed its deadline): make a new one now.
                if e.pod_gone() && !retried {
                    retried = true;
                    pod = agents
                        .ensure(node)
                        .await
                        .map_err(|agent| ReadError::Renew { exec: e, agent })?;
                    continue;
                }
                // Otherwise the next round makes a new one.
                return Err(e.into());
            }
        }
    };
    match crate::parse::probe::parse(&out.stdout) {
        Ok(r) => Ok(r.into_readings(node, LiveSource::Agent, now)),
        // The probe said why itself.
        Err(e @ crate::parse::probe::ProbeError::Node(_)) => Err(ReadError::Node(e)),
        Err(error) => Err(ReadError::Probe {
            error,
            failure: out.failure,
            stderr: StderrTail::of(&out.stderr),
        }),
    }
}

/// The probe in each VM's compute container (one exec per VM, the node's VMs in sequence): the
/// container's own cgroup and processes. The readings are at container level.
async fn pod_exec(
    client: &kube::Client,
    node: &str,
    targets: &[Target],
    timeout: Duration,
    now: i64,
) -> Result<NodeReadings, ReadError> {
    let mut merged: Option<NodeReadings> = None;
    let mut errors: Vec<ReadError> = Vec::new();
    for t in targets {
        let settings = ProbeSettings {
            own_pod: Some(t.probe.uid.clone()),
            ..ProbeSettings::default()
        };
        let argv = exec_command(std::slice::from_ref(&t.probe), &settings);
        let out = match exec::run(client, &t.namespace, &t.pod, "compute", argv, timeout).await {
            Ok(o) => o,
            Err(e) => {
                errors.push(e.into());
                continue;
            }
        };
        let report = match crate::parse::probe::parse(&out.stdout) {
            Ok(r) => r,
            Err(error) => {
                errors.push(ReadError::PodProbe {
                    namespace: t.namespace.clone(),
                    pod: t.pod.clone(),
                    error,
                    stderr: StderrTail::of(&out.stderr),
                });
                continue;
            }
        };
        let mut r = report.into_readings(node, LiveSource::PodExec, now);
        for p in &mut r.pods {
            // What the container sees as its root is the compute container's cgroup.
            p.cgroup.level = crate::model::readings::CgroupLevel::Container;
            p.cgroup.container_id = t.compute_id.as_deref().map(Arc::from);
        }
        match &mut merged {
            None => merged = Some(r),
            Some(m) => {
                m.pods.append(&mut r.pods);
                m.missing_pods.append(&mut r.missing_pods);
            }
        }
    }
    match merged {
        Some(m) => Ok(m),
        None => Err(errors.into_iter().next().unwrap_or(ReadError::NoPods)),
    }
}
