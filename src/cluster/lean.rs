//! The model's lean object types as kube-rs resources, so watchers and reflectors decode API
//! JSON straight into them (no `serde_json::Value` or full k8s-openapi objects kept in memory).
//!
//! [`Lean<T>`] carries the object plus the three metadata fields kube-rs itself needs (name,
//! namespace, resourceVersion) in kube's own `ObjectMeta`.

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::Arc;

use kube::core::DynamicResourceScope;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::model::objects::{
    HarvesterSetting, KubeVirt, Namespace, Node, ObjectMeta, Pod, ResourceQuota, VirtualMachine,
    VirtualMachineClusterInstancetype, VirtualMachineInstance, VirtualMachineInstancetype,
};

/// A lean object type the API serves: where it lives and how to read its metadata.
pub trait Kind: DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    const GROUP: &'static str;
    const VERSION: &'static str;
    const KIND: &'static str;
    const PLURAL: &'static str;
    const NAMESPACED: bool;
    fn lean_meta(&self) -> &ObjectMeta;
}

macro_rules! kind {
    ($ty:ty, $group:expr, $version:expr, $kind:expr, $plural:expr, $ns:expr) => {
        impl Kind for $ty {
            const GROUP: &'static str = $group;
            const VERSION: &'static str = $version;
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            const NAMESPACED: bool = $ns;
            fn lean_meta(&self) -> &ObjectMeta {
                &self.metadata
            }
        }
    };
}

kind!(
    VirtualMachine,
    "kubevirt.io",
    "v1",
    "VirtualMachine",
    "virtualmachines",
    true
);
kind!(
    VirtualMachineInstance,
    "kubevirt.io",
    "v1",
    "VirtualMachineInstance",
    "virtualmachineinstances",
    true
);
kind!(KubeVirt, "kubevirt.io", "v1", "KubeVirt", "kubevirts", true);
kind!(Pod, "", "v1", "Pod", "pods", true);
kind!(Node, "", "v1", "Node", "nodes", false);
kind!(Namespace, "", "v1", "Namespace", "namespaces", false);
kind!(
    ResourceQuota,
    "",
    "v1",
    "ResourceQuota",
    "resourcequotas",
    true
);
kind!(
    VirtualMachineInstancetype,
    "instancetype.kubevirt.io",
    "v1beta1",
    "VirtualMachineInstancetype",
    "virtualmachineinstancetypes",
    true
);
kind!(
    VirtualMachineClusterInstancetype,
    "instancetype.kubevirt.io",
    "v1beta1",
    "VirtualMachineClusterInstancetype",
    "virtualmachineclusterinstancetypes",
    false
);
kind!(
    HarvesterSetting,
    "harvesterhci.io",
    "v1beta1",
    "Setting",
    "settings",
    false
);

/// A lean object with the metadata kube-rs needs to key, resume and store it. The object is
/// shared: snapshots of a watch cache hand out the same objects, not copies.
#[derive(Debug, Clone)]
pub struct Lean<T> {
    meta: kube::core::ObjectMeta,
    pub obj: Arc<T>,
}

impl<T: Kind> Lean<T> {
    pub fn new(obj: T) -> Self {
        let m = obj.lean_meta();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let meta = kube::core::ObjectMeta {
            name: non_empty(&m.name),
            namespace: non_empty(&m.namespace),
            resource_version: non_empty(&m.resource_version),
            ..Default::default()
        };
        Lean {
            meta,
            obj: Arc::new(obj),
        }
    }
}

impl<'de, T: Kind> Deserialize<'de> for Lean<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Lean::new)
    }
}

impl<T: Kind> Resource for Lean<T> {
    type DynamicType = ();
    type Scope = DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::VERSION)
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::PLURAL)
    }
    fn meta(&self) -> &kube::core::ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut kube::core::ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    #[test]
    fn decodes_api_json_into_lean_types() {
        let json = r#"{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine",
            "metadata":{"name":"web","namespace":"prod","resourceVersion":"42","managedFields":[{"x":1}]},
            "spec":{"template":{"spec":{"domain":{"memory":{"guest":"1Gi"}}}}}}"#;
        let vm: Lean<VirtualMachine> = serde_json::from_str(json).unwrap();
        assert_eq!(vm.name_any(), "web");
        assert_eq!(vm.namespace().as_deref(), Some("prod"));
        assert_eq!(vm.resource_version().as_deref(), Some("42"));
        assert_eq!(vm.obj.metadata.name, "web");
        assert_eq!(
            Lean::<VirtualMachine>::url_path(&(), Some("prod")),
            "/apis/kubevirt.io/v1/namespaces/prod/virtualmachines"
        );
        assert_eq!(Lean::<Node>::url_path(&(), None), "/api/v1/nodes");
        assert_eq!(
            Lean::<HarvesterSetting>::api_version(&()),
            "harvesterhci.io/v1beta1"
        );
    }

    #[test]
    fn pods_keep_how_their_containers_ended() {
        let json = r#"{"apiVersion":"v1","kind":"Pod",
            "metadata":{"name":"virt-launcher-vm4-7xq9z","namespace":"default","uid":"u1"},
            "status":{"phase":"Failed","containerStatuses":[{"name":"compute",
                "containerID":"containerd://abc","restartCount":1,
                "state":{"terminated":{"exitCode":137,"reason":"OOMKilled",
                    "startedAt":"2024-05-21T08:00:05Z","finishedAt":"2024-05-21T09:14:03Z"}},
                "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled",
                    "finishedAt":"2024-05-21T07:00:00Z","message":"not kept"}}}]}}"#;
        let pod: Lean<Pod> = serde_json::from_str(json).unwrap();
        let c = &pod.obj.status.container_statuses[0];
        let now = c.state.terminated.as_ref().unwrap();
        assert_eq!(now.reason.as_deref(), Some("OOMKilled"));
        assert_eq!(now.finished_at.as_deref(), Some("2024-05-21T09:14:03Z"));
        assert_eq!(now.exit_code, Some(137));
        let last = c.last_state.terminated.as_ref().unwrap();
        assert_eq!(last.finished_at.as_deref(), Some("2024-05-21T07:00:00Z"));
        // A running container's state has no `terminated`; `null` reads as nothing.
        let json = r#"{"metadata":{"name":"p"},"status":{"containerStatuses":[{"name":"compute",
            "state":{"running":{"startedAt":"2024-05-21T08:00:05Z"}},"lastState":null}]}}"#;
        let pod: Lean<Pod> = serde_json::from_str(json).unwrap();
        let c = &pod.obj.status.container_statuses[0];
        assert!(c.state.is_empty() && c.last_state.is_empty());
    }
}
