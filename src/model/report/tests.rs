use super::*;
use crate::model::oom_vm::LogsRead;

#[test]
fn stale_nodes_are_said_once_per_reason() {
    let mut stale = HashMap::new();
    stale.insert("n3".to_string(), "exec timed out".to_string());
    stale.insert("n2".to_string(), "not allowed".to_string());
    stale.insert("n1".to_string(), "not allowed".to_string());
    assert_eq!(
        stale_warnings(&stale),
        vec![
            "live data for nodes n1, n2 is stale: not allowed".to_string(),
            "live data for node n3 is stale: exec timed out".to_string(),
        ]
    );
    assert!(stale_warnings(&HashMap::new()).is_empty());
}

#[test]
fn kernel_logs_read_cover_their_nodes() {
    assert!(!LogsRead::None.covers(Some("n1")));
    assert!(LogsRead::All.covers(None));
    let read = LogsRead::Nodes(["n1".to_string()].into_iter().collect());
    assert!(read.covers(Some("n1")));
    assert!(!read.covers(Some("n2")));
    assert!(!read.covers(None));
}

/// Harvester's VM default/vm4 on KubeVirt v1.1.1 (2Gi limit, guest 1948Mi) whose VMI failed
/// with its launcher pod: the compute container ended `OOMKilled` (the end-to-end fixture
/// tests/fixtures/features/pod-status-oomkilled.yaml has the same objects).
fn oomkilled_pod_inventory() -> crate::model::inventory::Inventory {
    use crate::model::objects::{KubeVirt, Pod, VirtualMachine, VirtualMachineInstance};
    let domain = serde_json::json!({
        "cpu": {"cores": 2, "sockets": 1, "threads": 1},
        "memory": {"guest": "1948Mi"},
        "resources": {"limits": {"cpu": "2", "memory": "2Gi"},
                      "requests": {"cpu": "125m", "memory": "1365Mi"}}});
    let vm: VirtualMachine = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "vm4", "uid": "vm-uid"},
        "spec": {"template": {"spec": {"domain": domain}}}}))
    .unwrap();
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "vm4", "uid": "vmi-uid"},
        "spec": {"domain": domain},
        "status": {"phase": "Failed", "nodeName": "harv41"}}))
    .unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "default", "name": "virt-launcher-vm4-7xq9z", "uid": POD_UID,
                     "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "vmi-uid"}},
        "spec": {"nodeName": "harv41", "containers": [{"name": "compute",
            "image": "registry.suse.com/suse/sles/15.5/virt-launcher:1.1.1-150500.8.6.1",
            "resources": {"limits": {"memory": "2412423169"}, "requests": {"memory": "1696245761"}}}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "compute",
            "containerID": "containerd://b545",
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                     "finishedAt": "2024-05-21T09:14:03Z"}}}]}}))
    .unwrap();
    let kv: KubeVirt = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "harvester-system", "name": "kubevirt"},
        "status": {"observedKubeVirtVersion": "v1.1.1"}}))
    .unwrap();
    crate::model::inventory::Inventory {
        vms: vec![vm.into()],
        vmis: vec![vmi.into()],
        pods: vec![pod.into()],
        kubevirts: vec![kv],
        ..Default::default()
    }
}

const POD_UID: &str = "bc31d215-d48e-4416-8e2b-68716b8f5bcb";

fn oom_kill_items(row: &VmRow) -> Vec<&crate::model::evidence::Evidence> {
    row.recommendation
        .evidence
        .iter()
        .filter(|e| e.kind == crate::model::evidence::EvidenceKind::OomKill)
        .collect()
}

#[test]
fn a_pod_status_oom_kill_counts_without_a_kernel_log() {
    // The VMI failed with its pod: the pod ended, so its kill is of an earlier pod.
    let inv = oomkilled_pod_inventory();
    let report = build(&inv, &Readings::new(), &ReportOptions::default());
    let row = &report.vms[0];
    assert_eq!(row.oom_kills, Some(1));
    assert!(
        row.flags.contains(&Flag::OomKilledBefore),
        "{:?}",
        row.flags
    );
    assert_eq!(row.risk, Risk::Warn);
    let kills = oom_kill_items(row);
    assert_eq!(kills.len(), 1);
    let e = kills[0];
    // The compute limit less the guest: 2,412,423,169 − 1948Mi.
    assert_eq!(e.bytes, 2_412_423_169 - 1948 * (1 << 20));
    assert_eq!(e.bound, crate::model::evidence::Bound::Lower);
    assert_eq!(e.level, crate::model::evidence::Level::Container);
    assert_eq!(e.source, "pod status (OOMKilled at 2024-05-21T09:14:03Z)");
    assert_eq!(e.at, Some(crate::model::evidence::At::Unix(1_716_282_843)));
}

#[test]
fn a_running_pods_last_state_oom_kill_is_the_current_pods() {
    let mut inv = oomkilled_pod_inventory();
    let pod = std::sync::Arc::make_mut(&mut inv.pods[0]);
    pod.status.phase = Some(crate::model::phase::PodPhase::Running);
    let compute = &mut pod.status.container_statuses[0];
    compute.last_state = std::mem::take(&mut compute.state);
    let vmi = std::sync::Arc::make_mut(&mut inv.vmis[0]);
    vmi.status.phase = Some(crate::model::phase::VmPhase::Running);
    let report = build(&inv, &Readings::new(), &ReportOptions::default());
    let row = &report.vms[0];
    assert_eq!(row.oom_kills, Some(1));
    assert!(row.flags.contains(&Flag::OomKilled), "{:?}", row.flags);
    assert_eq!(row.risk, Risk::Critical);
    assert_eq!(oom_kill_items(row).len(), 1);
}

#[test]
fn a_kill_in_the_kernel_log_and_the_pod_status_counts_once() {
    let inv = oomkilled_pod_inventory();
    // The node's kernel log has this pod's kill at its pod-level limit.
    let usage = 2_472_419_328u64;
    let event = crate::model::oom_event::OomEvent {
        time: Some("8758.722811".into()),
        node: Some("harv41".into()),
        pod_uid: Some(POD_UID.into()),
        scope: Some(crate::model::oom_event::OomScope::Pod),
        memory: Some(crate::model::oom_event::MemCounter {
            usage_bytes: usage,
            limit_bytes: Some(usage),
            failcnt: 1,
        }),
        victim: Some(crate::model::oom_event::OomVictim {
            pid: 24790,
            comm: "qemu-system-x86".into(),
            uid: Some(107),
            anon_rss_bytes: Some(1_867_320 * 1024),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = ReportOptions {
        oom_history: crate::model::oom_verdict::explain(&[event], Some(&inv), None),
        kernel_logs_read: LogsRead::All,
        ..Default::default()
    };
    let report = build(&inv, &Readings::new(), &opts);
    let row = &report.vms[0];
    assert_eq!(row.oom_kills, Some(1));
    assert!(row.flags.contains(&Flag::OomKilledBefore));
    let kills = oom_kill_items(row);
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0].source, "kernel log of node harv41");
    // The usage at the kill less qemu's guest resident.
    assert_eq!(kills[0].bytes, 2_472_419_328 - 1_867_320 * 1024);
}
