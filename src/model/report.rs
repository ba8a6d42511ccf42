//! The report: one row per VM with the memory model, risk, flags and recommendation, shaped
//! like the `list -o json` contract (camelCase keys, bytes as integers, null when unknown).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::evidence::{Evidence, Level, VmKey};
use super::harvester::HarvesterContext;
use super::inventory::{Inventory, Readings, SourceKind};
use super::join::{join, Joined};
use super::memory::{evaluate, Budgets, Component, MemoryModel};
use super::objects::VmiSpec;
use super::oom_verdict::OomExplanation;
use super::oom_vm::LogsRead;
use super::overhead::{overhead, ClusterInputs, Overhead, ProcessConstants, Term, VersionSpan, MI};
use super::peaks::{MemoryConfig, PeakTracker};
use super::readings::LiveSource;
use super::recommend::{recommend, Recommendation, Sizing, Strategy};
use super::spec::{defaulted_vmi_spec, expected_pod, memory_numbers, reservation};
use super::trend::Eta;
use super::version::{detect, DetectedVersion, Version, VersionSource};

/// Inputs to a report besides the inventory.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// `--kubevirt-version`.
    pub version_flag: Option<Version>,
    /// Peaks of overhead used per VM UID: the highest this process has seen and those
    /// remembered on this machine, with recent samples for the time to OOM.
    pub peaks: Arc<PeakTracker>,
    /// Other evidence the caller holds per VM (history from outside this machine).
    pub evidence: HashMap<VmKey, Vec<Evidence>>,
    /// Nodes whose live data is old or failed this round, with the reason.
    pub stale_nodes: HashMap<String, String>,
    /// OOM kills found in kernel logs, explained (mapped to VMs where the inventory allows).
    pub oom_history: Vec<OomExplanation>,
    /// Whose kernel logs `oom_history` comes from.
    pub kernel_logs_read: LogsRead,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub kind: &'static str,
    pub source: SourceKind,
    pub kubevirt: ClusterInfo,
    pub vms: Vec<VmRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub version: Version,
    pub version_source: &'static str,
    /// With `versionSource` `inferredFromPod`: the KubeVirt releases whose overhead formula gives
    /// what the running pods show (e.g. `v0.57.0–v0.58.0`), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inferred_versions: Vec<String>,
    pub overhead_ratio: Option<String>,
    pub harvester: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupJson {
    pub level: &'static str,
    /// `None` when the source does not say (kubelet).
    pub version: Option<&'static str>,
    pub limit_bytes: Option<u64>,
    pub usage_bytes: u64,
    pub working_set_bytes: u64,
    pub peak_bytes: Option<u64>,
    pub failcnt: Option<u64>,
    /// `None` when the source has no OOM kill counters (kubelet).
    pub oom_kills: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmRow {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub kubevirt_version: Version,
    pub guest_bytes: Option<i64>,
    pub vm_limit_bytes: Option<i64>,
    pub vm_request_bytes: Option<i64>,
    pub reserved_bytes: Option<i64>,
    pub reserved_source: &'static str,
    pub expected_overhead_bytes: i64,
    pub expected_pod_limit_bytes: Option<i64>,
    pub pod_limit_bytes: Option<i64>,
    pub pod_request_bytes: Option<i64>,
    pub cgroup: Option<CgroupJson>,
    pub guest_resident_bytes: Option<i64>,
    pub guest_resident_exact: bool,
    /// When the exact guest resident was measured (Unix seconds), if it is carried over from an
    /// earlier round (qemu's smaps is not read every round); `null` when measured with this data.
    pub guest_resident_carried_from: Option<i64>,
    pub overhead_used_bytes: Option<i64>,
    pub overhead_budget_bytes: Option<i64>,
    pub projected_peak_bytes: Option<i64>,
    pub headroom_bytes: Option<i64>,
    /// Seconds until the overhead reaches the budget at its recent steady growth; `null` unless
    /// the trend is clear (`model::trend`).
    pub oom_eta_seconds: Option<i64>,
    pub risk: Risk,
    pub flags: Vec<&'static str>,
    pub breakdown: Vec<Component>,
    pub recommendation: Recommendation,
    /// OOM kills of this VM: its current pod's (cgroup counter or kernel log, whichever saw
    /// more) plus those of its earlier pods found in kernel logs. `None` when the live source has
    /// no OOM counters (kubelet) and no kernel log names this VM: unknown, not 0.
    pub oom_kills: Option<u64>,
    /// Where the live numbers came from (`null` without live data).
    pub live_source: Option<LiveSource>,
    /// Problems and remarks about this VM, as sentences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// O's terms for this VMI (detail view).
    #[serde(skip)]
    pub overhead_terms: Vec<Term>,
    #[serde(skip)]
    pub pod_uid: Option<String>,
    #[serde(skip)]
    pub vm_uid: Option<String>,
    #[serde(skip)]
    pub resource_version: Option<String>,
    #[serde(skip)]
    pub sidecar_bytes: i64,
    #[serde(skip)]
    pub stale: bool,
    #[serde(skip)]
    pub has_vm: bool,
    #[serde(skip)]
    pub hugepages: bool,
    /// The time to OOM with its error (detail view).
    #[serde(skip)]
    pub oom_eta: Option<Eta>,
    /// The kernel-log OOM reports of this VM, explained (detail view); in JSON, one line each
    /// with the container the kill was in (omitted when there are none).
    #[serde(
        rename = "oomHistory",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "oom_history_json"
    )]
    pub oom_history: Vec<OomExplanation>,
}

impl VmRow {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.contains(&f)
    }
}

/// The cluster facts that size a VMI's pod: Harvester context, the overhead formula's cluster
/// inputs, and KubeVirt's memory overcommit. Shared by the report and the fix planner.
#[derive(Debug, Clone)]
pub struct SizingFacts {
    /// `Some` on Harvester.
    pub harvester: Option<HarvesterContext>,
    pub inputs: ClusterInputs,
    /// KubeVirt `developerConfiguration.memoryOvercommit` (percent, default 100).
    pub memory_overcommit: i64,
}

impl SizingFacts {
    pub fn from_inventory(inv: &Inventory) -> SizingFacts {
        let config = inv
            .kubevirts
            .first()
            .map(|c| c.spec.configuration.clone())
            .unwrap_or_default();
        let cluster_arch = inv
            .nodes
            .iter()
            .find_map(|n| n.status.node_info.as_ref().map(|i| i.architecture.clone()))
            .filter(|a| !a.is_empty());
        let memory_overcommit = config
            .developer_configuration
            .as_ref()
            .and_then(|d| d.memory_overcommit)
            .filter(|&m| m > 0)
            .unwrap_or(100);
        SizingFacts {
            harvester: inv
                .harvester_settings
                .as_deref()
                .map(HarvesterContext::from_settings),
            inputs: ClusterInputs {
                ratio: config.additional_guest_memory_overhead_ratio.clone(),
                cluster_arch,
                config,
            },
            memory_overcommit,
        }
    }
}

/// Cluster-wide facts derived once per report.
struct Cluster {
    detected: DetectedVersion,
    /// The version spans that reproduce the pods' overhead (when the version was inferred).
    inferred: Vec<VersionSpan>,
    harvester: Option<HarvesterContext>,
    inputs: ClusterInputs,
    memory_overcommit: i64,
}

fn cluster_facts(inv: &Inventory, opts: &ReportOptions) -> Cluster {
    let cr = inv.kubevirts.first();
    let images = inv.pods.iter().flat_map(|p| {
        p.spec
            .containers
            .iter()
            .filter(|c| c.name == "compute")
            .map(|c| c.image.as_str())
    });
    let mut detected = detect(
        cr.and_then(|c| c.status.observed_kube_virt_version.as_deref()),
        images,
        opts.version_flag,
    );
    let SizingFacts {
        harvester,
        inputs,
        memory_overcommit,
    } = SizingFacts::from_inventory(inv);
    let mut inferred = Vec::new();
    if detected.source == VersionSource::Assumed {
        if let Some((version, spans)) = from_pods::infer_version(inv, &inputs) {
            detected = version;
            inferred = spans;
        }
    }
    Cluster {
        detected,
        inferred,
        harvester,
        inputs,
        memory_overcommit,
    }
}

/// Build the report from an inventory and live readings (pure).
pub fn build(inv: &Inventory, readings: &Readings, opts: &ReportOptions) -> Report {
    let (head, rows) = parts(inv, readings, opts);
    Report {
        kind: head.kind,
        source: head.source,
        kubevirt: head.kubevirt,
        vms: rows.collect(),
        warnings: head.warnings,
    }
}

/// The report's fields but its rows, and an iterator building the rows one by one.
fn parts<'a>(
    inv: &'a Inventory,
    readings: &'a Readings,
    opts: &'a ReportOptions,
) -> (ReportHead, impl Iterator<Item = VmRow> + 'a) {
    let cluster = cluster_facts(inv, opts);
    let ratio = cluster.inputs.ratio.clone().filter(|r| {
        !r.trim().is_empty() && super::overhead::ratio_supported(cluster.detected.version)
    });
    let mut warnings = inv.warnings.clone();
    warnings.extend(stale_warnings(&opts.stale_nodes));
    let inferred_versions: Vec<String> = super::overhead::joined(&cluster.inferred)
        .iter()
        .map(|s| s.to_string())
        .collect();
    match cluster.detected.source {
        VersionSource::Assumed => warnings.push(format!(
            "the KubeVirt version is unknown: assumed {} (set --kubevirt-version)",
            cluster.detected.version
        )),
        VersionSource::InferredFromPod => warnings.push(format!(
            "the KubeVirt version is not stated (no KubeVirt CR, no launcher image tag): the \
             running pods' overhead is what KubeVirt {} gives, so {} is used (set \
             --kubevirt-version to be sure)",
            inferred_versions.join(", "),
            cluster.detected.version
        )),
        _ => {}
    }
    let head = ReportHead {
        kind: "VmMemoryReport",
        source: inv.source,
        kubevirt: ClusterInfo {
            version: cluster.detected.version,
            version_source: cluster.detected.source.as_str(),
            inferred_versions,
            overhead_ratio: ratio,
            harvester: cluster.harvester.is_some(),
        },
        warnings,
    };
    let quota_ns: std::collections::HashSet<&str> = inv
        .resource_quotas
        .iter()
        .filter(|q| q.limits_memory())
        .map(|q| q.metadata.namespace.as_str())
        .collect();
    let rows = join(inv).into_iter().map(move |j| {
        let in_quota = quota_ns.contains(j.namespace());
        row(&j, &cluster, readings, opts, in_quota)
    });
    (head, rows)
}

/// One sentence per reason for the nodes whose live data is stale (nodes sorted), so a
/// refused exec or a hung node is said once, not only in each row's notes.
fn stale_warnings(stale: &HashMap<String, String>) -> Vec<String> {
    let mut by_reason: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (node, reason) in stale {
        by_reason.entry(reason).or_default().push(node);
    }
    let mut out: Vec<(Vec<&str>, &str)> = by_reason
        .into_iter()
        .map(|(reason, mut nodes)| {
            nodes.sort_unstable();
            (nodes, reason)
        })
        .collect();
    out.sort();
    out.into_iter()
        .map(|(nodes, reason)| match nodes.as_slice() {
            [one] => format!("live data for node {one} is stale: {reason}"),
            many => format!("live data for nodes {} is stale: {reason}", many.join(", ")),
        })
        .collect()
}

fn row(
    j: &Joined,
    cluster: &Cluster,
    readings: &Readings,
    opts: &ReportOptions,
    quota: bool,
) -> VmRow {
    let mut notes: Vec<String> = Vec::new();
    let mut flags: Vec<&'static str> = Vec::new();
    // The version this VMI's launcher runs (a VM started before an upgrade keeps old constants).
    let version = j
        .pod
        .and_then(compute_container)
        .and_then(|c| Version::from_launcher_image(&c.image))
        .unwrap_or(cluster.detected.version);
    let template: Option<&VmiSpec> = j.vm.map(|v| &v.spec.template.spec);
    let running_spec: VmiSpec = match (j.vmi, template) {
        (Some(vmi), _) => vmi.spec.clone(),
        (None, Some(t)) => defaulted_vmi_spec(t, version, cluster.memory_overcommit),
        (None, None) => VmiSpec::default(),
    };
    let numbers = memory_numbers(&running_spec);
    notes.extend(numbers.problems.iter().cloned());
    if let (Some(t), Some(_)) = (template, j.vmi) {
        let want = memory_numbers(t);
        if (want.guest, want.limit, want.request) != (numbers.guest, numbers.limit, numbers.request)
        {
            flags.push("restart-pending");
            notes.push("the VM's memory spec differs from the running VMI: it takes effect at the next restart".into());
        }
    }
    let o_formula: Overhead = overhead(&running_spec, version, &cluster.inputs);
    notes.extend(o_formula.notes.iter().cloned());
    // Without a stated version, what the pod shows is what the cluster applied.
    let stated = !matches!(
        cluster.detected.source,
        VersionSource::Assumed | VersionSource::InferredFromPod
    );
    let o = observed_overhead(j)
        .or_else(|| {
            (!stated)
                .then(|| from_pods::overhead_from_request(j))
                .flatten()
        })
        .unwrap_or(o_formula.total);
    let expected = expected_pod(&running_spec, o, version, quota);
    let resv = match j.vm {
        Some(vm) => reservation(vm, &numbers, cluster.harvester.as_ref()),
        None => super::spec::Reservation {
            bytes: numbers
                .limit
                .zip(numbers.guest)
                .map(|(l, g)| (l - g).max(0)),
            source: super::harvester::ReservedSource::GuestGap,
            problems: vec![],
        },
    };
    notes.extend(resv.problems.iter().cloned());
    let compute = j.pod.and_then(compute_container);
    let pod_limit = compute.and_then(|c| q_bytes(&c.resources.limits.memory));
    let pod_request = compute.and_then(|c| q_bytes(&c.resources.requests.memory));
    if let (Some(actual), Some(exp)) = (pod_limit, expected.compute_limit) {
        if actual != exp && observed_overhead(j).is_none() {
            notes.push(format!(
                "the pod's memory limit is {} bytes but KubeVirt {} would set {} bytes: check the version or sidecars",
                actual, version, exp
            ));
        }
    }
    let guest = numbers.guest.unwrap_or(0);
    let charged_guest = if numbers.hugepages { 0 } else { guest };
    let node = j
        .pod
        .and_then(|p| p.spec.node_name.clone())
        .or_else(|| j.vmi.and_then(|v| v.status.node_name.clone()));
    // Live data.
    let pod_uid = j.pod.map(|p| p.metadata.uid.clone());
    let node_readings = node.as_ref().and_then(|n| readings.get(n));
    let reading = pod_uid
        .as_ref()
        .and_then(|uid| node_readings.and_then(|r| r.pod(uid)));
    let stale_reason = node.as_ref().and_then(|n| opts.stale_nodes.get(n));
    if let (None, None, Some(uid), Some(n)) = (reading, stale_reason, &pod_uid, node_readings) {
        // The node was read but not this pod: say so rather than show a row without live data.
        notes.push(if n.missing_pods.iter().any(|m| m == uid) {
            format!(
                "node {} has no cgroup for pod {uid}: the pod ended or moved after it was listed",
                n.node
            )
        } else {
            format!("the reading of node {} has no pod {uid}", n.node)
        });
    }
    let budgets = Budgets {
        constants: Some(ProcessConstants::for_version(version)),
        page_tables: o_formula
            .terms
            .iter()
            .filter(|t| t.name.starts_with("page tables"))
            .map(|t| t.bytes)
            .sum(),
        qemu_extra: o_formula
            .terms
            .iter()
            .filter(|t| t.name.starts_with("vCPU") || t.name == "IOThread" || t.name == "video")
            .map(|t| t.bytes)
            .sum(),
    };
    let compute_id = j.pod.and_then(|p| {
        p.status
            .container_statuses
            .iter()
            .find(|c| c.name == "compute")
            .map(|c| {
                c.container_id
                    .rsplit("://")
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
    });
    let model: Option<MemoryModel> = reading.map(|r| {
        evaluate(
            charged_guest,
            r,
            compute_id.as_deref().filter(|s| !s.is_empty()),
            &budgets,
        )
    });
    let limit_for_budget = model
        .as_ref()
        .and_then(|m| m.counters.limit_bytes.map(|l| l as i64))
        .or(pod_limit)
        .or(expected.compute_limit);
    let budget = limit_for_budget.map(|l| l - charged_guest);
    let source = reading.and(node_readings.map(|r| r.source));
    // OOM history: kernel-log reports for this VM's pods.
    let history: Vec<OomExplanation> = opts
        .oom_history
        .iter()
        .filter(|e| {
            let same_pod = pod_uid.is_some() && e.event.pod_uid == pod_uid;
            let same_vm =
                e.vm.as_ref()
                    .is_some_and(|v| v.namespace == j.namespace() && v.name == j.name());
            same_pod || same_vm
        })
        .cloned()
        .collect();
    // Only kills in the compute container (or in a container not known) count as the VM's.
    let current_pod = |e: &OomExplanation| pod_uid.is_some() && e.event.pod_uid == pod_uid;
    let log_current = history
        .iter()
        .filter(|e| e.kills_vm() && current_pod(e))
        .count() as u64;
    let log_earlier = history
        .iter()
        .filter(|e| e.kills_vm() && !current_pod(e))
        .count() as u64;
    if let Some(note) = sidecar_kills_note(&history) {
        notes.push(note);
    }
    let cgroup_kills = model.as_ref().map_or(0, |m| m.oom_kills);
    let current_kills = cgroup_kills.max(log_current);
    let oom_kills = current_kills + log_earlier;
    // Known when the VM's cgroup counters or its node's kernel log were read, or a log named a
    // kill; a VM with neither (stopped, node unreachable, `--live off`) has an unknown count.
    let oom_kills_known = !history.is_empty()
        || (model.is_some() && source.is_some_and(|s| s.has_oom_counters()))
        || opts.kernel_logs_read.covers(node.as_deref());
    let has_limit = numbers.limit.is_some() || pod_limit.is_some();
    let sizing = Sizing {
        // The size table is by the size the user configured: the VM's limit, else its guest.
        configured: numbers.limit.or(numbers.guest).unwrap_or(0),
        table_applies: !numbers.hugepages,
        overhead_applied: o,
        ratio_room: o_formula.ratio_room(),
        sidecars: expected.sidecars,
        strategy: Strategy::auto(cluster.harvester.is_some()),
        has_limit,
    };
    let vm_uid =
        j.vm.map(|v| v.metadata.uid.as_str())
            .or(j.vmi.map(|v| v.metadata.uid.as_str()));
    let config = MemoryConfig::of(numbers.guest, numbers.limit, o);
    let mut kept = vm_uid.map_or_else(Vec::new, |u| opts.peaks.evidence(u, &config));
    kept.extend(
        opts.evidence
            .get(&VmKey::new(j.namespace(), j.name()))
            .into_iter()
            .flatten()
            .cloned(),
    );
    let evidence = row_evidence::gather(&row_evidence::Inputs {
        model: model.as_ref(),
        reading: node_readings.filter(|_| reading.is_some()).map(|r| &**r),
        history: &history,
        kept: &kept,
    });
    let rec = recommend(&sizing, evidence);
    let oom_eta = row_evidence::time_to_oom(
        vm_uid.map_or(&[][..], |u| opts.peaks.samples(u, &config)),
        model.as_ref(),
        node_readings.filter(|_| reading.is_some()).map(|r| &**r),
        budget,
    );
    // Flags.
    if !has_limit {
        flags.push("no-limit");
    }
    if let (Some(l), Some(g)) = (pod_limit.or(expected.compute_limit), numbers.guest) {
        if l < g && !numbers.hugepages {
            flags.push("limit-below-guest");
            notes.push(format!(
                "the pod's memory limit ({l} bytes) is below the guest's memory ({g} bytes)"
            ));
        }
    }
    if numbers.limit.is_some() && numbers.limit == numbers.guest {
        flags.push("guest-equals-limit");
    }
    if has_limit && resv.bytes.unwrap_or(0) < rec.reserve_bytes {
        flags.push("under-reserved");
    }
    if model.as_ref().is_some_and(|m| !m.guest_resident_exact) {
        flags.push("estimated");
    }
    if numbers.hugepages {
        flags.push("hugepages");
        notes.push(
            "guest RAM is hugepage-backed: it is charged to hugetlb, not to the memory cgroup"
                .into(),
        );
    }
    if j.migrating() {
        flags.push("migrating");
    }
    if source == Some(LiveSource::Kubelet) {
        notes.push(
            "live numbers from the kubelet's stats summary: guest RAM is estimated from the \
             compute container's RSS (at most the guest size), and there is no per-process \
             breakdown, peak or OOM kill counter"
                .into(),
        );
    }
    if let Some(at) = model.as_ref().and_then(|m| m.guest_resident_taken_at) {
        notes.push(format!(
            "guest RAM resident is qemu's smaps figure from an earlier round (Unix time {at}): \
             smaps is read every few rounds, or sooner when qemu's RSS moves"
        ));
    }
    if let Some(reason) = stale_reason {
        flags.push("stale");
        notes.push(format!(
            "live data for node {} is stale: {reason}",
            node.as_deref().unwrap_or("?")
        ));
    }
    if current_kills > 0 {
        flags.push("oom-killed");
    } else if log_earlier > 0 {
        flags.push("oom-killed-before");
    }
    // Risk.
    let risk = match &model {
        None if current_kills > 0 => Risk::Critical,
        None if log_earlier > 0 && flags.contains(&"under-reserved") => Risk::Warn,
        None => Risk::Unknown,
        Some(_) if current_kills > 0 => Risk::Critical,
        Some(m) => match (m.headroom, budget) {
            (Some(h), _) if h < 0 => Risk::Critical,
            (Some(h), Some(b)) if h < b / 4 || h < 64 * MI => Risk::Warn,
            _ => Risk::Ok,
        },
    };
    let budget_level = match model.as_ref().map(|m| m.counters.level) {
        Some(super::readings::CgroupLevel::Pod) => Level::Pod,
        _ => Level::Container,
    };
    let (risk, peaked) =
        row_evidence::risk_with_evidence(risk, &rec.evidence, &sizing, budget, budget_level);
    notes.extend(peaked);
    let risk = match (risk, oom_eta) {
        (Risk::Ok | Risk::Unknown, Some(_)) => Risk::Warn,
        (r, _) => r,
    };
    if let Some(e) = oom_eta {
        notes.push(format!(
            "overhead is growing by {}/min: OOM in {} (± {}) at this rate",
            crate::units::human((e.rate * 60.0) as i64),
            e.words(),
            super::trend::duration_words(e.error_seconds)
        ));
    }
    let phase = j
        .vmi
        .and_then(|v| v.status.phase.clone())
        .or_else(|| j.vm.and_then(|v| v.status.printable_status.clone()))
        .unwrap_or_else(|| {
            if j.vmi.is_none() {
                "Stopped".into()
            } else {
                "Unknown".into()
            }
        });
    VmRow {
        namespace: j.namespace().to_string(),
        name: j.name().to_string(),
        node,
        phase,
        kubevirt_version: version,
        guest_bytes: numbers.guest,
        vm_limit_bytes: numbers.limit,
        vm_request_bytes: numbers.request,
        reserved_bytes: resv.bytes,
        reserved_source: resv.source.as_str(),
        expected_overhead_bytes: o,
        expected_pod_limit_bytes: numbers.limit.and(expected.compute_limit),
        pod_limit_bytes: pod_limit,
        pod_request_bytes: pod_request,
        cgroup: model.as_ref().map(|m| CgroupJson {
            level: m.counters.level.as_str(),
            version: node_readings.and_then(|r| r.cgroup_version.known()),
            limit_bytes: m.counters.limit_bytes,
            usage_bytes: m.counters.usage_bytes,
            working_set_bytes: m.counters.working_set_bytes,
            peak_bytes: m.counters.peak_bytes,
            failcnt: m.counters.failcnt,
            oom_kills: source
                .is_none_or(|s| s.has_oom_counters())
                .then_some(m.oom_kills),
        }),
        guest_resident_bytes: model.as_ref().map(|m| m.guest_resident),
        guest_resident_exact: model.as_ref().is_some_and(|m| m.guest_resident_exact),
        guest_resident_carried_from: model.as_ref().and_then(|m| m.guest_resident_taken_at),
        overhead_used_bytes: model.as_ref().map(|m| m.overhead_used),
        overhead_budget_bytes: budget,
        projected_peak_bytes: model.as_ref().map(|m| m.projected_peak),
        headroom_bytes: model.as_ref().and_then(|m| m.headroom),
        oom_eta_seconds: oom_eta.map(|e| e.seconds),
        risk,
        flags,
        breakdown: model.map(|m| m.breakdown).unwrap_or_default(),
        recommendation: rec,
        oom_kills: oom_kills_known.then_some(oom_kills),
        live_source: source,
        notes,
        overhead_terms: o_formula.terms,
        pod_uid,
        vm_uid: j.vm.map(|v| v.metadata.uid.clone()),
        resource_version: j.vm.map(|v| v.metadata.resource_version.clone()),
        sidecar_bytes: expected.sidecars,
        stale: stale_reason.is_some(),
        has_vm: j.vm.is_some(),
        hugepages: numbers.hugepages,
        oom_eta,
        oom_history: history,
    }
}

mod from_pods;
mod pod_facts;
mod risk;
use pod_facts::{compute_container, observed_overhead, q_bytes};
pub use risk::Risk;
mod oom_history;
mod row_evidence;
use oom_history::{oom_history_json, sidecar_kills_note};
mod streamed;
pub use streamed::{streamed, ReportHead, StreamedReport};

#[cfg(test)]
mod tests;
