//! The `kubevirt` CR (`kubevirt.io/v1`, kind KubeVirt): the version it reports and the parts of
//! its configuration that change the memory picture.

use serde::{Deserialize, Serialize};

use super::*;

/// The `kubevirt` CR (`kubevirt.io/v1`, kind KubeVirt).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KubeVirt {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: KubeVirtSpec,
    #[serde(deserialize_with = "null_default")]
    pub status: KubeVirtStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KubeVirtSpec {
    #[serde(deserialize_with = "null_default")]
    pub configuration: KubeVirtConfiguration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KubeVirtConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_guest_memory_overhead_ratio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_configuration: Option<DeveloperConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_rollout_strategy: Option<String>,
    /// `disableSerialConsoleLog: {}` turns the guest-console-log sidecar off cluster-wide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_machine_options: Option<VirtualMachineOptions>,
    /// Overrides of the containers beside `compute` (`type`: guest-console-log, virtiofs,
    /// sidecars, …).
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub support_container_resources: Vec<SupportContainerResources>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualMachineOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_serial_console_log: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SupportContainerResources {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub resources: Resources,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeveloperConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overcommit: Option<i64>,
    #[serde(deserialize_with = "exact_vec", skip_serializing_if = "Vec::is_empty")]
    pub feature_gates: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkConfiguration {
    /// binding plugin name → plugin
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[serde(deserialize_with = "null_default")]
    pub binding: BTreeMap<String, BindingPlugin>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BindingPlugin {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_resource_overhead: Option<ComputeOverhead>,
    /// A plugin with a sidecar image runs it beside `compute` (as `hook-sidecar-N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar_image: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComputeOverhead {
    #[serde(deserialize_with = "null_default")]
    pub requests: ResourceList,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KubeVirtStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_kube_virt_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}
