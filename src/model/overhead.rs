//! KubeVirt's memory overhead O for a VMI, by KubeVirt version, to the byte.
//!
//! Read from KubeVirt's source at its release tags: pkg/virt-controller/services/template.go up
//! to v0.55, renderresources.go v0.56–v1.7, pkg/hypervisor/kvm/hypervisorbackend.go from v1.8.
//! Every input comes from the VMI as stored (after KubeVirt's defaulting), never the VM template.

use std::borrow::Cow;

use serde::Serialize;

use super::objects::{KubeVirtConfiguration, VmiSpec};
use super::version::Version;

pub const MI: i64 = 1024 * 1024;
pub const GI: i64 = 1024 * MI;
/// The `guest-console-log` sidecar's memory limit (v1.1+), exact bytes.
pub const CONSOLE_LOG_SIDECAR_BYTES: i64 = 60_000_000;

/// Per-process constants of one KubeVirt release (MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessConstants {
    pub monitor: i64,
    pub launcher: i64,
    pub virtlogd: i64,
    /// libvirtd (before v0.59) or virtqemud.
    pub libvirt: i64,
    pub qemu: i64,
    pub video: i64,
    /// Up to v0.52 one fixed term replaced the five process constants.
    pub combined: Option<i64>,
}

impl ProcessConstants {
    pub fn for_version(v: Version) -> ProcessConstants {
        let row = |monitor, launcher, virtlogd, libvirt, qemu, video| ProcessConstants {
            monitor,
            launcher,
            virtlogd,
            libvirt,
            qemu,
            video,
            combined: None,
        };
        let at = |a, b, c| Version::new(a, b, c);
        if v < at(0, 53, 0) {
            ProcessConstants {
                combined: Some(138),
                ..row(0, 0, 0, 0, 0, 16)
            }
        } else if v < at(0, 53, 2) {
            row(25, 75, 16, 33, 30, 16)
        } else if v < at(0, 55, 0) {
            row(25, 75, 17, 33, 30, 16)
        } else if v < at(0, 57, 0) {
            row(25, 100, 17, 33, 30, 16)
        } else if v < at(0, 58, 1) {
            row(25, 100, 18, 35, 30, 16)
        } else if v < at(1, 4, 1) {
            row(25, 100, 20, 35, 30, 16)
        } else if v < at(1, 5, 0) {
            row(25, 100, 20, 40, 30, 16)
        } else if v < at(1, 6, 0) {
            row(25, 100, 25, 40, 30, 16)
        } else if v < at(1, 10, 0) {
            row(25, 100, 25, 40, 30, 32)
        } else {
            row(25, 100, 25, 40, 50, 32)
        }
    }

    /// Sum of the process constants in bytes (the combined term up to v0.52).
    pub fn processes_bytes(&self) -> i64 {
        match self.combined {
            Some(c) => c * MI,
            None => (self.monitor + self.launcher + self.virtlogd + self.libvirt + self.qemu) * MI,
        }
    }

    /// The budget for a process by its kernel `comm`, in bytes, if KubeVirt has one for it.
    /// qemu's budget excludes guest RAM.
    pub fn budget_for_comm(&self, comm: &str) -> Option<i64> {
        if self.combined.is_some() {
            return None;
        }
        let mi = match process_role(comm)? {
            ProcessRole::Monitor => self.monitor,
            ProcessRole::Launcher => self.launcher,
            ProcessRole::Libvirt => self.libvirt,
            ProcessRole::Virtlogd => self.virtlogd,
            ProcessRole::Qemu => self.qemu,
        };
        Some(mi * MI)
    }
}

/// The launcher processes KubeVirt budgets for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    Monitor,
    Launcher,
    Libvirt,
    Virtlogd,
    Qemu,
}

/// Which KubeVirt process a kernel `comm` (≤ 15 chars) is.
pub fn process_role(comm: &str) -> Option<ProcessRole> {
    match comm {
        "virt-launcher-m" | "virt-launcher-monitor" => Some(ProcessRole::Monitor),
        "virt-launcher" => Some(ProcessRole::Launcher),
        "virtqemud" | "libvirtd" => Some(ProcessRole::Libvirt),
        "virtlogd" => Some(ProcessRole::Virtlogd),
        c if c.starts_with("qemu-kvm") || c.starts_with("qemu-system-") => Some(ProcessRole::Qemu),
        _ => None,
    }
}

/// Whether `additionalGuestMemoryOverheadRatio` exists in this version
/// (v1.0.0+, and the backports v0.58.2+ and v0.59.1+; not v0.59.0).
pub fn ratio_supported(v: Version) -> bool {
    v >= Version::new(0, 58, 2) && v != Version::new(0, 59, 0)
}

/// One named term of O. Most names are fixed words, kept without a copy per VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Term {
    pub name: Cow<'static, str>,
    pub bytes: i64,
}

/// O and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overhead {
    pub version: Version,
    pub total: i64,
    pub terms: Vec<Term>,
    /// The ratio applied, as configured (`None` when unset or unsupported).
    pub ratio: Option<String>,
    /// Something the formula could not honour, as a sentence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Cluster-wide inputs to O.
#[derive(Debug, Clone, Default)]
pub struct ClusterInputs {
    /// `additionalGuestMemoryOverheadRatio` as configured.
    pub ratio: Option<String>,
    /// Architecture of the cluster's nodes (`arm64`, `amd64`), used before v1.2 or when the VMI
    /// has none.
    pub cluster_arch: Option<String>,
    /// KubeVirt configuration (network binding plugins).
    pub config: KubeVirtConfiguration,
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// Number of vCPUs KubeVirt counts for page tables and vCPU threads.
pub fn vcpus(spec: &VmiSpec) -> i64 {
    let n = if let Some(cpu) = &spec.domain.cpu {
        [cpu.cores, cpu.sockets, cpu.threads]
            .into_iter()
            .flatten()
            .filter(|&x| x != 0)
            .map(i64::from)
            .product::<i64>()
    } else {
        let r = &spec.domain.resources;
        let cpu = r.limits.cpu.as_ref().or(r.requests.cpu.as_ref());
        cpu.and_then(|q| q.millis().ok())
            .map(|m| ceil_div(m.max(0), 1000))
            .unwrap_or(1)
    };
    n.max(1)
}

fn mem(q: &Option<crate::parse::quantity::Quantity>) -> Option<i64> {
    q.as_ref().and_then(|q| q.bytes().ok())
}

/// Guaranteed QoS for the `G` term.
fn guaranteed(spec: &VmiSpec, v: Version) -> bool {
    let r = &spec.domain.resources;
    let req_mem = mem(&r.requests.memory).unwrap_or(0);
    let lim_mem = mem(&r.limits.memory).unwrap_or(0);
    let mem_ok = (req_mem != 0 && req_mem == lim_mem)
        || (v >= Version::new(1, 7, 0) && r.requests.memory.is_none() && lim_mem != 0);
    let millis =
        |q: &Option<crate::parse::quantity::Quantity>| q.as_ref().and_then(|q| q.millis().ok());
    let req_cpu = millis(&r.requests.cpu).unwrap_or(0);
    let lim_cpu = millis(&r.limits.cpu).unwrap_or(0);
    mem_ok && req_cpu != 0 && req_cpu == lim_cpu
}

/// Whether the VMI has dedicated CPUs.
pub fn dedicated_cpu(spec: &VmiSpec) -> bool {
    spec.domain
        .cpu
        .as_ref()
        .and_then(|c| c.dedicated_cpu_placement)
        .unwrap_or(false)
}

/// KubeVirt's overhead O for a VMI spec (as stored) under version `v`.
pub fn overhead(spec: &VmiSpec, v: Version, cluster: &ClusterInputs) -> Overhead {
    let at = |a, b, c| Version::new(a, b, c);
    let consts = ProcessConstants::for_version(v);
    let mut terms: Vec<Term> = Vec::new();
    let mut notes = Vec::new();
    fn add(terms: &mut Vec<Term>, name: impl Into<Cow<'static, str>>, bytes: i64) {
        if bytes != 0 {
            terms.push(Term {
                name: name.into(),
                bytes,
            });
        }
    }
    let d = &spec.domain;
    let r = mem(&d.resources.requests.memory).unwrap_or(0).max(0);
    add(
        &mut terms,
        "page tables (request/512)",
        ceil_div(r, 1000) * 1000 / 512,
    );
    match consts.combined {
        Some(c) => add(&mut terms, "launcher processes (fixed)", c * MI),
        None => {
            add(&mut terms, "virt-launcher-monitor", consts.monitor * MI);
            add(&mut terms, "virt-launcher", consts.launcher * MI);
            add(&mut terms, "virtlogd", consts.virtlogd * MI);
            let daemon = if v >= at(0, 59, 0) {
                "virtqemud"
            } else {
                "libvirtd"
            };
            add(&mut terms, daemon, consts.libvirt * MI);
            add(&mut terms, "qemu", consts.qemu * MI);
        }
    }
    let n = vcpus(spec);
    add(&mut terms, format!("vCPU threads ({n} x 8Mi)"), 8 * MI * n);
    add(&mut terms, "IOThread", 8 * MI);
    if d.devices.autoattach_graphics_device != Some(false) {
        add(&mut terms, "video", consts.video * MI);
    }
    let arch = if v >= at(1, 2, 0) {
        spec.architecture
            .as_deref()
            .or(cluster.cluster_arch.as_deref())
    } else {
        cluster.cluster_arch.as_deref()
    };
    if arch == Some("arm64") {
        add(&mut terms, "arm64", 128 * MI);
    }
    let sriov = d.devices.interfaces.iter().any(|i| i.sriov.is_some());
    if !d.devices.host_devices.is_empty() || !d.devices.gpus.is_empty() || sriov {
        add(&mut terms, "host devices / GPUs / SR-IOV", GI);
    }
    if spec
        .volumes
        .iter()
        .any(|vol| vol.downward_metrics.is_some())
    {
        add(&mut terms, "downwardMetrics volume", MI);
    }
    let exec_probes = [&spec.liveness_probe, &spec.readiness_probe]
        .into_iter()
        .filter(|p| p.as_ref().is_some_and(|p| p.exec.is_some()))
        .count() as i64;
    if exec_probes > 0 {
        add(
            &mut terms,
            format!("exec probes ({exec_probes} x 10Mi + 100Mi)"),
            exec_probes * 10 * MI + 100 * MI,
        );
    }
    if let Some(ls) = &d.launch_security {
        if ls.sev.is_some() || (v >= at(1, 7, 0) && ls.snp.is_some()) {
            add(&mut terms, "SEV", 256 * MI);
        }
    }
    if let Some(tpm) = &d.devices.tpm {
        if v < at(1, 6, 0) || tpm.enabled != Some(false) {
            add(&mut terms, "TPM", 53 * MI);
        }
    }
    if v >= at(0, 59, 0) && v < at(1, 3, 0) {
        let passt = d
            .devices
            .interfaces
            .iter()
            .filter(|i| i.passt.is_some() && i.ports.is_empty())
            .count() as i64;
        if passt > 0 {
            add(&mut terms, "passt without ports", passt * 800 * MI);
        }
    }
    let g = v >= at(1, 1, 0) && (dedicated_cpu(spec) || guaranteed(spec, v));
    if g && v >= at(1, 5, 3) {
        add(&mut terms, "dedicated CPU / guaranteed QoS", 100 * MI);
    }
    if v >= at(1, 8, 0) {
        if let Some(added) = d
            .memory
            .as_ref()
            .and_then(|m| m.reserved_overhead.as_ref())
            .and_then(|ro| ro.added_overhead.as_ref())
        {
            match added.bytes() {
                Ok(b) => add(&mut terms, "reservedOverhead.addedOverhead", b),
                Err(e) => notes.push(format!("addedOverhead ignored: {e}")),
            }
        }
    }
    let mut ratio_used = None;
    if let Some(ratio) = cluster
        .ratio
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        if !ratio_supported(v) {
            notes.push(format!(
                "additionalGuestMemoryOverheadRatio {ratio} is not supported by KubeVirt {v} and is ignored"
            ));
        } else {
            match ratio.parse::<f64>() {
                Ok(rf) if rf.is_finite() && rf >= 1.0 => {
                    let sum: i64 = terms.iter().map(|t| t.bytes).sum();
                    let extra = 1000 * ((ceil_div(sum, 1000) as f64) * (rf - 1.0)).trunc() as i64;
                    add(&mut terms, format!("overhead ratio {ratio}"), extra);
                    ratio_used = Some(ratio.to_string());
                }
                _ => notes.push(format!(
                    "additionalGuestMemoryOverheadRatio {ratio:?} is invalid (must be a number >= 1.0) and is ignored"
                )),
            }
        }
    }
    if g && v >= at(1, 1, 0) && v < at(1, 5, 3) {
        add(&mut terms, "dedicated CPU / guaranteed QoS", 100 * MI);
    }
    if v >= at(1, 3, 0) {
        let net = cluster.config.network.as_ref();
        let mut used: Vec<&str> = d
            .devices
            .interfaces
            .iter()
            .filter_map(|i| i.binding.as_ref().map(|b| b.name.as_str()))
            .collect();
        used.sort_unstable();
        used.dedup();
        for name in used {
            let plugin = net.and_then(|n| n.binding.get(name));
            let req = plugin
                .and_then(|p| p.compute_resource_overhead.as_ref())
                .and_then(|c| c.requests.memory.as_ref());
            if let Some(q) = req {
                match q.bytes() {
                    Ok(b) => add(&mut terms, format!("network binding {name}"), b),
                    Err(e) => notes.push(format!("binding plugin {name} overhead ignored: {e}")),
                }
            }
        }
    }
    if v >= at(1, 8, 0)
        && d.devices
            .interfaces
            .iter()
            .any(|i| i.passt_binding.is_some())
    {
        add(&mut terms, "passt binding", 250 * MI);
    }
    let total = terms.iter().map(|t| t.bytes).sum();
    Overhead {
        version: v,
        total,
        terms,
        ratio: ratio_used,
        notes,
    }
}

#[cfg(test)]
mod tests;
