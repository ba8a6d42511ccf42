//! Which VM an OOM report belongs to, and what its spec says: pod UID → VMI/VM, guest size,
//! configured memory and KubeVirt's overhead O, from an [`Inventory`].

use serde::Serialize;

use super::hotplug::GuestRunning;
use super::inventory::Inventory;
use super::objects::{keys, Pod, VirtualMachine, VirtualMachineInstance, VmiSpec};
use super::oom_event::{ContainerRuntime, OomEvent};
use super::overhead::{overhead, process_role, ClusterInputs, Overhead};
use super::version::{detect, DetectedVersion, Version};

/// Whose kernel logs were read for OOM reports: with them, a VM with no live reading still has
/// a known kill count (0 when its node's log names none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LogsRead {
    #[default]
    None,
    /// Logs of nodes not named (a bundle's `dmesg`): taken to cover every node.
    All,
    Nodes(std::collections::BTreeSet<String>),
}

impl LogsRead {
    pub fn covers(&self, node: Option<&str>) -> bool {
        match self {
            LogsRead::None => false,
            LogsRead::All => true,
            LogsRead::Nodes(nodes) => node.is_some_and(|n| nodes.contains(n)),
        }
    }
}

/// A VM by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmRef {
    pub namespace: String,
    pub name: String,
}

/// What the inventory says about the VM of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFacts {
    pub vm: VmRef,
    /// Guest RAM in bytes (`memory.guest`, else requests, else limits).
    pub guest_bytes: Option<u64>,
    /// The memory the user configured (`limits.memory`, else the guest size): the key of the
    /// size table of reservations.
    pub configured_bytes: Option<u64>,
    /// KubeVirt's O for this VMI as applied (an overhead ratio included): observed
    /// (annotation/status) or from the formula.
    pub overhead_bytes: Option<u64>,
    /// The room an overhead ratio adds to O (O before the ratio × (ratio − 1)), by the formula;
    /// 0 without a ratio or without the VMI's spec.
    pub ratio_room: i64,
    /// The memory limits of the containers beside `compute` that share the pod's limit (0 when
    /// the pod is not known).
    pub sidecars: i64,
    /// The Harvester reservation annotation, when set.
    pub reserved_annotation: Option<String>,
    /// Guest RAM is backed by hugepages: charged to hugetlb, not to the memory cgroup.
    pub hugepages: bool,
    /// The pod's containers, to name the one a kill was in.
    pub pod_containers: Vec<PodContainer>,
}

/// The KubeVirt version to reason with: the inventory's KubeVirt CR, else a launcher image tag,
/// else the flag, else the newest known (assumed).
pub fn kubevirt_version(inv: Option<&Inventory>, flag: Option<Version>) -> DetectedVersion {
    let cr = inv
        .and_then(|i| i.kubevirts.first())
        .and_then(|k| k.status.observed_kube_virt_version.as_deref());
    let images = inv
        .into_iter()
        .flat_map(|i| i.pods.iter())
        .flat_map(|p| p.spec.containers.iter())
        .map(|c| c.image.as_str());
    detect(cr, images, flag)
}

/// Whether the inventory comes from a Harvester cluster.
pub fn is_harvester(inv: Option<&Inventory>) -> bool {
    inv.is_some_and(|i| i.harvester_settings.is_some())
}

/// Find the VM whose virt-launcher pod had this UID.
pub fn vm_for_pod(inv: &Inventory, pod_uid: &str, version: Version) -> Option<VmFacts> {
    let pod = inv
        .pods
        .iter()
        .map(|p| &**p)
        .find(|p| p.metadata.uid == pod_uid);
    let vmi = pod.and_then(|p| vmi_of_pod(inv, p)).or_else(|| {
        inv.vmis
            .iter()
            .map(|v| &**v)
            .find(|v| v.status.active_pods.contains_key(pod_uid))
    });
    let namespace = vmi
        .map(|v| v.metadata.namespace.clone())
        .or_else(|| pod.map(|p| p.metadata.namespace.clone()))?;
    let vmi_name = vmi
        .map(|v| v.metadata.name.clone())
        .or_else(|| pod.and_then(|p| p.metadata.labels.get(keys::VM_NAME_LABEL).cloned()))?;
    let vm = inv
        .vms
        .iter()
        .map(|vm| &**vm)
        .find(|vm| vm.metadata.namespace == namespace && vm.metadata.name == vmi_name);
    Some(facts_of(inv, pod, vmi, vm, (namespace, vmi_name), version))
}

/// The VM of a launcher pod that is gone from the inventory, by the VM's (or VMI's) UID
/// remembered for that pod: its facts from the VM's spec as it is now.
pub fn vm_for_gone_pod(inv: &Inventory, vm_uid: &str, version: Version) -> Option<VmFacts> {
    let vm = inv
        .vms
        .iter()
        .map(|v| &**v)
        .find(|v| v.metadata.uid == vm_uid);
    let vmi = inv.vmis.iter().map(|v| &**v).find(|v| {
        v.metadata.uid == vm_uid
            || vm.is_some_and(|vm| {
                vm.metadata.namespace == v.metadata.namespace && vm.metadata.name == v.metadata.name
            })
    });
    let meta = vm.map(|v| &v.metadata).or(vmi.map(|v| &v.metadata))?;
    let name = (meta.namespace.clone(), meta.name.clone());
    Some(facts_of(inv, None, vmi, vm, name, version))
}

/// What the objects of one VM say (its pod, VMI and VM, any of them missing).
fn facts_of(
    inv: &Inventory,
    pod: Option<&Pod>,
    vmi: Option<&VirtualMachineInstance>,
    vm: Option<&VirtualMachine>,
    (namespace, vmi_name): (String, String),
    version: Version,
) -> VmFacts {
    let spec: Option<&VmiSpec> = vmi.map(|v| &v.spec).or(vm.map(|v| &v.spec.template.spec));
    // What the running qemu has (a memory hotplug raises the VMI before qemu has it).
    let running = vmi
        .and_then(|v| GuestRunning::of(v).current)
        .and_then(|b| u64::try_from(b).ok());
    let guest_bytes = running.or_else(|| spec.and_then(guest_of));
    let configured_bytes = spec
        .and_then(|s| bytes(&s.domain.resources.limits.memory))
        .or(guest_bytes);
    let formula = vmi.map(|v| overhead(&v.spec, version, &cluster_inputs(inv)));
    let overhead_bytes = pod
        .and_then(observed_overhead)
        .or_else(|| {
            vmi.and_then(|v| v.status.memory.as_ref())
                .and_then(|m| bytes(&m.memory_overhead))
        })
        .or_else(|| u64::try_from(formula.as_ref()?.total).ok());
    // As `list` counts them: the limits of the pod's containers beside compute.
    let kubevirt_config = inv
        .kubevirts
        .first()
        .map(|k| k.spec.configuration.clone())
        .unwrap_or_default();
    let sidecars = pod.map_or(0, |p| {
        crate::model::sidecars::of_pod(p, &kubevirt_config).limited_bytes()
    });
    VmFacts {
        vm: VmRef {
            namespace,
            name: vm.map_or(vmi_name, |v| v.metadata.name.clone()),
        },
        guest_bytes,
        configured_bytes,
        overhead_bytes,
        ratio_room: formula.as_ref().map_or(0, Overhead::ratio_room),
        sidecars,
        reserved_annotation: vm.and_then(reserved_annotation),
        hugepages: spec
            .and_then(|s| s.domain.memory.as_ref())
            .is_some_and(|m| m.hugepages.is_some()),
        pod_containers: pod.map(pod_containers).unwrap_or_default(),
    }
}

/// The container that runs qemu: only a kill there ends the VM.
pub const COMPUTE_CONTAINER: &str = "compute";

/// The container of a virt-launcher pod an OOM kill was in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KillContainer {
    pub name: String,
    pub known_from: ContainerEvidence,
}

impl KillContainer {
    pub fn is_compute(&self) -> bool {
        self.name == COMPUTE_CONTAINER
    }
}

/// How the container of a kill is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerEvidence {
    /// The victim's cgroup names a container id that the pod's status lists.
    PodStatus,
    /// The victim's process name is one that only this container runs.
    ProcessName,
}

/// The container a process of this name runs in, in a virt-launcher pod: qemu and the launcher
/// processes in `compute`, `virt-tail` in `guest-console-log` (KubeVirt v1.1+:
/// `generateSerialConsoleLogContainer` in pkg/virt-controller/services runs `/usr/bin/virt-tail`
/// there, as uid 107 like qemu).
pub fn container_of_process(comm: &str) -> Option<&'static str> {
    if process_role(comm).is_some() {
        return Some(COMPUTE_CONTAINER);
    }
    (comm == "virt-tail").then_some("guest-console-log")
}

/// One container of a pod: its runtime id (without the `containerd://` prefix), its name and
/// the runtime the prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContainer {
    pub id: String,
    pub name: String,
    pub runtime: Option<ContainerRuntime>,
}

/// The runtime a container status's ID names (`containerd://…`, `cri-o://…`, `docker://…`).
pub fn runtime_of_container_id(container_id: &str) -> Option<ContainerRuntime> {
    match container_id.split_once("://")?.0 {
        "containerd" => Some(ContainerRuntime::Containerd),
        "cri-o" => Some(ContainerRuntime::Crio),
        "docker" => Some(ContainerRuntime::Docker),
        _ => None,
    }
}

/// The runtime of a kill: what its cgroup path names, else what the pod's status says of the
/// container it was in, else of the pod's containers (a pod's containers share one runtime).
pub fn kill_runtime(containers: &[PodContainer], ev: &OomEvent) -> Option<ContainerRuntime> {
    let by_id = ev
        .container_id
        .as_deref()
        .and_then(|id| containers.iter().find(|c| c.id == id));
    ev.runtime
        .or_else(|| by_id.and_then(|c| c.runtime))
        .or_else(|| containers.iter().find_map(|c| c.runtime))
}

/// The containers a pod's status lists, init containers too (native sidecars).
pub fn pod_containers(pod: &Pod) -> Vec<PodContainer> {
    let status = pod.status.container_statuses.iter();
    let init = pod.status.init_container_statuses.iter();
    status
        .chain(init)
        .filter_map(|c| {
            let id = c.container_id.rsplit("://").next()?;
            (!id.is_empty()).then(|| PodContainer {
                id: id.to_string(),
                name: c.name.clone(),
                runtime: runtime_of_container_id(&c.container_id),
            })
        })
        .collect()
}

/// Which container of its pod an OOM kill was in: the container id of the victim's cgroup
/// among the pod's containers, else the victim's process name.
pub fn kill_container(containers: &[PodContainer], ev: &OomEvent) -> Option<KillContainer> {
    let by_status = ev
        .container_id
        .as_deref()
        .and_then(|id| containers.iter().find(|c| c.id == id));
    if let Some(c) = by_status {
        return Some(KillContainer {
            name: c.name.clone(),
            known_from: ContainerEvidence::PodStatus,
        });
    }
    let comm = ev.victim.as_ref()?.comm.as_str();
    container_of_process(comm).map(|name| KillContainer {
        name: name.to_string(),
        known_from: ContainerEvidence::ProcessName,
    })
}

fn vmi_of_pod<'a>(inv: &'a Inventory, pod: &Pod) -> Option<&'a VirtualMachineInstance> {
    let ns = &pod.metadata.namespace;
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .find(|o| o.kind == "VirtualMachineInstance");
    if let Some(o) = owner {
        // Owner references are namespace-local: only a VMI in the pod's namespace owns it.
        if let Some(v) = inv.vmis.iter().find(|v| {
            &v.metadata.namespace == ns
                && ((!o.uid.is_empty() && v.metadata.uid == o.uid) || v.metadata.name == o.name)
        }) {
            return Some(v);
        }
    }
    let created_by = pod.metadata.labels.get(keys::CREATED_BY)?;
    inv.vmis
        .iter()
        .find(|v| &v.metadata.namespace == ns && &v.metadata.uid == created_by)
        .map(|v| &**v)
}

fn bytes(q: &Option<crate::units::Quantity>) -> Option<u64> {
    q.as_ref()
        .and_then(|q| q.bytes().ok())
        .and_then(|b| u64::try_from(b).ok())
}

fn guest_of(spec: &VmiSpec) -> Option<u64> {
    let r = &spec.domain.resources;
    spec.domain
        .memory
        .as_ref()
        .and_then(|m| bytes(&m.guest))
        .or_else(|| bytes(&r.requests.memory))
        .or_else(|| bytes(&r.limits.memory))
}

fn observed_overhead(pod: &Pod) -> Option<u64> {
    pod.metadata
        .annotations
        .get(keys::MEMORY_OVERHEAD_ANNOTATION)
        .and_then(|s| s.trim().parse().ok())
}

fn reserved_annotation(vm: &VirtualMachine) -> Option<String> {
    vm.metadata
        .annotations
        .get(keys::HARVESTER_RESERVED_MEMORY)
        .cloned()
}

fn cluster_inputs(inv: &Inventory) -> ClusterInputs {
    let config = inv
        .kubevirts
        .first()
        .map(|k| k.spec.configuration.clone())
        .unwrap_or_default();
    let arch = inv
        .nodes
        .iter()
        .filter_map(|n| n.status.node_info.as_ref())
        .map(|i| i.architecture.clone())
        .find(|a| !a.is_empty());
    ClusterInputs {
        ratio: config.additional_guest_memory_overhead_ratio.clone(),
        cluster_arch: arch,
        config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::{
        KubeVirt, MemorySpec, ObjectMeta, OwnerReference, VmiMemoryStatus,
    };
    use crate::units::Quantity;

    fn meta(ns: &str, name: &str, uid: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
            ..Default::default()
        }
    }

    fn vmi(guest: &str, limit: &str) -> VirtualMachineInstance {
        let mut v = VirtualMachineInstance {
            metadata: meta("default", "vm4", "vmi-uid"),
            ..Default::default()
        };
        v.spec.domain.memory = Some(MemorySpec {
            guest: Some(Quantity::new(guest)),
            ..Default::default()
        });
        v.spec.domain.resources.limits.memory = Some(Quantity::new(limit));
        v.spec.domain.resources.requests.memory = Some(Quantity::new("1365Mi"));
        v.spec.domain.resources.limits.cpu = Some(Quantity::new("2"));
        v
    }

    #[test]
    fn pod_owner_names_the_vm_and_formula_gives_o() {
        let mut pod = Pod {
            metadata: meta("default", "virt-launcher-vm4-s98n4", "pod-1"),
            ..Default::default()
        };
        pod.metadata.owner_references.push(OwnerReference {
            kind: "VirtualMachineInstance".into(),
            name: "vm4".into(),
            uid: "vmi-uid".into(),
            ..Default::default()
        });
        let mut vm = VirtualMachine {
            metadata: meta("default", "vm4", "vm-uid"),
            ..Default::default()
        };
        vm.metadata
            .annotations
            .insert(keys::HARVESTER_RESERVED_MEMORY.into(), "100Mi".into());
        let inv = Inventory {
            pods: vec![pod.into()],
            vmis: vec![vmi("1948Mi", "2Gi").into()],
            vms: vec![vm.into()],
            kubevirts: vec![KubeVirt::default()],
            ..Default::default()
        };
        let v = kubevirt_version(Some(&inv), Some(Version::new(1, 1, 1)));
        assert_eq!(v.version, Version::new(1, 1, 1));
        let f = vm_for_pod(&inv, "pod-1", v.version).unwrap();
        assert_eq!(
            f.vm,
            VmRef {
                namespace: "default".into(),
                name: "vm4".into()
            }
        );
        assert_eq!(f.guest_bytes, Some(1948 << 20));
        assert_eq!(f.configured_bytes, Some(2 << 30));
        // KubeVirt v1.1.1's overhead for this VMI (1365Mi request, 2 vCPUs, video, no ratio).
        assert_eq!(f.overhead_bytes, Some(264_939_521));
        assert_eq!(f.reserved_annotation.as_deref(), Some("100Mi"));
        assert!(vm_for_pod(&inv, "other", v.version).is_none());
    }

    #[test]
    fn pod_of_a_gone_vmi_named_by_its_label() {
        let mut pod = Pod {
            metadata: meta("prod", "virt-launcher-db-x1y2z", "old-pod"),
            ..Default::default()
        };
        pod.metadata
            .labels
            .insert(keys::VM_NAME_LABEL.into(), "db".into());
        pod.metadata
            .labels
            .insert(keys::CREATED_BY.into(), "gone-vmi".into());
        pod.metadata
            .annotations
            .insert(keys::MEMORY_OVERHEAD_ANNOTATION.into(), "283115520".into());
        let inv = Inventory {
            pods: vec![pod.into()],
            ..Default::default()
        };
        let f = vm_for_pod(&inv, "old-pod", Version::NEWEST_KNOWN).unwrap();
        assert_eq!(
            f.vm,
            VmRef {
                namespace: "prod".into(),
                name: "db".into()
            }
        );
        assert_eq!(f.overhead_bytes, Some(283_115_520));
        assert_eq!(f.guest_bytes, None);
    }

    #[test]
    fn earlier_pod_found_through_active_pods_and_observed_o() {
        let mut v = vmi("1Gi", "1Gi");
        v.status
            .active_pods
            .insert("old-pod".into(), "node-1".into());
        v.status.memory = Some(VmiMemoryStatus {
            memory_overhead: Some(Quantity::new("300Mi")),
            ..Default::default()
        });
        let inv = Inventory {
            vmis: vec![v.into()],
            ..Default::default()
        };
        let f = vm_for_pod(&inv, "old-pod", Version::NEWEST_KNOWN).unwrap();
        assert_eq!(f.vm.name, "vm4");
        assert_eq!(f.overhead_bytes, Some(300 << 20));
    }

    #[test]
    fn a_kills_runtime_comes_from_the_pods_status_when_the_path_names_none() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "default", "name": "virt-launcher-vm1-abcde", "uid": "p1"},
            "status": {"containerStatuses": [
                {"name": "compute", "containerID": "cri-o://c0ffee"},
                {"name": "guest-console-log", "containerID": "cri-o://beef"}]}}))
        .unwrap();
        let containers = pod_containers(&pod);
        assert_eq!(containers[0].runtime, Some(ContainerRuntime::Crio));
        // A cgroupfs path (`/kubepods/burstable/podp1/c0ffee`) names the container, not the
        // runtime.
        let ev = OomEvent {
            container_id: Some("c0ffee".into()),
            ..Default::default()
        };
        assert_eq!(kill_runtime(&containers, &ev), Some(ContainerRuntime::Crio));
        let pod_level = OomEvent::default();
        assert_eq!(
            kill_runtime(&containers, &pod_level),
            Some(ContainerRuntime::Crio)
        );
        // The path's own word wins; without a pod there is none.
        let named = OomEvent {
            runtime: Some(ContainerRuntime::Containerd),
            ..Default::default()
        };
        assert_eq!(
            kill_runtime(&containers, &named),
            Some(ContainerRuntime::Containerd)
        );
        assert_eq!(kill_runtime(&[], &pod_level), None);
        assert_eq!(
            runtime_of_container_id("docker://1"),
            Some(ContainerRuntime::Docker)
        );
        assert_eq!(
            runtime_of_container_id("containerd://1"),
            Some(ContainerRuntime::Containerd)
        );
        assert_eq!(runtime_of_container_id("rkt://1"), None);
        assert_eq!(runtime_of_container_id(""), None);
    }
}
