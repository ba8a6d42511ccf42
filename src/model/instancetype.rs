//! VMs that take their memory from an instance type (`spec.instancetype`): the template has no
//! memory values, and KubeVirt fills the VMI from the (Cluster)Instancetype when it starts
//! (pkg/instancetype/apply/memory.go, v1.0–v1.8): the guest, and with `overcommitPercent` p a
//! request of `guest × (1 − p/100)` computed in float32.

use super::objects::{Instancetype, InstancetypeMatcher, MemorySpec, VirtualMachine, VmiSpec};
use crate::units::Quantity;

/// The VMI's memory request for an instance type's guest and `overcommitPercent`, exactly as
/// KubeVirt computes it: `int64(float32(guest) * (1 - float32(p)/100))`.
pub fn overcommitted_request(guest: i64, percent: i64) -> i64 {
    let factor = 1.0f32 - (percent as f32) / 100.0f32;
    ((guest as f32) * factor) as i64
}

/// What a VM's instance type is, as far as the inventory knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookup<'a> {
    /// The VM names no instance type.
    None,
    Found(&'a InstancetypeMatcher, &'a Instancetype),
    /// Named but not read (missing, or not readable with these rights).
    Missing(&'a InstancetypeMatcher),
}

impl Lookup<'_> {
    pub fn named(&self) -> bool {
        !matches!(self, Lookup::None)
    }

    /// The sentence for a VM whose instance type could not be read.
    pub fn missing_note(&self) -> Option<String> {
        let Lookup::Missing(m) = self else {
            return None;
        };
        let kind = if m.cluster_wide() {
            "VirtualMachineClusterInstancetype"
        } else {
            "VirtualMachineInstancetype"
        };
        Some(format!(
            "{kind} {} was not found or could not be read: the VMI's values are used while it runs, and a stopped VM's memory is unknown",
            m.name
        ))
    }
}

/// Find the instance type `vm` names among `known`.
pub fn lookup<'a>(vm: &'a VirtualMachine, known: &'a [Instancetype]) -> Lookup<'a> {
    let Some(m) = vm.spec.instancetype.as_ref() else {
        return Lookup::None;
    };
    match known.iter().find(|i| i.is(m, &vm.metadata.namespace)) {
        Some(i) => Lookup::Found(m, i),
        None => Lookup::Missing(m),
    }
}

/// The template with the instance type's memory applied, as KubeVirt builds the VMI spec:
/// guest, request (with `overcommitPercent`), hugepages and maxGuest. The template itself may
/// not set any of these (admission rejects it), so nothing is overwritten.
pub fn apply(template: &VmiSpec, it: &Instancetype) -> VmiSpec {
    let mut spec = template.clone();
    let m = &it.memory;
    let memory = spec.domain.memory.get_or_insert_with(MemorySpec::default);
    if let Some(g) = &m.guest {
        memory.guest = Some(g.clone());
        let percent = m.overcommit_percent.unwrap_or(0);
        if let (true, Ok(bytes)) = (percent > 0, g.bytes()) {
            let request = overcommitted_request(bytes, percent);
            spec.domain.resources.requests.memory = Some(Quantity::new(request.to_string()));
        }
    }
    let memory = spec.domain.memory.get_or_insert_with(MemorySpec::default);
    if m.hugepages.is_some() {
        memory.hugepages = m.hugepages.clone();
    }
    if m.max_guest.is_some() {
        memory.max_guest = m.max_guest.clone();
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::InstancetypeMemory;

    fn it(guest: &str, percent: Option<i64>) -> Instancetype {
        Instancetype {
            namespace: None,
            name: "u1.medium".into(),
            memory: InstancetypeMemory {
                guest: Some(Quantity::new(guest)),
                overcommit_percent: percent,
                ..Default::default()
            },
        }
    }

    #[test]
    fn request_is_float32_like_kubevirt() {
        // float32(4Gi) × float32(0.85): 0.85 is not exact in float32 (0.85000002384…), and the
        // product rounds to float32 before the truncation.
        let g = 4 << 30;
        let want = ((g as f32) * (1.0f32 - 15.0f32 / 100.0f32)) as i64;
        assert_eq!(overcommitted_request(g, 15), want);
        assert_eq!(want, 3_650_722_304);
        // An odd size shows the float32 rounding: not guest × 85 / 100.
        let odd = 1_000_000_007;
        assert_eq!(overcommitted_request(odd, 10), 900_000_000);
        assert_ne!(overcommitted_request(odd, 10), odd * 90 / 100);
        assert_eq!(overcommitted_request(g, 0), g);
    }

    #[test]
    fn apply_fills_guest_and_request() {
        let spec = apply(&VmiSpec::default(), &it("2Gi", Some(25)));
        let n = crate::model::spec::memory_numbers(&spec);
        assert_eq!(n.guest, Some(2 << 30));
        assert_eq!(n.request, Some(overcommitted_request(2 << 30, 25)));
        let spec = apply(&VmiSpec::default(), &it("2Gi", None));
        assert!(spec.domain.resources.requests.memory.is_none());
    }

    #[test]
    fn lookup_by_kind_and_namespace() {
        let mut vm = VirtualMachine::default();
        vm.metadata.namespace = "lab".into();
        vm.spec.instancetype = Some(InstancetypeMatcher {
            name: "u1.medium".into(),
            kind: None,
        });
        let cluster = it("2Gi", None);
        let mut namespaced = it("4Gi", None);
        namespaced.namespace = Some("lab".into());
        let known = [namespaced.clone(), cluster.clone()];
        assert_eq!(
            lookup(&vm, &known),
            Lookup::Found(vm.spec.instancetype.as_ref().unwrap(), &known[1])
        );
        vm.spec.instancetype.as_mut().unwrap().kind = Some("VirtualMachineInstancetype".into());
        assert!(matches!(lookup(&vm, &known), Lookup::Found(_, i) if i.namespace.is_some()));
        vm.metadata.namespace = "other".into();
        let missing = lookup(&vm, &known);
        assert!(matches!(missing, Lookup::Missing(_)));
        assert!(missing
            .missing_note()
            .unwrap()
            .starts_with("VirtualMachineInstancetype u1.medium"));
    }
}
