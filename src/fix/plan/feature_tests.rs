//! Plans for VMs that use instance types or memory hotplug.

use serde_json::json;

use super::tests::{bare_vm, kubevirt_inv, reserve, target, UNDO};
use super::*;
use crate::model::objects::{Instancetype, InstancetypeMemory};
use crate::model::overhead::GI;
use crate::units::Quantity;

fn instancetype_vm() -> Value {
    let mut raw = bare_vm(json!({"cpu": {"cores": 2}}));
    raw["spec"]["instancetype"] =
        json!({"name": "u1.large", "kind": "VirtualMachineClusterInstancetype"});
    raw
}

fn with_instancetype(version: &str) -> crate::model::inventory::Inventory {
    let mut inv = kubevirt_inv(version);
    inv.instancetypes.push(Instancetype {
        namespace: None,
        name: "u1.large".into(),
        memory: InstancetypeMemory {
            guest: Some(Quantity::new("4Gi")),
            ..Default::default()
        },
    });
    inv
}

#[test]
fn instance_type_vms_refuse_the_guest_and_annotation_strategies() {
    let t = target(&instancetype_vm(), &with_instancetype("v1.8.0"));
    for s in [Strategy::Guest, Strategy::Annotation] {
        let e = plan(&t, &reserve(Some(256 * MI), Some(s))).unwrap_err();
        assert!(matches!(e, Refusal::InstancetypeStrategy { .. }), "{e:?}");
        let words = e.to_string();
        assert!(
            words.contains("u1.large") && words.contains("admission"),
            "{words}"
        );
        assert!(words.contains(s.as_str()), "{words}");
    }
    // auto picks what applies: addedOverhead on v1.8; the guest comes from the instance type.
    let p = plan(&t, &reserve(None, None)).unwrap();
    assert_eq!(p.strategy, Some(Strategy::AddedOverhead));
    assert_eq!(p.before.guest_bytes, Some(4 * GI));
    assert!(t
        .row
        .flags
        .contains(&crate::model::report::Flag::Instancetype));
}

#[test]
fn instance_type_vms_before_v18_get_a_clear_answer() {
    let t = target(&instancetype_vm(), &with_instancetype("v1.5.0"));
    let e = plan(&t, &reserve(None, None)).unwrap_err();
    assert!(matches!(e, Refusal::InstancetypeBeforeV18 { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("before KubeVirt v1.8 (this cluster runs v1.5.0)"),
        "{e}"
    );
}

#[test]
fn a_template_whose_limit_is_below_its_guest_warns_against_a_restart() {
    // After a hotplug 2Gi → 4Gi: the template's guest is 4Gi, its limit still 2560Mi.
    let raw = bare_vm(json!({"memory": {"guest": "4Gi", "maxGuest": "8Gi"},
        "resources": {"limits": {"memory": "2560Mi"}, "requests": {"memory": "2Gi"}}}));
    let p = plan(&target(&raw, &kubevirt_inv("v1.5.0")), &UNDO).unwrap();
    assert!(!p.has_changes());
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("do not restart as it is")
                && w.contains("2560Mi")
                && w.contains("4Gi")),
        "{:?}",
        p.warnings
    );
    // A template whose limit holds its guest has no such warning.
    let raw = bare_vm(json!({"memory": {"guest": "2Gi"},
        "resources": {"limits": {"memory": "2560Mi"}}}));
    let p = plan(&target(&raw, &kubevirt_inv("v1.5.0")), &UNDO).unwrap();
    assert!(
        !p.warnings.iter().any(|w| w.contains("do not restart")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_plan_uses_the_version_the_running_pods_reproduce() {
    // No KubeVirt CR, launcher images by digest: only v0.57.0–v0.58.0 give the pods' overhead.
    let text = include_str!("../../../tests/fixtures/features/version-by-digest.yaml");
    let mut inv = crate::model::inventory::Inventory::default();
    let objects = crate::parse::manifest::parse(text, "version-by-digest.yaml", None).unwrap();
    crate::parse::manifest::add_to_inventory(objects, &mut inv);
    let raw = serde_json::to_value(
        inv.vms
            .iter()
            .find(|v| v.metadata.name == "db")
            .map(|v| (**v).clone())
            .unwrap(),
    )
    .unwrap();
    let t = target(&raw, &inv);
    assert_eq!(t.context.version, Version::new(0, 57, 0));
    let p = plan(&t, &reserve(Some(512 * MI), Some(Strategy::Guest))).unwrap();
    // The plan's O is that version's (the pod's own), and it says which and why.
    assert_eq!(p.before.overhead_bytes, 268_435_457);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("not stated") && w.contains("v0.57.0–v0.58.0")),
        "{:?}",
        p.warnings
    );
}
