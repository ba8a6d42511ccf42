//! What the overhead formula reads from a VMI besides memory sizes: the vCPU count, QoS,
//! architecture, and which version honours which field.

use crate::model::version::Version;

fn at(major: u32, minor: u32, patch: u32) -> Version {
    Version::new(major, minor, patch)
}
use crate::model::objects::VmiSpec;
use crate::units::Quantity;

/// More vCPUs than KVM runs in one VM (`KVM_MAX_VCPUS` on x86-64 with `MAXSMP`); a count past
/// it is a typo or a hostile object, not a VM.
pub const MAX_PLAUSIBLE_VCPUS: u128 = 4096;

/// The vCPU count KubeVirt uses for O, and the count the spec really asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuCount {
    /// As KubeVirt computes it: `cores × sockets × threads` in a wrapping `uint32`
    /// (`hardware.GetNumberOfVCPUs`), at least 1.
    pub kubevirt: i64,
    /// The product without wrapping (at most 2^96).
    pub asked: u128,
}

impl VcpuCount {
    /// A sentence when the count is no real VM's: it wrapped in KubeVirt, or exceeds KVM's limit.
    pub fn note(&self) -> Option<String> {
        if self.asked > u128::from(u32::MAX) {
            Some(format!(
                "the VMI asks for {} vCPUs (cores x sockets x threads), which no VM can have; \
                 KubeVirt's 32-bit product wraps to {}, and its overhead is computed from that",
                self.asked, self.kubevirt
            ))
        } else if self.asked > MAX_PLAUSIBLE_VCPUS {
            Some(format!(
                "the VMI asks for {} vCPUs (cores x sockets x threads), more than KVM runs in one \
                 VM ({MAX_PLAUSIBLE_VCPUS}); the overhead is KubeVirt's for that count",
                self.asked
            ))
        } else {
            None
        }
    }
}

/// vCPUs as KubeVirt counts them for O: with `spec.domain.cpu`, the product of its non-zero
/// cores, sockets and threads (a `uint32` that wraps); otherwise the CPU limit, else the CPU
/// request, rounded up; at least 1.
pub fn vcpu_count(spec: &VmiSpec) -> VcpuCount {
    let (kubevirt, asked) = if let Some(cpu) = &spec.domain.cpu {
        let present = [cpu.cores, cpu.sockets, cpu.threads]
            .into_iter()
            .flatten()
            .filter(|&x| x != 0);
        let wrapped = present.clone().fold(None, |acc: Option<u32>, x| {
            Some(acc.map_or(x, |a| a.wrapping_mul(x)))
        });
        let asked = present.map(u128::from).product::<u128>();
        (i64::from(wrapped.unwrap_or(0)), asked)
    } else {
        let r = &spec.domain.resources;
        let cpu = r.limits.cpu.as_ref().or(r.requests.cpu.as_ref());
        let n = cpu
            .and_then(|q| q.millis().ok())
            .map(|m| m.max(0) / 1000 + i64::from(m.max(0) % 1000 != 0))
            .unwrap_or(0);
        (n, u128::try_from(n).unwrap_or(0))
    };
    VcpuCount {
        kubevirt: kubevirt.max(1),
        asked: asked.max(1),
    }
}

/// Number of vCPUs KubeVirt counts for page tables and vCPU threads.
pub fn vcpus(spec: &VmiSpec) -> i64 {
    vcpu_count(spec).kubevirt
}

/// Whether the VMI has dedicated CPUs.
pub fn dedicated_cpu(spec: &VmiSpec) -> bool {
    spec.domain
        .cpu
        .as_ref()
        .and_then(|c| c.dedicated_cpu_placement)
        .unwrap_or(false)
}

/// A request or limit as Kubernetes compares it: exact (`Quantity.Cmp`), absent = 0;
/// `None` when it does not parse (admission would have refused it).
fn exact(q: &Option<Quantity>) -> Option<i128> {
    match q {
        None => Some(0),
        Some(q) => q.nanos().ok(),
    }
}

/// `WantsToHaveQOSGuaranteed`: memory and CPU requests non-zero (`IsZero`) and exactly equal to
/// the limits. From v1.7.0, and in v1.6.4+ (backport), a zero or absent memory request with a
/// non-zero memory limit also counts.
pub fn guaranteed_qos(spec: &VmiSpec, v: Version) -> bool {
    let r = &spec.domain.resources;
    let (Some(req_mem), Some(lim_mem), Some(req_cpu), Some(lim_cpu)) = (
        exact(&r.requests.memory),
        exact(&r.limits.memory),
        exact(&r.requests.cpu),
        exact(&r.limits.cpu),
    ) else {
        return false;
    };
    let memory =
        (req_mem != 0 && req_mem == lim_mem) || (v >= at(1, 6, 4) && req_mem == 0 && lim_mem != 0);
    memory && req_cpu != 0 && req_cpu == lim_cpu
}

/// The architecture O is computed for: from v1.2 the VMI's `spec.architecture` unless empty,
/// else the cluster's.
pub fn architecture<'a>(
    spec: &'a VmiSpec,
    v: Version,
    cluster_arch: Option<&'a str>,
) -> Option<&'a str> {
    let own = spec.architecture.as_deref().filter(|a| !a.is_empty());
    if v >= at(1, 2, 0) {
        own.or(cluster_arch)
    } else {
        cluster_arch
    }
}

/// Whether `devices.tpm.enabled: false` removes the TPM term: from v1.6.0, and in the backports
/// v1.4.1+ and v1.5.1+ (renderresources.go `tpm.HasDevice`).
pub fn tpm_can_be_disabled(v: Version) -> bool {
    v >= at(1, 6, 0)
        || (v >= at(1, 5, 1) && v < at(1, 6, 0))
        || (v >= at(1, 4, 1) && v < at(1, 5, 0))
}
