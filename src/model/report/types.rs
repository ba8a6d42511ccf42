//! The report's shapes: the options it is built with, the report, and one VM's row, as the
//! `list -o json` contract has them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::carry::Carried;
use super::flag::Flag;
use super::oom_history::oom_history_json;
use super::risk::Risk;
use crate::model::evidence::{Evidence, VmKey};
use crate::model::inventory::SourceKind;
use crate::model::memory::Component;
use crate::model::oom_verdict::OomExplanation;
use crate::model::oom_vm::LogsRead;
use crate::model::overhead::Term;
use crate::model::peaks::PeakTracker;
use crate::model::phase::VmPhase;
use crate::model::prom_history::VmHistory;
use crate::model::readings::LiveSource;
use crate::model::recommend::Recommendation;
use crate::model::sidecars::SidecarKind;
use crate::model::trend::Eta;
use crate::model::version::Version;

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
    /// Each VM's history from Prometheus (issue 20); its peak outside guest RAM is in
    /// `evidence` too.
    pub prometheus: HashMap<VmKey, Arc<VmHistory>>,
    /// Running VMs this refresh could not read, with an earlier refresh's reading of them.
    pub carried: HashMap<VmKey, Carried>,
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
    // Live cgroup reading (livecg): swap, left out where the node has no swap accounting.
    /// Swap in use by this cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_bytes: Option<u64>,
    /// The swap it may use; left out when unlimited or not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmRow {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub phase: VmPhase,
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
    pub flags: Vec<Flag>,
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
    // Containers beside compute and hugepages (issue 16, sidecars).
    /// The pod-level memory limit: compute's plus every container's beside it (native-sidecar
    /// init containers included), from the pod when there is one, else as KubeVirt would set
    /// it; `null` when one of them has no limit (then the pod has none).
    pub pod_level_limit_bytes: Option<i64>,
    /// The memory limits of the containers beside compute by kind (`guestConsoleLog`,
    /// `virtiofs`, `hookSidecar`, `networkBinding`, `other`); a kind with a container without
    /// a limit is `null`; kinds the pod does not have are left out.
    #[serde(rename = "sidecarBytes")]
    pub sidecar_bytes_by_kind: BTreeMap<SidecarKind, Option<i64>>,
    /// Guest RAM backed by hugepages (charged to hugetlb, not the memory cgroup); `null` when
    /// the guest is not hugepage-backed.
    pub hugepages_bytes: Option<i64>,
    // Memory hotplug (issue 16).
    /// The guest the running qemu has (`status.memory.guestCurrent`), beside the configured
    /// `guestBytes`; present for hotplug-capable VMIs and while qemu differs from the VMI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_running_bytes: Option<i64>,
    // History from Prometheus (issue 20).
    /// The VM's figures over the history window from Prometheus, with the window and where
    /// they came from; left out when no Prometheus was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Arc<VmHistory>>,
}

impl VmRow {
    pub fn has_flag(&self, f: Flag) -> bool {
        self.flags.contains(&f)
    }
}
