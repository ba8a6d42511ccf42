use super::*;
use crate::workload::Shape;

#[test]
fn a_hotplug_capable_vmi_has_two_guest_mappings() {
    let vmi = json!({"spec": {"domain": {"memory": {"guest": "3Gi", "maxGuest": "8Gi"}}},
                     "status": {"memory": {"guestAtBoot": "2Gi"}}});
    let m = guest_mappings(&vmi).unwrap();
    assert_eq!((m.boot, m.virtio_mem), (2 << 30, 6 << 30));
    let shape = Shape {
        guest: 3 << 30,
        vcpus: 1,
        libvirt_comm: "virtqemud",
        qemu_comm: "qemu-kvm",
        seed: 1,
        migration_target: false,
        virtio_mem: Some(m),
        guest_backing: Default::default(),
    };
    // 2.5Gi resident: the boot RAM full, half a GiB of the plugged 1Gi in the device.
    assert_eq!(
        shape.guest_mappings(5 << 29),
        vec![(2 << 30, 2 << 30), (1 << 29, 6 << 30)]
    );
    let plain = json!({"spec": {"domain": {"memory": {"guest": "3Gi"}}}});
    assert!(guest_mappings(&plain).is_none());
}

#[test]
fn an_instance_type_request_is_computed_in_float32() {
    let mut w = World::new(&Scenario::default(), std::env::temp_dir()).unwrap();
    let s = Scenario {
        instancetypes: vec![crate::scenario::InstancetypeDef {
            name: "u1.large".into(),
            guest: crate::units::Quantity::new("4Gi"),
            overcommit_percent: 15,
            cpus: 2,
        }],
        ..Scenario::default()
    };
    create_instancetypes(&mut w, &s, "2026-01-01T00:00:00Z").unwrap();
    let vm = json!({"spec": {"instancetype": {"name": "u1.large"},
                             "template": {"spec": {"domain": {"devices": {}}}}}});
    let spec = with_instancetype(&w, &vm);
    assert_eq!(spec["domain"]["memory"]["guest"], "4Gi");
    // float32(4Gi) × float32(0.85) rounds to 3,650,722,304 (4Gi × 85 / 100 is 3,650,722,201.6).
    assert_eq!(
        spec["domain"]["resources"]["requests"]["memory"],
        "3650722304"
    );
}
