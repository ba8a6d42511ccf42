//! A row's live figures as JSON, and what they add to its flags and notes: where they came
//! from, swap in use, a guest filling its RAM.

use super::flag::Flag;
use super::oom_history::sidecar_note;
use super::types::CgroupJson;
use crate::model::join::Joined;
use crate::model::memory::MemoryModel;
use crate::model::readings::{LiveSource, NodeReadings, PodReading};
use crate::model::version::Version;
use crate::units::human;

/// What the node's reading says of this VM's pod.
pub(super) struct LiveFigures<'a> {
    pub(super) node: Option<String>,
    pub(super) pod_uid: Option<String>,
    /// The node's reading, when it has this pod.
    pub(super) reading: Option<&'a NodeReadings>,
    pub(super) stale_reason: Option<&'a String>,
    /// The pod whose earlier reading the figures are, when carried (see `carry`).
    pub(super) carried_pod: Option<String>,
    pub(super) model: Option<MemoryModel>,
    /// Room for everything but guest RAM: the binding limit less the charged guest.
    pub(super) budget: Option<i64>,
    pub(super) source: Option<LiveSource>,
    /// The cgroup's figures, also when guest and overhead cannot be told apart (no model).
    pub(super) cgroup: Option<CgroupJson>,
}

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

/// Why this VM's guest RAM may be shared memory (shmem: in the cgroup's usage and working set,
/// not in any process's RSS nor in `anon`): virtiofs (KubeVirt backs guest RAM with a shared
/// memfd so virtiofsd can map it; a `virtiofs-<volume>` container in the pod), or the passt
/// binding from v1.8 (its vhost-user backend needs the same). `None` when nothing says so.
pub(super) fn shared_guest_reason(j: &Joined, version: Version) -> Option<&'static str> {
    let virtiofs = j.pod.is_some_and(|p| {
        p.spec
            .containers
            .iter()
            .any(|c| c.name.starts_with("virtiofs-"))
    });
    if virtiofs {
        return Some("virtiofs");
    }
    let passt = j.vmi.is_some_and(|v| {
        v.spec.domain.devices.interfaces.iter().any(|i| {
            i.passt_binding.is_some() || i.binding.as_ref().is_some_and(|b| b.name == "passt")
        })
    });
    (passt && version >= Version::new(1, 8, 0)).then_some("the passt binding (KubeVirt v1.8+)")
}

/// The working set above the anonymous memory from which, without processes to tell, guest RAM
/// is taken to be shared memory even when the VMI does not say why.
const SHARED_GUEST_FROM: i64 = 1 << 30;

/// With only the kubelet's figures (no processes, no smaps), whether guest RAM and overhead
/// cannot be told apart: the VMI says guest RAM is shared memory (`reason`), or the working set
/// is far above the anonymous memory (≥ 1Gi and ≥ half the guest). The RSS-based estimate would
/// then call the whole guest overhead. Returns the note to show.
pub(super) fn guest_split_unknown(
    m: &MemoryModel,
    source: Option<LiveSource>,
    guest: i64,
    reason: Option<&'static str>,
) -> Option<String> {
    if source != Some(LiveSource::Kubelet) || m.guest_resident_exact {
        return None;
    }
    let c = &m.counters;
    let beyond_anon = c.working_set_bytes as i64 - c.stat.anon.unwrap_or(0) as i64;
    let figures = beyond_anon >= SHARED_GUEST_FROM && beyond_anon >= guest / 2;
    let why = match (reason, figures) {
        (Some(r), _) => format!("guest RAM is shared memory with {r}"),
        (None, true) => format!(
            "the working set is {} above the anonymous memory, as when guest RAM is shared memory",
            human(beyond_anon)
        ),
        (None, false) => return None,
    };
    Some(format!(
        "{why}: the kubelet's figures (RSS, anonymous memory) do not show it, so guest RAM and \
         overhead cannot be told apart here: guest resident, overhead and headroom unknown (the \
         node agent reads qemu's memory map and gives the exact figures)"
    ))
}

/// The OOM kills the cgroup counters show in containers beside `compute` (memory.events is
/// hierarchical: the pod's counter holds them too), by the container's name from the pod's
/// status: a sidecar's kill (kubevirt#15501: guest-console-log) leaves the VM running. A group
/// kill (`memory.oom.group`, one report with several victims) counts once. `None` when there are
/// none, or when `noted` (the kernel log already said so).
pub(super) fn sidecar_counter_note(
    j: &Joined,
    reading: Option<&PodReading>,
    compute_id: Option<&str>,
    noted: bool,
) -> Option<String> {
    let (r, compute_id) = (reading?, compute_id?);
    // Most pods have no kills at all: nothing to match by container ID.
    if noted || r.containers.iter().all(|c| c.kill_events() == 0) {
        return None;
    }
    let statuses = j.pod.map(|p| {
        p.status
            .container_statuses
            .iter()
            .chain(&p.status.init_container_statuses)
    })?;
    let named: Vec<(&str, u64)> = statuses
        .filter_map(|s| {
            let id = s.container_id.rsplit("://").next()?;
            let c = r
                .containers
                .iter()
                .find(|c| c.container_id.as_deref() == Some(id))?;
            (s.name != "compute" && id != compute_id && c.kill_events() > 0)
                .then_some((s.name.as_str(), c.kill_events()))
        })
        .collect();
    sidecar_note(&named, " (its cgroup's memory.events)")
}
