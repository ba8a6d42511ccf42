//! `list -o wide`'s PEAK columns: each VM's figures over the history window from Prometheus
//! (issue 20). Present only when there is history, so the wide table without it is unchanged.

use crate::model::evidence::weekday;
use crate::model::report::{Report, VmRow};
use crate::units::human;

use super::table::{Tone, NONE};

/// The columns added after the wide ones.
pub const COLUMNS: [&str; 4] = ["PEAK USAGE", "PEAK OUTSIDE GUEST", "PEAK AT", "PEAK OOMS"];

/// Whether any VM has history (then the columns are shown).
pub fn shown(report: &Report) -> bool {
    report.vms.iter().any(|r| r.prometheus.is_some())
}

/// `Tue 03:12` (UTC).
fn short_time(t: i64) -> String {
    let minute = crate::model::evidence::utc_minute(t);
    // `2026-12-07 06:40 UTC` → `06:40`.
    let hm = minute.split(' ').nth(1).unwrap_or_default();
    format!("{} {hm}", &weekday(t)[..3])
}

/// One VM's cells under [`COLUMNS`]: the usage peak, the peak outside guest RAM (`≥`: a lower
/// bound) and when, and the OOM kills in the window.
pub fn cells(r: &VmRow) -> [(String, Tone); 4] {
    let none = || (NONE.to_string(), Tone::Plain);
    let Some(h) = r.prometheus.as_deref() else {
        return [none(), none(), none(), none()];
    };
    let usage = h.peak_usage.map(|p| human(p.bytes));
    let (outside, at) = match h.peak_overhead {
        Some(p) => (Some(format!("≥{}", human(p.bytes))), Some(short_time(p.at))),
        None => (None, None),
    };
    let kills = h.oom_kills.len();
    [
        (usage.unwrap_or_else(|| NONE.into()), Tone::Plain),
        (outside.unwrap_or_else(|| NONE.into()), Tone::Plain),
        (at.unwrap_or_else(|| NONE.into()), Tone::Plain),
        (
            kills.to_string(),
            if kills > 0 { Tone::Bad } else { Tone::Plain },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_short() {
        assert_eq!(short_time(1_796_625_612), "Mon 06:40");
    }
}
