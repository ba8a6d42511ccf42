//! The containers beside `compute` in a virt-launcher pod: what KubeVirt adds for a VMI (to
//! predict a pod not there yet, or the pod a fix would make) and what a running pod has.
//!
//! The pod-level memory limit is the sum of every container's limit, native-sidecar init
//! containers included; one container without a limit leaves the pod without one.
//!
//! KubeVirt's rules (pkg/virt-controller/services/):
//! - `guest-console-log` (serialconsolelog.go, v1.1+): 60M, only while serial console logging is
//!   on: not with `autoattachSerialConsole: false`, `logSerialConsole: false`, nor (without
//!   `logSerialConsole: true`) with the KubeVirt CR's
//!   `virtualMachineOptions.disableSerialConsoleLog`. From v1.6 a native-sidecar init container.
//! - `virtiofs-<volume>` (virtiofs.go): 80M for each filesystem backed by a volume.
//! - `hook-sidecar-N` (template.go `sidecarResources`): the hook sidecars of the annotation
//!   `hooks.kubevirt.io/hookSidecars`, then one per network binding plugin with a
//!   `sidecarImage`; 64M when the VMI has dedicated CPUs or wants Guaranteed QoS, otherwise no
//!   memory limit at all.
//! - `spec.configuration.supportContainerResources` (`guest-console-log`, `virtiofs`,
//!   `sidecars`) replaces each default limit; for hook sidecars it also gives a limit where there
//!   would be none.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::objects::{keys, Container, KubeVirtConfiguration, Pod, StringMap, VmiSpec};
use super::overhead::{dedicated_cpu, guaranteed_qos};
use super::version::Version;
use crate::units::Quantity;

/// KubeVirt's default limits of the containers beside `compute`.
pub const CONSOLE_LOG_BYTES: i64 = 60_000_000;
pub const VIRTIOFS_BYTES: i64 = 80_000_000;
pub const HOOK_SIDECAR_BYTES: i64 = 64_000_000;

/// What a container beside `compute` is for; the JSON key of `sidecarBytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SidecarKind {
    /// `guest-console-log`: the serial console's log.
    GuestConsoleLog,
    /// `virtiofs-<volume>`: one virtiofsd per shared filesystem.
    Virtiofs,
    /// `hook-sidecar-N` from the `hooks.kubevirt.io/hookSidecars` annotation.
    HookSidecar,
    /// `hook-sidecar-N` running a network binding plugin's sidecar image.
    NetworkBinding,
    /// Any other container the pod runs beside `compute`.
    Other,
}

impl SidecarKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SidecarKind::GuestConsoleLog => "guestConsoleLog",
            SidecarKind::Virtiofs => "virtiofs",
            SidecarKind::HookSidecar => "hookSidecar",
            SidecarKind::NetworkBinding => "networkBinding",
            SidecarKind::Other => "other",
        }
    }

    /// In words, as the dashboard shows it.
    pub fn words(self) -> &'static str {
        match self {
            SidecarKind::GuestConsoleLog => "guest-console-log",
            SidecarKind::Virtiofs => "virtiofs",
            SidecarKind::HookSidecar => "hook sidecars",
            SidecarKind::NetworkBinding => "binding plugin sidecars",
            SidecarKind::Other => "other containers",
        }
    }
}

/// One container beside `compute` and its memory limit (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beside {
    pub name: String,
    pub kind: SidecarKind,
    pub limit: Option<i64>,
}

/// The containers beside `compute`, predicted or read from the pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sidecars {
    pub containers: Vec<Beside>,
    /// Read from the running pod (else predicted from the VMI and the KubeVirt CR).
    pub from_pod: bool,
}

impl Sidecars {
    /// The sum of the limits the containers have (those without one add nothing).
    pub fn limited_bytes(&self) -> i64 {
        self.containers.iter().filter_map(|c| c.limit).sum()
    }

    /// Names of the containers without a memory limit.
    pub fn unlimited(&self) -> Vec<&str> {
        self.containers
            .iter()
            .filter(|c| c.limit.is_none())
            .map(|c| c.name.as_str())
            .collect()
    }

    /// The pod-level limit given compute's: the sum of all limits, `None` when one is missing.
    pub fn pod_level_limit(&self, compute: Option<i64>) -> Option<i64> {
        let mut sum = compute?;
        for c in &self.containers {
            sum = sum.checked_add(c.limit?)?;
        }
        Some(sum)
    }

    /// Bytes per kind (`null` for a kind with an unlimited container), for JSON.
    pub fn by_kind(&self) -> BTreeMap<SidecarKind, Option<i64>> {
        let mut out: BTreeMap<SidecarKind, Option<i64>> = BTreeMap::new();
        for c in &self.containers {
            let slot = out.entry(c.kind).or_insert(Some(0));
            *slot = slot.zip(c.limit).map(|(a, b)| a + b);
        }
        out
    }
}

/// The limit `supportContainerResources` gives a container type, when it gives one.
fn support_limit(config: &KubeVirtConfiguration, kind: &str) -> Option<i64> {
    config
        .support_container_resources
        .iter()
        .find(|s| s.kind == kind)
        .and_then(|s| s.resources.limits.memory.as_ref())
        .and_then(|q| q.bytes().ok())
}

fn console_log_on(spec: &VmiSpec, config: &KubeVirtConfiguration) -> bool {
    let d = &spec.domain.devices;
    if d.autoattach_serial_console == Some(false) {
        return false;
    }
    if let Some(on) = d.log_serial_console {
        return on;
    }
    config
        .virtual_machine_options
        .as_ref()
        .is_none_or(|o| o.disable_serial_console_log.is_none())
}

/// How many hook sidecars the annotation asks for (a JSON list; unreadable: none).
fn hook_sidecar_count(annotations: &StringMap) -> usize {
    annotations
        .get(keys::HOOK_SIDECARS)
        .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(v).ok())
        .map_or(0, |l| l.len())
}

/// The network binding plugins of the VMI's interfaces that run a sidecar, once each.
fn binding_sidecar_plugins<'a>(
    spec: &'a VmiSpec,
    config: &'a KubeVirtConfiguration,
) -> BTreeSet<&'a str> {
    let plugins = config.network.as_ref().map(|n| &n.binding);
    spec.domain
        .devices
        .interfaces
        .iter()
        .filter_map(|i| i.binding.as_ref())
        .map(|b| b.name.as_str())
        .filter(|name| {
            plugins
                .and_then(|p| p.get(*name))
                .and_then(|p| p.sidecar_image.as_deref())
                .is_some_and(|img| !img.is_empty())
        })
        .collect()
}

/// The containers KubeVirt `v` puts beside `compute` for this VMI spec and its annotations.
pub fn predict(
    spec: &VmiSpec,
    annotations: &StringMap,
    config: &KubeVirtConfiguration,
    v: Version,
) -> Sidecars {
    let mut containers = Vec::new();
    if v >= Version::new(1, 1, 0) && console_log_on(spec, config) {
        containers.push(Beside {
            name: "guest-console-log".into(),
            kind: SidecarKind::GuestConsoleLog,
            limit: Some(support_limit(config, "guest-console-log").unwrap_or(CONSOLE_LOG_BYTES)),
        });
    }
    let virtiofs = support_limit(config, "virtiofs").unwrap_or(VIRTIOFS_BYTES);
    for fs in &spec.domain.devices.filesystems {
        if spec.volumes.iter().any(|v| v.name == fs.name) {
            containers.push(Beside {
                name: format!("virtiofs-{}", fs.name),
                kind: SidecarKind::Virtiofs,
                limit: Some(virtiofs),
            });
        }
    }
    let pinned = dedicated_cpu(spec) || guaranteed_qos(spec, v);
    let hook_limit = match support_limit(config, "sidecars") {
        Some(l) => Some(l),
        None => pinned.then_some(HOOK_SIDECAR_BYTES),
    };
    let hooks = hook_sidecar_count(annotations);
    let kinds = std::iter::repeat_n(SidecarKind::HookSidecar, hooks).chain(
        binding_sidecar_plugins(spec, config)
            .into_iter()
            .map(|_| SidecarKind::NetworkBinding),
    );
    for (i, kind) in kinds.enumerate() {
        containers.push(Beside {
            name: format!("hook-sidecar-{i}"),
            kind,
            limit: hook_limit,
        });
    }
    Sidecars {
        containers,
        from_pod: false,
    }
}

/// The kind of a running container, by the names KubeVirt gives them (a `hook-sidecar-N`
/// running a binding plugin's image is that plugin's).
fn kind_of(c: &Container, config: &KubeVirtConfiguration) -> SidecarKind {
    let plugin_image = |img: &str| {
        config.network.as_ref().is_some_and(|n| {
            n.binding
                .values()
                .any(|p| p.sidecar_image.as_deref() == Some(img))
        })
    };
    match c.name.as_str() {
        "guest-console-log" => SidecarKind::GuestConsoleLog,
        n if n.starts_with("virtiofs-") => SidecarKind::Virtiofs,
        n if n.starts_with("hook-sidecar-") && plugin_image(&c.image) => {
            SidecarKind::NetworkBinding
        }
        n if n.starts_with("hook-sidecar-") => SidecarKind::HookSidecar,
        _ => SidecarKind::Other,
    }
}

fn limit_of(c: &Container) -> Option<i64> {
    c.resources
        .limits
        .memory
        .as_ref()
        .and_then(|q| Quantity::bytes(q).ok())
}

/// The containers a running pod has beside `compute`: its other containers and its native
/// sidecars (init containers with `restartPolicy: Always`).
pub fn of_pod(pod: &Pod, config: &KubeVirtConfiguration) -> Sidecars {
    let regular = pod.spec.containers.iter().filter(|c| c.name != "compute");
    let native = pod
        .spec
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    Sidecars {
        containers: regular
            .chain(native)
            .map(|c| Beside {
                name: c.name.clone(),
                kind: kind_of(c, config),
                limit: limit_of(c),
            })
            .collect(),
        from_pod: true,
    }
}

#[cfg(test)]
mod tests;
