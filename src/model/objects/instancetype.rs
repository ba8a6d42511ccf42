//! Instance types (`instancetype.kubevirt.io/v1beta1`): a VM that names one in
//! `spec.instancetype` has no memory values in its template; KubeVirt takes the guest (and,
//! with `memory.overcommitPercent`, the request) from the instance type when it starts the VMI.

use serde::{Deserialize, Serialize};

use super::{null_default, ObjectMeta};
use crate::units::Quantity;

/// `spec.instancetype` of a VM: the instance type's name and kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstancetypeMatcher {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `VirtualMachineClusterInstancetype` (KubeVirt's default when empty) or
    /// `VirtualMachineInstancetype` (in the VM's namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl InstancetypeMatcher {
    /// Whether it names a cluster-wide instance type (KubeVirt's default kind).
    pub fn cluster_wide(&self) -> bool {
        match self.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => true,
            Some(k) => k.starts_with("virtualmachineclusterinstancetype"),
        }
    }
}

/// The memory part of an instance type's spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstancetypeMemory {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<Quantity>,
    /// The VMI's memory request is `guest × (1 − p/100)` when `p > 0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overcommit_percent: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_guest: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugepages: Option<super::Hugepages>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstancetypeSpec {
    #[serde(deserialize_with = "null_default")]
    pub memory: InstancetypeMemory,
}

/// `VirtualMachineInstancetype` (namespaced).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualMachineInstancetype {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: InstancetypeSpec,
}

/// `VirtualMachineClusterInstancetype` (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualMachineClusterInstancetype {
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "null_default")]
    pub spec: InstancetypeSpec,
}

/// Either kind, as the inventory keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instancetype {
    /// `None` for a cluster-wide instance type.
    pub namespace: Option<String>,
    pub name: String,
    pub memory: InstancetypeMemory,
}

impl From<VirtualMachineInstancetype> for Instancetype {
    fn from(o: VirtualMachineInstancetype) -> Instancetype {
        Instancetype {
            namespace: Some(o.metadata.namespace),
            name: o.metadata.name,
            memory: o.spec.memory,
        }
    }
}

impl From<VirtualMachineClusterInstancetype> for Instancetype {
    fn from(o: VirtualMachineClusterInstancetype) -> Instancetype {
        Instancetype {
            namespace: None,
            name: o.metadata.name,
            memory: o.spec.memory,
        }
    }
}

impl Instancetype {
    /// Whether this is the instance type `m` names for a VM in `namespace`.
    pub fn is(&self, m: &InstancetypeMatcher, namespace: &str) -> bool {
        self.name == m.name
            && match &self.namespace {
                None => m.cluster_wide(),
                Some(ns) => !m.cluster_wide() && ns == namespace,
            }
    }
}
