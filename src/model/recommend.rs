//! The recommended reservation and how to apply it: one rule over the VM's evidence
//! ([`super::evidence`]), used by `list`, the dashboard, `fix` and JSON alike.

use serde::Serialize;

use super::evidence::{worst_by, Evidence, EvidenceKind, Level};
use super::harvester::{size_table_reserve, size_table_row};
use super::overhead::MI;
use crate::units::{human, to_quantity_string};

/// How a reservation is applied to a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Harvester: set `harvesterhci.io/reservedMemory`, guest = limit − reserve.
    Annotation,
    /// Plain KubeVirt: guest = limit − reserve.
    Guest,
    /// KubeVirt ≥ v1.8: `memory.reservedOverhead.addedOverhead`; the guest keeps its size.
    AddedOverhead,
    /// Drop `limits.memory`: no cgroup OOM kill, and no protection for the host.
    RemoveLimit,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Annotation => "annotation",
            Strategy::Guest => "guest",
            Strategy::AddedOverhead => "added-overhead",
            Strategy::RemoveLimit => "remove-limit",
        }
    }
    /// The strategy a word names (`as_str`'s words).
    pub fn from_word(word: &str) -> Option<Strategy> {
        [
            Strategy::Annotation,
            Strategy::Guest,
            Strategy::AddedOverhead,
            Strategy::RemoveLimit,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }
    /// `auto`: the annotation on Harvester, the guest elsewhere.
    pub fn auto(harvester: bool) -> Strategy {
        if harvester {
            Strategy::Annotation
        } else {
            Strategy::Guest
        }
    }
}

/// What to reserve beyond KubeVirt's overhead, why, and from which evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub reserve_bytes: i64,
    pub strategy: Strategy,
    pub reason: String,
    /// The evidence item that decided it (`size-table` when the table did).
    pub decided_by: DecidedBy,
    pub evidence: Vec<Evidence>,
}

/// What decided a recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    SizeTable,
    Evidence(EvidenceKind),
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::SizeTable => "size-table",
            DecidedBy::Evidence(k) => k.as_str(),
        }
    }
}

impl Serialize for DecidedBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the rule needs to know about the VM besides its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The size the user configured (its limit, else its guest): the size table's key.
    pub configured: i64,
    /// False when guest RAM is not in the memory cgroup (hugepages): no size-table value then.
    pub table_applies: bool,
    /// KubeVirt's O as applied to the pod (a Harvester/KubeVirt overhead ratio included).
    pub overhead_applied: i64,
    /// The room the overhead ratio already adds: O before the ratio × (ratio − 1).
    pub ratio_room: i64,
    /// The limits of the containers beside `compute` that share a pod-level limit.
    pub sidecars: i64,
    pub strategy: Strategy,
    pub has_limit: bool,
}

pub const STEP: i64 = 64 * MI;

pub fn round_up(bytes: i64, step: i64) -> i64 {
    if bytes <= 0 {
        return 0;
    }
    bytes.saturating_add(step - 1) / step * step
}

/// 1.25 × bytes, rounded up.
fn with_margin(bytes: i64) -> i64 {
    bytes.saturating_mul(5).saturating_add(3).div_euclid(4)
}

/// What one evidence item needs reserved: 1.25 × its bytes − O as applied − the containers
/// beside compute (only where they share the limit the item was measured against).
pub fn need_of(e: &Evidence, s: &Sizing) -> i64 {
    let beside = match e.level {
        Level::Pod => s.sidecars,
        Level::Container => 0,
    };
    with_margin(e.bytes) - s.overhead_applied - beside
}

/// The size table's value for this VM, less the room an overhead ratio already adds (0 when the
/// table does not apply).
pub fn table_part(s: &Sizing) -> i64 {
    if !s.table_applies {
        return 0;
    }
    (size_table_reserve(s.configured) - s.ratio_room).max(0)
}

/// The one rule: reserve = max(size table − ratio room, 1.25 × worst evidence − O as applied −
/// the containers beside compute), rounded up to 64Mi, never below 0. The reason names what
/// decided it.
pub fn recommend(s: &Sizing, evidence: Vec<Evidence>) -> Recommendation {
    let table = table_part(s);
    let worst = worst_by(&evidence, |e| need_of(e, s));
    let need = worst.map(|e| need_of(e, s));
    let (raw, decided_by, why) = match (worst, need) {
        (Some(e), Some(n)) if n > table => (
            n,
            DecidedBy::Evidence(e.kind),
            format!(
                "{} had {} outside guest RAM: x1.25, minus KubeVirt's {}{}, needs {}, above {}",
                e.words(),
                human(e.bytes),
                human(s.overhead_applied),
                beside_words(e, s),
                to_quantity_string_rounded(n),
                table_words(s, table)
            ),
        ),
        (Some(e), Some(n)) => (
            table,
            DecidedBy::SizeTable,
            format!(
                "{}; the worst evidence, {} with {} outside guest RAM, needs {}",
                table_words(s, table),
                e.words(),
                human(e.bytes),
                to_quantity_string_rounded(n.max(0))
            ),
        ),
        _ => (
            table,
            DecidedBy::SizeTable,
            format!(
                "{} alone: no measurement of this VM yet",
                table_words(s, table)
            ),
        ),
    };
    let reason = if s.has_limit {
        why
    } else {
        format!("no memory limit, so no cgroup OOM kill; if a limit is set: {why}")
    };
    Recommendation {
        reserve_bytes: round_up(raw, STEP),
        strategy: s.strategy,
        reason,
        decided_by,
        evidence,
    }
}

fn beside_words(e: &Evidence, s: &Sizing) -> String {
    if e.level == Level::Pod && s.sidecars > 0 {
        format!(
            " and the {} of the containers beside compute",
            human(s.sidecars)
        )
    } else {
        String::new()
    }
}

/// `the size table's 384Mi for VMs of 2Gi to 5Gi` (less the ratio's room when there is one).
fn table_words(s: &Sizing, table: i64) -> String {
    if !s.table_applies {
        return "the size table's 0 for hugepage-backed guests (their RAM is outside the memory cgroup)"
            .to_string();
    }
    let row = size_table_row(s.configured);
    let full = size_table_reserve(s.configured);
    if s.ratio_room > 0 {
        format!(
            "the size table's {} for {row} less the {} the overhead ratio already adds ({})",
            to_quantity_string(full),
            human(s.ratio_room),
            to_quantity_string_rounded(table)
        )
    } else {
        format!("the size table's {} for {row}", to_quantity_string(full))
    }
}

/// Bytes as a short quantity, rounded up to whole MiB when not exact.
pub fn to_quantity_string_rounded(bytes: i64) -> String {
    if bytes % MI == 0 {
        to_quantity_string(bytes)
    } else {
        format!("{}Mi", round_up(bytes, MI) / MI)
    }
}

#[cfg(test)]
mod tests;
