use serde_json::{json, Value};

use super::*;
use crate::fix::merge;
use crate::model::inventory::{Inventory, Readings};
use crate::model::objects::{HarvesterSetting, KubeVirt, ObjectMeta, ResourceQuota};
use crate::model::overhead::GI;
use crate::model::report::ReportOptions;
use crate::units::Quantity;

pub(super) fn vm(annotations: Value, domain: Value) -> Value {
    json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": "vm1", "namespace": "ns1", "uid": "u1", "resourceVersion": "7",
                     "annotations": annotations},
        "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"domain": domain}}}})
}

pub(super) fn bare_vm(domain: Value) -> Value {
    let mut v = vm(json!({}), domain);
    v["metadata"].as_object_mut().unwrap().remove("annotations");
    v
}

pub(super) fn kubevirt(version: &str, ratio: Option<&str>) -> KubeVirt {
    let mut k = KubeVirt::default();
    k.status.observed_kube_virt_version = Some(version.into());
    k.spec.configuration.additional_guest_memory_overhead_ratio = ratio.map(String::from);
    k
}

pub(super) fn setting(name: &str, value: &str) -> HarvesterSetting {
    HarvesterSetting {
        metadata: ObjectMeta {
            name: name.into(),
            ..Default::default()
        },
        value: Some(value.into()),
        default: None,
    }
}

/// Harvester v1.4.1 with the ratio at 1.5 (KubeVirt v1.3.0), like the demo cluster.
pub(super) fn harvester_inv() -> Inventory {
    Inventory {
        kubevirts: vec![kubevirt("v1.3.0", Some("1.5"))],
        harvester_settings: Some(vec![
            setting("server-version", "v1.4.1"),
            setting("additional-guest-memory-overhead-ratio", "1.5"),
        ]),
        ..Default::default()
    }
}

pub(super) fn kubevirt_inv(version: &str) -> Inventory {
    Inventory {
        kubevirts: vec![kubevirt(version, None)],
        ..Default::default()
    }
}

pub(super) fn target(raw: &Value, inv: &Inventory) -> Target {
    Target::new(
        raw.clone(),
        inv,
        &Readings::new(),
        &ReportOptions::default(),
    )
    .unwrap()
}

pub(super) fn reserve(bytes: Option<i64>, strategy: Option<Strategy>) -> Choice {
    Choice {
        action: Action::Reserve(bytes),
        strategy,
    }
}

pub(super) const UNDO: Choice = Choice {
    action: Action::Undo,
    strategy: None,
};

/// What the server stores after the patch (no webhook).
pub(super) fn applied(raw: &Value, p: &Plan) -> Value {
    merge::apply(raw, p.patch.as_ref().unwrap())
}

pub(super) fn domain_of(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["domain"]
}

#[test]
fn harvester_default_recommendation_sets_annotation_and_guest() {
    // Like the demo's memhold-vm: ratio on, so the webhook reserved nothing (guest = limit).
    let raw = vm(
        json!({}),
        json!({"cpu": {"cores": 2}, "memory": {"guest": "2Gi"},
               "resources": {"limits": {"memory": "2Gi", "cpu": "2"}, "requests": {"memory": "1365Mi"}}}),
    );
    let p = plan(&target(&raw, &harvester_inv()), &reserve(None, None)).unwrap();
    assert_eq!(p.strategy, Some(Strategy::Annotation));
    // The size table's 384Mi less the room the ratio 1.5 already adds (half of O before it).
    assert_eq!(p.reserve_bytes, Some(320 * MI));
    assert!(
        p.reason.starts_with(
            "the size table's 384Mi for VMs of 2Gi to 5Gi less the 126.3MiB the overhead ratio already adds (258Mi) alone"
        ),
        "{}",
        p.reason
    );
    let patch = p.patch.clone().unwrap();
    assert_eq!(patch["metadata"]["resourceVersion"], "7");
    assert_eq!(
        patch["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY],
        "320Mi"
    );
    assert_eq!(domain_of(&patch)["memory"]["guest"], "1728Mi");
    assert!(
        domain_of(&patch)["resources"].is_null(),
        "request already what the webhook computes: {patch}"
    );
    let record: UndoRecord = serde_json::from_str(
        patch["metadata"]["annotations"][keys::UNDO_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record.fields.guest, Some(json!("2Gi")));
    assert_eq!(record.fields.reserved_memory, None);
    assert_eq!(p.before.reserved_bytes, Some(0));
    assert_eq!(p.after.reserved_bytes, Some(320 * MI));
    assert_eq!(p.after.guest_bytes, Some(1728 * MI));
    // The pod limit stays limit + O (the request did not change), the budget grows by 320Mi.
    assert_eq!(
        p.after.expected_pod_limit_bytes,
        p.before.expected_pod_limit_bytes
    );
    assert_eq!(
        p.after.overhead_budget_bytes.unwrap() - p.before.overhead_budget_bytes.unwrap(),
        320 * MI
    );
    assert!(p.restart_needed);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.starts_with("the guest shrinks by 320Mi (2Gi -> 1728Mi)")));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("the VM is stopped")),
        "no VMI in the inventory: {:?}",
        p.warnings
    );
}

#[test]
fn harvester_predicts_the_guest_as_request_for_gpu_vms() {
    // GPUs (vGPUs among them) count like host devices: the webhook sets request = guest.
    let raw = vm(
        json!({"harvesterhci.io/reservedMemory": "256Mi"}),
        json!({"memory": {"guest": "7936Mi"},
               "devices": {"gpus": [{"name": "gpu1", "deviceName": "nvidia.com/GRID_A100-4C"}]},
               "resources": {"limits": {"memory": "8Gi"}, "requests": {"memory": "7936Mi"}}}),
    );
    let p = plan(
        &target(&raw, &harvester_inv()),
        &reserve(Some(512 * MI), None),
    )
    .unwrap();
    let patch = p.patch.unwrap();
    assert_eq!(domain_of(&patch)["memory"]["guest"], "7680Mi");
    assert_eq!(
        domain_of(&patch)["resources"]["requests"]["memory"],
        "7680Mi",
        "request = guest, not limit x 100 / overcommit"
    );
}

#[test]
fn harvester_webhook_request_is_predicted() {
    // A request the user edited by hand is rewritten by the webhook when the annotation changes.
    let raw = vm(
        json!({"harvesterhci.io/reservedMemory": "256Mi"}),
        json!({"memory": {"guest": "7936Mi"},
               "resources": {"limits": {"memory": "8Gi"}, "requests": {"memory": "8Gi"}}}),
    );
    let p = plan(
        &target(&raw, &harvester_inv()),
        &reserve(Some(512 * MI), None),
    )
    .unwrap();
    let patch = p.patch.unwrap();
    assert_eq!(
        patch["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY],
        "512Mi"
    );
    assert_eq!(domain_of(&patch)["memory"]["guest"], "7680Mi");
    assert_eq!(
        domain_of(&patch)["resources"]["requests"]["memory"],
        "5461Mi"
    );
    assert!(p.warnings.iter().any(|w| w.contains("shrinks by 256Mi")));
}

#[test]
fn enough_reserved_is_nothing_to_do() {
    let raw = vm(
        json!({"harvesterhci.io/reservedMemory": "1Gi"}),
        json!({"memory": {"guest": "63Gi"},
               "resources": {"limits": {"memory": "64Gi"}, "requests": {"memory": "43690Mi"}}}),
    );
    let p = plan(&target(&raw, &harvester_inv()), &reserve(None, None)).unwrap();
    assert!(!p.has_changes());
    assert!(!p.restart_needed);
    assert_eq!(p.before, p.after);
    assert!(
        p.warnings[0].contains("already reserves 1Gi"),
        "{:?}",
        p.warnings
    );
    // Asked explicitly, it does what is asked, even growing the guest.
    let p = plan(
        &target(&raw, &harvester_inv()),
        &reserve(Some(512 * MI), None),
    )
    .unwrap();
    assert_eq!(
        domain_of(p.patch.as_ref().unwrap())["memory"]["guest"],
        "65024Mi"
    );
}

#[test]
fn plain_kubevirt_shrinks_the_guest() {
    let raw = bare_vm(json!({"resources": {"limits": {"memory": "4Gi"}}}));
    let t = target(&raw, &kubevirt_inv("v1.3.0"));
    let p = plan(&t, &reserve(None, None)).unwrap();
    assert_eq!(p.strategy, Some(Strategy::Guest));
    let patch = p.patch.clone().unwrap();
    assert_eq!(domain_of(&patch)["memory"], json!({"guest": "3712Mi"}));
    assert!(patch["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY].is_null());
    assert_eq!(
        p.after.expected_pod_limit_bytes,
        Some(4 * GI + p.after.overhead_bytes)
    );
    assert_eq!(
        p.after.overhead_bytes, p.before.overhead_bytes,
        "request = limit before v1.7"
    );
    assert!(!p.warnings.iter().any(|w| w.contains("Harvester")));
    // The annotation strategy outside Harvester says the annotation is only a note.
    let p = plan(&t, &reserve(None, Some(Strategy::Annotation))).unwrap();
    assert!(p
        .warnings
        .iter()
        .any(|w| w.starts_with("this is not a Harvester cluster")));
    // The guest strategy on Harvester warns that the webhook may recompute it.
    let h = target(&raw, &harvester_inv());
    let p = plan(&h, &reserve(None, Some(Strategy::Guest))).unwrap();
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("prefer --strategy annotation")));
}

#[test]
fn refusals_match_the_webhook() {
    let raw = vm(
        json!({}),
        json!({"memory": {"guest": "2Gi"}, "resources": {"limits": {"memory": "2Gi"}}}),
    );
    let t = target(&raw, &harvester_inv());
    let refuse = |bytes: i64| {
        plan(&t, &reserve(Some(bytes), None))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refuse(2 * GI),
        "reservedMemory 2Gi must be at least 0 and less than the memory limit 2Gi"
    );
    assert_eq!(
        refuse(-MI),
        "reservedMemory -1Mi must be at least 0 and less than the memory limit 2Gi"
    );
    assert_eq!(refuse(2045 * MI), "guest memory 3Mi is less than 10Mi");
    let p = plan(&t, &reserve(Some(1900 * MI), None)).unwrap();
    assert!(p
        .warnings
        .iter()
        .any(|w| w == "guest memory 148Mi is below 256Mi"));
    let p = plan(&t, &reserve(Some(0), None)).unwrap();
    assert_eq!(
        p.patch.unwrap()["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY],
        "0"
    );
}

#[test]
fn no_limit() {
    let raw = bare_vm(json!({"resources": {"requests": {"memory": "4Gi"}}}));
    let t = target(&raw, &kubevirt_inv("v1.3.0"));
    let p = plan(&t, &reserve(None, None)).unwrap();
    assert!(!p.has_changes());
    assert!(p.warnings[0].ends_with("has no memory limit: nothing to reserve"));
    assert_eq!(
        plan(&t, &reserve(Some(GI), None)).unwrap_err(),
        Refusal::NoLimit("ns1/vm1".into())
    );
    let p = plan(
        &t,
        &Choice {
            action: Action::RemoveLimit,
            strategy: None,
        },
    )
    .unwrap();
    assert!(!p.has_changes());
}

#[test]
fn hotplug_vm_annotation_does_nothing() {
    let raw = vm(
        json!({"harvesterhci.io/enableCPUAndMemoryHotplug": "true"}),
        json!({"memory": {"guest": "4Gi"}, "resources": {"limits": {"memory": "16Gi"}}}),
    );
    let t = target(&raw, &harvester_inv());
    let p = plan(&t, &reserve(Some(512 * MI), None)).unwrap();
    let patch = p.patch.clone().unwrap();
    assert!(domain_of(&patch).is_null(), "guest untouched: {patch}");
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("the annotation does nothing here")));
    assert!(!p.restart_needed);
    // guest + reserve > limit is what Harvester v1.6+ rejects.
    let full = vm(
        json!({"harvesterhci.io/enableCPUAndMemoryHotplug": "true"}),
        json!({"memory": {"guest": "16Gi"}, "resources": {"limits": {"memory": "16Gi"}}}),
    );
    assert_eq!(
        plan(&target(&full, &harvester_inv()), &reserve(Some(GI), None))
            .unwrap_err()
            .to_string(),
        "guest memory 16Gi plus reservedMemory 1Gi is more than the memory limit 16Gi"
    );
}

#[test]
fn dedicated_cpu_and_remove_limit() {
    let raw = bare_vm(json!({"cpu": {"cores": 4, "dedicatedCpuPlacement": true},
        "resources": {"limits": {"memory": "8Gi", "cpu": "4"}, "requests": {"memory": "8Gi", "cpu": "4"}}}));
    let t = target(&raw, &kubevirt_inv("v1.3.0"));
    let p = plan(&t, &reserve(None, None)).unwrap();
    assert_eq!(
        domain_of(p.patch.as_ref().unwrap())["memory"]["guest"],
        "7680Mi"
    );
    let rl = Choice {
        action: Action::RemoveLimit,
        strategy: None,
    };
    let p = plan(&t, &rl).unwrap();
    let patch = p.patch.clone().unwrap();
    assert_eq!(
        domain_of(&patch)["resources"]["limits"],
        json!({"memory": null})
    );
    assert_eq!(domain_of(&patch)["memory"]["guest"], "8Gi", "guest pinned");
    assert!(p
        .warnings
        .iter()
        .any(|w| w.starts_with("without a memory limit")));
    assert!(p.warnings.iter().any(|w| w.contains("dedicated CPUs")));
    assert!(
        p.after.expected_pod_limit_bytes.is_some(),
        "limit = request"
    );
}

fn quota_inv(version: &str) -> Inventory {
    let mut inv = kubevirt_inv(version);
    inv.resource_quotas.push(ResourceQuota {
        metadata: ObjectMeta {
            name: "q".into(),
            namespace: "ns1".into(),
            ..Default::default()
        },
        spec: crate::model::objects::ResourceQuotaSpec {
            hard: [("limits.memory".to_string(), Quantity::new("100Gi"))].into(),
        },
    });
    inv
}

fn namespace_with_ratio(ratio: Option<&str>) -> crate::model::objects::Namespace {
    let mut metadata = ObjectMeta {
        name: "ns1".into(),
        ..Default::default()
    };
    if let Some(r) = ratio {
        metadata
            .labels
            .insert(keys::AUTO_MEMORY_LIMITS_RATIO.into(), r.into());
    }
    crate::model::objects::Namespace { metadata }
}

const REMOVE_LIMIT: Choice = Choice {
    action: Action::RemoveLimit,
    strategy: Some(Strategy::Guest),
};

#[test]
fn remove_limit_with_quota() {
    let raw =
        bare_vm(json!({"resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}}}));
    let mut inv = quota_inv("v1.5.0");
    inv.namespaces = Some(vec![namespace_with_ratio(None)]);
    let p = plan(&target(&raw, &inv), &REMOVE_LIMIT).unwrap();
    let patch = p.patch.clone().unwrap();
    assert_eq!(domain_of(&patch)["resources"]["limits"], Value::Null);
    assert!(domain_of(&patch)["resources"]
        .as_object()
        .unwrap()
        .contains_key("limits"));
    assert_eq!(
        domain_of(&patch)["memory"]["guest"],
        "1Gi",
        "the guest was the request already; now it says so"
    );
    assert_eq!(
        p.after.expected_pod_limit_bytes,
        Some((GI + p.after.overhead_bytes) * 2),
        "quota: (request + O) x 2"
    );
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("ResourceQuota on limits.memory")));
    assert!(!p.warnings.iter().any(|w| w.contains("assuming")));
}

#[test]
fn remove_limit_with_quota_and_the_namespace_ratio() {
    let raw =
        bare_vm(json!({"resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}}}));
    let mut inv = quota_inv("v1.6.0");
    inv.namespaces = Some(vec![namespace_with_ratio(Some("1.5"))]);
    let p = plan(&target(&raw, &inv), &REMOVE_LIMIT).unwrap();
    let request = GI + p.after.overhead_bytes;
    assert_eq!(
        p.after.expected_pod_limit_bytes,
        Some((request as f64 * 1.5) as i64)
    );
    // Namespaces not readable: KubeVirt's default 2 is assumed, and the plan says so.
    inv.namespaces = None;
    let p = plan(&target(&raw, &inv), &REMOVE_LIMIT).unwrap();
    assert_eq!(p.after.expected_pod_limit_bytes, Some(request * 2));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("`list` on namespaces") && w.contains("assuming")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn remove_limit_with_quota_before_v15_needs_the_gate() {
    let raw =
        bare_vm(json!({"resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1Gi"}}}));
    let mut inv = quota_inv("v1.3.0");
    let p = plan(&target(&raw, &inv), &REMOVE_LIMIT).unwrap();
    assert_eq!(p.after.expected_pod_limit_bytes, None);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("AutoResourceLimitsGate")));
    inv.kubevirts[0].spec.configuration.developer_configuration =
        Some(crate::model::objects::DeveloperConfiguration {
            feature_gates: vec!["AutoResourceLimitsGate".into()],
            ..Default::default()
        });
    let p = plan(&target(&raw, &inv), &REMOVE_LIMIT).unwrap();
    assert_eq!(
        p.after.expected_pod_limit_bytes,
        Some((GI + p.after.overhead_bytes) * 2)
    );
}

#[test]
fn hugepages_pod_limit_grows_by_the_reserve() {
    let raw = bare_vm(
        json!({"memory": {"hugepages": {"pageSize": "1Gi"}, "guest": "8Gi"},
        "resources": {"limits": {"memory": "8Gi"}, "requests": {"memory": "8Gi"}}}),
    );
    let p = plan(
        &target(&raw, &kubevirt_inv("v1.3.0")),
        &reserve(Some(GI), None),
    )
    .unwrap();
    assert_eq!(
        domain_of(p.patch.as_ref().unwrap())["memory"],
        json!({"guest": "7Gi"})
    );
    assert_eq!(
        p.after.expected_pod_limit_bytes,
        Some(GI + p.after.overhead_bytes),
        "memory limit holds limit - guest + O"
    );
    assert_eq!(
        p.after.overhead_budget_bytes,
        p.after.expected_pod_limit_bytes
    );
}

/// The recommended plan for a hugepage-backed VM with limit = guest: no size-table reservation,
/// and the reason says why (its guest RAM is outside the memory cgroup).
#[test]
fn hugepages_get_no_size_table_reservation() {
    let raw = bare_vm(
        json!({"memory": {"hugepages": {"pageSize": "2Mi"}, "guest": "4Gi"},
        "resources": {"limits": {"memory": "4Gi"}, "requests": {"memory": "4Gi"}}}),
    );
    let p = plan(&target(&raw, &kubevirt_inv("v1.3.0")), &reserve(None, None)).unwrap();
    assert_eq!(p.reserve_bytes, Some(0));
    assert!(p.patch.is_none(), "nothing to change");
    assert!(
        p.reason
            .contains("hugepage-backed guests (their RAM is outside the memory cgroup)"),
        "{}",
        p.reason
    );
    assert_eq!(
        p.before.overhead_budget_bytes, p.before.expected_pod_limit_bytes,
        "the whole limit is the budget"
    );
}

#[test]
fn added_overhead_keeps_the_guest() {
    let raw =
        bare_vm(json!({"resources": {"limits": {"memory": "4Gi"}, "requests": {"memory": "4Gi"}}}));
    let p = plan(
        &target(&raw, &kubevirt_inv("v1.8.0")),
        &reserve(None, Some(Strategy::AddedOverhead)),
    )
    .unwrap();
    let patch = p.patch.clone().unwrap();
    assert_eq!(
        domain_of(&patch)["memory"],
        json!({"reservedOverhead": {"addedOverhead": "384Mi"}})
    );
    assert_eq!(p.after.guest_bytes, p.before.guest_bytes);
    assert_eq!(
        p.after.expected_pod_limit_bytes.unwrap() - p.before.expected_pod_limit_bytes.unwrap(),
        384 * MI
    );
    assert!(!p.warnings.iter().any(|w| w.contains("needs KubeVirt v1.8")));
    let old = plan(
        &target(&raw, &kubevirt_inv("v1.5.0")),
        &reserve(None, Some(Strategy::AddedOverhead)),
    )
    .unwrap();
    assert!(old
        .warnings
        .iter()
        .any(|w| w.contains("needs KubeVirt v1.8 or newer; this cluster runs v1.5.0")));
    assert_eq!(
        old.after.expected_pod_limit_bytes,
        old.before.expected_pod_limit_bytes
    );
}

#[test]
fn malformed_quantity_is_refused() {
    let raw = bare_vm(json!({"resources": {"limits": {"memory": "lots"}}}));
    let e = plan(&target(&raw, &kubevirt_inv("v1.3.0")), &reserve(None, None)).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "VirtualMachine ns1/vm1 has a field that is not a quantity: resources.limits.memory"
        ),
        "{e}"
    );
}

#[test]
fn harvester_1_3_seed_vm_with_the_default_reservation() {
    // Seed: Harvester v1.3 (KubeVirt v1.1.1), 2Gi VM, webhook default 100Mi → guest 1948Mi.
    let inv = Inventory {
        kubevirts: vec![kubevirt("v1.1.1", None)],
        harvester_settings: Some(vec![setting("server-version", "v1.3.2")]),
        ..Default::default()
    };
    let raw = vm(
        json!({}),
        json!({"cpu": {"cores": 2}, "memory": {"guest": "1948Mi"},
               "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1365Mi"}}}),
    );
    let t = target(&raw, &inv);
    assert_eq!(t.row.reserved_source, "harvester-default");
    let p = plan(&t, &reserve(None, None)).unwrap();
    // KubeVirt v1.1.1's numbers for this VM before the change (O, then O + the 2Gi limit).
    assert_eq!(p.before.overhead_bytes, 264_939_521);
    assert_eq!(p.before.expected_pod_limit_bytes, Some(2_412_423_169));
    assert_eq!(p.before.reserved_bytes, Some(100 * MI));
    let patch = p.patch.clone().unwrap();
    assert_eq!(
        patch["metadata"]["annotations"][keys::HARVESTER_RESERVED_MEMORY],
        "384Mi"
    );
    assert_eq!(domain_of(&patch)["memory"]["guest"], "1664Mi");
    assert_eq!(p.after.expected_pod_limit_bytes, Some(2_412_423_169));
    assert_eq!(
        p.after.overhead_budget_bytes,
        Some(2_412_423_169 - 1664 * MI)
    );
    assert!(p
        .warnings
        .iter()
        .any(|w| w.starts_with("the guest shrinks by 284Mi (1948Mi -> 1664Mi)")));
}

#[test]
fn running_vm_needs_a_restart_and_shows_its_pod() {
    use crate::model::objects::{Container, Pod, VirtualMachineInstance};
    let raw = bare_vm(
        json!({"cpu": {"cores": 2}, "resources": {"limits": {"memory": "4Gi"}, "requests": {"memory": "4Gi"}}}),
    );
    let lean: crate::model::objects::VirtualMachine = serde_json::from_value(raw.clone()).unwrap();
    let mut inv = kubevirt_inv("v1.3.0");
    let mut vmi = VirtualMachineInstance {
        metadata: lean.metadata.clone(),
        spec: lean.spec.template.spec.clone(),
        ..Default::default()
    };
    vmi.metadata.uid = "vmi-uid".into();
    vmi.status.phase = Some("Running".into());
    vmi.status.node_name = Some("n1".into());
    let mut pod = Pod::default();
    pod.metadata.name = "virt-launcher-vm1-abcde".into();
    pod.metadata.namespace = "ns1".into();
    pod.metadata.uid = "pod-uid".into();
    pod.metadata.labels = [
        (
            keys::LAUNCHER_LABEL.to_string(),
            keys::LAUNCHER_LABEL_VALUE.to_string(),
        ),
        (keys::CREATED_BY.to_string(), "vmi-uid".to_string()),
    ]
    .into();
    pod.spec.node_name = Some("n1".into());
    let mut compute = Container {
        name: "compute".into(),
        ..Default::default()
    };
    compute.resources.limits.memory = Some(Quantity::new("4565499905"));
    pod.spec.containers.push(compute);
    inv.vmis.push(vmi.into());
    inv.pods.push(pod.into());
    let p = plan(&target(&raw, &inv), &reserve(None, None)).unwrap();
    assert_eq!(p.current_pod_limit_bytes, Some(4_565_499_905));
    assert_eq!(p.before.expected_pod_limit_bytes, Some(4_565_499_905));
    assert!(p.restart_needed);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("a restart is needed")),
        "{:?}",
        p.warnings
    );
}
