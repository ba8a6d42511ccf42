//! The verdict of an explained OOM event, as one paragraph in plain words.

use super::oom_event::OomScope;
use super::oom_explanation::{GuestSource, OomExplanation, TriggerKind};
use super::overhead::{process_role, ProcessRole};
use super::version::VersionSource;
use crate::units::{human, to_quantity_string};

fn size(b: u64) -> String {
    human(i64::try_from(b).unwrap_or(i64::MAX))
}

/// `2412421120` → `2,412,421,120`.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One paragraph: who, which limit, the trigger, the victim, the numbers, the processes over
/// budget, and what to set.
pub fn verdict(ex: &OomExplanation) -> String {
    let ev = &ex.event;
    let mut s: Vec<String> = vec![limit_sentence(ex)];
    if ev.global_from_call_trace {
        s.push("The report's kill lines are missing, but its call trace reached out_of_memory from the page allocator with no memory cgroup on the way: the node itself was out of memory.".to_string());
    }
    s.extend(trigger_sentence(ex));
    s.extend(victim_sentences(ex));
    s.extend(guest_room_sentences(ex));
    if ex.kubevirt && !matches!(ev.scope, Some(OomScope::Global | OomScope::Node)) {
        s.extend(process_sentences(ex));
    }
    if let Some(k) = ev.kmem.filter(|k| k.usage_bytes > 0) {
        s.push(format!(
            "Kernel memory charged to the cgroup was {}.",
            size(k.usage_bytes)
        ));
    }
    s.push(advice(ex));
    if ev.partial {
        s.push("The report is cut short, so figures it does not show are left out.".to_string());
    }
    s.join(" ")
}

/// Who met the OOM killer: the VM, its launcher pod, a pod or a process.
fn who(ex: &OomExplanation) -> String {
    match (&ex.vm, ex.kubevirt, ex.event.pod_uid.as_deref()) {
        (Some(vm), _, _) => format!("VM {}/{}", vm.namespace, vm.name),
        (None, true, Some(uid)) => format!("The VM of virt-launcher pod {uid}"),
        (None, true, None) => "A KubeVirt VM".to_string(),
        (None, false, Some(uid)) => format!("Pod {uid}"),
        (None, false, None) => "A process".to_string(),
    }
}

/// ` at TIME on NODE`, either part left out when unknown.
fn when(ex: &OomExplanation) -> String {
    match (&ex.event.time, &ex.event.node) {
        (Some(t), Some(n)) => format!(" at {} on {n}", t.trim()),
        (Some(t), None) => format!(" at {}", t.trim()),
        (None, Some(n)) => format!(" on {n}"),
        (None, None) => String::new(),
    }
}

/// The first sentence: who was killed, when, and which limit (of which cgroup) was hit.
fn limit_sentence(ex: &OomExplanation) -> String {
    let ev = &ex.event;
    let who = who(ex);
    let when = when(ex);
    let which_limit = if ev.memsw_limit_hit() {
        "memory+swap limit"
    } else {
        "memory limit"
    };
    let limit = ev
        .limit_bytes()
        .map(|l| format!("{} ({} bytes)", size(l), grouped(l)));
    let killed = if ex.in_sidecar() {
        let c = ex.container.as_ref().map_or("?", |c| c.name.as_str());
        format!("{who} lost a process of its {c} container to the OOM killer")
    } else {
        format!("{who} was OOM-killed")
    };
    match (ev.scope, &limit) {
        (Some(OomScope::Global), _) => format!(
            "{killed}{when} because the node ran out of memory; no cgroup limit was involved."
        ),
        (Some(OomScope::Node), Some(l)) => format!(
            "{killed}{when} because all pods on the node together hit the kubepods {which_limit} of {l}."
        ),
        (Some(OomScope::Pod), Some(l)) => {
            format!("{killed}{when}: its pod hit its {which_limit} of {l}.")
        }
        (Some(OomScope::Container), Some(l)) => format!(
            "{killed}{when}: its container hit its {which_limit} of {l}."
        ),
        (Some(OomScope::Other), Some(l)) => format!(
            "{killed}{when}: the memory cgroup {} hit its {which_limit} of {l}.",
            ev.oom_memcg.as_deref().unwrap_or("?")
        ),
        (_, Some(l)) => format!("{killed}{when}: a memory cgroup hit its {which_limit} of {l}."),
        (_, None) if ex.in_sidecar() => format!("{killed}{when}."),
        (_, None) => format!("{who} met the OOM killer{when}."),
    }
}

/// Which process's allocation tipped the cgroup over, and what that process is.
fn trigger_sentence(ex: &OomExplanation) -> Option<String> {
    let ev = &ex.event;
    let t = ev.trigger.as_deref()?;
    Some(match ex.trigger_kind {
        TriggerKind::Vcpu if ex.kubevirt => format!(
            "The allocation that tipped it over came from {t}, a vCPU touching guest RAM for the first time: the guest was growing into the memory it was promised, which is normal, so the room left for everything else was too small."
        ),
        TriggerKind::Qemu if ex.kubevirt => format!(
            "The allocation came from {t}, a QEMU thread that is not a named vCPU: QEMU's own memory grew (or guest RAM, where vCPU threads are not named)."
        ),
        TriggerKind::Launcher(_) if ex.kubevirt => format!(
            "The allocation came from {t}, a KubeVirt launcher process growing its own memory."
        ),
        TriggerKind::Other if ex.kubevirt && ev.scope != Some(OomScope::Global) => format!(
            "The allocation came from {t}, a process KubeVirt does not budget for."
        ),
        _ => format!("The allocation came from {t}."),
    })
}

/// Guest RAM against the limit: the room left for everything else and, when the kill's figures
/// are known, how that room was used.
fn guest_room_sentences(ex: &OomExplanation) -> Vec<String> {
    let mut s = Vec::new();
    let (Some(g), Some(budget), Some(l)) = (
        ex.guest_bytes,
        ex.overhead_budget_bytes,
        ex.event.limit_bytes(),
    ) else {
        return s;
    };
    let source = match ex.guest_source {
        Some(GuestSource::Spec) => "from the VM's spec".to_string(),
        _ => format!(
            "estimated as the limit minus KubeVirt's {} overhead, assuming no reservation; run against the cluster or pass --from for the exact size",
            size(ex.overhead_bytes.unwrap_or(0))
        ),
    };
    if ex.guest_in_hugepages {
        s.push(format!(
            "Guest RAM is {} ({source}) in hugepages, charged to hugetlb and not to this cgroup, so the whole {} limit is for everything else.",
            size(g),
            size(l)
        ));
    } else {
        s.push(format!(
            "Guest RAM is {} ({source}), which leaves {} of the {} limit for everything else.",
            size(g),
            size(budget),
            size(l)
        ));
    }
    if let (Some(used), Some(res)) = (ex.overhead_used_bytes, ex.guest_resident_bytes) {
        s.push(room_use_sentence(ex, g, budget, used, res));
    }
    s
}

/// How the room was used at the kill: guest RAM `g` of which `res` resident, the `budget` for
/// everything else and the `used` by everything else.
fn room_use_sentence(ex: &OomExplanation, g: u64, budget: u64, used: u64, res: u64) -> String {
    if ex.guest_in_hugepages {
        format!("At the kill everything else used {}.", size(used))
    } else if res >= g {
        format!(
            "The guest had touched all of its RAM, so everything else ({}) filled that room and could not grow.",
            size(used)
        )
    } else if used > budget {
        format!(
            "At the kill {} of guest RAM was resident and everything else used {}, {} more than its room.",
            size(res),
            size(used),
            size(used - budget)
        )
    } else {
        format!(
            "At the kill {} of guest RAM was resident and everything else used {}.",
            size(res),
            size(used)
        )
    }
}

/// Who was killed: the victim, the rest of a `memory.oom.group` kill, or only the process old
/// kernels chose before they may kill a child of it instead; and whether that ended the VM.
fn victim_sentences(ex: &OomExplanation) -> Vec<String> {
    let ev = &ex.event;
    let mut s = Vec::new();
    let Some(v) = &ev.victim else {
        if let Some(c) = &ev.candidate {
            s.push(format!(
                "The kernel chose {} (pid {}) but the report ends before saying which process it killed: this kernel may kill a child of the chosen process instead, so the victim is unknown.",
                c.comm, c.pid
            ));
        }
        return s;
    };
    let rss = v
        .anon_rss_bytes
        .map(|a| format!(", {} anonymous memory", size(a)))
        .unwrap_or_default();
    let qemu_killed = ev
        .victims()
        .any(|v| process_role(&v.comm) == Some(ProcessRole::Qemu));
    let vm_died = qemu_killed && ex.kubevirt && ex.kills_vm();
    if ev.group_victims.is_empty() {
        s.push(format!(
            "The kernel killed {} (pid {}{rss}){}.",
            v.comm,
            v.pid,
            if vm_died {
                ", which is the VM itself: from the user's side the VM just died"
            } else {
                ""
            }
        ));
    } else {
        let others: Vec<String> = ev
            .group_victims
            .iter()
            .map(|o| format!("{} (pid {})", o.comm, o.pid))
            .collect();
        let more = match ev.group_victims_omitted {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        s.push(format!(
            "The kernel killed {} (pid {}{rss}) and, because memory.oom.group is set on {}, every other process there with it: {}{more}{}.",
            v.comm,
            v.pid,
            ev.group_kill.as_deref().unwrap_or("its cgroup"),
            others.join(", "),
            if vm_died { "; qemu among them, so the VM died" } else { "" }
        ));
    }
    if let Some(c) = ex.container.as_ref().filter(|_| ex.in_sidecar()) {
        s.push(format!(
            "That was in the {} container, a sidecar beside compute: the VM kept running (only a kill in the compute container, where qemu runs, ends it), so this kill is not counted as the VM's.",
            c.name
        ));
        if ev.scope == Some(OomScope::Container) {
            s.push("The sidecar hit its own container limit, which KubeVirt sets from spec.configuration.supportContainerResources in the KubeVirt CR; a VM reservation does not change it.".to_string());
        }
    }
    s
}

fn process_sentences(ex: &OomExplanation) -> Vec<String> {
    let mut out = Vec::new();
    let version = match ex.version.source {
        VersionSource::Assumed => format!("{}, assumed", ex.version.version),
        _ => ex.version.version.to_string(),
    };
    let mut budgeted = Vec::new();
    let mut unbudgeted = Vec::new();
    for t in &ex.tasks {
        let over = |used: u64, budget: u64| if used > budget { " (over)" } else { "" };
        match (process_role(&t.name), t.budget_bytes) {
            (Some(ProcessRole::Qemu), Some(b)) => {
                let guest = ex.guest_bytes.unwrap_or(0);
                let beyond = t.rss_bytes.saturating_sub(guest);
                let budget = b.saturating_sub(guest);
                budgeted.push(format!(
                    "{} {} beyond guest RAM of {}{}",
                    t.name,
                    size(beyond),
                    size(budget),
                    over(beyond, budget)
                ))
            }
            (Some(ProcessRole::Qemu), None) => {}
            (Some(_), Some(b)) => budgeted.push(format!(
                "{} {} of {}{}",
                t.name,
                size(t.rss_bytes),
                size(b),
                over(t.rss_bytes, b)
            )),
            (None, _) if t.name != "pause" && t.rss_bytes >= 8 << 20 => {
                unbudgeted.push(format!("{} {}", t.name, size(t.rss_bytes)))
            }
            _ => {}
        }
    }
    if !budgeted.is_empty() {
        out.push(format!(
            "Launcher processes against KubeVirt {version}'s budgets (RSS): {}.",
            budgeted.join(", ")
        ));
    }
    let libvirtd = ex.tasks.iter().any(|t| t.name == "libvirtd");
    if libvirtd && ex.version.source == VersionSource::Assumed {
        out.push(
            "libvirtd (not virtqemud) in the task table means KubeVirt before v0.59: pass --kubevirt-version for that release's budgets."
                .to_string(),
        );
    }
    if !unbudgeted.is_empty() {
        out.push(format!(
            "Not budgeted by KubeVirt at all: {}.",
            unbudgeted.join(", ")
        ));
    }
    out
}

fn advice(ex: &OomExplanation) -> String {
    let ev = &ex.event;
    match ev.scope {
        Some(OomScope::Global) => {
            return "A per-VM reservation does not prevent this: the node itself was out of memory; lower memory overcommit or move VMs off the node.".to_string();
        }
        Some(OomScope::Node) => {
            return "A per-VM reservation does not prevent this: pods on the node together exceeded what the kubelet allows; reserve more for the system or move VMs off the node.".to_string();
        }
        _ => {}
    }
    if !ex.kubevirt {
        return "This is not a KubeVirt VM, so no VM reservation applies.".to_string();
    }
    if ex.in_sidecar() && ev.scope == Some(OomScope::Container) {
        return "No VM reservation applies: if it keeps happening, raise that sidecar's memory limit in the KubeVirt CR.".to_string();
    }
    let Some(r) = ex.reserve_bytes else {
        return "The report lacks the cgroup limit, so no reservation can be computed from it."
            .to_string();
    };
    let q = to_quantity_string(i64::try_from(r).unwrap_or(i64::MAX));
    let why = ex.reserve_reason.as_deref().unwrap_or("");
    let current = ex
        .current_reservation
        .as_deref()
        .map(|c| format!(" (now {c})"))
        .unwrap_or_default();
    let target = ex.vm.as_ref().map(|vm| {
        format!(
            "kubectl vmmem fix {} -n {} --reserve {q}",
            vm.name, vm.namespace
        )
    });
    let how = match ex.harvester {
        Some(true) => format!("set the VM's harvesterhci.io/reservedMemory annotation to {q}{current}"),
        Some(false) => format!("set spec.domain.memory.guest to limits.memory minus {q}"),
        None => format!(
            "on Harvester set the VM's harvesterhci.io/reservedMemory annotation to {q}, on plain KubeVirt set spec.domain.memory.guest to limits.memory minus {q}"
        ),
    };
    let fix = target
        .map(|t| format!(" (`{t}` does it)"))
        .unwrap_or_default();
    format!("Reserve {q} for non-guest memory ({why}): {how}{fix}, then restart the VM.")
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn thousands() {
        assert_eq!(grouped(2_412_421_120), "2,412,421,120");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(0), "0");
    }
}
