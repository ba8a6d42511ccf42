//! Lean, typed views of the Kubernetes and KubeVirt objects the tool reads.
//!
//! Only the fields the memory model, the joiner and the fixer need are kept: a cluster with
//! thousands of VMs must fit in a few tens of MiB. Every field is optional on input
//! (`#[serde(default)]`), quantities keep their original spelling ([`Quantity`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::phase::{PodPhase, VmPhase};
use crate::units::Quantity;

pub use super::string_map::StringMap;

/// A list without spare capacity. Decoding from text gives no length up front, so a vector
/// grows by doubling (one condition or interface takes room for four); thousands of objects
/// each holding a few such lists made that slack a large share of their memory.
///
/// An explicit `null` is an empty list, as Kubernetes' Go decoder reads it (`gpus: null` is
/// valid in a VMI and must not fail the object, nor a folder of them).
pub(crate) fn exact_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut v = Option::<Vec<T>>::deserialize(d)?.unwrap_or_default();
    v.shrink_to_fit();
    Ok(v)
}

mod container_state;
pub use container_state::{ContainerState, Terminated};
mod cluster_objects;
pub use cluster_objects::{
    HarvesterSetting, Namespace, Node, NodeInfo, NodeStatus, ResourceQuota, ResourceQuotaSpec,
};
mod kubevirt_cr;
pub use kubevirt_cr::{
    BindingPlugin, ComputeOverhead, DeveloperConfiguration, KubeVirt, KubeVirtConfiguration,
    KubeVirtSpec, KubeVirtStatus, NetworkConfiguration, SupportContainerResources,
    VirtualMachineOptions,
};
mod instancetype;
pub use instancetype::{
    Instancetype, InstancetypeMatcher, InstancetypeMemory, InstancetypeSpec,
    VirtualMachineClusterInstancetype, VirtualMachineInstancetype,
};

/// A field that an explicit `null` leaves at its zero value, as in Go (`resources: null`,
/// `hard: null`, `name: null`).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Labels and annotations keep only the keys some part of the tool reads: objects in real
/// clusters carry many more (last-applied configurations, volume claim templates), often
/// kilobytes per object, and thousands of objects are held at once.
fn read_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StringMap, D::Error> {
    StringMap::deserialize_keeping(d, |k| keys::READ.contains(&k))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "null_default")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "null_default")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "null_default")]
    pub resource_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// Only the labels the tool reads ([`keys::READ`]); the others are dropped when decoding.
    #[serde(
        deserialize_with = "read_keys",
        skip_serializing_if = "StringMap::is_empty"
    )]
    pub labels: StringMap,
    /// Only the annotations the tool reads ([`keys::READ`]), as for labels.
    #[serde(
        deserialize_with = "read_keys",
        skip_serializing_if = "StringMap::is_empty"
    )]
    pub annotations: StringMap,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(deserialize_with = "null_default")]
    pub api_version: String,
    #[serde(deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
}

/// `requests`/`limits` maps; only memory and cpu matter here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceList {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resources {
    #[serde(deserialize_with = "null_default")]
    pub requests: ResourceList,
    #[serde(deserialize_with = "null_default")]
    pub limits: ResourceList,
    /// KubeVirt: do not add the overhead to the pod's memory request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overcommit_guest_overhead: Option<bool>,
}

// ---------------------------------------------------------------- KubeVirt

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualMachine {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: VmSpec,
    #[serde(deserialize_with = "null_default")]
    pub status: VmStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VmSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_strategy: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub template: VmTemplate,
    /// `spec.instancetype`: the (Cluster)Instancetype that gives the guest its memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instancetype: Option<InstancetypeMatcher>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VmTemplate {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: VmiSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VmStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub printable_status: Option<VmPhase>,
    /// Only `RestartRequired` is read (KubeVirt sets it when a change waits for a restart).
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A status condition: its type and whether it holds (`"True"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
}

impl VmStatus {
    /// KubeVirt's `RestartRequired` condition is `True`.
    pub fn restart_required(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.kind == "RestartRequired" && c.status.eq_ignore_ascii_case("true"))
    }
}

/// The VMI spec, also the VM's `spec.template.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VmiSpec {
    #[serde(deserialize_with = "null_default")]
    pub domain: DomainSpec,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Boxed, as are `launchSecurity` and `migrationState`: most VMs have none, and an absent
    /// boxed part takes a pointer's room in each of thousands of objects, not its full size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Box<Probe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Box<Probe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DomainSpec {
    #[serde(deserialize_with = "null_default")]
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuSpec>,
    #[serde(deserialize_with = "null_default")]
    pub devices: Devices,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_security: Option<Box<LaunchSecurity>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MemorySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_guest: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugepages: Option<Hugepages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_overhead: Option<ReservedOverhead>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Hugepages {
    #[serde(deserialize_with = "null_default")]
    pub page_size: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReservedOverhead {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_overhead: Option<Quantity>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CpuSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedicated_cpu_placement: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Devices {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_graphics_device: Option<bool>,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub host_devices: Vec<serde_json::Value>,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<serde_json::Value>,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// `false` turns off the guest-console-log sidecar (v1.1+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_serial_console: Option<bool>,
    /// `false`: no serial console, so no guest-console-log sidecar either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_serial_console: Option<bool>,
    /// virtiofs shares: one `virtiofs-<name>` container each.
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub filesystems: Vec<Filesystem>,
    /// `tpm: {}` enables a vTPM; `tpm: {enabled: false}` (v1.6+) disables it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<Tpm>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filesystem {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Tpm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Interface {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov: Option<serde_json::Value>,
    /// Core passt binding before v1.3 (`passt: {}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passt: Option<serde_json::Value>,
    /// Core passt binding from v1.8 (`passtBinding: {}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passt_binding: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masquerade: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Binding {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LaunchSecurity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sev: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downward_metrics: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_get: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_agent_ping: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualMachineInstance {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: VmiSpec,
    #[serde(deserialize_with = "null_default")]
    pub status: VmiStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VmiStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<VmPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// pod UID → node name; two entries while migrating.
    #[serde(skip_serializing_if = "StringMap::is_empty")]
    #[serde(deserialize_with = "null_default")]
    pub active_pods: StringMap,
    /// Boxed: only migrating VMIs have it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_state: Option<Box<MigrationState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<VmiMemoryStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MigrationState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VmiMemoryStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_at_boot: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_current: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_requested: Option<Quantity>,
    /// v1.8+: KubeVirt's computed overhead O.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead: Option<Quantity>,
}

// ---------------------------------------------------------------- core/v1

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pod {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: PodSpec,
    #[serde(deserialize_with = "null_default")]
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(deserialize_with = "exact_vec")]
    pub containers: Vec<Container>,
    /// Init containers; those with `restartPolicy: Always` are native sidecars that run beside
    /// `compute` (KubeVirt v1.6+ runs `guest-console-log` as one).
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "null_default")]
    pub image: String,
    #[serde(deserialize_with = "null_default")]
    pub resources: Resources,
    /// `Always` on an init container makes it a native sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<PodPhase>,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    /// Init containers, native sidecars among them (KubeVirt v1.6+ runs `guest-console-log`
    /// as one).
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `containerd://<id>`. The API spells it `containerID` (not the camelCase `containerId`,
    /// still accepted).
    #[serde(
        rename = "containerID",
        alias = "containerId",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub container_id: String,
    /// How the container ended, when it has (`state.terminated`).
    #[serde(
        skip_serializing_if = "ContainerState::is_empty",
        deserialize_with = "null_default"
    )]
    pub state: ContainerState,
    /// How its previous run ended, when it restarted (`lastState.terminated`).
    #[serde(
        skip_serializing_if = "ContainerState::is_empty",
        deserialize_with = "null_default"
    )]
    pub last_state: ContainerState,
}

/// Well-known labels and annotations.
pub mod keys {
    pub const HARVESTER_RESERVED_MEMORY: &str = "harvesterhci.io/reservedMemory";
    pub const HARVESTER_HOTPLUG: &str = "harvesterhci.io/enableCPUAndMemoryHotplug";
    pub const LAUNCHER_LABEL: &str = "kubevirt.io";
    pub const LAUNCHER_LABEL_VALUE: &str = "virt-launcher";
    pub const CREATED_BY: &str = "kubevirt.io/created-by";
    pub const MEMORY_OVERHEAD_ANNOTATION: &str = "kubevirt.io/memory-overhead-bytes";
    pub const VM_NAME_LABEL: &str = "vm.kubevirt.io/name";
    /// Where `fix` keeps the values it replaced, so `--undo` can restore them.
    pub const UNDO_ANNOTATION: &str = "vmmem.kubectl.io/previous";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "kubectl-vmmem";
    pub const SETTING_RATIO: &str = "additional-guest-memory-overhead-ratio";
    pub const SETTING_OVERCOMMIT: &str = "overcommit-config";
    pub const SETTING_SERVER_VERSION: &str = "server-version";
    /// VMI (and VM template) annotation: a JSON list of hook sidecars.
    pub const HOOK_SIDECARS: &str = "hooks.kubevirt.io/hookSidecars";
    /// Namespace label: the ratio of KubeVirt's automatic memory limit to the request.
    pub const AUTO_MEMORY_LIMITS_RATIO: &str = "alpha.kubevirt.io/auto-memory-limits-ratio";

    /// The labels and annotations the tool reads on the objects it lists; decoding drops the
    /// others (see `ObjectMeta`). A key read anywhere must be listed here.
    pub const READ: &[&str] = &[
        LAUNCHER_LABEL,
        CREATED_BY,
        VM_NAME_LABEL,
        HARVESTER_RESERVED_MEMORY,
        HARVESTER_HOTPLUG,
        MEMORY_OVERHEAD_ANNOTATION,
        UNDO_ANNOTATION,
        HOOK_SIDECARS,
        AUTO_MEMORY_LIMITS_RATIO,
    ];
}
