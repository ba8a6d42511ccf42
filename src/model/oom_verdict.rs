//! Explaining an OOM report the way an operator does by hand: which VM, what triggered it,
//! what each process held against its KubeVirt budget, how far over the room for non-guest
//! memory, and what reservation to set. Pure: the inventory is optional and passed in.

use super::evidence::{At, Bound, Evidence, EvidenceKind, Level};
use super::inventory::Inventory;
use super::objects::{CpuSpec, VmiSpec};
use super::oom_event::{OomEvent, OomScope, OomTask};
pub use super::oom_explanation::{GuestSource, OomExplanation, TaskVerdict, TriggerKind};
use super::oom_vm::{
    container_of_process, is_harvester, kill_container, kill_runtime, kubevirt_version,
    vm_for_gone_pod, vm_for_pod, KillContainer, VmFacts, COMPUTE_CONTAINER,
};
use super::overhead::{overhead, process_role, ClusterInputs, ProcessConstants, ProcessRole};
use super::peaks::RememberedPods;
use super::recommend::{recommend, Sizing, Strategy};
use super::version::{DetectedVersion, Version};
use crate::units::Quantity;

impl OomExplanation {
    /// The kill counts against the VM: it was in the compute container (qemu's), or its
    /// container is not known. A sidecar's kill (`guest-console-log`, kubevirt#15501) leaves the
    /// VM running.
    pub fn kills_vm(&self) -> bool {
        self.container
            .as_ref()
            .is_none_or(KillContainer::is_compute)
    }

    /// The kill was in a container beside `compute` (a sidecar).
    pub fn in_sidecar(&self) -> bool {
        !self.kills_vm()
    }
}

/// Explain every event. The KubeVirt version comes from the inventory's KubeVirt CR (or launcher
/// images), else `version_flag`, else the newest known.
pub fn explain(
    events: &[OomEvent],
    inventory: Option<&Inventory>,
    version_flag: Option<Version>,
) -> Vec<OomExplanation> {
    explain_remembering(events, inventory, version_flag, &RememberedPods::new())
}

/// [`explain`], and a kill in a pod the inventory no longer has (KubeVirt deleted it after it
/// failed) belongs to the VM `remembered` names for that pod.
pub fn explain_remembering(
    events: &[OomEvent],
    inventory: Option<&Inventory>,
    version_flag: Option<Version>,
    remembered: &RememberedPods,
) -> Vec<OomExplanation> {
    let version = kubevirt_version(inventory, version_flag);
    let harvester = inventory.map(|i| is_harvester(Some(i)));
    let v = version.version;
    events
        .iter()
        .map(|ev| {
            let facts = inventory.zip(ev.pod_uid.as_deref()).and_then(|(inv, uid)| {
                vm_for_pod(inv, uid, v).or_else(|| {
                    let vm_uid = remembered.get(uid)?;
                    vm_for_gone_pod(inv, vm_uid, v)
                })
            });
            explain_one(ev, facts, version, harvester)
        })
        .collect()
}

/// `CPU 11/KVM` → Some(11).
pub fn vcpu_index(trigger: &str) -> Option<u32> {
    trigger
        .strip_prefix("CPU ")?
        .strip_suffix("/KVM")?
        .parse()
        .ok()
}

fn trigger_kind(trigger: Option<&str>) -> TriggerKind {
    let Some(t) = trigger else {
        return TriggerKind::Unknown;
    };
    if vcpu_index(t).is_some() {
        return TriggerKind::Vcpu;
    }
    match process_role(t) {
        Some(ProcessRole::Qemu) => TriggerKind::Qemu,
        Some(role) => TriggerKind::Launcher(role),
        None if t.starts_with("IO ") || t == "vnc_worker" || t.starts_with("worker") => {
            TriggerKind::Qemu
        }
        None => TriggerKind::Other,
    }
}

fn qemu_task(ev: &OomEvent) -> Option<&OomTask> {
    ev.tasks
        .iter()
        .filter(|t| process_role(&t.name) == Some(ProcessRole::Qemu))
        .max_by_key(|t| t.rss_pages)
}

/// Guest-RAM-like memory of qemu (anonymous + shmem), as exactly as the report allows.
fn qemu_guestish_bytes(ev: &OomEvent) -> Option<u64> {
    let task = qemu_task(ev);
    if let Some(t) = task {
        if let Some(anon) = t.rss_anon_pages {
            return Some(
                anon.saturating_add(t.rss_shmem_pages.unwrap_or(0))
                    .saturating_mul(super::oom_event::PAGE_BYTES),
            );
        }
    }
    let victim = ev
        .victim
        .as_ref()
        .filter(|v| process_role(&v.comm) == Some(ProcessRole::Qemu))
        .filter(|v| task.is_none_or(|t| t.pid == v.pid));
    if let Some(anon) = victim.and_then(|v| v.anon_rss_bytes) {
        let shmem = victim.and_then(|v| v.shmem_rss_bytes).unwrap_or(0);
        return Some(anon.saturating_add(shmem));
    }
    task.map(OomTask::rss_bytes)
}

/// KubeVirt runs qemu as uid 107 (`qemu` in its launcher image).
pub const KUBEVIRT_QEMU_UID: u32 = 107;

/// A victim that is KubeVirt's qemu (`qemu-system-x86`/`qemu-kvm` running as uid 107).
fn kubevirt_qemu_killed(ev: &OomEvent) -> bool {
    ev.victims().any(|v| {
        process_role(&v.comm) == Some(ProcessRole::Qemu) && v.uid == Some(KUBEVIRT_QEMU_UID)
    })
}

/// The report names no memory cgroup (a journal excerpt without those lines): a cgroup it
/// does name outside Kubernetes (libvirt's qemu also runs as uid 107) rules KubeVirt out.
fn memcg_lines_cut(ev: &OomEvent) -> bool {
    ev.oom_memcg.is_none() && ev.task_memcg.is_none() && ev.stats_for.is_none()
}

fn looks_kubevirt(ev: &OomEvent) -> bool {
    if matches!(ev.scope, Some(OomScope::Global | OomScope::Node)) {
        // The task table then lists every process of the node (or of all pods): only the
        // victim says whether a VM died.
        let launcher_victim = ev.pod_uid.is_some()
            && ev
                .victim
                .as_ref()
                .is_some_and(|v| process_role(&v.comm).is_some());
        return launcher_victim || (memcg_lines_cut(ev) && kubevirt_qemu_killed(ev));
    }
    let launcher = ev.tasks.iter().any(|t| {
        matches!(
            process_role(&t.name),
            Some(ProcessRole::Monitor | ProcessRole::Launcher | ProcessRole::Libvirt)
        )
    });
    let qemu_in_pod = ev.pod_uid.is_some()
        && (qemu_task(ev).is_some()
            || ev
                .victim
                .as_ref()
                .is_some_and(|v| process_role(&v.comm) == Some(ProcessRole::Qemu)));
    // A report whose memory cgroup lines were cut (a journalctl excerpt) still shows KubeVirt's
    // qemu by its uid, or a vCPU thread (`CPU n/KVM`) as the trigger.
    let cut = memcg_lines_cut(ev);
    let vcpu_trigger = cut && ev.trigger.as_deref().and_then(vcpu_index).is_some();
    // A process only KubeVirt's sidecars run (virt-tail in guest-console-log) in a pod.
    let sidecar = ev.pod_uid.is_some()
        && ev
            .victims()
            .map(|v| v.comm.as_str())
            .chain(ev.tasks.iter().map(|t| t.name.as_str()))
            .any(|c| container_of_process(c).is_some_and(|n| n != COMPUTE_CONTAINER));
    launcher || qemu_in_pod || (cut && kubevirt_qemu_killed(ev)) || vcpu_trigger || sidecar
}

/// O estimated from a cgroup limit: KubeVirt's formula with the limit as the request and the
/// vCPU count the trigger reveals (at least 1).
fn estimate_overhead(limit: u64, vcpus: u32, v: Version) -> u64 {
    let mut spec = VmiSpec::default();
    spec.domain.resources.requests.memory = Some(Quantity::new(limit.to_string()));
    spec.domain.cpu = Some(CpuSpec {
        cores: Some(vcpus.max(1)),
        ..Default::default()
    });
    u64::try_from(overhead(&spec, v, &ClusterInputs::default()).total).unwrap_or(0)
}

/// Explain one event with what is known about its VM (from an inventory through
/// [`vm_for_pod`], or remembered by a caller that saw the pod before it was gone).
pub fn explain_one(
    ev: &OomEvent,
    facts: Option<VmFacts>,
    version: DetectedVersion,
    harvester: Option<bool>,
) -> OomExplanation {
    let kubevirt = facts.is_some() || looks_kubevirt(ev);
    let containers = facts.as_ref().map_or(&[][..], |f| &f.pod_containers);
    let container = kill_container(containers, ev).filter(|_| kubevirt);
    let runtime = kill_runtime(containers, ev);
    let limit = ev.limit_bytes();
    let vm_room = kubevirt && vm_room_ran_out(ev, container.as_ref());
    let overhead_bytes = facts.as_ref().and_then(|f| f.overhead_bytes).or_else(|| {
        vm_room
            .then(|| limit.map(|l| estimate_overhead(l, vcpus_of(ev), version.version)))
            .flatten()
    });
    let (guest_bytes, guest_source) = guest_size(facts.as_ref(), vm_room, limit, overhead_bytes);
    // Hugepage-backed guest RAM is charged to hugetlb: none of it is in the memory cgroup.
    let hugepages = facts.as_ref().is_some_and(|f| f.hugepages);
    let charged_guest = if hugepages { Some(0) } else { guest_bytes };
    let guest_resident = match (qemu_guestish_bytes(ev), charged_guest) {
        (Some(q), Some(g)) => Some(q.min(g)),
        _ => None,
    };
    let (overhead_used, overhead_budget) = if vm_room {
        (
            usage_at_kill(ev)
                .zip(guest_resident)
                .map(|(u, g)| u.saturating_sub(g)),
            limit.zip(charged_guest).map(|(l, g)| l.saturating_sub(g)),
        )
    } else {
        (None, None)
    };
    // Without the VM's spec the limit stands in for the configured memory: it exceeds it only by
    // O (a few hundred MiB), and erring upwards in the table is the safe side.
    let configured = facts
        .as_ref()
        .and_then(|f| f.configured_bytes)
        .or_else(|| guest_bytes.and(limit));
    let (reserve_bytes, reserve_reason) = if vm_room {
        let inputs = ReserveInputs {
            facts: facts.as_ref(),
            configured,
            overhead: overhead_bytes,
            overhead_used,
            hugepages,
            harvester,
        };
        reservation(ev, &inputs)
    } else {
        (None, None)
    };
    let tasks = task_verdicts(ev, version.version, charged_guest, kubevirt);
    let mut ex = OomExplanation {
        event: ev.clone(),
        kubevirt,
        vm: facts.as_ref().map(|f| f.vm.clone()),
        container,
        runtime,
        version,
        harvester,
        trigger_kind: trigger_kind(ev.trigger.as_deref()),
        guest_bytes,
        guest_source,
        guest_in_hugepages: hugepages,
        configured_bytes: configured,
        overhead_bytes,
        guest_resident_bytes: guest_resident,
        overhead_used_bytes: overhead_used,
        overhead_budget_bytes: overhead_budget,
        tasks,
        reserve_bytes,
        reserve_reason,
        current_reservation: facts.and_then(|f| f.reserved_annotation),
        verdict: String::new(),
    };
    ex.verdict = super::oom_words::verdict(&ex);
    ex
}

/// The limit that was hit is the VM's room (its pod's or compute container's memory cgroup, or
/// one not named), not the node's, and not a sidecar's own container limit.
fn vm_room_ran_out(ev: &OomEvent, container: Option<&KillContainer>) -> bool {
    let sidecar_limit =
        ev.scope == Some(OomScope::Container) && container.is_some_and(|c| !c.is_compute());
    matches!(ev.scope, Some(OomScope::Pod | OomScope::Container) | None)
        && ev.limit_bytes().is_some()
        && !sidecar_limit
}

/// The VM's vCPU count as far as the trigger shows it (`CPU 3/KVM` → at least 4), else 1.
fn vcpus_of(ev: &OomEvent) -> u32 {
    ev.trigger
        .as_deref()
        .and_then(vcpu_index)
        .map_or(1, |n| n + 1)
}

/// Guest RAM: from the VM's spec, else (when the VM's room ran out) the limit minus the overhead.
fn guest_size(
    facts: Option<&VmFacts>,
    vm_room: bool,
    limit: Option<u64>,
    overhead_bytes: Option<u64>,
) -> (Option<u64>, Option<GuestSource>) {
    match facts.and_then(|f| f.guest_bytes) {
        Some(g) => (Some(g), Some(GuestSource::Spec)),
        None if vm_room => match (limit, overhead_bytes) {
            (Some(l), Some(o)) => (Some(l.saturating_sub(o)), Some(GuestSource::Estimated)),
            _ => (None, None),
        },
        None => (None, None),
    }
}

/// The cgroup's usage at the kill: as reported, else the tasks' RSS plus kernel memory.
fn usage_at_kill(ev: &OomEvent) -> Option<u64> {
    ev.usage_bytes().or_else(|| {
        (!ev.tasks.is_empty()).then(|| {
            let kmem = ev.kmem.map_or(0, |k| k.usage_bytes);
            ev.tasks_rss_bytes().saturating_add(kmem)
        })
    })
}

/// Each task's RSS against KubeVirt's budget for its process (qemu's includes the charged guest
/// RAM); no budgets outside KubeVirt.
fn task_verdicts(
    ev: &OomEvent,
    version: Version,
    charged_guest: Option<u64>,
    kubevirt: bool,
) -> Vec<TaskVerdict> {
    let consts = ProcessConstants::for_version(version);
    ev.tasks
        .iter()
        .map(|t| {
            let base = consts
                .budget_for_comm(&t.name)
                .and_then(|b| u64::try_from(b).ok());
            let budget = match process_role(&t.name) {
                Some(ProcessRole::Qemu) => {
                    base.zip(charged_guest).map(|(b, g)| b.saturating_add(g))
                }
                _ => base,
            };
            TaskVerdict {
                pid: t.pid,
                name: t.name.clone(),
                rss_bytes: t.rss_bytes(),
                budget_bytes: if kubevirt { budget } else { None },
            }
        })
        .collect()
}

/// The reservation for a kill of the VM's room, by the one rule `list` uses
/// ([`recommend`]): the VM's sizing as far as the explanation knows it, and the kill as its
/// one item of evidence. None without KubeVirt's O (nothing to subtract from the need).
fn reservation(ev: &OomEvent, r: &ReserveInputs) -> (Option<u64>, Option<String>) {
    let Some(o) = r.overhead.and_then(|o| i64::try_from(o).ok()) else {
        return (None, None);
    };
    let as_i64 = |b: Option<u64>| b.and_then(|b| i64::try_from(b).ok()).unwrap_or(0);
    let sizing = Sizing {
        // Unknown only without a guest size: the smallest row of the table then.
        configured: as_i64(r.configured),
        table_applies: !r.hugepages,
        overhead_applied: o,
        ratio_room: r.facts.map_or(0, |f| f.ratio_room),
        sidecars: r.facts.map_or(0, |f| f.sidecars),
        strategy: Strategy::auto(r.harvester == Some(true)),
        // The kill was at a memory limit.
        has_limit: true,
    };
    let evidence = oom_kill_evidence(ev, r.overhead_used).into_iter().collect();
    let rec = recommend(&sizing, evidence);
    (u64::try_from(rec.reserve_bytes).ok(), Some(rec.reason))
}

/// What the reservation of one explanation is computed from.
struct ReserveInputs<'a> {
    facts: Option<&'a VmFacts>,
    configured: Option<u64>,
    overhead: Option<u64>,
    overhead_used: Option<u64>,
    hugepages: bool,
    harvester: Option<bool>,
}

/// An OOM kill at the VM's pod or container limit as evidence: the memory outside guest RAM at
/// the kill, a lower bound of what it needed. A limit whose level the report does not name is
/// taken as the container's (nothing beside compute is subtracted: the larger need).
pub fn oom_kill_evidence(ev: &OomEvent, overhead_used: Option<u64>) -> Option<Evidence> {
    let level = match ev.scope {
        Some(OomScope::Pod) => Level::Pod,
        Some(OomScope::Container) | None => Level::Container,
        _ => return None,
    };
    let bytes = i64::try_from(overhead_used?).ok()?;
    let source = match &ev.node {
        Some(n) => format!("kernel log of node {n}"),
        None => "kernel log".to_string(),
    };
    Some(Evidence {
        kind: EvidenceKind::OomKill,
        bytes,
        at: ev.time.clone().map(At::Printed),
        source,
        bound: Bound::Lower,
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers() {
        assert_eq!(trigger_kind(Some("CPU 11/KVM")), TriggerKind::Vcpu);
        assert_eq!(trigger_kind(Some("IO iothread1")), TriggerKind::Qemu);
        assert_eq!(trigger_kind(Some("qemu-system-x86")), TriggerKind::Qemu);
        assert_eq!(
            trigger_kind(Some("virt-launcher")),
            TriggerKind::Launcher(ProcessRole::Launcher)
        );
        assert_eq!(trigger_kind(Some("memhold")), TriggerKind::Other);
        assert_eq!(trigger_kind(None), TriggerKind::Unknown);
        assert_eq!(vcpu_index("CPU 1/KVM"), Some(1));
        assert_eq!(vcpu_index("CPU x/KVM"), None);
    }
}
