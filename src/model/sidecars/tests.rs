use super::*;
use crate::model::objects::{
    Binding, BindingPlugin, CpuSpec, Filesystem, Interface, NetworkConfiguration, Resources,
    SupportContainerResources, VirtualMachineOptions, Volume,
};

fn v(minor: u32) -> Version {
    Version::new(1, minor, 0)
}

fn names(s: &Sidecars) -> Vec<(&str, SidecarKind, Option<i64>)> {
    s.containers
        .iter()
        .map(|c| (c.name.as_str(), c.kind, c.limit))
        .collect()
}

fn hooks(n: usize) -> StringMap {
    let mut a = StringMap::default();
    let list: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"image": format!("hook:{i}")}))
        .collect();
    a.insert(
        keys::HOOK_SIDECARS.into(),
        serde_json::to_string(&list).unwrap(),
    );
    a
}

fn config_off() -> KubeVirtConfiguration {
    KubeVirtConfiguration {
        virtual_machine_options: Some(VirtualMachineOptions {
            disable_serial_console_log: Some(serde_json::json!({})),
        }),
        ..Default::default()
    }
}

#[test]
fn console_log_from_v11_unless_turned_off() {
    let spec = VmiSpec::default();
    let none = StringMap::default();
    let on = predict(&spec, &none, &Default::default(), v(1));
    assert_eq!(
        names(&on),
        [(
            "guest-console-log",
            SidecarKind::GuestConsoleLog,
            Some(60_000_000)
        )]
    );
    assert!(
        predict(&spec, &none, &Default::default(), Version::new(1, 0, 1))
            .containers
            .is_empty()
    );
    // The VMI turns it off, or the cluster does; the VMI's `logSerialConsole: true` wins over
    // the cluster, `autoattachSerialConsole: false` over everything.
    let mut off = spec.clone();
    off.domain.devices.log_serial_console = Some(false);
    assert!(predict(&off, &none, &Default::default(), v(6))
        .containers
        .is_empty());
    assert!(predict(&spec, &none, &config_off(), v(6))
        .containers
        .is_empty());
    let mut forced = spec.clone();
    forced.domain.devices.log_serial_console = Some(true);
    assert_eq!(
        predict(&forced, &none, &config_off(), v(6))
            .containers
            .len(),
        1
    );
    forced.domain.devices.autoattach_serial_console = Some(false);
    assert!(predict(&forced, &none, &config_off(), v(6))
        .containers
        .is_empty());
}

#[test]
fn virtiofs_80m_per_filesystem_with_a_volume() {
    let mut spec = VmiSpec::default();
    spec.domain.devices.log_serial_console = Some(false);
    for n in ["share", "cfg", "orphan"] {
        spec.domain
            .devices
            .filesystems
            .push(Filesystem { name: n.into() });
    }
    for n in ["share", "cfg"] {
        spec.volumes.push(Volume {
            name: n.into(),
            ..Default::default()
        });
    }
    let s = predict(&spec, &StringMap::default(), &Default::default(), v(5));
    assert_eq!(
        names(&s),
        [
            ("virtiofs-share", SidecarKind::Virtiofs, Some(80_000_000)),
            ("virtiofs-cfg", SidecarKind::Virtiofs, Some(80_000_000)),
        ]
    );
    assert_eq!(s.pod_level_limit(Some(1)), Some(160_000_001));
}

#[test]
fn hook_sidecars_unlimited_unless_pinned() {
    let mut spec = VmiSpec::default();
    spec.domain.devices.log_serial_console = Some(false);
    let s = predict(&spec, &hooks(2), &Default::default(), v(3));
    assert_eq!(
        names(&s),
        [
            ("hook-sidecar-0", SidecarKind::HookSidecar, None),
            ("hook-sidecar-1", SidecarKind::HookSidecar, None),
        ]
    );
    // One container without a limit: no pod-level limit at all.
    assert_eq!(s.pod_level_limit(Some(1 << 30)), None);
    assert_eq!(s.unlimited(), ["hook-sidecar-0", "hook-sidecar-1"]);
    assert_eq!(
        serde_json::to_string(&s.by_kind()).unwrap(),
        r#"{"hookSidecar":null}"#
    );
    spec.domain.cpu = Some(CpuSpec {
        dedicated_cpu_placement: Some(true),
        ..Default::default()
    });
    let pinned = predict(&spec, &hooks(1), &Default::default(), v(3));
    assert_eq!(pinned.containers[0].limit, Some(64_000_000));
}

#[test]
fn guaranteed_qos_gives_hook_sidecars_a_limit() {
    let mut spec = VmiSpec::default();
    spec.domain.resources = Resources {
        requests: crate::model::objects::ResourceList {
            memory: Some(Quantity::new("1Gi")),
            cpu: Some(Quantity::new("2")),
        },
        limits: crate::model::objects::ResourceList {
            memory: Some(Quantity::new("1Gi")),
            cpu: Some(Quantity::new("2")),
        },
        ..Default::default()
    };
    let s = predict(&spec, &hooks(1), &Default::default(), v(5));
    assert_eq!(s.limited_bytes(), 60_000_000 + 64_000_000);
    assert_eq!(s.pod_level_limit(Some(0)), Some(124_000_000));
}

#[test]
fn binding_plugin_sidecar_once_per_plugin_after_the_hooks() {
    let mut spec = VmiSpec::default();
    spec.domain.devices.log_serial_console = Some(false);
    for (iface, plugin) in [("a", "slirp"), ("b", "slirp"), ("c", "plain")] {
        spec.domain.devices.interfaces.push(Interface {
            name: iface.into(),
            binding: Some(Binding {
                name: plugin.into(),
            }),
            ..Default::default()
        });
    }
    let mut net = NetworkConfiguration::default();
    net.binding.insert(
        "slirp".into(),
        BindingPlugin {
            sidecar_image: Some("quay.io/kubevirt/network-slirp-binding:v1.3.0".into()),
            ..Default::default()
        },
    );
    net.binding.insert("plain".into(), BindingPlugin::default());
    let config = KubeVirtConfiguration {
        network: Some(net),
        ..Default::default()
    };
    let s = predict(&spec, &hooks(1), &config, v(3));
    assert_eq!(
        names(&s),
        [
            ("hook-sidecar-0", SidecarKind::HookSidecar, None),
            ("hook-sidecar-1", SidecarKind::NetworkBinding, None),
        ]
    );
}

#[test]
fn support_container_resources_override_the_defaults() {
    let limit = |kind: &str, q: &str| SupportContainerResources {
        kind: kind.into(),
        resources: Resources {
            limits: crate::model::objects::ResourceList {
                memory: Some(Quantity::new(q)),
                ..Default::default()
            },
            ..Default::default()
        },
    };
    let config = KubeVirtConfiguration {
        support_container_resources: vec![
            limit("guest-console-log", "100M"),
            limit("virtiofs", "200Mi"),
            limit("sidecars", "50M"),
        ],
        ..Default::default()
    };
    let mut spec = VmiSpec::default();
    spec.domain
        .devices
        .filesystems
        .push(Filesystem { name: "s".into() });
    spec.volumes.push(Volume {
        name: "s".into(),
        ..Default::default()
    });
    let s = predict(&spec, &hooks(1), &config, v(5));
    assert_eq!(
        names(&s),
        [
            (
                "guest-console-log",
                SidecarKind::GuestConsoleLog,
                Some(100_000_000)
            ),
            ("virtiofs-s", SidecarKind::Virtiofs, Some(200 << 20)),
            // An override gives unpinned hook sidecars a limit too.
            ("hook-sidecar-0", SidecarKind::HookSidecar, Some(50_000_000)),
        ]
    );
}

#[test]
fn the_pod_is_the_truth_native_sidecars_included() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "spec": {
            "containers": [
                {"name": "compute", "resources": {"limits": {"memory": "1Gi"}}},
                {"name": "virtiofs-share", "resources": {"limits": {"memory": "80M"}}},
                {"name": "hook-sidecar-0", "image": "net:1", "resources": {}}
            ],
            "initContainers": [
                {"name": "container-disk-binary", "resources": {"limits": {"memory": "40M"}}},
                {"name": "guest-console-log", "restartPolicy": "Always",
                 "resources": {"limits": {"memory": "60M"}}}
            ]
        }
    }))
    .unwrap();
    let mut net = NetworkConfiguration::default();
    net.binding.insert(
        "p".into(),
        BindingPlugin {
            sidecar_image: Some("net:1".into()),
            ..Default::default()
        },
    );
    let config = KubeVirtConfiguration {
        network: Some(net),
        ..Default::default()
    };
    let s = of_pod(&pod, &config);
    assert!(s.from_pod);
    assert_eq!(
        names(&s),
        [
            ("virtiofs-share", SidecarKind::Virtiofs, Some(80_000_000)),
            ("hook-sidecar-0", SidecarKind::NetworkBinding, None),
            (
                "guest-console-log",
                SidecarKind::GuestConsoleLog,
                Some(60_000_000)
            ),
        ]
    );
    assert_eq!(s.pod_level_limit(Some(1 << 30)), None);
    assert_eq!(
        serde_json::to_string(&s.by_kind()).unwrap(),
        r#"{"guestConsoleLog":60000000,"virtiofs":80000000,"networkBinding":null}"#
    );
}
