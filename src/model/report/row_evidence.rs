//! A row's evidence (what this reading, the cgroup's peak counter and the kernel log's OOM
//! kills say about the VM's memory outside guest RAM, plus what the caller kept), and the risk
//! that evidence implies.

use super::risk::Risk;
use crate::model::evidence::{worst_by, At, Bound, Evidence, EvidenceKind, Level};
use crate::model::memory::MemoryModel;
use crate::model::oom_verdict::{oom_kill_evidence, OomExplanation};
use crate::model::readings::{CgroupLevel, NodeReadings};
use crate::model::recommend::Sizing;
use crate::model::trend::{self, Eta, Sample};
use crate::units::human;

pub struct Inputs<'a> {
    pub model: Option<&'a MemoryModel>,
    /// The node reading the model comes from.
    pub reading: Option<&'a NodeReadings>,
    /// The VM's OOM kills from kernel logs, explained.
    pub history: &'a [OomExplanation],
    /// Its OOM kills its pod's status shows that no kernel log has.
    pub status_kills: &'a [Evidence],
    /// Evidence the caller kept (session peaks, peaks remembered on this machine, history).
    pub kept: &'a [Evidence],
}

fn level(l: CgroupLevel) -> Level {
    match l {
        CgroupLevel::Pod => Level::Pod,
        CgroupLevel::Container => Level::Container,
    }
}

/// Every item of evidence for one row, in a stable order: now, the cgroup's peak, OOM kills
/// (the kernel logs', then the pod status's), then what the caller kept.
pub fn gather(i: &Inputs) -> Vec<Evidence> {
    let mut out = Vec::new();
    if let (Some(m), Some(r)) = (i.model, i.reading.filter(|_| !inflated(i.model))) {
        let source = format!("node {}, {} reading", r.node, r.source.as_str());
        out.push(Evidence {
            kind: EvidenceKind::Now,
            bytes: m.overhead_used,
            at: Some(At::Unix(r.taken_at)),
            source: source.clone(),
            bound: Bound::Measured,
            level: level(m.counters.level),
        });
        let peak = m
            .counters
            .peak_bytes
            .and_then(|p| i64::try_from(p).ok())
            .map(|p| p.saturating_sub(m.guest_resident));
        if let Some(p) = peak.filter(|&p| p > m.overhead_used) {
            out.push(Evidence {
                kind: EvidenceKind::CgroupPeak,
                bytes: p,
                at: None,
                source,
                bound: Bound::Upper,
                level: level(m.counters.level),
            });
        }
    }
    out.extend(
        i.history
            .iter()
            .filter(|e| e.kills_vm())
            .filter_map(|e| oom_kill_evidence(&e.event, e.overhead_used_bytes)),
    );
    out.extend(i.status_kills.iter().cloned());
    out.extend(i.kept.iter().cloned());
    out
}

/// Whether this reading's overhead holds guest RAM the guest figure missed (a guest figure from
/// an earlier round while the guest fills): then it is no evidence, nor a sample of the trend.
fn inflated(m: Option<&MemoryModel>) -> bool {
    m.is_some_and(|m| m.guest_skew.grown_since >= crate::model::memory::FILLING_FROM)
}

/// A VM whose worst evidence is above its current budget is `warn` at least, even while this
/// reading is calm; the note says what peaked against what. `budget` is the room outside guest
/// RAM at the level the row measured (or the compute container's, from the spec).
pub fn risk_with_evidence(
    risk: Risk,
    evidence: &[Evidence],
    sizing: &Sizing,
    budget: Option<i64>,
    budget_level: Level,
) -> (Risk, Option<String>) {
    let Some(budget) = budget else {
        return (risk, None);
    };
    // The room at an item's own level: the containers beside compute are room at the pod level.
    let room = |l: Level| match (l, budget_level) {
        (Level::Pod, Level::Container) => budget.saturating_add(sizing.sidecars),
        (Level::Container, Level::Pod) => budget.saturating_sub(sizing.sidecars),
        _ => budget,
    };
    // This reading over the budget is negative headroom, which the risk already says.
    let earlier: Vec<Evidence> = evidence
        .iter()
        .filter(|e| e.kind != EvidenceKind::Now)
        .cloned()
        .collect();
    let over = worst_by(&earlier, |e| e.bytes.saturating_sub(room(e.level)))
        .filter(|e| e.bytes > room(e.level));
    let Some(e) = over else {
        return (risk, None);
    };
    let note = format!(
        "{} was {} outside guest RAM, against a budget of {} now",
        capitalised(&e.words()),
        human(e.bytes),
        human(room(e.level))
    );
    let risk = match risk {
        Risk::Ok | Risk::Unknown => Risk::Warn,
        r => r,
    };
    (risk, Some(note))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The time to OOM from the kept samples plus this reading, against the budget at the level the
/// reading measured.
pub fn time_to_oom(
    kept: &[Sample],
    model: Option<&MemoryModel>,
    reading: Option<&NodeReadings>,
    budget: Option<i64>,
) -> Option<Eta> {
    let (m, r, budget) = (model?, reading?, budget?);
    let mut samples = kept.to_vec();
    if !inflated(Some(m)) && !samples.iter().any(|s| s.at == r.taken_at) {
        samples.push(Sample {
            at: r.taken_at,
            bytes: m.overhead_used,
        });
    }
    trend::eta(&samples, budget, r.taken_at)
}
