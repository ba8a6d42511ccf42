//! Cluster-wide objects beside the VMs and their pods: nodes (architecture, kernel), namespace
//! quotas and labels (the limits KubeVirt sets without a VM limit) and Harvester's settings.

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Node {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(deserialize_with = "null_default")]
    pub capacity: ResourceList,
    #[serde(deserialize_with = "null_default")]
    pub allocatable: ResourceList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_info: Option<NodeInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeInfo {
    #[serde(deserialize_with = "null_default")]
    pub kernel_version: String,
    #[serde(deserialize_with = "null_default")]
    pub architecture: String,
    #[serde(deserialize_with = "null_default")]
    pub container_runtime_version: String,
    #[serde(deserialize_with = "null_default")]
    pub kubelet_version: String,
    #[serde(deserialize_with = "null_default")]
    pub os_image: String,
}

/// A namespace ResourceQuota; only whether it constrains `limits.memory` matters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceQuota {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: ResourceQuotaSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceQuotaSpec {
    #[serde(deserialize_with = "null_default")]
    pub hard: BTreeMap<String, Quantity>,
}

impl ResourceQuota {
    pub fn limits_memory(&self) -> bool {
        self.spec.hard.contains_key("limits.memory")
    }
}

/// A Namespace; only its labels matter (KubeVirt's auto memory limits ratio).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Namespace {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
}

/// A Harvester `Setting` (`harvesterhci.io/v1beta1`, cluster scoped): `value` overrides `default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HarvesterSetting {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl HarvesterSetting {
    /// The effective value: `value` when set (even empty), else `default`.
    pub fn effective(&self) -> Option<&str> {
        self.value.as_deref().or(self.default.as_deref())
    }
}
