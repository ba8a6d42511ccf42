//! `list` output: the report as a kubectl-style table (and `wide`), JSON or YAML.

use crate::model::memory::Part;
use crate::model::report::{flags_joined, Flag, Report, Risk, VmRow};
use crate::model::trend::duration_words;
use crate::units::human;

use super::table::{Table, Tone, NONE};

fn size(b: Option<i64>) -> String {
    b.map(human).unwrap_or_else(|| NONE.to_string())
}

fn risk_tone(r: Risk) -> Tone {
    match r {
        Risk::Critical => Tone::Bad,
        Risk::Warn => Tone::Warn,
        Risk::Ok => Tone::Good,
        Risk::Unknown => Tone::Dim,
    }
}

/// `used/budget`, or just the budget without live data.
pub fn overhead_cell(r: &VmRow) -> String {
    match (r.overhead_used_bytes, r.overhead_budget_bytes) {
        (Some(u), Some(b)) => format!("{}/{}", human(u), human(b)),
        (Some(u), None) => format!("{}/{}", human(u), "-"),
        (None, Some(b)) => format!("-/{}", human(b)),
        (None, None) => NONE.to_string(),
    }
}

/// `usage/limit` of the binding cgroup.
pub fn usage_cell(r: &VmRow) -> String {
    match &r.cgroup {
        Some(c) => match c.limit_bytes {
            Some(l) => format!("{}/{}", human(c.usage_bytes as i64), human(l as i64)),
            None => format!("{}/-", human(c.usage_bytes as i64)),
        },
        None => NONE.to_string(),
    }
}

pub fn recommend_cell(r: &VmRow) -> String {
    let cur = r.reserved_bytes.unwrap_or(0);
    if r.has_flag(Flag::UnderReserved) {
        format!(
            "reserve {}",
            crate::units::to_quantity_string(r.recommendation.reserve_bytes)
        )
    } else if cur > 0 || r.has_flag(Flag::NoLimit) {
        "-".to_string()
    } else {
        format!(
            "reserve {}",
            crate::units::to_quantity_string(r.recommendation.reserve_bytes)
        )
    }
}

fn component(r: &VmRow, name: Part) -> String {
    r.breakdown
        .iter()
        .filter(|c| c.name == name)
        .map(|c| c.bytes)
        .reduce(|a, b| a + b)
        .map(human)
        .unwrap_or_else(|| NONE.to_string())
}

/// The columns every `list` table has.
const COLUMNS: [&str; 11] = [
    "NAMESPACE",
    "NAME",
    "NODE",
    "GUEST",
    "VM LIMIT",
    "POD LIMIT",
    "USAGE",
    "OVERHEAD",
    "HEADROOM",
    "RISK",
    "RECOMMENDATION",
];

/// The columns `wide` adds after [`COLUMNS`]: spec details and the breakdown.
const WIDE_COLUMNS: [&str; 15] = [
    "PHASE",
    "RESERVED",
    "KUBEVIRT O",
    "GUEST RES",
    "QEMU",
    "LAUNCHER",
    "LIBVIRT",
    "VIRTLOGD",
    "OTHER",
    "KERNEL",
    "FILE",
    "OOMS",
    "OOM IN",
    "SOURCE",
    "FLAGS",
];

/// The `list` table; `wide` adds spec details and the breakdown.
pub fn table(report: &Report, wide: bool) -> Table {
    let mut headers = COLUMNS.to_vec();
    let history = wide && super::report_history::shown(report);
    if wide {
        headers.extend(WIDE_COLUMNS);
    }
    if history {
        headers.extend(super::report_history::COLUMNS);
    }
    let mut t = Table::new(headers);
    for r in &report.vms {
        let mut cells = row_cells(r);
        if wide {
            cells.extend(wide_cells(r));
        }
        if history {
            cells.extend(super::report_history::cells(r));
        }
        t.row(cells);
    }
    t
}

/// One VM's cells under [`COLUMNS`].
fn row_cells(r: &VmRow) -> Vec<(String, Tone)> {
    let pod_limit = r.pod_limit_bytes.or(r.expected_pod_limit_bytes);
    vec![
        (r.namespace.clone(), Tone::Plain),
        (r.name.clone(), Tone::Plain),
        (r.node.clone().unwrap_or_else(|| NONE.into()), Tone::Plain),
        (guest_cell(r), Tone::Plain),
        (
            r.vm_limit_bytes
                .map(human)
                .unwrap_or_else(|| "no limit".into()),
            Tone::Plain,
        ),
        (
            if r.vm_limit_bytes.is_none() && pod_limit.is_none() {
                "no limit".into()
            } else {
                size(pod_limit)
            },
            Tone::Plain,
        ),
        (usage_cell(r), Tone::Plain),
        (overhead_cell(r), Tone::Plain),
        (
            size(r.headroom_bytes),
            if r.headroom_bytes.is_some_and(|h| h < 0) {
                Tone::Bad
            } else {
                Tone::Plain
            },
        ),
        (r.risk.as_str().to_string(), risk_tone(r.risk)),
        (recommend_cell(r), Tone::Plain),
    ]
}

/// The guest; during a memory hotplug what qemu has → what the VMI asks for.
fn guest_cell(r: &VmRow) -> String {
    match (r.guest_running_bytes, r.guest_bytes) {
        (Some(running), Some(asked)) if running != asked => {
            format!("{}→{}", human(running), human(asked))
        }
        _ => size(r.guest_bytes),
    }
}

/// The sum of the breakdown terms named any of `names`, if there is one.
fn components_sum(r: &VmRow, keep: fn(Part) -> bool) -> Option<i64> {
    r.breakdown
        .iter()
        .filter(|c| keep(c.name))
        .map(|c| c.bytes)
        .reduce(|a, b| a + b)
}

/// One VM's cells under [`WIDE_COLUMNS`].
fn wide_cells(r: &VmRow) -> [(String, Tone); 15] {
    let launcher = components_sum(r, Part::is_launcher);
    let libvirt = components_sum(r, Part::is_libvirt);
    [
        (r.phase.to_string(), Tone::Plain),
        (size(r.reserved_bytes), Tone::Plain),
        (human(r.expected_overhead_bytes), Tone::Plain),
        (component(r, Part::Guest), Tone::Plain),
        (component(r, Part::Qemu), Tone::Plain),
        (size(launcher), Tone::Plain),
        (size(libvirt), Tone::Plain),
        (component(r, Part::Virtlogd), Tone::Plain),
        (component(r, Part::Other), Tone::Plain),
        (component(r, Part::Kernel), Tone::Plain),
        (component(r, Part::File), Tone::Plain),
        oom_kills_cell(r),
        oom_eta_cell(r),
        (
            r.live_source
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "spec".into()),
            Tone::Plain,
        ),
        (
            if r.flags.is_empty() {
                NONE.into()
            } else {
                flags_joined(&r.flags, ",")
            },
            Tone::Plain,
        ),
    ]
}

/// OOMS: the kills counted in the cgroup, red when there were any.
fn oom_kills_cell(r: &VmRow) -> (String, Tone) {
    (
        r.oom_kills
            .map(|k| k.to_string())
            .unwrap_or_else(|| NONE.into()),
        if r.oom_kills.is_some_and(|k| k > 0) {
            Tone::Bad
        } else {
            Tone::Plain
        },
    )
}

/// OOM IN: the time to the OOM at the current trend, with its error.
fn oom_eta_cell(r: &VmRow) -> (String, Tone) {
    (
        r.oom_eta
            .map(|e| format!("{} (± {})", e.words(), duration_words(e.error_seconds)))
            .unwrap_or_else(|| NONE.into()),
        if r.oom_eta.is_some() {
            Tone::Warn
        } else {
            Tone::Plain
        },
    )
}

/// Write the report as pretty JSON, streamed (no whole-document string in memory).
pub fn write_json(
    report: &impl serde::Serialize,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// Write the report as YAML, streamed.
pub fn write_yaml(
    report: &impl serde::Serialize,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    super::yaml::to_writer(&mut *out, report).map_err(std::io::Error::other)
}
