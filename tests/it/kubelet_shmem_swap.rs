//! Live figures in the row (issue 16): guest RAM that is shared memory read through the
//! kubelet's Summary, swap, and a guest filling its RAM.

use std::sync::Arc;

use vmmem::model::inventory::{Inventory, Readings};
use vmmem::model::report::{build, Flag, ReportOptions, Risk};
use vmmem::parse::kubelet_summary::{self, Wanted};

const POD_UID: &str = "5b0b3f2e-1c1d-4b8e-9a0e-0c8f6a2d7e11";
const MI: u64 = 1 << 20;

/// A running 4Gi VM (KubeVirt `version`) on node n1 whose launcher pod has the given extra
/// containers; `interface` is the VMI's one interface.
fn inventory(version: &str, extra: &[&str], interface: serde_json::Value) -> Inventory {
    use vmmem::model::objects::{KubeVirt, Pod, VirtualMachine, VirtualMachineInstance};
    let domain = serde_json::json!({
        "cpu": {"cores": 2},
        "memory": {"guest": "4Gi"},
        "devices": {"interfaces": [interface]},
        "resources": {"limits": {"memory": "4608Mi"}, "requests": {"memory": "4608Mi"}}});
    let vm: VirtualMachine = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "lab", "name": "fs-vm", "uid": "vm-uid"},
        "spec": {"template": {"spec": {"domain": domain}}}}))
    .unwrap();
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "lab", "name": "fs-vm", "uid": "vmi-uid"},
        "spec": {"domain": domain},
        "status": {"phase": "Running", "nodeName": "n1"}}))
    .unwrap();
    let mut containers = vec![serde_json::json!({"name": "compute",
        "image": format!("quay.io/kubevirt/virt-launcher:{version}"),
        "resources": {"limits": {"memory": "5000Mi"}, "requests": {"memory": "5000Mi"}}})];
    containers.extend(extra.iter().map(|n| serde_json::json!({"name": n})));
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "lab", "name": "virt-launcher-fs-vm-abcde", "uid": POD_UID,
                     "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "vmi-uid"}},
        "spec": {"nodeName": "n1", "containers": containers},
        "status": {"phase": "Running", "containerStatuses": [{"name": "compute",
            "containerID": "containerd://c0ffee", "state": {"running": {}}}]}}))
    .unwrap();
    let kv: KubeVirt = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "kubevirt", "name": "kubevirt"},
        "status": {"observedKubeVirtVersion": version}}))
    .unwrap();
    Inventory {
        vms: vec![vm.into()],
        vmis: vec![vmi.into()],
        pods: vec![pod.into()],
        kubevirts: vec![kv],
        ..Default::default()
    }
}

/// The kubelet's Summary of n1 for that pod: the compute container holds `ws` of working set of
/// which only `rss` is anonymous (guest RAM in a shared memfd is neither RSS nor anon).
fn kubelet_readings(ws: u64, rss: u64, swap: Option<(u64, u64)>) -> Readings {
    let swap = swap.map_or(serde_json::Value::Null, |(used, avail)| {
        serde_json::json!({"time": "2026-12-07T12:00:00Z", "swapUsageBytes": used, "swapAvailableBytes": avail})
    });
    let mem = |ws: u64, rss: u64, limit: u64| {
        serde_json::json!({"time": "2026-12-07T12:00:00Z", "usageBytes": ws + 8 * MI,
            "workingSetBytes": ws, "rssBytes": rss, "availableBytes": limit - ws})
    };
    let summary = serde_json::json!({"node": {"nodeName": "n1"}, "pods": [{
        "podRef": {"name": "virt-launcher-fs-vm-abcde", "namespace": "lab", "uid": POD_UID},
        "memory": mem(ws + 20 * MI, rss + 10 * MI, 5000 * MI + 160 * MI),
        "containers": [
            {"name": "compute", "memory": mem(ws, rss, 5000 * MI), "swap": swap},
            {"name": "virtiofs-share", "memory": mem(20 * MI, 10 * MI, 80 * MI)}]}]});
    let pods = kubelet_summary::parse(&summary.to_string()).unwrap();
    let wanted = [Wanted {
        uid: POD_UID.into(),
        compute_id: Some("c0ffee".into()),
    }];
    let mut r = Readings::new();
    r.insert(
        "n1".into(),
        Arc::new(kubelet_summary::readings(
            &pods,
            "n1",
            &wanted,
            1_796_000_000,
        )),
    );
    r
}

/// The case: a healthy virtiofs VM (3.5Gi of guest RAM touched, 250Mi of overhead) read
/// through the kubelet. Its RSS-based estimate took the guest for 0 and the whole working set
/// for overhead: −1.6GiB of headroom, critical. Now: usage shown, guest/overhead/headroom
/// unknown, no critical, a note saying why.
#[test]
fn a_virtiofs_guest_through_the_kubelet_has_no_overhead_figure_and_no_critical() {
    let inv = inventory(
        "v1.5.0",
        &["virtiofs-share"],
        serde_json::json!({"name": "default", "masquerade": {}}),
    );
    let readings = kubelet_readings(3584 * MI + 250 * MI, 200 * MI, None);
    let row = &build(&inv, &readings, &ReportOptions::default()).vms[0];
    assert_ne!(row.risk, Risk::Critical, "{row:?}");
    assert_eq!(row.risk, Risk::Unknown);
    assert_eq!(
        (
            row.guest_resident_bytes,
            row.overhead_used_bytes,
            row.headroom_bytes
        ),
        (None, None, None)
    );
    let cg = row.cgroup.as_ref().expect("the usage is still shown");
    assert_eq!(cg.working_set_bytes, 3584 * MI + 250 * MI);
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("guest RAM is shared memory with virtiofs")),
        "{:?}",
        row.notes
    );
}

/// The passt binding backs guest RAM with a memfd from v1.8; the figures alone (working set far
/// above anon) say the same where the VMI does not.
#[test]
fn passt_on_v1_8_and_the_figures_alone_also_make_the_split_unknown() {
    let passt = serde_json::json!({"name": "default", "passtBinding": {}});
    let readings = kubelet_readings(3584 * MI + 250 * MI, 200 * MI, None);
    let row = &build(
        &inventory("v1.8.0", &[], passt.clone()),
        &readings,
        &ReportOptions::default(),
    )
    .vms[0];
    assert_eq!((row.risk, row.overhead_used_bytes), (Risk::Unknown, None));
    assert!(
        row.notes.iter().any(|n| n.contains("the passt binding")),
        "{:?}",
        row.notes
    );
    // No reason in the VMI (masquerade): the working set 3.6Gi above anon still says it.
    let masq = serde_json::json!({"name": "default", "masquerade": {}});
    let row = &build(
        &inventory("v1.5.0", &[], masq.clone()),
        &readings,
        &ReportOptions::default(),
    )
    .vms[0];
    assert_eq!((row.risk, row.overhead_used_bytes), (Risk::Unknown, None));
    assert!(
        row.notes
            .iter()
            .any(|n| n.contains("above the anonymous memory")),
        "{:?}",
        row.notes
    );
    // A plain VM (guest in anon: RSS close to the working set) keeps its estimate.
    let plain = kubelet_readings(3584 * MI + 250 * MI, 3584 * MI + 150 * MI, None);
    let row = &build(
        &inventory("v1.5.0", &[], masq),
        &plain,
        &ReportOptions::default(),
    )
    .vms[0];
    assert!(
        row.overhead_used_bytes.is_some() && row.headroom_bytes.is_some(),
        "{row:?}"
    );
    assert!(row.has_flag(Flag::Estimated));
}

/// The kubelet's swap stats (Kubernetes 1.28+): swap in use shows, with its limit (in use +
/// available), and the headroom counts the swap left.
#[test]
fn kubelet_swap_stats_show_and_count_in_the_headroom() {
    let masq = serde_json::json!({"name": "default", "masquerade": {}});
    let inv = inventory("v1.5.0", &[], masq);
    let plain = kubelet_readings(3584 * MI + 250 * MI, 3584 * MI + 150 * MI, None);
    let swapping = kubelet_readings(
        3584 * MI + 250 * MI,
        3584 * MI + 150 * MI,
        Some((100 * MI, 412 * MI)),
    );
    let before = &build(&inv, &plain, &ReportOptions::default()).vms[0];
    let row = &build(&inv, &swapping, &ReportOptions::default()).vms[0];
    assert!(row.has_flag(Flag::Swapping), "{:?}", row.flags);
    assert!(!before.has_flag(Flag::Swapping));
    let cg = row.cgroup.as_ref().unwrap();
    assert_eq!(
        (cg.swap_bytes, cg.swap_limit_bytes),
        (Some(100 * MI), Some(512 * MI))
    );
    assert_eq!(
        row.headroom_bytes,
        before.headroom_bytes.map(|h| h + 412 * MI as i64)
    );
    let json = serde_json::to_value(row).unwrap();
    assert_eq!(json["cgroup"]["swapBytes"], 100 * MI);
    assert!(serde_json::to_value(before).unwrap()["cgroup"]
        .get("swapBytes")
        .is_none());
}
