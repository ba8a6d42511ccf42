//! Numbers a VM's spec implies: guest, limits, requests, reservation, the VMI spec KubeVirt would
//! store for it, and the pod KubeVirt would build.

use super::auto_limits;
use super::harvester::{self, HarvesterContext, ReservedSource};
use super::objects::{VirtualMachine, VmiSpec};
use super::sidecars::Sidecars;
use super::version::Version;
use crate::units::{Quantity, QuantityError};

/// The memory numbers of a VM or VMI spec, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemorySpecNumbers {
    /// What the guest sees: `memory.guest`, else requests, else limits.
    pub guest: Option<i64>,
    pub limit: Option<i64>,
    pub request: Option<i64>,
    pub hugepages: bool,
    /// Malformed quantities, as sentences naming the field.
    pub problems: Vec<String>,
}

fn read(field: &str, q: &Option<Quantity>, problems: &mut Vec<String>) -> Option<i64> {
    match q.as_ref().map(Quantity::bytes) {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            problems.push(format!("{field}: {e}"));
            None
        }
        None => None,
    }
}

pub fn memory_numbers(spec: &VmiSpec) -> MemorySpecNumbers {
    let mut problems = Vec::new();
    let d = &spec.domain;
    let limit = read(
        "resources.limits.memory",
        &d.resources.limits.memory,
        &mut problems,
    );
    let request = read(
        "resources.requests.memory",
        &d.resources.requests.memory,
        &mut problems,
    );
    let explicit_guest = d
        .memory
        .as_ref()
        .and_then(|m| read("memory.guest", &m.guest, &mut problems));
    MemorySpecNumbers {
        guest: explicit_guest.or(request).or(limit),
        limit,
        request,
        hugepages: d.memory.as_ref().is_some_and(|m| m.hugepages.is_some()),
        problems,
    }
}

/// The VMI spec KubeVirt would store for a VM template (used for stopped VMs, and to predict
/// the pod after a fix): before v1.7 the webhook writes a memory request (the limit, else
/// guest·100/memoryOvercommit); the guest defaults to the request, else the limit.
pub fn defaulted_vmi_spec(template: &VmiSpec, v: Version, memory_overcommit: i64) -> VmiSpec {
    let mut spec = template.clone();
    let n = memory_numbers(template);
    let res = &mut spec.domain.resources;
    if v < Version::new(1, 7, 0) && res.requests.memory.is_none() {
        if let Some(limit) = &res.limits.memory {
            res.requests.memory = Some(limit.clone());
        } else if let Some(guest) = n.guest {
            let oc = memory_overcommit.max(1);
            res.requests.memory = Some(Quantity::new((guest * 100 / oc).to_string()));
        }
    }
    spec
}

/// The reservation of a VM: bytes between its limit and its guest, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub bytes: Option<i64>,
    pub source: ReservedSource,
    /// The annotation was set but does nothing here (hotplug VMs) or is malformed.
    pub problems: Vec<String>,
}

pub fn reservation(
    vm: &VirtualMachine,
    numbers: &MemorySpecNumbers,
    harvester: Option<&HarvesterContext>,
) -> Reservation {
    let mut problems = Vec::new();
    let annotated = match harvester::annotation(vm) {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            problems.push(format!("annotation harvesterhci.io/reservedMemory: {e}"));
            None
        }
        None => None,
    };
    let gap = match (numbers.limit, numbers.guest) {
        (Some(l), Some(g)) => Some(l - g),
        _ => None,
    };
    if annotated.is_some() && harvester::hotplug(vm) {
        problems.push(
            "the reservedMemory annotation has no effect on a hotplug VM with an explicit guest"
                .to_string(),
        );
    }
    let source = match (annotated, harvester, gap) {
        (Some(_), Some(_), _) => ReservedSource::Annotation,
        (_, _, None) => ReservedSource::None,
        (_, _, Some(g)) if g <= 0 => ReservedSource::None,
        (None, Some(h), Some(g)) if h.default_reserved() == Some(g) => {
            ReservedSource::HarvesterDefault
        }
        (Some(_), None, _) => ReservedSource::Annotation,
        _ => ReservedSource::GuestGap,
    };
    Reservation {
        bytes: gap.map(|g| g.max(0)),
        source,
        problems,
    }
}

/// The compute container KubeVirt would build for a VMI spec and overhead O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedPod {
    pub compute_request: Option<i64>,
    pub compute_limit: Option<i64>,
    /// Pod-level limit: compute + every container beside it; `None` when one has no limit.
    pub pod_limit: Option<i64>,
    /// The limits of the containers beside compute (those without one add nothing).
    pub sidecars: i64,
}

/// The compute container's resources as KubeVirt sets them (pkg/virt-controller/services/
/// template.go up to v0.55, renderresources.go v0.56–v1.7): request = VMI request + O, limit =
/// VMI limit + O when the VMI has one; with dedicated CPUs limit = request; else, where a quota
/// makes KubeVirt set one (`auto_ratio`, see `auto_limits`), request × ratio. The pod-level
/// limit adds the containers beside compute.
pub fn expected_pod(
    spec: &VmiSpec,
    o: i64,
    auto_ratio: Option<f64>,
    beside: &Sidecars,
) -> ExpectedPod {
    let n = memory_numbers(spec);
    let d = &spec.domain;
    let guest = n.guest.unwrap_or(0);
    let base_request = n.request.or(n.limit).or(n.guest);
    let overcommit_guest = d.resources.overcommit_guest_overhead == Some(true);
    let add_o = |x: i64| if overcommit_guest { x } else { x + o };
    let compute_request = if n.hugepages {
        base_request.map(|r| (r - guest).max(0) + o)
    } else {
        base_request.map(add_o)
    };
    let mut compute_limit = if n.hugepages {
        n.limit.map(|l| (l - guest).max(0) + o)
    } else {
        n.limit.map(|l| l + o)
    };
    if super::overhead::dedicated_cpu(spec) {
        compute_limit = compute_request;
    }
    if let (None, Some(ratio)) = (compute_limit, auto_ratio) {
        compute_limit = compute_request.map(|r| auto_limits::limit_of(r, ratio));
    }
    ExpectedPod {
        compute_request,
        compute_limit,
        pod_limit: beside.pod_level_limit(compute_limit),
        sidecars: beside.limited_bytes(),
    }
}

/// Quantity problems and webhook-rule violations become row notes, never failures.
pub fn describe(e: &QuantityError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::{DomainSpec, MemorySpec};
    use crate::model::overhead::{GI, MI};

    fn spec(guest: Option<&str>, req: Option<&str>, lim: Option<&str>) -> VmiSpec {
        let mut s = VmiSpec {
            domain: DomainSpec::default(),
            ..Default::default()
        };
        s.domain.memory = guest.map(|g| MemorySpec {
            guest: Some(Quantity::new(g)),
            ..Default::default()
        });
        s.domain.resources.requests.memory = req.map(Quantity::new);
        s.domain.resources.limits.memory = lim.map(Quantity::new);
        s
    }

    #[test]
    fn guest_defaults() {
        assert_eq!(
            memory_numbers(&spec(Some("1948Mi"), Some("1365Mi"), Some("2Gi"))).guest,
            Some(1948 * MI)
        );
        assert_eq!(
            memory_numbers(&spec(None, Some("1Gi"), Some("2Gi"))).guest,
            Some(GI)
        );
        assert_eq!(
            memory_numbers(&spec(None, None, Some("2Gi"))).guest,
            Some(2 * GI)
        );
        let bad = memory_numbers(&spec(Some("lots"), None, Some("2Gi")));
        assert_eq!(bad.problems.len(), 1);
        assert!(bad.problems[0].starts_with("memory.guest: \"lots\""));
    }

    #[test]
    fn webhook_writes_request_before_v17() {
        let only_guest = spec(Some("3Gi"), None, None);
        let d = defaulted_vmi_spec(&only_guest, Version::new(1, 3, 0), 150);
        assert_eq!(
            d.domain.resources.requests.memory.unwrap().bytes().unwrap(),
            3 * GI * 100 / 150
        );
        let d = defaulted_vmi_spec(&only_guest, Version::new(1, 7, 0), 150);
        assert!(d.domain.resources.requests.memory.is_none());
        let only_limit = spec(None, None, Some("2Gi"));
        let d = defaulted_vmi_spec(&only_limit, Version::new(1, 1, 1), 100);
        assert_eq!(
            d.domain.resources.requests.memory,
            Some(Quantity::new("2Gi"))
        );
    }

    fn console_log() -> Sidecars {
        crate::model::sidecars::predict(
            &VmiSpec::default(),
            &Default::default(),
            &Default::default(),
            Version::new(1, 1, 1),
        )
    }

    #[test]
    fn seed_pod_limits() {
        // v1.1.1, 2Gi limit: compute 2,412,423,169, pod slice + 60M sidecar.
        let s = spec(Some("1948Mi"), Some("1365Mi"), Some("2Gi"));
        let p = expected_pod(&s, 264_939_521, None, &console_log());
        assert_eq!(p.compute_limit, Some(2_412_423_169));
        assert_eq!(p.pod_limit, Some(2_472_423_169));
        assert_eq!(p.compute_request, Some(1365 * MI + 264_939_521));
        // No limit: none, unless a quota makes KubeVirt set request × ratio.
        let s = spec(None, Some("1Gi"), None);
        let none = Sidecars::default();
        assert_eq!(expected_pod(&s, MI, None, &none).compute_limit, None);
        assert_eq!(
            expected_pod(&s, MI, Some(2.0), &none).compute_limit,
            Some(2 * (GI + MI))
        );
        assert_eq!(
            expected_pod(&s, MI, Some(1.5), &none).compute_limit,
            Some((GI + MI) * 3 / 2)
        );
    }

    #[test]
    fn dedicated_cpus_limit_is_the_request_even_under_a_quota() {
        let mut s = spec(None, Some("1Gi"), None);
        s.domain.cpu = Some(crate::model::objects::CpuSpec {
            dedicated_cpu_placement: Some(true),
            ..Default::default()
        });
        let p = expected_pod(&s, MI, Some(2.0), &Sidecars::default());
        assert_eq!(p.compute_limit, Some(GI + MI));
        assert_eq!(p.compute_limit, p.compute_request);
    }

    #[test]
    fn hugepages_pod_holds_only_the_overhead() {
        let mut s = spec(Some("4Gi"), Some("4Gi"), Some("4Gi"));
        s.domain.memory.as_mut().unwrap().hugepages = Some(Default::default());
        let p = expected_pod(&s, 300 * MI, None, &Sidecars::default());
        assert_eq!(p.compute_limit, Some(300 * MI));
        assert_eq!(p.compute_request, Some(300 * MI));
    }
}
