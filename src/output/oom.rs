//! `kubectl vmmem oom`: explained OOM events as a table (one line per event, then the verdicts)
//! or as JSON (the `oom -o json` contract: camelCase keys, bytes as integers, null when unknown).

use std::borrow::Cow;

use serde::Serialize;

use crate::escape::escape;
use crate::model::oom_event::ContainerRuntime;
use crate::model::oom_event::OomVictim;
use crate::model::oom_verdict::{GuestSource, OomExplanation};
use crate::model::oom_vm::{KillContainer, VmRef};
use crate::units::human;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OomReport<'a> {
    pub events: Vec<EventJson<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VictimJson<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub anon_rss_bytes: Option<u64>,
    pub file_rss_bytes: Option<u64>,
    pub total_vm_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskJson<'a> {
    pub pid: u32,
    pub name: &'a str,
    pub rss_bytes: u64,
    pub budget_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationJson<'a> {
    pub reserve_bytes: u64,
    pub reason: Option<&'a str>,
}

/// One event of `oom -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventJson<'a> {
    pub time: Option<&'a str>,
    pub node: Option<&'a str>,
    pub trigger: Option<&'a str>,
    pub trigger_pid: Option<u32>,
    pub victim: Option<VictimJson<'a>>,
    /// Every process the report killed, the victim first (several with `memory.oom.group`).
    pub victims: Vec<VictimJson<'a>>,
    /// Processes of a group kill beyond those listed.
    pub victims_omitted: usize,
    /// The cgroup whose `memory.oom.group` made the kernel kill all its processes.
    pub group_kill: Option<&'a str>,
    /// Old kernels' `Kill process … or sacrifice child` choice, not necessarily the victim.
    pub candidate: Option<VictimJson<'a>>,
    /// The virt-launcher pod's container the kill was in (`compute`, `guest-console-log`, …).
    pub container: Option<&'a KillContainer>,
    /// The kill counts against the VM (in the compute container, or its container unknown).
    pub kills_vm: bool,
    pub constraint: Option<&'a str>,
    pub oom_memcg: Option<&'a str>,
    pub task_memcg: Option<&'a str>,
    pub scope: Option<&'static str>,
    pub pod_uid: Option<&'a str>,
    pub container_id: Option<&'a str>,
    /// `containerd`, `crio` or `docker`: named by the cgroup path, else by the pod's status (the
    /// path of a node with the cgroupfs driver names no runtime).
    pub container_runtime: Option<ContainerRuntime>,
    pub limit_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub failcnt: Option<u64>,
    pub memsw_limit_hit: bool,
    pub kubevirt: bool,
    pub vm: Option<&'a VmRef>,
    pub tasks: Vec<TaskJson<'a>>,
    /// Task-table rows left out (the largest by RSS are kept).
    pub tasks_omitted: usize,
    pub verdict: &'a str,
    /// The report was cut short.
    pub partial: bool,
    /// 1-based input line where the report starts.
    pub line: usize,
    pub kubevirt_version: String,
    pub guest_bytes: Option<u64>,
    pub guest_estimated: bool,
    pub overhead_used_bytes: Option<u64>,
    pub overhead_budget_bytes: Option<u64>,
    pub recommendation: Option<RecommendationJson<'a>>,
}

pub fn report(explained: &[OomExplanation]) -> OomReport<'_> {
    OomReport {
        events: explained.iter().map(event_json).collect(),
    }
}

fn event_json(ex: &OomExplanation) -> EventJson<'_> {
    let ev = &ex.event;
    EventJson {
        time: ev.time.as_deref(),
        node: ev.node.as_deref(),
        trigger: ev.trigger.as_deref(),
        trigger_pid: ev.trigger_pid,
        victim: ev.victim.as_ref().map(victim_json),
        victims: ev.victims().map(victim_json).collect(),
        victims_omitted: ev.group_victims_omitted,
        group_kill: ev.group_kill.as_deref(),
        candidate: ev.candidate.as_ref().map(victim_json),
        container: ex.container.as_ref(),
        kills_vm: ex.kubevirt && ex.kills_vm(),
        constraint: ev.constraint.as_deref(),
        oom_memcg: ev.oom_memcg.as_deref(),
        task_memcg: ev.task_memcg.as_deref(),
        scope: ev.scope.map(|s| s.as_str()),
        pod_uid: ev.pod_uid.as_deref(),
        container_id: ev.container_id.as_deref(),
        container_runtime: ex.runtime,
        limit_bytes: ev.limit_bytes(),
        usage_bytes: ev.usage_bytes(),
        failcnt: ev.failcnt(),
        memsw_limit_hit: ev.memsw_limit_hit(),
        kubevirt: ex.kubevirt,
        vm: ex.vm.as_ref(),
        tasks: ex
            .tasks
            .iter()
            .map(|t| TaskJson {
                pid: t.pid,
                name: &t.name,
                rss_bytes: t.rss_bytes,
                budget_bytes: t.budget_bytes,
            })
            .collect(),
        tasks_omitted: ev.tasks_omitted,
        verdict: &ex.verdict,
        partial: ev.partial,
        line: ev.line,
        kubevirt_version: ex.version.version.to_string(),
        guest_bytes: ex.guest_bytes,
        guest_estimated: ex.guest_source == Some(GuestSource::Estimated),
        overhead_used_bytes: ex.overhead_used_bytes,
        overhead_budget_bytes: ex.overhead_budget_bytes,
        recommendation: ex.reserve_bytes.map(|r| RecommendationJson {
            reserve_bytes: r,
            reason: ex.reserve_reason.as_deref(),
        }),
    }
}

fn victim_json(v: &OomVictim) -> VictimJson<'_> {
    VictimJson {
        pid: v.pid,
        comm: &v.comm,
        anon_rss_bytes: v.anon_rss_bytes,
        file_rss_bytes: v.file_rss_bytes,
        total_vm_bytes: v.total_vm_bytes,
    }
}

/// Pretty JSON with a trailing newline.
pub fn to_json(explained: &[OomExplanation]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&report(explained)).map(|s| s + "\n")
}

fn size(b: Option<u64>) -> String {
    b.map_or_else(
        || "-".to_string(),
        |b| human(i64::try_from(b).unwrap_or(i64::MAX)),
    )
}

/// The table's columns.
const HEADER: [&str; 11] = [
    "#",
    "TIME",
    "NODE",
    "VM",
    "TRIGGER",
    "KILLED",
    "SCOPE",
    "LIMIT",
    "NON-GUEST",
    "ROOM",
    "RESERVE",
];

/// A table, one line per event, then each event's verdict.
pub fn to_table(explained: &[OomExplanation]) -> String {
    let mut rows: Vec<Vec<String>> = explained
        .iter()
        .enumerate()
        .map(|(i, ex)| row_cells(i, ex))
        .collect();
    // Kernel-log process names and node names are chosen by whoever runs the process or names
    // the node: shown escaped, before the widths are measured.
    for row in &mut rows {
        for cell in row.iter_mut() {
            if let Cow::Owned(e) = escape(cell) {
                *cell = e;
            }
        }
    }
    let widths = column_widths(&rows);
    let mut out = aligned_line(HEADER.iter().map(|h| h.to_string()).collect(), &widths);
    for row in rows {
        out.push_str(&aligned_line(row, &widths));
    }
    if explained.iter().any(|e| e.event.partial) {
        out.push_str("* report cut short\n");
    }
    for (i, ex) in explained.iter().enumerate() {
        out.push_str(&format!("\n{}. {}\n", i + 1, escape(&ex.verdict)));
    }
    out
}

/// Event number `i` (from 0; `*` when its report is cut short) under [`HEADER`], unescaped.
fn row_cells(i: usize, ex: &OomExplanation) -> Vec<String> {
    let ev = &ex.event;
    vec![
        format!("{}{}", i + 1, if ev.partial { "*" } else { "" }),
        ev.time.as_deref().map_or("-", str::trim).to_string(),
        ev.node.clone().unwrap_or_else(|| "-".into()),
        vm_cell(ex),
        ev.trigger.clone().unwrap_or_else(|| "-".into()),
        killed_cell(ex),
        scope_cell(ex),
        size(ev.limit_bytes()),
        size(ex.overhead_used_bytes),
        size(ex.overhead_budget_bytes),
        ex.reserve_bytes.map_or("-".to_string(), |r| {
            crate::units::to_quantity_string(i64::try_from(r).unwrap_or(i64::MAX))
        }),
    ]
}

/// VM: `namespace/name`, else the start of the pod's UID.
fn vm_cell(ex: &OomExplanation) -> String {
    match (&ex.vm, ex.event.pod_uid.as_deref()) {
        (Some(vm), _) => format!("{}/{}", vm.namespace, vm.name),
        (None, Some(uid)) => format!("pod {}", uid.get(..8).unwrap_or(uid)),
        (None, None) => "-".to_string(),
    }
}

/// KILLED: the victim, `+N` for the rest of a group kill, and the sidecar it was in.
fn killed_cell(ex: &OomExplanation) -> String {
    let ev = &ex.event;
    let mut victim = ev
        .victim
        .as_ref()
        .map_or_else(|| "-".to_string(), |v| format!("{} ({})", v.comm, v.pid));
    let more = ev.group_victims.len() + ev.group_victims_omitted;
    if more > 0 {
        victim.push_str(&format!(" +{more}"));
    }
    if let Some(c) = ex.container.as_ref().filter(|_| ex.in_sidecar()) {
        victim.push_str(&format!(" in {}", c.name));
    }
    victim
}

/// SCOPE: the cgroup level whose limit was hit, `+swap` for a memory+swap limit.
fn scope_cell(ex: &OomExplanation) -> String {
    match (ex.event.scope, ex.event.memsw_limit_hit()) {
        (Some(s), true) => format!("{}+swap", s.as_str()),
        (Some(s), false) => s.as_str().to_string(),
        (None, _) => "-".to_string(),
    }
}

/// Each column as wide as its widest cell or header.
fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

/// One line of the table: cells padded to their widths, three spaces apart, the last one as is.
fn aligned_line(cells: Vec<String>, widths: &[usize]) -> String {
    let mut l = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            l.push_str(cell);
        } else {
            l.push_str(&format!("{cell:<w$}   ", w = *w));
        }
    }
    let mut line = l.trim_end().to_string();
    line.push('\n');
    line
}
