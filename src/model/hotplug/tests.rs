use super::*;
use crate::model::objects::{Condition, MemorySpec, VmiMemoryStatus};

const GI: i64 = 1 << 30;

fn q(b: i64) -> Option<Quantity> {
    Some(Quantity::new(b.to_string()))
}

/// A VMI with guest/request/limit and a memory status (boot, current) and maxGuest.
fn vmi(
    guest: i64,
    req: i64,
    lim: i64,
    boot: i64,
    current: i64,
    max: Option<i64>,
) -> VirtualMachineInstance {
    let mut v = VirtualMachineInstance::default();
    v.spec.domain.memory = Some(MemorySpec {
        guest: q(guest),
        max_guest: max.and_then(q),
        ..Default::default()
    });
    v.spec.domain.resources.requests.memory = q(req);
    v.spec.domain.resources.limits.memory = q(lim);
    v.status.memory = Some(VmiMemoryStatus {
        guest_at_boot: q(boot),
        guest_current: q(current),
        guest_requested: q(guest),
        ..Default::default()
    });
    v
}

fn vm(guest: i64, req: Option<i64>, lim: Option<i64>) -> VirtualMachine {
    let mut v = VirtualMachine::default();
    let t = &mut v.spec.template.spec.domain;
    t.memory = Some(MemorySpec {
        guest: q(guest),
        max_guest: q(8 * GI),
        ..Default::default()
    });
    t.resources.requests.memory = req.and_then(q);
    t.resources.limits.memory = lim.and_then(q);
    v
}

#[test]
fn running_guest_is_what_qemu_has() {
    // Hotplug 2Gi → 4Gi asked, qemu still at 2Gi (the migration to the new pod runs).
    let g = GuestRunning::of(&vmi(4 * GI, 4 * GI, 5 * GI, 2 * GI, 2 * GI, Some(8 * GI)));
    assert_eq!(g.running(), Some(2 * GI));
    assert!(g.in_progress() && g.capable());
    // Done: qemu has the new guest.
    let g = GuestRunning::of(&vmi(4 * GI, 4 * GI, 5 * GI, 2 * GI, 4 * GI, Some(8 * GI)));
    assert_eq!(g.running(), Some(4 * GI));
    assert!(!g.in_progress());
    // No memory status: the VMI's guest.
    let mut plain = vmi(GI, GI, 2 * GI, GI, GI, None);
    plain.status.memory = None;
    let g = GuestRunning::of(&plain);
    assert_eq!(g.running(), Some(GI));
    assert!(!g.in_progress() && !g.capable() && !g.worth_stating());
}

#[test]
fn smaps_looks_for_the_boot_ram_and_the_virtio_mem_device() {
    let g = GuestRunning::of(&vmi(4 * GI, 4 * GI, 5 * GI, 2 * GI, 4 * GI, Some(8 * GI)));
    assert_eq!(g.mapping_sizes(), vec![2 << 30, 6 << 30]);
    // Without hotplug: the one guest mapping.
    let g = GuestRunning::of(&vmi(GI, GI, 2 * GI, GI, GI, None));
    assert_eq!(g.mapping_sizes(), vec![1 << 30]);
    // Same size twice is asked for once (both mappings match it).
    let g = GuestRunning::of(&vmi(2 * GI, 2 * GI, 3 * GI, 2 * GI, 2 * GI, Some(4 * GI)));
    assert_eq!(g.mapping_sizes(), vec![2 << 30]);
}

#[test]
fn hotplugged_values_are_not_a_pending_restart() {
    // The user raised the template's guest to 4Gi; KubeVirt raised the VMI's guest, request
    // and limit by 2Gi; the template keeps its request and limit.
    let v = vm(4 * GI, Some(2 * GI), Some(3 * GI));
    let i = vmi(4 * GI, 4 * GI, 5 * GI, 2 * GI, 4 * GI, Some(8 * GI));
    assert_eq!(restart_pending(&v, &i), None);
    // While the hotplug runs (qemu not there yet): still not a restart.
    let i = vmi(4 * GI, 4 * GI, 5 * GI, 2 * GI, 2 * GI, Some(8 * GI));
    assert_eq!(restart_pending(&v, &i), None);
    // The template's guest within maxGuest, not yet applied to the VMI: KubeVirt hotplugs it.
    let v6 = vm(6 * GI, Some(2 * GI), Some(3 * GI));
    assert_eq!(restart_pending(&v6, &i), None);
    // KubeVirt may also raise the request to the new guest and leave the limit (vm.go
    // handleMemoryHotplugRequest when request + delta < guest): still not a restart.
    let i = vmi(4 * GI, 4 * GI, 3 * GI, 2 * GI, 4 * GI, Some(8 * GI));
    assert_eq!(restart_pending(&v, &i), None);
    // What it cannot apply live, KubeVirt says with RestartRequired.
    let mut v = vm(4 * GI, Some(2 * GI), Some(4 * GI));
    v.status.conditions.push(Condition {
        kind: "RestartRequired".into(),
        status: "True".into(),
    });
    assert!(restart_pending(&v, &i).unwrap().contains("RestartRequired"));
    // Without hotplug, a limit the user changed waits for the restart.
    let v = vm(2 * GI, Some(2 * GI), Some(4 * GI));
    let plain = vmi(2 * GI, 2 * GI, 3 * GI, 2 * GI, 2 * GI, None);
    assert!(restart_pending(&v, &plain).unwrap().contains("limit"));
}

#[test]
fn fields_kubevirt_filled_in_are_not_a_pending_restart() {
    // Pre-v1.7 webhook: the template has only a guest, the VMI got a request.
    let mut v = VirtualMachine::default();
    v.spec.template.spec.domain.memory = Some(MemorySpec {
        guest: q(2 * GI),
        ..Default::default()
    });
    let mut i = vmi(2 * GI, 2 * GI * 100 / 150, 0, 2 * GI, 2 * GI, None);
    i.spec.domain.resources.limits.memory = None;
    assert_eq!(restart_pending(&v, &i), None);
    // Instance type: the template has no memory values at all.
    let mut it_vm = VirtualMachine::default();
    it_vm.spec.instancetype = Some(Default::default());
    assert_eq!(restart_pending(&it_vm, &i), None);
    // A guest change on a VM without hotplug waits for the restart.
    v.spec.template.spec.domain.memory.as_mut().unwrap().guest = q(3 * GI);
    assert!(restart_pending(&v, &i).unwrap().contains("guest"));
    // KubeVirt's condition says so.
    it_vm.status.conditions.push(Condition {
        kind: "RestartRequired".into(),
        status: "True".into(),
    });
    assert!(restart_pending(&it_vm, &i)
        .unwrap()
        .contains("RestartRequired"));
}
