//! Verdicts for the seed's reports, with and without the cluster's objects.

use crate::oom_fixtures::fixture;
use vmmem::model::inventory::Inventory;
use vmmem::model::objects::{
    HarvesterSetting, KubeVirt, Pod, VirtualMachine, VirtualMachineInstance,
};
use vmmem::model::oom_verdict::{explain, GuestSource, TriggerKind};
use vmmem::model::version::{Version, VersionSource};
use vmmem::parse::oom::parse_kernel_log;

const MI: u64 = 1 << 20;

/// The seed's test VM (Harvester, KubeVirt v1.1.1): limit 2Gi, guest 1948Mi, request 1365Mi,
/// 2 vCPUs, 100Mi reserved; its virt-launcher pod is the one of Example 3.
fn seed_inventory() -> Inventory {
    let vm: VirtualMachine = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "vm4", "uid": "vm-uid",
                     "annotations": {"harvesterhci.io/reservedMemory": "100Mi"}},
        "spec": {"template": {"spec": {"domain": {
            "memory": {"guest": "1948Mi"},
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"},
                          "requests": {"cpu": "125m", "memory": "1365Mi"}}}}}}
    }))
    .unwrap();
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "vm4", "uid": "vmi-uid"},
        "spec": {"domain": {
            "memory": {"guest": "1948Mi"},
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"},
                          "requests": {"cpu": "125m", "memory": "1365Mi"}}}},
        "status": {"nodeName": "harv41", "activePods": {"bc31d215-d48e-4416-8e2b-68716b8f5bcb": "harv41"}}
    }))
    .unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "virt-launcher-vm4-s98n4",
                     "uid": "bc31d215-d48e-4416-8e2b-68716b8f5bcb",
                     "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "vmi-uid"},
                     "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                          "name": "vm4", "uid": "vmi-uid", "controller": true}]},
        "spec": {"nodeName": "harv41", "containers": [{"name": "compute",
                  "image": "registry.suse.com/suse/sles/15.5/virt-launcher:1.1.1-150500.8.6.1"},
                 {"name": "guest-console-log", "resources": {"limits": {"memory": "60M"}}}]}
    }))
    .unwrap();
    let kv: KubeVirt = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "harvester-system", "name": "kubevirt"},
        "status": {"observedKubeVirtVersion": "v1.1.1"}
    }))
    .unwrap();
    Inventory {
        vms: vec![vm.into()],
        vmis: vec![vmi.into()],
        pods: vec![pod.into()],
        kubevirts: vec![kv],
        harvester_settings: Some(vec![HarvesterSetting::default()]),
        ..Default::default()
    }
}

#[test]
fn example3_with_the_seed_vm() {
    let events = parse_kernel_log(&fixture("seed-example3-dmesg.log"));
    let inv = seed_inventory();
    let ex = explain(&events, Some(&inv), None).remove(0);
    assert!(ex.kubevirt);
    let vm = ex.vm.as_ref().unwrap();
    assert_eq!(
        (vm.namespace.as_str(), vm.name.as_str()),
        ("default", "vm4")
    );
    assert_eq!(ex.version.version, Version::new(1, 1, 1));
    assert_eq!(ex.version.source, VersionSource::KubevirtCr);
    assert_eq!(ex.trigger_kind, TriggerKind::Vcpu);
    assert_eq!(ex.guest_bytes, Some(1948 * MI));
    assert_eq!(ex.guest_source, Some(GuestSource::Spec));
    // KubeVirt v1.1.1 (renderresources.go): O = 264,939,521 for this VMI.
    assert_eq!(ex.overhead_bytes, Some(264_939_521));
    // Room for non-guest memory: limit − guest.
    assert_eq!(ex.overhead_budget_bytes, Some(2_412_421_120 - 1948 * MI));
    // Guest resident: qemu's anon-rss from the kill line (1,867,320 kB).
    assert_eq!(ex.guest_resident_bytes, Some(1_867_320 * 1024));
    assert_eq!(
        ex.overhead_used_bytes,
        Some(2_412_421_120 - 1_867_320 * 1024)
    );
    // Seed table for 2Gi: 384Mi; 1.25 × used − O rounds up to the same 384Mi.
    assert_eq!(ex.reserve_bytes, Some(384 * MI));
    let budgets: Vec<(&str, Option<u64>)> = ex
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.budget_bytes))
        .collect();
    assert_eq!(
        budgets,
        [
            ("virt-launcher-m", Some(25 * MI)),
            ("virt-launcher", Some(100 * MI)),
            ("virtqemud", Some(35 * MI)),
            ("virtlogd", Some(20 * MI)),
            ("qemu-system-x86", Some(30 * MI + 1948 * MI)),
            ("sh", None),
            ("memhold", None),
        ]
    );
    let v = &ex.verdict;
    for needle in [
        "VM default/vm4",
        "its container hit its memory+swap limit of 2.2GiB (2,412,421,120 bytes)",
        "CPU 1/KVM, a vCPU touching guest RAM",
        "The kernel killed qemu-system-x86 (pid 24790",
        "Guest RAM is 1.9GiB (from the VM's spec)",
        "more than its room",
        "Not budgeted by KubeVirt at all: memhold 402.7MiB",
        "harvesterhci.io/reservedMemory annotation to 384Mi (now 100Mi)",
        "kubectl vmmem fix vm4 -n default --reserve 384Mi",
    ] {
        assert!(v.contains(needle), "verdict lacks {needle:?}:\n{v}");
    }
    assert!(!v.contains("estimated"), "{v}");
}

#[test]
fn example3_alone_estimates_and_says_so() {
    let events = parse_kernel_log(&fixture("seed-example3-dmesg.log"));
    let ex = explain(&events, None, Some(Version::new(1, 1, 1))).remove(0);
    assert_eq!(ex.vm, None);
    assert!(ex.kubevirt, "launcher processes in the table");
    assert_eq!(ex.version.source, VersionSource::Flag);
    assert_eq!(ex.guest_source, Some(GuestSource::Estimated));
    let o = ex.overhead_bytes.unwrap();
    assert_eq!(ex.guest_bytes, Some(2_412_421_120 - o));
    // With the limit as request and 2 vCPUs (CPU 1/KVM), v1.1.1's formula: the estimate is
    // close to the real O (264,939,521).
    assert!(o.abs_diff(264_939_521) < 8 * MI, "O estimate {o}");
    assert_eq!(ex.reserve_bytes, Some(384 * MI));
    assert!(ex
        .verdict
        .contains("estimated as the limit minus KubeVirt's"));
    assert!(ex
        .verdict
        .contains("The VM of virt-launcher pod bc31d215-d48e-4416-8e2b-68716b8f5bcb"));
    assert!(ex.verdict.contains("on Harvester set"));
    assert!(ex
        .verdict
        .contains("on plain KubeVirt set spec.domain.memory.guest"));
}

#[test]
fn example1_launcher_trigger_and_processes_over_budget() {
    let events = parse_kernel_log(&fixture("seed-example1-journal.log"));
    // Harvester v1.2.1 runs KubeVirt v0.54 (the seed).
    let ex = explain(&events, None, Some(Version::new(0, 54, 0))).remove(0);
    assert_eq!(
        ex.trigger_kind,
        TriggerKind::Launcher(vmmem::model::overhead::ProcessRole::Launcher)
    );
    // v0.54 budgets: monitor 25Mi, virt-launcher 75Mi, libvirtd 33Mi, virtlogd 17Mi.
    let v = &ex.verdict;
    assert!(
        v.contains("a KubeVirt launcher process growing its own memory"),
        "{v}"
    );
    for needle in [
        "Launcher processes against KubeVirt v0.54.0's budgets (RSS): ",
        "virt-launcher-m 27.0MiB of 25MiB (over), ",
        "virt-launcher 98.1MiB of 75MiB (over), ",
        "libvirtd 32.2MiB of 33MiB, ",
        "virtlogd 15.4MiB of 17MiB, ",
        "qemu-system-x86 32.3MiB beyond guest RAM of 30MiB (over).",
    ] {
        assert!(v.contains(needle), "verdict lacks {needle:?}:\n{v}");
    }
    assert!(
        v.contains("Reserve 1Gi"),
        "16Gi VM → seed table 1024Mi: {v}"
    );
    assert!(v.contains("cut short"), "{v}");
}

#[test]
fn example2_vcpu_and_over_the_room() {
    let events = parse_kernel_log(&fixture("seed-example2-dmesg-T.log"));
    let ex = explain(&events, None, Some(Version::new(0, 54, 0))).remove(0);
    assert_eq!(ex.trigger_kind, TriggerKind::Vcpu);
    // The guest had not touched everything (anon-rss < estimated guest): non-guest overflowed.
    let used = ex.overhead_used_bytes.unwrap();
    let room = ex.overhead_budget_bytes.unwrap();
    assert!(used > room, "used {used} room {room}");
    assert_eq!(ex.reserve_bytes, Some(1024 * MI));
}

#[test]
fn global_and_node_ooms_get_no_vm_reservation() {
    for name in [
        "variant-global-oom.log",
        "variant-example1-node-kubepods.log",
    ] {
        let events = parse_kernel_log(&fixture(name));
        let ex = explain(&events, None, None).remove(0);
        assert!(ex.kubevirt, "{name}: the victim is the VM's qemu");
        assert_eq!(ex.reserve_bytes, None, "{name}");
        assert!(
            ex.verdict
                .contains("A per-VM reservation does not prevent this"),
            "{name}: {}",
            ex.verdict
        );
        assert!(
            !ex.verdict.contains("Not budgeted"),
            "{name}: {}",
            ex.verdict
        );
    }
}

#[test]
fn a_non_kubevirt_cgroup() {
    let events = parse_kernel_log(&fixture("real-6.18-v1-split-rss.log"));
    let ex = explain(&events, None, None).remove(0);
    assert!(!ex.kubevirt);
    assert_eq!(ex.reserve_bytes, None);
    assert!(
        ex.verdict
            .contains("the memory cgroup /test/oomexp hit its memory limit of 32MiB"),
        "{}",
        ex.verdict
    );
    assert!(ex.verdict.contains("not a KubeVirt VM"), "{}", ex.verdict);
}

#[test]
fn hugepage_guest_is_not_in_the_memory_cgroup() {
    let events = parse_kernel_log(&fixture("seed-example3-dmesg.log"));
    let mut inv = seed_inventory();
    std::sync::Arc::make_mut(&mut inv.vmis[0])
        .spec
        .domain
        .memory
        .as_mut()
        .unwrap()
        .hugepages = Some(vmmem::model::objects::Hugepages {
        page_size: "2Mi".into(),
    });
    let ex = explain(&events, Some(&inv), None).remove(0);
    assert!(ex.guest_in_hugepages);
    assert_eq!(ex.guest_resident_bytes, Some(0));
    assert_eq!(ex.overhead_budget_bytes, Some(2_412_421_120));
    assert_eq!(ex.overhead_used_bytes, Some(2_412_421_120));
    assert!(
        ex.verdict.contains("in hugepages, charged to hugetlb"),
        "{}",
        ex.verdict
    );
    let qemu = ex
        .tasks
        .iter()
        .find(|t| t.name == "qemu-system-x86")
        .unwrap();
    assert_eq!(qemu.budget_bytes, Some(30 * MI));
}

/// `oom` and `list` reserve the same for the same kill: one rule over the same sizing (O as
/// applied with an overhead ratio, the ratio's room, the sidecars at a pod-level kill) and the
/// kill as the one item of evidence.
#[test]
fn oom_and_list_give_the_same_number_for_the_same_kill() {
    use vmmem::model::oom_event::OomScope;

    let with_ratio = |inv: &mut Inventory| {
        inv.kubevirts[0]
            .spec
            .configuration
            .additional_guest_memory_overhead_ratio = Some("2".into());
    };
    // Guest RAM in hugepages is outside the memory cgroup: no size table, the kill decides.
    let hugepages = |inv: &mut Inventory| {
        let vmi = std::sync::Arc::make_mut(&mut inv.vmis[0]);
        vmi.spec.domain.memory.as_mut().unwrap().hugepages =
            Some(vmmem::model::objects::Hugepages {
                page_size: "2Mi".into(),
            });
    };
    type Change = fn(&mut Inventory);
    let cases: [(&str, Change, Option<OomScope>); 5] = [
        ("plain", |_| {}, None),
        ("ratio 2", with_ratio, None),
        ("ratio 2, pod-level kill", with_ratio, Some(OomScope::Pod)),
        ("hugepages", hugepages, None),
        ("hugepages, pod-level kill", hugepages, Some(OomScope::Pod)),
    ];
    let (mut reserves, mut reasons) = (Vec::new(), Vec::new());
    for (name, change, scope) in cases {
        let mut events = parse_kernel_log(&fixture("seed-example3-dmesg.log"));
        if let Some(s) = scope {
            events[0].scope = Some(s);
        }
        let mut inv = seed_inventory();
        change(&mut inv);
        let explained = explain(&events, Some(&inv), None);
        let oom = explained[0].reserve_bytes.unwrap();
        let (report, history) = report_with(&inv, explained);
        let row = &report.vms[0];
        let rec = &row.recommendation;
        assert_eq!(rec.evidence.len(), 1, "{name}: only the kill");
        assert_eq!(i64::try_from(oom).unwrap(), rec.reserve_bytes, "{name}");
        assert_eq!(
            history[0].reserve_reason.as_deref(),
            Some(rec.reason.as_str()),
            "{name}: the same reason too"
        );
        reserves.push(oom);
        reasons.push(rec.reason.clone());
    }
    // No ratio: the size table's 384Mi (the kill's 477.1MiB × 1.25 − 252.7MiB needs 344Mi).
    assert_eq!(reserves[0], 384 * MI);
    // Ratio 2 doubles O (529.9MiB as applied): the table's 384Mi less the ratio's 252.7MiB of
    // room is 131.3Mi, and the kill needs less than that → 192Mi. The older rule said 384Mi.
    assert_eq!(reserves[1], 192 * MI);
    // The guest-console-log sidecar's 60M shares a pod-level limit: the kill needs even less,
    // the table still decides.
    assert_eq!(reserves[2], 192 * MI);
    // With hugepages the whole 2.2GiB usage was outside guest RAM: at a pod-level kill the
    // sidecar's 60M (v1.1.1's guest-console-log) is not the VM's own need.
    let o = 264_939_521u64;
    let need = |beside: u64| (2_412_421_120u64 * 5).div_ceil(4) - o - beside;
    assert_eq!(reserves[3], need(0).div_ceil(64 * MI) * 64 * MI);
    assert_eq!(reserves[4], need(60_000_000).div_ceil(64 * MI) * 64 * MI);
    assert!(!reasons[3].contains("beside compute"), "{}", reasons[3]);
    assert!(
        reasons[4].contains("and the 57.2MiB of the containers beside compute"),
        "{}",
        reasons[4]
    );
}

/// KubeVirt deleted the failed pod: the kernel log names only its UID. The VM remembered for
/// that pod (the peak store) still owns the kill, with the facts of its spec.
#[test]
fn a_kill_in_a_deleted_pod_belongs_to_the_vm_remembered_for_it() {
    use vmmem::model::oom_verdict::explain_remembering;
    use vmmem::model::peaks::RememberedPods;

    let events = parse_kernel_log(&fixture("seed-example3-dmesg.log"));
    let mut inv = seed_inventory();
    inv.pods.clear();
    std::sync::Arc::make_mut(&mut inv.vmis[0])
        .status
        .active_pods
        .clear();
    let alone = explain(&events, Some(&inv), None).remove(0);
    assert!(alone.vm.is_none(), "no object names the pod");
    let mut remembered = RememberedPods::new();
    remembered.insert(
        "bc31d215-d48e-4416-8e2b-68716b8f5bcb".into(),
        "vm-uid".into(),
    );
    let explained = explain_remembering(&events, Some(&inv), None, &remembered);
    let ex = &explained[0];
    let vm = ex.vm.as_ref().unwrap();
    assert_eq!(
        (vm.namespace.as_str(), vm.name.as_str()),
        ("default", "vm4")
    );
    assert_eq!(ex.guest_source, Some(GuestSource::Spec));
    assert_eq!(ex.guest_bytes, Some(1948 * MI));
    let (report, _) = report_with(&inv, explained);
    let row = &report.vms[0];
    assert_eq!(row.oom_kills, Some(1));
    assert!(row
        .flags
        .contains(&vmmem::model::report::Flag::OomKilledBefore));
    assert!(row
        .recommendation
        .evidence
        .iter()
        .any(|e| e.kind == vmmem::model::evidence::EvidenceKind::OomKill));
}

/// `list`'s report of `inv` with the kernel-log kills `explained` (no live data), and the kills.
fn report_with(
    inv: &Inventory,
    explained: Vec<vmmem::model::oom_verdict::OomExplanation>,
) -> (
    vmmem::model::report::Report,
    Vec<vmmem::model::oom_verdict::OomExplanation>,
) {
    use vmmem::model::inventory::Readings;
    use vmmem::model::oom_vm::LogsRead;
    use vmmem::model::report::{build, ReportOptions};
    let opts = ReportOptions {
        oom_history: explained,
        kernel_logs_read: LogsRead::All,
        ..Default::default()
    };
    (build(inv, &Readings::new(), &opts), opts.oom_history)
}
