//! VM ↔ VMI ↔ virt-launcher pod: one entry per VM, plus VMIs that have no VM.

use std::collections::HashMap;

use super::inventory::Inventory;
use super::objects::{keys, Pod, VirtualMachine, VirtualMachineInstance};
use super::phase::PodPhase;

/// The objects of one VM (or VMI without a VM).
#[derive(Debug, Clone)]
pub struct Joined<'a> {
    pub vm: Option<&'a VirtualMachine>,
    pub vmi: Option<&'a VirtualMachineInstance>,
    /// The pod whose cgroup holds the running guest (the migration source while migrating).
    pub pod: Option<&'a Pod>,
    /// Other live pods of the VMI (the migration target).
    pub other_pods: Vec<&'a Pod>,
    /// Launcher pods of the VMI that ended (Succeeded or Failed): their status may still show
    /// how the VM's last run ended.
    pub ended_pods: Vec<&'a Pod>,
}

impl Joined<'_> {
    pub fn namespace(&self) -> &str {
        self.vm
            .map(|v| v.metadata.namespace.as_str())
            .or(self.vmi.map(|v| v.metadata.namespace.as_str()))
            .unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.vm
            .map(|v| v.metadata.name.as_str())
            .or(self.vmi.map(|v| v.metadata.name.as_str()))
            .unwrap_or("")
    }
    pub fn migrating(&self) -> bool {
        let state = self.vmi.and_then(|v| v.status.migration_state.as_ref());
        let in_flight = state.is_some_and(|m| m.completed != Some(true) && m.failed != Some(true));
        in_flight || self.vmi.is_some_and(|v| v.status.active_pods.len() > 1)
    }
}

fn is_launcher(p: &Pod) -> bool {
    p.metadata
        .labels
        .get(keys::LAUNCHER_LABEL)
        .map(String::as_str)
        == Some(keys::LAUNCHER_LABEL_VALUE)
        || p.metadata.labels.contains_key(keys::CREATED_BY)
}

fn finished(p: &Pod) -> bool {
    p.status.phase.as_ref().is_some_and(PodPhase::ended)
}

/// Launcher pods by (namespace, VMI UID).
type PodsByVmi<'k, 'p> = HashMap<(&'k str, &'k str), Vec<&'p Pod>>;

/// Join the inventory. Output order: by namespace, then name.
pub fn join(inv: &Inventory) -> Vec<Joined<'_>> {
    // Pods by the namespace and VMI UID that created them (label or controller owner
    // reference). KubeVirt creates the launcher pod in its VMI's namespace; a pod elsewhere that
    // carries the label names a VMI it cannot belong to, and must not attach itself to it.
    let mut pods_by_vmi: PodsByVmi = HashMap::new();
    for pod in inv.pods.iter().filter(|p| is_launcher(p)) {
        let by_label = pod
            .metadata
            .labels
            .get(keys::CREATED_BY)
            .map(String::as_str);
        let by_owner = pod
            .metadata
            .owner_references
            .iter()
            .find(|o| o.kind == "VirtualMachineInstance")
            .map(|o| o.uid.as_str());
        if let Some(uid) = by_label.or(by_owner) {
            pods_by_vmi
                .entry((pod.metadata.namespace.as_str(), uid))
                .or_default()
                .push(pod);
        }
    }
    let mut vmis: HashMap<(&str, &str), &VirtualMachineInstance> = inv
        .vmis
        .iter()
        .map(|v| {
            (
                (v.metadata.namespace.as_str(), v.metadata.name.as_str()),
                &**v,
            )
        })
        .collect();
    let mut out: Vec<Joined> = Vec::with_capacity(inv.vms.len() + 8);
    for vm in &inv.vms {
        let vmi = vmis.remove(&(vm.metadata.namespace.as_str(), vm.metadata.name.as_str()));
        out.push(with_pods(Some(vm), vmi, &pods_by_vmi));
    }
    let mut orphans: Vec<&VirtualMachineInstance> = vmis.into_values().collect();
    orphans.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for vmi in orphans {
        out.push(with_pods(None, Some(vmi), &pods_by_vmi));
    }
    out.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
    out
}

fn with_pods<'a>(
    vm: Option<&'a VirtualMachine>,
    vmi: Option<&'a VirtualMachineInstance>,
    pods_by_vmi: &PodsByVmi<'_, 'a>,
) -> Joined<'a> {
    let Some(vmi) = vmi else {
        return Joined {
            vm,
            vmi: None,
            pod: None,
            other_pods: Vec::new(),
            ended_pods: Vec::new(),
        };
    };
    let (ended_pods, mut pods): (Vec<&Pod>, Vec<&Pod>) = pods_by_vmi
        .get(&(vmi.metadata.namespace.as_str(), vmi.metadata.uid.as_str()))
        .map(|v| v.iter().copied().partition(|p| finished(p)))
        .unwrap_or_default();
    // Pods named in status.activePods first, then the newest.
    let active = &vmi.status.active_pods;
    if !active.is_empty() {
        let listed: Vec<&Pod> = pods
            .iter()
            .copied()
            .filter(|p| active.contains_key(&p.metadata.uid))
            .collect();
        if !listed.is_empty() {
            pods = listed;
        }
    }
    pods.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    let node = vmi.status.node_name.as_deref();
    // While a migration runs, its target pod (possibly on the same node, as a memory hotplug's
    // is) is not the one running the guest.
    let target = vmi
        .status
        .migration_state
        .as_ref()
        .filter(|m| m.completed != Some(true) && m.failed != Some(true))
        .and_then(|m| m.target_pod.as_deref());
    let running_here = |p: &&Pod| {
        node.is_some()
            && p.spec.node_name.as_deref() == node
            && Some(p.metadata.name.as_str()) != target
    };
    let current = pods
        .iter()
        .position(running_here)
        .or_else(|| {
            pods.iter()
                .position(|p| node.is_some() && p.spec.node_name.as_deref() == node)
        })
        .or(if pods.is_empty() { None } else { Some(0) });
    let pod = current.map(|i| pods.remove(i));
    Joined {
        vm,
        vmi: Some(vmi),
        pod,
        other_pods: pods,
        ended_pods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::OwnerReference;

    fn vm(ns: &str, name: &str) -> VirtualMachine {
        let mut v = VirtualMachine::default();
        v.metadata.namespace = ns.into();
        v.metadata.name = name.into();
        v
    }
    fn vmi(ns: &str, name: &str, uid: &str, node: &str) -> VirtualMachineInstance {
        let mut v = VirtualMachineInstance::default();
        v.metadata.namespace = ns.into();
        v.metadata.name = name.into();
        v.metadata.uid = uid.into();
        v.status.node_name = Some(node.into());
        v
    }
    fn pod(uid: &str, vmi_uid: &str, node: &str, created: &str, by_label: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = "a".into();
        p.metadata.uid = uid.into();
        p.metadata.creation_timestamp = Some(created.into());
        p.spec.node_name = Some(node.into());
        p.metadata
            .labels
            .insert("kubevirt.io".into(), "virt-launcher".into());
        if by_label {
            p.metadata
                .labels
                .insert("kubevirt.io/created-by".into(), vmi_uid.into());
        } else {
            p.metadata.owner_references.push(OwnerReference {
                kind: "VirtualMachineInstance".into(),
                uid: vmi_uid.into(),
                controller: Some(true),
                ..Default::default()
            });
        }
        p
    }

    #[test]
    fn one_row_per_vm_plus_orphan_vmis() {
        let inv = Inventory {
            vms: vec![vm("b", "stopped").into(), vm("a", "web").into()],
            vmis: vec![
                vmi("a", "web", "u1", "n1").into(),
                vmi("a", "bare", "u2", "n2").into(),
            ],
            pods: vec![
                pod("p1", "u1", "n1", "2024-01-01T00:00:00Z", true).into(),
                pod("p2", "u2", "n2", "2024-01-01T00:00:00Z", false).into(),
            ],
            ..Default::default()
        };
        let j = join(&inv);
        let names: Vec<_> = j.iter().map(|x| (x.namespace(), x.name())).collect();
        assert_eq!(names, vec![("a", "bare"), ("a", "web"), ("b", "stopped")]);
        assert!(j[0].vm.is_none());
        assert_eq!(j[0].pod.unwrap().metadata.uid, "p2");
        assert_eq!(j[1].pod.unwrap().metadata.uid, "p1");
        assert!(j[2].vmi.is_none() && j[2].pod.is_none());
    }

    #[test]
    fn a_pod_in_another_namespace_does_not_attach_itself() {
        // Someone who may create pods in namespace "evil" labels one with the UID of the VMI
        // in "a" (newer, on the VMI's node): it must not become that VM's pod, by label or by
        // owner reference.
        for by_label in [true, false] {
            let mut planted = pod("planted", "u1", "n1", "2025-01-01T00:00:00Z", by_label);
            planted.metadata.namespace = "evil".into();
            let inv = Inventory {
                vms: vec![vm("a", "web").into()],
                vmis: vec![vmi("a", "web", "u1", "n1").into()],
                pods: vec![
                    planted.into(),
                    pod("real", "u1", "n1", "2024-01-01T00:00:00Z", true).into(),
                ],
                ..Default::default()
            };
            let j = join(&inv);
            assert_eq!(j.len(), 1);
            assert_eq!(j[0].pod.unwrap().metadata.uid, "real");
            assert!(j[0].other_pods.is_empty(), "{:?}", j[0].other_pods);
            assert!(!j[0].migrating());
        }
    }

    #[test]
    fn migration_keeps_the_source_pod_and_lists_the_target() {
        let mut i = vmi("a", "web", "u1", "n1");
        i.status.active_pods.insert("src".into(), "n1".into());
        i.status.active_pods.insert("dst".into(), "n2".into());
        let inv = Inventory {
            vms: vec![vm("a", "web").into()],
            vmis: vec![i.into()],
            pods: vec![
                pod("old", "u1", "n0", "2023-01-01T00:00:00Z", true).into(),
                pod("src", "u1", "n1", "2024-01-01T00:00:00Z", true).into(),
                pod("dst", "u1", "n2", "2024-02-01T00:00:00Z", true).into(),
            ],
            ..Default::default()
        };
        let j = join(&inv);
        assert_eq!(j[0].pod.unwrap().metadata.uid, "src");
        assert_eq!(j[0].other_pods.len(), 1);
        assert_eq!(j[0].other_pods[0].metadata.uid, "dst");
        assert!(j[0].migrating());
    }

    #[test]
    fn a_migration_target_on_the_same_node_is_not_the_running_pod() {
        let mut i = vmi("a", "web", "u1", "n1");
        i.status.migration_state = Some(Box::new(crate::model::objects::MigrationState {
            target_pod: Some("virt-launcher-web-new".into()),
            ..Default::default()
        }));
        let mut new = pod("dst", "u1", "n1", "2024-02-01T00:00:00Z", true);
        new.metadata.name = "virt-launcher-web-new".into();
        let inv = Inventory {
            vms: vec![vm("a", "web").into()],
            vmis: vec![i.into()],
            pods: vec![
                pod("src", "u1", "n1", "2024-01-01T00:00:00Z", true).into(),
                new.into(),
            ],
            ..Default::default()
        };
        let j = join(&inv);
        assert_eq!(j[0].pod.unwrap().metadata.uid, "src");
        assert_eq!(j[0].other_pods[0].metadata.uid, "dst");
    }

    #[test]
    fn finished_pods_are_ignored_and_newest_wins() {
        let mut done = pod("done", "u1", "n1", "2025-01-01T00:00:00Z", true);
        done.status.phase = Some(PodPhase::Failed);
        let inv = Inventory {
            vms: vec![vm("a", "web").into()],
            vmis: vec![vmi("a", "web", "u1", "n1").into()],
            pods: vec![
                done.into(),
                pod("older", "u1", "n1", "2023-01-01T00:00:00Z", true).into(),
                pod("newer", "u1", "n1", "2024-01-01T00:00:00Z", true).into(),
            ],
            ..Default::default()
        };
        let j = join(&inv);
        assert_eq!(j[0].pod.unwrap().metadata.uid, "newer");
        assert!(!j[0].migrating());
    }
}
