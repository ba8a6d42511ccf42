//! Memory hotplug (`spec.domain.memory.maxGuest`, VM rollout strategy LiveUpdate): what the
//! running qemu has, whether a hotplug is under way, the guest RAM mappings qemu holds, and
//! whether a VM's template truly waits for a restart.
//!
//! KubeVirt (pkg/virt-controller/watch/vm.go, handleMemoryHotplugRequest, v1.1–v1.8) raises the
//! VMI's `memory.guest` to the template's, its `requests.memory` by as much (to at least the new
//! guest; when it had to raise it further, the limit is not raised at all) and `limits.memory` by
//! as much, and live-migrates the VMI to a pod sized from the new values; the VM template keeps
//! its requests and limits.
//! qemu holds the boot RAM (`status.memory.guestAtBoot`) and a virtio-mem device of
//! `maxGuest − guestAtBoot` of which only the plugged part is resident
//! (pkg/virt-launcher/virtwrap/converter, memory hotplug).

use super::objects::{VirtualMachine, VirtualMachineInstance};
use super::spec::memory_numbers;
use crate::units::Quantity;

fn bytes(q: &Option<Quantity>) -> Option<i64> {
    q.as_ref().and_then(|q| q.bytes().ok())
}

/// What a VMI's qemu has beside what the VMI asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestRunning {
    /// The VMI's guest (what it asks for now).
    pub configured: Option<i64>,
    /// `status.memory.guestCurrent`: what the running qemu has.
    pub current: Option<i64>,
    /// `status.memory.guestAtBoot`: the boot RAM mapping's size.
    pub at_boot: Option<i64>,
    /// `status.memory.guestRequested`.
    pub requested: Option<i64>,
    /// `spec.domain.memory.maxGuest` (set on hotplug-capable VMIs).
    pub max_guest: Option<i64>,
}

impl GuestRunning {
    pub fn of(vmi: &VirtualMachineInstance) -> GuestRunning {
        let status = vmi.status.memory.as_ref();
        GuestRunning {
            configured: memory_numbers(&vmi.spec).guest,
            current: status.and_then(|m| bytes(&m.guest_current)),
            at_boot: status.and_then(|m| bytes(&m.guest_at_boot)),
            requested: status.and_then(|m| bytes(&m.guest_requested)),
            max_guest: vmi
                .spec
                .domain
                .memory
                .as_ref()
                .and_then(|m| bytes(&m.max_guest)),
        }
    }

    /// The guest that counts against the running pod: what qemu has, else the VMI's guest.
    pub fn running(&self) -> Option<i64> {
        self.current.or(self.configured)
    }

    /// Whether qemu was started with a virtio-mem device (a hotplug-capable VMI).
    pub fn capable(&self) -> bool {
        self.max_guest
            .is_some_and(|m| m > self.at_boot.or(self.configured).unwrap_or(m))
    }

    /// A hotplug asked for but not yet in qemu: the VMI (or `guestRequested`) differs from
    /// `guestCurrent`.
    pub fn in_progress(&self) -> bool {
        let Some(current) = self.current else {
            return false;
        };
        [self.configured, self.requested]
            .into_iter()
            .flatten()
            .any(|g| g != current)
    }

    /// The sizes of qemu's guest RAM mappings: the boot RAM and, on a hotplug-capable VMI, the
    /// virtio-mem device (maxGuest − guestAtBoot). Smaps is searched for both.
    pub fn mapping_sizes(&self) -> Vec<u64> {
        let boot = self.at_boot.or(self.configured).filter(|&b| b > 0);
        let mut sizes: Vec<u64> = boot.into_iter().map(|b| b as u64).collect();
        if let (Some(b), Some(m)) = (boot, self.max_guest) {
            if m > b && !sizes.contains(&((m - b) as u64)) {
                sizes.push((m - b) as u64);
            }
        }
        sizes
    }

    /// Whether this is worth stating in JSON: a hotplug-capable VMI, or qemu not having what
    /// the VMI asks for (other VMs' JSON stays as it was).
    pub fn worth_stating(&self) -> bool {
        self.capable() || self.in_progress()
    }
}

/// Why a VM's template waits for a restart, if it does: KubeVirt's `RestartRequired`
/// condition, or a memory value the user set in the template that the running VMI does not
/// have. Never from what KubeVirt filled in: a request the pre-v1.7 webhook wrote, an instance
/// type's values (the template then has none), or what a hotplug added to the VMI.
pub fn restart_pending(vm: &VirtualMachine, vmi: &VirtualMachineInstance) -> Option<String> {
    if vm.status.restart_required() {
        return Some("KubeVirt's RestartRequired condition is set on the VM: its change takes effect at the next restart".into());
    }
    let t = &vm.spec.template.spec;
    let want = memory_numbers(t);
    let have = memory_numbers(&vmi.spec);
    let g = GuestRunning::of(vmi);
    if let (Some(w), Some(h)) = (want.guest, have.guest) {
        let hotpluggable = g.capable() && g.max_guest.is_some_and(|m| w <= m);
        if w != h && !hotpluggable {
            return Some(format!(
                "the VM's guest memory ({w} bytes) differs from the running VMI's ({h} bytes): it takes effect at the next restart"
            ));
        }
    }
    // On a hotplug-capable VMI KubeVirt rewrites the request and limit itself (raised by the
    // hotplug, the request to at least the new guest, the limit then not at all: vm.go
    // handleMemoryHotplugRequest, v1.5–v1.8), and sets RestartRequired for what it cannot apply
    // live: the condition above decides.
    if g.capable() {
        return None;
    }
    let res = &t.domain.resources;
    let user_set = [
        (
            "request",
            res.requests.memory.is_some(),
            want.request,
            have.request,
        ),
        ("limit", res.limits.memory.is_some(), want.limit, have.limit),
    ];
    for (what, set, w, h) in user_set {
        let (true, Some(w)) = (set, w) else { continue };
        match h {
            Some(h) if w == h => {}
            Some(h) => {
                return Some(format!(
                    "the VM's memory {what} ({w} bytes) differs from the running VMI's ({h} bytes): it takes effect at the next restart"
                ));
            }
            None => {
                return Some(format!(
                    "the VM sets a memory {what} ({w} bytes) the running VMI does not have: it takes effect at the next restart"
                ))
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
