//! A row's live figures as JSON, and what they add to its flags and notes: where they came
//! from, swap in use, a guest filling its RAM.

use super::flag::Flag;
use super::types::CgroupJson;
use crate::model::memory::MemoryModel;
use crate::model::readings::{LiveSource, NodeReadings};
use crate::units::human;

/// `swapping` when the binding cgroup (or the pod) has swap in use; `guest-filling` when the
/// guest grew fast between the guest figure and the usage, with what that does to the figures.
pub(super) fn live_flags(m: Option<&MemoryModel>, flags: &mut Vec<Flag>, notes: &mut Vec<String>) {
    let Some(m) = m else { return };
    if let Some(s) = m.counters.swap_bytes.filter(|&s| s > 0) {
        flags.push(Flag::Swapping);
        notes.push(match m.counters.swap_limit_bytes {
            Some(l) => format!(
                "{} of swap in use of {} allowed: the cgroup is OOM-killed only when its memory and its swap are full, so the headroom counts the {} of swap left",
                human(s as i64),
                human(l as i64),
                human(m.swap_room)
            ),
            None => format!(
                "{} of swap in use, with no swap limit read: the headroom counts memory only",
                human(s as i64)
            ),
        });
    }
    let skew = m.guest_skew;
    if !skew.filling() {
        return;
    }
    flags.push(Flag::GuestFilling);
    notes.push(if skew.grown_since >= skew.grew_during_read {
        format!(
            "guest filling: the guest RAM figure is from an earlier round and the guest has grown by up to {} since, which this reading counts as overhead{}",
            human(skew.grown_since),
            if m.overrun_is_guest_growth() {
                ": the negative headroom may be nothing but that growth, so it is not critical on its own"
            } else {
                ""
            }
        )
    } else {
        format!(
            "guest filling: the guest grew by {} while qemu's memory map was read, so the overhead may be up to that much higher",
            human(skew.grew_during_read)
        )
    });
}

pub(super) fn cgroup_json(
    m: &MemoryModel,
    reading: Option<&NodeReadings>,
    source: Option<LiveSource>,
) -> CgroupJson {
    CgroupJson {
        level: m.counters.level.as_str(),
        version: reading.and_then(|r| r.cgroup_version.known()),
        limit_bytes: m.counters.limit_bytes,
        usage_bytes: m.counters.usage_bytes,
        working_set_bytes: m.counters.working_set_bytes,
        peak_bytes: m.counters.peak_bytes,
        failcnt: m.counters.failcnt,
        oom_kills: source
            .is_none_or(|s| s.has_oom_counters())
            .then_some(m.oom_kills),
        swap_bytes: m.counters.swap_bytes,
        swap_limit_bytes: m.counters.swap_limit_bytes,
    }
}
