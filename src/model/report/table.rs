//! The dashboard's table: per VM only what the table draws, sorts and filters by (about a tenth
//! of a full row), so thousands of VMs can stay on screen while the full row, with its evidence,
//! breakdown and notes, is built only for the VM being looked at (issue 21).

use super::flag::Flag;
use super::risk::Risk;
use super::types::{ClusterInfo, Report, VmRow};
use crate::model::evidence::Keyed;
use crate::model::phase::VmPhase;
use crate::model::readings::LiveSource;
use crate::model::trend::Eta;

/// One VM as the table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub phase: VmPhase,
    pub guest_bytes: Option<i64>,
    pub vm_limit_bytes: Option<i64>,
    /// The live pod's limit, else the one KubeVirt would set.
    pub pod_limit_bytes: Option<i64>,
    /// The cgroup's usage and its limit, when read.
    pub usage_bytes: Option<u64>,
    pub cgroup_limit_bytes: Option<u64>,
    pub overhead_used_bytes: Option<i64>,
    pub overhead_budget_bytes: Option<i64>,
    pub headroom_bytes: Option<i64>,
    pub oom_eta: Option<Eta>,
    pub risk: Risk,
    pub flags: Vec<Flag>,
    pub oom_kills: Option<u64>,
    pub live_source: Option<LiveSource>,
    pub stale: bool,
}

impl TableRow {
    pub fn of(r: &VmRow) -> TableRow {
        TableRow {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            node: r.node.clone(),
            phase: r.phase.clone(),
            guest_bytes: r.guest_bytes,
            vm_limit_bytes: r.vm_limit_bytes,
            pod_limit_bytes: r.pod_limit_bytes.or(r.expected_pod_limit_bytes),
            usage_bytes: r.cgroup.as_ref().map(|c| c.usage_bytes),
            cgroup_limit_bytes: r.cgroup.as_ref().and_then(|c| c.limit_bytes),
            overhead_used_bytes: r.overhead_used_bytes,
            overhead_budget_bytes: r.overhead_budget_bytes,
            headroom_bytes: r.headroom_bytes,
            oom_eta: r.oom_eta,
            risk: r.risk,
            flags: r.flags.clone(),
            oom_kills: r.oom_kills,
            live_source: r.live_source,
            stale: r.stale,
        }
    }

    pub fn has_flag(&self, f: Flag) -> bool {
        self.flags.contains(&f)
    }

    pub fn oom_eta_seconds(&self) -> Option<i64> {
        self.oom_eta.map(|e| e.seconds)
    }

    /// Usage against the binding limit, in per-mille (for sorting and bars).
    pub fn usage_permille(&self) -> Option<i64> {
        let used = self.usage_bytes?;
        let limit = self.cgroup_limit_bytes.filter(|&l| l > 0)?;
        Some((used as i128 * 1000 / limit as i128) as i64)
    }
}

impl Keyed for TableRow {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for VmRow {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A report as the dashboard keeps it: the cluster's facts, the warnings and the table rows.
#[derive(Debug, Clone)]
pub struct Table {
    pub kubevirt: ClusterInfo,
    pub rows: Vec<TableRow>,
    pub warnings: Vec<String>,
}

impl Table {
    /// The table of a whole report, and the report's full rows of the VMs `keep` wants.
    pub fn split(report: Report, keep: impl Fn(&VmRow) -> bool) -> (Table, Vec<VmRow>) {
        let rows = report.vms.iter().map(TableRow::of).collect();
        let full = report.vms.into_iter().filter(|r| keep(r)).collect();
        (
            Table {
                kubevirt: report.kubevirt,
                rows,
                warnings: report.warnings,
            },
            full,
        )
    }
}
