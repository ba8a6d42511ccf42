//! The recommended reservation and how to apply it (DESIGN.md "Recommendation").

use serde::Serialize;

use super::harvester::{seed_reserve, seed_row};
use super::overhead::MI;
use crate::units::to_quantity_string;

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
    /// The seed's Solution 2: drop `limits.memory`.
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
    /// `auto`: the annotation on Harvester, the guest elsewhere.
    pub fn auto(harvester: bool) -> Strategy {
        if harvester {
            Strategy::Annotation
        } else {
            Strategy::Guest
        }
    }
}

/// What to reserve beyond KubeVirt's overhead, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub reserve_bytes: i64,
    pub strategy: Strategy,
    pub reason: String,
}

pub const STEP: i64 = 64 * MI;

pub fn round_up(bytes: i64, step: i64) -> i64 {
    if bytes <= 0 {
        return 0;
    }
    (bytes + step - 1) / step * step
}

/// Measured need: 1.25 × peak overhead used − O − sidecars (None without live data).
pub fn measured_need(peak_overhead: Option<i64>, o: i64, sidecars: i64) -> Option<i64> {
    peak_overhead.map(|p| (p * 5 + 3).div_euclid(4) - o - sidecars)
}

/// reserve = max(seed table value for the configured size, measured need), rounded up to 64Mi.
/// `configured` is the VM's size as the user set it (its limit, else its guest).
pub fn recommend(
    configured: i64,
    o: i64,
    sidecars: i64,
    peak_overhead: Option<i64>,
    strategy: Strategy,
    has_limit: bool,
) -> Recommendation {
    let table = seed_reserve(configured);
    let need = measured_need(peak_overhead, o, sidecars);
    let (raw, why) = match need {
        Some(n) if n > table => (
            n,
            format!(
                "overhead peaked at {} (x1.25, minus KubeVirt's {} and sidecars) needs {}, above the seed table's {} for {}",
                to_quantity_string_rounded(peak_overhead.unwrap_or(0)),
                to_quantity_string_rounded(o),
                to_quantity_string_rounded(n),
                to_quantity_string(table),
                seed_row(configured)
            ),
        ),
        Some(n) => (
            table,
            format!(
                "seed table: {} for {} (measured need {})",
                to_quantity_string(table),
                seed_row(configured),
                to_quantity_string_rounded(n.max(0))
            ),
        ),
        None => (
            table,
            format!(
                "seed table: {} for {} (no live data to measure)",
                to_quantity_string(table),
                seed_row(configured)
            ),
        ),
    };
    let reason = if has_limit {
        why
    } else {
        format!("no memory limit, so no cgroup OOM kill; if a limit is set, reserve per {why}")
    };
    Recommendation {
        reserve_bytes: round_up(raw, STEP),
        strategy,
        reason,
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
mod tests {
    use super::*;
    use crate::model::overhead::GI;

    #[test]
    fn table_wins_when_overhead_is_small() {
        let r = recommend(
            2 * GI,
            264_939_521,
            60_000_000,
            Some(200 * MI),
            Strategy::Annotation,
            true,
        );
        assert_eq!(r.reserve_bytes, 384 * MI);
        assert!(
            r.reason
                .starts_with("seed table: 384Mi for VMs of 2Gi to 5Gi"),
            "{}",
            r.reason
        );
        let r = recommend(GI, 250 * MI, 0, None, Strategy::Guest, true);
        assert_eq!(r.reserve_bytes, 256 * MI);
        assert!(r.reason.contains("no live data"));
    }

    #[test]
    fn measured_need_wins_and_rounds_up_to_64mi() {
        // Seed Example 3: memhold pushed overhead to ~700Mi on a 2Gi VM with O ≈ 252Mi.
        let r = recommend(
            1948 * MI,
            264_939_521,
            60_000_000,
            Some(700 * MI),
            Strategy::Annotation,
            true,
        );
        let need = (700 * MI * 5 + 3) / 4 - 264_939_521 - 60_000_000;
        assert_eq!(r.reserve_bytes, round_up(need, 64 * MI));
        assert_eq!(r.reserve_bytes % (64 * MI), 0);
        assert!(r.reserve_bytes > 384 * MI);
        assert!(
            r.reason.starts_with("overhead peaked at 700Mi"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(round_up(0, STEP), 0);
        assert_eq!(round_up(1, STEP), 64 * MI);
        assert_eq!(round_up(64 * MI, STEP), 64 * MI);
        assert_eq!(round_up(-5, STEP), 0);
        assert_eq!(Strategy::auto(true), Strategy::Annotation);
        assert_eq!(Strategy::auto(false), Strategy::Guest);
    }

    #[test]
    fn no_limit_says_so() {
        let r = recommend(4 * GI, 250 * MI, 0, None, Strategy::Guest, false);
        assert!(r.reason.starts_with("no memory limit"));
    }
}
