//! Which nodes' kernel logs the dashboard reads for OOM kills, and what it found, across
//! refreshes. Pure: the source feeds it each refresh's report and readings and the results of
//! the reads it asked for; the clock is a value.
//!
//! A node's log is read when the dashboard first sees the node, when the cgroup OOM-kill
//! counters of its pods rise, and when a VM on it changes pods (a new pod UID for the same VM,
//! or its VMI stops running: qemu's kill fails the pod, often before any probe saw the counter
//! rise). At most one read per node at a time and not more often than [`MIN_INTERVAL`] (a failed
//! read is retried after [`RETRY_INTERVAL`]). Kills found are kept for the session without
//! duplicates (a later read may no longer hold them once the kernel's ring buffer wrapped), and
//! the VM of each pod is remembered after the pod is gone, so kills of earlier pods still count.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use crate::model::inventory::{Inventory, Readings};
use crate::model::oom_event::OomEvent;
use crate::model::oom_verdict::{explain_one, OomExplanation};
use crate::model::oom_vm::{
    is_harvester, kubevirt_version, vm_for_gone_pod, vm_for_pod, VmFacts, VmRef,
};
use crate::model::overhead::ratio_room_of;
use crate::model::peaks::RememberedPods;
use crate::model::report::{Report, VmRow};
use crate::model::version::Version;
use crate::units::to_quantity_string;

/// Shortest time between two reads of one node's kernel log.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Wait before reading a node's log again after a failed read.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// Kills kept for the session (the oldest go first).
const MAX_EVENTS: usize = 1000;
/// Ended pods whose VM is remembered.
const MAX_ENDED: usize = 1024;

/// What the dashboard knows about one node's kernel log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLog {
    /// Sum of the OOM-kill counters of the node's pods, as last probed.
    pub kills: u64,
    /// A trigger fired since the last read started.
    pub wanted: bool,
    /// A read is in flight.
    pub reading: bool,
    pub last_read: Option<SystemTime>,
    /// Why the last read failed.
    pub error: Option<String>,
    /// OOM reports in the last successful read.
    pub reports: usize,
}

/// A VM's pod as last seen.
#[derive(Debug, Clone)]
struct PodSeen {
    uid: String,
    node: Option<String>,
    /// The VMI failed or finished: the pod is done.
    ended: bool,
    facts: VmFacts,
    /// The last refresh that had this VM.
    round: u64,
}

/// The session's view of OOM kills in kernel logs.
#[derive(Debug, Clone, Default)]
pub struct OomWatch {
    nodes: BTreeMap<String, NodeLog>,
    vms: HashMap<(String, String), PodSeen>,
    /// The VMs of pods that ended, by pod UID (oldest first in `ended_order`).
    ended: HashMap<String, VmFacts>,
    ended_order: VecDeque<String>,
    events: VecDeque<OomEvent>,
    seen: HashSet<EventKey>,
    /// Refreshes noted so far.
    round: u64,
}

/// What makes two reports the same kill (line numbers move as the ring buffer wraps).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EventKey {
    node: Option<String>,
    time: Option<String>,
    pod_uid: Option<String>,
    trigger_pid: Option<u32>,
    victim_pid: Option<u32>,
}

impl EventKey {
    fn of(ev: &OomEvent) -> EventKey {
        EventKey {
            node: ev.node.clone(),
            time: ev.time.clone(),
            pod_uid: ev.pod_uid.clone(),
            trigger_pid: ev.trigger_pid,
            victim_pid: ev.victim.as_ref().map(|v| v.pid),
        }
    }
}

/// What the report row says about the VM of its current pod (the facts an explanation needs).
fn facts_of(r: &VmRow) -> VmFacts {
    let bytes = |b: Option<i64>| b.and_then(|b| u64::try_from(b).ok());
    VmFacts {
        vm: VmRef {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        },
        guest_bytes: bytes(r.guest_bytes),
        configured_bytes: bytes(r.vm_limit_bytes.or(r.guest_bytes)),
        overhead_bytes: u64::try_from(r.expected_overhead_bytes)
            .ok()
            .filter(|&o| o > 0),
        ratio_room: ratio_room_of(&r.overhead_terms),
        sidecars: r.sidecar_bytes,
        reserved_annotation: (r.reserved_source == "annotation")
            .then(|| r.reserved_bytes.map(to_quantity_string))
            .flatten(),
        hugepages: r.hugepages,
        pod_containers: Vec::new(),
    }
}

impl OomWatch {
    pub fn new() -> OomWatch {
        OomWatch::default()
    }

    /// The nodes seen so far and the state of their logs.
    pub fn nodes(&self) -> &BTreeMap<String, NodeLog> {
        &self.nodes
    }

    /// Every kill found so far, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &OomEvent> {
        self.events.iter()
    }

    fn want(&mut self, node: Option<&str>) {
        if let Some(n) = node.filter(|n| !n.is_empty()) {
            self.nodes.entry(n.to_string()).or_default().wanted = true;
        }
    }

    /// A node seen for the first time is read once (the session's start for that node).
    fn see_node(&mut self, node: &str) -> &mut NodeLog {
        if !self.nodes.contains_key(node) {
            self.nodes.insert(
                node.to_string(),
                NodeLog {
                    wanted: true,
                    ..NodeLog::default()
                },
            );
        }
        self.nodes.get_mut(node).expect("inserted above")
    }

    fn end(&mut self, seen: PodSeen) {
        self.want(seen.node.as_deref());
        if self.ended.insert(seen.uid.clone(), seen.facts).is_none() {
            self.ended_order.push_back(seen.uid);
        }
        while self.ended_order.len() > MAX_ENDED {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }

    /// Note one refresh: counters that rose, pods that changed or ended, new nodes.
    pub fn observe(&mut self, report: &Report, readings: &Readings) {
        self.begin_round(readings);
        for r in &report.vms {
            self.see_row(r);
        }
        self.end_round();
    }

    /// Start noting a refresh (its rows come one by one to [`OomWatch::see_row`], then
    /// [`OomWatch::end_round`]): counters that rose.
    pub fn begin_round(&mut self, readings: &Readings) {
        self.round += 1;
        for (node, r) in readings {
            let kills: u64 = r.pods.iter().map(|p| p.cgroup.oom_kills).sum();
            let log = self.see_node(node);
            if kills > log.kills {
                log.wanted = true;
            }
            log.kills = kills;
        }
    }

    /// One row of the refresh: its node, and whether its pod changed or ended.
    pub fn see_row(&mut self, r: &VmRow) {
        let key = (r.namespace.clone(), r.name.clone());
        if let Some(node) = r.node.as_deref().filter(|n| !n.is_empty()) {
            self.see_node(node);
        }
        let ended_now = r.phase.ended();
        let round = self.round;
        match self.vms.get_mut(&key) {
            Some(p) if Some(&p.uid) == r.pod_uid.as_ref() => {
                p.round = round;
                if ended_now && !p.ended {
                    p.ended = true;
                    let node = p.node.clone();
                    self.want(node.as_deref());
                }
            }
            _ => {
                if let Some(old) = self.vms.remove(&key) {
                    self.end(old);
                }
                if let Some(uid) = &r.pod_uid {
                    self.vms.insert(
                        key,
                        PodSeen {
                            uid: uid.clone(),
                            node: r.node.clone(),
                            ended: ended_now,
                            facts: facts_of(r),
                            round,
                        },
                    );
                }
            }
        }
    }

    /// The refresh is over: the pods of VMs it did not have are gone.
    pub fn end_round(&mut self) {
        let round = self.round;
        let gone: Vec<(String, String)> = self
            .vms
            .iter()
            .filter(|(_, p)| p.round != round)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some(old) = self.vms.remove(&k) {
                self.end(old);
            }
        }
    }

    /// The nodes to read now (marked as being read): wanted, not being read, and not read
    /// too recently.
    pub fn due(&mut self, now: SystemTime) -> Vec<String> {
        let mut out = Vec::new();
        for (node, log) in &mut self.nodes {
            let wait = if log.error.is_some() {
                RETRY_INTERVAL
            } else {
                MIN_INTERVAL
            };
            let rested = log
                .last_read
                .is_none_or(|t| now.duration_since(t).is_ok_and(|d| d >= wait));
            if log.wanted && !log.reading && rested {
                log.wanted = false;
                log.reading = true;
                out.push(node.clone());
            }
        }
        out
    }

    /// A read finished: its reports (already parsed) or why it failed. A failed read is tried
    /// again after [`RETRY_INTERVAL`].
    pub fn finished(&mut self, node: &str, result: Result<Vec<OomEvent>, String>, now: SystemTime) {
        let log = self.nodes.entry(node.to_string()).or_default();
        log.reading = false;
        log.last_read = Some(now);
        match result {
            Ok(events) => {
                log.error = None;
                log.reports = events.len();
                for mut ev in events {
                    if self.seen.insert(EventKey::of(&ev)) {
                        // The memory.stat block of the report: nothing the dashboard shows or
                        // explains a kill with reads it, and it is most of a kept report's size.
                        ev.stats = Default::default();
                        self.events.push_back(ev);
                    }
                }
                while self.events.len() > MAX_EVENTS {
                    if let Some(old) = self.events.pop_front() {
                        self.seen.remove(&EventKey::of(&old));
                    }
                }
            }
            Err(why) => {
                log.error = Some(why);
                log.wanted = true;
            }
        }
    }

    /// Why the last read of `node`'s log failed, if it did.
    pub fn error(&self, node: &str) -> Option<&str> {
        self.nodes.get(node).and_then(|l| l.error.as_deref())
    }

    /// Every kill found so far, explained: the VM of its pod from what this session saw
    /// (current and ended pods), else from the inventory (a migration's other pod), else from
    /// the pods `remembered` on this machine for each VM (a pod deleted before this session).
    pub fn explanations(
        &self,
        inv: &Inventory,
        flag: Option<Version>,
        remembered: &RememberedPods,
    ) -> Vec<OomExplanation> {
        if self.events.is_empty() {
            return Vec::new();
        }
        let version = kubevirt_version(Some(inv), flag);
        let harvester = Some(is_harvester(Some(inv)));
        let current: HashMap<&str, &VmFacts> = self
            .vms
            .values()
            .map(|p| (p.uid.as_str(), &p.facts))
            .collect();
        self.events
            .iter()
            .map(|ev| {
                let facts = ev.pod_uid.as_deref().and_then(|uid| {
                    current
                        .get(uid)
                        .map(|f| (*f).clone())
                        .or_else(|| self.ended.get(uid).cloned())
                        .or_else(|| vm_for_pod(inv, uid, version.version))
                        .or_else(|| {
                            let vm_uid = remembered.get(uid)?;
                            vm_for_gone_pod(inv, vm_uid, version.version)
                        })
                });
                explain_one(ev, facts, version, harvester)
            })
            .collect()
    }
}
