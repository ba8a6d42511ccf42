//! One VM's row, made in named steps: its sizing (what KubeVirt sets and what is reserved),
//! its live figures (the node's reading of its pod), its OOM history, the recommendation and
//! time to OOM from its evidence, its flags and notes, and its risk.

use super::beside::{hugepages_bytes, sidecar_note, sidecars_of};
use super::carry;
use super::cluster::Cluster;
use super::flag::Flag;
use super::from_pods;
use super::pod_facts::{compute_container, compute_container_id, observed_overhead, q_bytes};
use super::risk::Risk;
use super::row_evidence;
use super::row_features::{self, Said};
use super::row_kills::{oom_kills, OomKills};
use super::row_live::{
    cgroup_json, guest_split_unknown, live_flags, shared_guest_reason, LiveFigures,
};
use super::status_kills;
use super::types::{ReportOptions, VmRow};
use crate::model::evidence::{Level, VmKey};
use crate::model::harvester::ReservedSource;
use crate::model::hotplug::{restart_pending, GuestRunning};
use crate::model::inventory::Readings;
use crate::model::join::Joined;
use crate::model::memory::{evaluate, Budgets, MemoryModel};
use crate::model::objects::VmiSpec;
use crate::model::overhead::{overhead, Overhead, ProcessConstants, TermKind, MI};
use crate::model::peaks::MemoryConfig;
use crate::model::phase::VmPhase;
use crate::model::readings::{CgroupLevel, LiveSource};
use crate::model::recommend::{recommend, Recommendation, Sizing};
use crate::model::sidecars::Sidecars;
use crate::model::spec::{
    defaulted_vmi_spec, expected_pod, memory_numbers, reservation, ExpectedPod, MemorySpecNumbers,
    Reservation,
};
use crate::model::trend::Eta;
use crate::model::version::{Version, VersionSource};

pub(super) fn row(
    j: &Joined,
    cluster: &Cluster,
    readings: &Readings,
    opts: &ReportOptions,
) -> VmRow {
    let mut said = Said::default();
    let size = vm_sizing(j, cluster, &mut said);
    let live = live_figures(j, &size, readings, opts, &mut said);
    let kills = oom_kills(j, &live, opts, &mut said);
    let sizing = rule_inputs(j, &size, cluster);
    let (rec, oom_eta) = recommendation(j, &size, &live, &kills, &sizing, opts);
    flags_and_notes(j, &size, &live, &kills, &rec, &mut said);
    let risk = risk(&live, &kills, &rec, &sizing, oom_eta, &mut said);
    let judged = Judged {
        risk,
        rec,
        oom_eta,
        said,
    };
    let mut row = assemble(j, size, live, kills, judged);
    let key = VmKey::new(j.namespace(), j.name());
    row.prometheus = opts.prometheus.get(&key).cloned();
    // Points of its history no memory cgroup could hold, set aside: said once.
    if let Some(said) = row.prometheus.as_ref().and_then(|h| h.set_aside.clone()) {
        row.notes.push(said);
    }
    row
}

/// What the row concludes: its risk, recommendation, time to OOM, flags and notes.
struct Judged {
    risk: Risk,
    rec: Recommendation,
    oom_eta: Option<Eta>,
    said: Said,
}

/// What KubeVirt sets for this VM and what is reserved in it.
struct VmSizing {
    /// The version this VMI's launcher runs (a VM started before an upgrade keeps old constants).
    version: Version,
    numbers: MemorySpecNumbers,
    /// What the running qemu has (memory hotplug); empty for a stopped VM.
    running: GuestRunning,
    /// KubeVirt's O by the formula, with its terms.
    formula: Overhead,
    /// O as applied: the pod's own statement, else the formula.
    applied: i64,
    expected: ExpectedPod,
    reserved: Reservation,
    pod_limit: Option<i64>,
    pod_request: Option<i64>,
    /// The containers beside compute: the pod's own, else those KubeVirt would add.
    beside: Sidecars,
    /// The pod-level limit: the pod's containers' (or, without a pod, the predicted ones').
    pod_level_limit: Option<i64>,
}

impl VmSizing {
    /// The guest RAM charged to the memory cgroup (none when hugepage-backed): what the
    /// running qemu has, else the VMI's guest.
    fn charged_guest(&self) -> i64 {
        if self.numbers.hugepages {
            0
        } else {
            self.running_guest().unwrap_or(0)
        }
    }

    /// The guest that counts against the pod: what its qemu has, else the configured guest.
    fn running_guest(&self) -> Option<i64> {
        self.running.running().or(self.numbers.guest)
    }

    /// A limit on compute: the VM's, the pod's, or one KubeVirt sets without a VM limit
    /// (dedicated CPUs, a namespace quota).
    fn has_limit(&self) -> bool {
        self.numbers.limit.is_some()
            || self.pod_limit.is_some()
            || self.expected.compute_limit.is_some()
    }
}

fn vm_sizing(j: &Joined, cluster: &Cluster, said: &mut Said) -> VmSizing {
    let version = j
        .pod
        .and_then(compute_container)
        .and_then(|c| Version::from_launcher_image(&c.image))
        .unwrap_or(cluster.detected.version);
    let template = row_features::template_spec(j, cluster, said);
    // The running VMI's spec is read where it is (thousands of rows a refresh).
    let running_spec: std::borrow::Cow<'_, VmiSpec> = match (j.vmi, &template) {
        (Some(vmi), _) => std::borrow::Cow::Borrowed(&vmi.spec),
        (None, Some(t)) => {
            std::borrow::Cow::Owned(defaulted_vmi_spec(t, version, cluster.memory_overcommit))
        }
        (None, None) => std::borrow::Cow::Owned(VmiSpec::default()),
    };
    let numbers = memory_numbers(&running_spec);
    said.notes.extend(numbers.problems.iter().cloned());
    let running = j.vmi.map(GuestRunning::of).unwrap_or_default();
    if let (Some(vm), Some(vmi)) = (j.vm, j.vmi) {
        if let Some(why) = restart_pending(vm, vmi) {
            said.flags.push(Flag::RestartPending);
            said.notes.push(why);
        }
    }
    let formula = overhead(&running_spec, version, &cluster.inputs);
    said.notes.extend(formula.notes.iter().cloned());
    let applied = applied_overhead(j, cluster, formula.total, running.in_progress());
    let beside = sidecars_of(j, &running_spec, cluster, version);
    let auto = cluster
        .namespaces
        .auto_limit(j.namespace(), version, &cluster.inputs.config);
    let expected = expected_pod(&running_spec, applied, auto.map(|a| a.ratio), &beside);
    let reserved = match j.vm {
        Some(vm) => reservation(vm, &numbers, cluster.harvester.as_ref()),
        None => Reservation {
            bytes: numbers
                .limit
                .zip(numbers.guest)
                .map(|(l, g)| (l - g).max(0)),
            source: ReservedSource::GuestGap,
            problems: vec![],
        },
    };
    said.notes.extend(reserved.problems.iter().cloned());
    let compute = j.pod.and_then(compute_container);
    let pod_limit = compute.and_then(|c| q_bytes(&c.resources.limits.memory));
    let pod_request = compute.and_then(|c| q_bytes(&c.resources.requests.memory));
    if let (Some(actual), Some(exp)) = (pod_limit, expected.compute_limit) {
        // During a hotplug the pod was sized for the guest before it: its own limit is judged.
        if actual != exp && observed_overhead(j).is_none() && !running.in_progress() {
            said.notes.push(format!(
                "the pod's memory limit is {} bytes but KubeVirt {} would set {} bytes: check the version or sidecars",
                actual, version, exp
            ));
        }
    }
    let pod_level_limit = match j.pod {
        Some(_) => beside.pod_level_limit(pod_limit),
        None => expected.pod_limit,
    };
    said.notes.extend(sidecar_note(&beside));
    VmSizing {
        version,
        numbers,
        running,
        formula,
        applied,
        expected,
        reserved,
        pod_limit,
        pod_request,
        beside,
        pod_level_limit,
    }
}

/// O as the cluster applied it: what the pod or VMI states, else (without a stated version)
/// what the pod's request shows, else the formula's. During a hotplug the pod's request is the
/// old guest's while the VMI's is the new one: the difference is not O then.
fn applied_overhead(j: &Joined, cluster: &Cluster, formula: i64, hotplugging: bool) -> i64 {
    let stated = !matches!(
        cluster.detected.source,
        VersionSource::Assumed | VersionSource::InferredFromPod
    );
    observed_overhead(j)
        .or_else(|| {
            (!stated && !hotplugging)
                .then(|| from_pods::overhead_from_request(j))
                .flatten()
        })
        .unwrap_or(formula)
}

fn live_figures<'a>(
    j: &Joined,
    size: &VmSizing,
    readings: &'a Readings,
    opts: &'a ReportOptions,
    said: &mut Said,
) -> LiveFigures<'a> {
    let node = j
        .pod
        .and_then(|p| p.spec.node_name.clone())
        .or_else(|| j.vmi.and_then(|v| v.status.node_name.clone()));
    let pod_uid = j.pod.map(|p| p.metadata.uid.clone());
    let mut node_readings = node.as_ref().and_then(|n| readings.get(n));
    let mut reading = pod_uid
        .as_ref()
        .and_then(|uid| node_readings.and_then(|r| r.pod(uid)));
    let stale_reason = node.as_ref().and_then(|n| opts.stale_nodes.get(n));
    if let (None, None, Some(uid), Some(n)) = (reading, stale_reason, &pod_uid, node_readings) {
        // The node was read but not this pod: say so rather than show a row without live data.
        said.notes.push(if n.missing_pods.iter().any(|m| m == uid) {
            format!(
                "node {} has no cgroup for pod {uid}: the pod ended or moved after it was listed",
                n.node
            )
        } else {
            format!("the reading of node {} has no pod {uid}", n.node)
        });
    }
    let mut compute_id = compute_container_id(j);
    let carried = carry::carried_for(&opts.carried, j)
        .filter(|_| reading.is_none() && stale_reason.is_none());
    if let Some(c) = carried {
        node_readings = Some(&c.node);
        reading = c.node.pod(&c.pod_uid);
        compute_id = c.compute_id.clone();
        said.notes.push(carry::note(c));
    }
    let model: Option<MemoryModel> = reading.map(|r| {
        evaluate(
            size.charged_guest(),
            r,
            compute_id.as_deref().filter(|s| !s.is_empty()),
            &process_budgets(size),
        )
    });
    let source = reading.and(node_readings.map(|r| r.source));
    let node_reading = node_readings.filter(|_| reading.is_some()).map(|r| &**r);
    let cgroup = model.as_ref().map(|m| cgroup_json(m, node_reading, source));
    let split_unknown = model.as_ref().and_then(|m| {
        let reason = shared_guest_reason(j, size.version);
        guest_split_unknown(m, source, size.charged_guest(), reason)
    });
    // Guest and overhead cannot be told apart: no model figures, no risk from them.
    let model = match split_unknown {
        Some(note) => {
            said.notes.push(note);
            None
        }
        None => model,
    };
    let limit_for_budget = model
        .as_ref()
        .and_then(|m| m.counters.limit_bytes.map(|l| l as i64))
        .or(size.pod_limit)
        .or(size.expected.compute_limit);
    LiveFigures {
        budget: limit_for_budget.map(|l| l - size.charged_guest()),
        source,
        reading: node_reading,
        cgroup,
        node,
        pod_uid,
        stale_reason,
        carried_pod: carried.map(|c| c.pod_uid.clone()),
        model,
    }
}

/// KubeVirt's budget per process: its constants, the page tables and qemu's extra terms.
fn process_budgets(size: &VmSizing) -> Budgets {
    let sum_of = |keep: fn(TermKind) -> bool| {
        size.formula
            .terms
            .iter()
            .filter(|t| keep(t.kind))
            .map(|t| t.bytes)
            .sum()
    };
    Budgets {
        constants: Some(ProcessConstants::for_version(size.version)),
        page_tables: sum_of(|k| k == TermKind::PageTables),
        qemu_extra: sum_of(TermKind::is_qemu_extra),
    }
}

/// What the recommendation rule needs to know about the VM besides its evidence.
fn rule_inputs(j: &Joined, size: &VmSizing, cluster: &Cluster) -> Sizing {
    Sizing {
        // The size table is by the size the user configured: the VM's limit, else its guest.
        configured: size.numbers.limit.or(size.numbers.guest).unwrap_or(0),
        table_applies: !size.numbers.hugepages,
        overhead_applied: size.applied,
        ratio_room: size.formula.ratio_room(),
        sidecars: size.beside.limited_bytes(),
        strategy: row_features::strategy(j, size.version, cluster),
        has_limit: size.has_limit(),
    }
}

/// The recommendation from the VM's evidence, and the time to OOM from its recent samples.
fn recommendation(
    j: &Joined,
    size: &VmSizing,
    live: &LiveFigures,
    kills: &OomKills,
    sizing: &Sizing,
    opts: &ReportOptions,
) -> (Recommendation, Option<Eta>) {
    let vm_uid =
        j.vm.map(|v| v.metadata.uid.as_str())
            .or(j.vmi.map(|v| v.metadata.uid.as_str()));
    let config = MemoryConfig::of(size.numbers.guest, size.numbers.limit, size.applied);
    let mut kept = vm_uid.map_or_else(Vec::new, |u| opts.peaks.evidence(u, &config));
    kept.extend(
        opts.evidence
            .get(&VmKey::new(j.namespace(), j.name()))
            .into_iter()
            .flatten()
            .cloned(),
    );
    // At a kill the compute container was at its limit: at least limit − guest was outside.
    let budget = size.pod_limit.or(size.expected.compute_limit);
    let status_kills =
        status_kills::evidence_all(&kills.from_status, budget.map(|l| l - size.charged_guest()));
    let evidence = row_evidence::gather(&row_evidence::Inputs {
        model: live.model.as_ref(),
        reading: live.reading,
        history: &kills.history,
        status_kills: &status_kills,
        kept: &kept,
    });
    let eta = row_evidence::time_to_oom(
        vm_uid.map_or(&[][..], |u| opts.peaks.samples(u, &config)),
        live.model.as_ref(),
        live.reading,
        live.budget,
    );
    (recommend(sizing, evidence), eta)
}

fn flags_and_notes(
    j: &Joined,
    size: &VmSizing,
    live: &LiveFigures,
    kills: &OomKills,
    rec: &Recommendation,
    said: &mut Said,
) {
    let n = &size.numbers;
    if !size.has_limit() {
        said.flags.push(Flag::NoLimit);
    }
    row_features::flags(j, &size.running, said);
    if let (Some(l), Some(g)) = (
        size.pod_limit.or(size.expected.compute_limit),
        size.running_guest(),
    ) {
        if l < g && !n.hugepages {
            said.flags.push(Flag::LimitBelowGuest);
            said.notes.push(format!(
                "the pod's memory limit ({l} bytes) is below the guest's memory ({g} bytes)"
            ));
        }
    }
    // Hugepage-backed guest RAM is outside the memory cgroup: guest = limit reserves nothing
    // less there.
    if n.limit.is_some() && n.limit == n.guest && !n.hugepages {
        said.flags.push(Flag::GuestEqualsLimit);
    }
    if size.has_limit() && size.reserved.bytes.unwrap_or(0) < rec.reserve_bytes {
        said.flags.push(Flag::UnderReserved);
    }
    // Hugepage-backed guest RAM is outside the memory cgroup: none of it is to estimate.
    if live.model.as_ref().is_some_and(|m| !m.guest_resident_exact) && !n.hugepages {
        said.flags.push(Flag::Estimated);
    }
    if n.hugepages {
        said.flags.push(Flag::Hugepages);
        said.notes.push(
            "guest RAM is hugepage-backed: it is charged to hugetlb, not to the memory cgroup"
                .into(),
        );
    }
    if j.migrating() {
        said.flags.push(Flag::Migrating);
    }
    live_notes(live, said);
    live_flags(live.model.as_ref(), &mut said.flags, &mut said.notes);
    if kills.current > 0 {
        said.flags.push(Flag::OomKilled);
    } else if kills.earlier > 0 {
        said.flags.push(Flag::OomKilledBefore);
    }
}

/// What to know about where the live figures came from.
fn live_notes(live: &LiveFigures, said: &mut Said) {
    if live.source == Some(LiveSource::Kubelet) {
        said.notes.push(
            "live numbers from the kubelet's stats summary: guest RAM is estimated from the \
             compute container's RSS (at most the guest size), and there is no per-process \
             breakdown, peak or OOM kill counter"
                .into(),
        );
    }
    if let Some(at) = live.model.as_ref().and_then(|m| m.guest_resident_taken_at) {
        said.notes.push(format!(
            "guest RAM resident is qemu's smaps figure from an earlier round (Unix time {at}): \
             smaps is read every few rounds, or sooner when qemu's RSS moves"
        ));
    }
    if live.carried_pod.is_some() {
        said.flags.push(Flag::Stale);
    }
    if let Some(reason) = live.stale_reason {
        said.flags.push(Flag::Stale);
        said.notes.push(format!(
            "live data for node {} is stale: {reason}",
            live.node.as_deref().unwrap_or("?")
        ));
    }
}

/// The risk: from this reading's headroom and the kills, raised by the evidence and by a
/// clear trend towards the limit.
fn risk(
    live: &LiveFigures,
    kills: &OomKills,
    rec: &Recommendation,
    sizing: &Sizing,
    oom_eta: Option<Eta>,
    said: &mut Said,
) -> Risk {
    let risk = match &live.model {
        None if kills.current > 0 => Risk::Critical,
        None if kills.earlier > 0 && said.flags.contains(&Flag::UnderReserved) => Risk::Warn,
        None => Risk::Unknown,
        Some(_) if kills.current > 0 => Risk::Critical,
        Some(m) => match (m.headroom, live.budget) {
            // A reading taken while the guest fills its RAM is no critical on its own.
            (Some(h), _) if h < 0 && !m.overrun_is_guest_growth() => Risk::Critical,
            (Some(h), Some(b)) if h < b / 4 || h < 64 * MI => Risk::Warn,
            _ => Risk::Ok,
        },
    };
    let budget_level = match live.model.as_ref().map(|m| m.counters.level) {
        Some(CgroupLevel::Pod) => Level::Pod,
        _ => Level::Container,
    };
    let (risk, peaked) =
        row_evidence::risk_with_evidence(risk, &rec.evidence, sizing, live.budget, budget_level);
    said.notes.extend(peaked);
    let risk = match (risk, oom_eta) {
        (Risk::Ok | Risk::Unknown, Some(_)) => Risk::Warn,
        (r, _) => r,
    };
    if let Some(e) = oom_eta {
        said.notes.push(format!(
            "overhead is growing by {}/min: OOM in {} (± {}) at this rate",
            crate::units::human((e.rate * 60.0) as i64),
            e.words(),
            crate::model::trend::duration_words(e.error_seconds)
        ));
    }
    risk
}

/// The VMI's phase, else the VM's printable status, else `Stopped` (no VMI) or `Unknown`.
fn phase(j: &Joined) -> VmPhase {
    j.vmi
        .and_then(|v| v.status.phase.clone())
        .or_else(|| j.vm.and_then(|v| v.status.printable_status.clone()))
        .unwrap_or(if j.vmi.is_none() {
            VmPhase::Stopped
        } else {
            VmPhase::Unknown
        })
}

/// The row from its steps' results.
fn assemble(
    j: &Joined,
    size: VmSizing,
    live: LiveFigures,
    kills: OomKills,
    judged: Judged,
) -> VmRow {
    let m = live.model.as_ref();
    VmRow {
        namespace: j.namespace().to_string(),
        name: j.name().to_string(),
        phase: phase(j),
        kubevirt_version: size.version,
        guest_bytes: size.numbers.guest,
        vm_limit_bytes: size.numbers.limit,
        vm_request_bytes: size.numbers.request,
        reserved_bytes: size.reserved.bytes,
        reserved_source: size.reserved.source.as_str(),
        expected_overhead_bytes: size.applied,
        expected_pod_limit_bytes: size.expected.compute_limit,
        pod_limit_bytes: size.pod_limit,
        pod_request_bytes: size.pod_request,
        cgroup: live.cgroup,
        guest_resident_bytes: m.map(|m| m.guest_resident),
        guest_resident_exact: m.is_some_and(|m| m.guest_resident_exact),
        guest_resident_carried_from: m.and_then(|m| m.guest_resident_taken_at),
        overhead_used_bytes: m.map(|m| m.overhead_used),
        overhead_budget_bytes: live.budget,
        projected_peak_bytes: m.map(|m| m.projected_peak),
        headroom_bytes: m.and_then(|m| m.headroom),
        oom_eta_seconds: judged.oom_eta.map(|e| e.seconds),
        risk: judged.risk,
        flags: judged.said.flags,
        breakdown: live.model.map(|m| m.breakdown).unwrap_or_default(),
        recommendation: judged.rec,
        oom_kills: kills.known.then_some(kills.current + kills.earlier),
        live_source: live.source,
        notes: judged.said.notes,
        overhead_terms: size.formula.terms,
        pod_uid: live.pod_uid,
        vm_uid: j.vm.map(|v| v.metadata.uid.clone()),
        resource_version: j.vm.map(|v| v.metadata.resource_version.clone()),
        sidecar_bytes: size.beside.limited_bytes(),
        stale: live.stale_reason.is_some() || live.carried_pod.is_some(),
        has_vm: j.vm.is_some(),
        hugepages: size.numbers.hugepages,
        guest_running_bytes: size
            .running
            .worth_stating()
            .then(|| size.running.running())
            .flatten(),
        oom_eta: judged.oom_eta,
        oom_history: kills.history,
        node: live.node,
        pod_level_limit_bytes: size.pod_level_limit,
        sidecar_bytes_by_kind: size.beside.by_kind(),
        hugepages_bytes: hugepages_bytes(&size.numbers),
        prometheus: None,
    }
}
