//! KubeVirt's memory overhead O for a VMI, by KubeVirt version, to the byte.
//!
//! The rules are KubeVirt's `GetMemoryOverhead` (pkg/virt-controller/services/template.go up to
//! v0.55, renderresources.go v0.56–v1.7, pkg/hypervisor/kvm/hypervisorbackend.go from v1.8), and
//! `tests/it/kubevirt_vectors.rs` checks them against what that Go code returned at 14 releases.
//! Every input comes from the VMI as stored (after KubeVirt's defaulting), never the VM template.

use std::borrow::Cow;

use serde::Serialize;

use super::objects::{KubeVirtConfiguration, VmiSpec};
use super::version::Version;
use crate::units::{nanos_to_units_ceil, NANOS_PER_UNIT};

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
    /// What the term is for (not in JSON: the name says it to people).
    #[serde(skip)]
    pub kind: TermKind,
    pub name: Cow<'static, str>,
    pub bytes: i64,
}

/// What a term of O pays for: the consumers of O (the per-process budgets, the ratio's room)
/// pick terms by kind, never by their display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    /// The guest's page tables (request / 512).
    PageTables,
    /// The launcher's processes (one fixed sum up to v0.52, one term per process after).
    Processes,
    /// qemu's threads: one per vCPU.
    VcpuThreads,
    IoThread,
    Video,
    /// The arm64 extra.
    Architecture,
    /// Host devices, GPUs, SR-IOV.
    Devices,
    DownwardMetrics,
    ExecProbes,
    Sev,
    Tpm,
    /// The passt binding (and, v0.59–v1.2, passt without ports).
    Passt,
    /// Dedicated CPUs or guaranteed QoS.
    Guaranteed,
    /// `memory.reservedOverhead.addedOverhead`.
    AddedOverhead,
    /// What `additionalGuestMemoryOverheadRatio` adds.
    Ratio,
    /// A network binding plugin's `computeResourceOverhead`.
    BindingPlugin,
}

impl TermKind {
    /// Memory qemu itself spends beyond its fixed constant (threads' stacks, video RAM).
    pub fn is_qemu_extra(self) -> bool {
        matches!(
            self,
            TermKind::VcpuThreads | TermKind::IoThread | TermKind::Video
        )
    }
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

impl Overhead {
    /// The room the overhead ratio adds beyond KubeVirt's own O: O before the ratio × (ratio −
    /// 1), as KubeVirt computes it (0 without a ratio).
    pub fn ratio_room(&self) -> i64 {
        ratio_room_of(&self.terms)
    }
}

/// The ratio's room among O's terms (a row keeps the terms, not the [`Overhead`]).
pub fn ratio_room_of(terms: &[Term]) -> i64 {
    terms
        .iter()
        .filter(|t| t.kind == TermKind::Ratio)
        .map(|t| t.bytes)
        .sum()
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

mod infer;
mod inputs;
pub use infer::{formula_spans, joined, spans_reproducing, AppliedOverhead, VersionSpan};
pub use inputs::{dedicated_cpu, guaranteed_qos, vcpu_count, vcpus, VcpuCount};

/// O as KubeVirt adds it up: `resource.Quantity` sums, exact to a billionth of a byte, rounded
/// up to whole bytes once at the end (`Value()`). Each term keeps its own whole bytes to show.
struct Sum {
    terms: Vec<Term>,
    nanos: i128,
    notes: Vec<String>,
}

impl Sum {
    /// A term of whole bytes (0 is left out).
    fn add(&mut self, kind: TermKind, name: impl Into<Cow<'static, str>>, bytes: i64) {
        self.add_nanos(kind, name, i128::from(bytes) * NANOS_PER_UNIT);
    }

    /// A term exact to the billionth (a quantity such as `1731199801.3` or `1.5G`).
    fn add_nanos(&mut self, kind: TermKind, name: impl Into<Cow<'static, str>>, nanos: i128) {
        if nanos == 0 {
            return;
        }
        self.nanos += nanos;
        self.terms.push(Term {
            kind,
            name: name.into(),
            bytes: i64::try_from(nanos_to_units_ceil(nanos)).unwrap_or(i64::MAX),
        });
    }

    /// O so far in whole kilobytes, rounded up.
    fn kilos(&self) -> i128 {
        kilos_ceil(self.nanos)
    }

    fn total_bytes(&self) -> i64 {
        i64::try_from(nanos_to_units_ceil(self.nanos)).unwrap_or(i64::MAX)
    }
}

/// Whole kilobytes (1000 bytes) in an exact size, rounded up (`ScaledValue(resource.Kilo)`).
fn kilos_ceil(nanos: i128) -> i128 {
    let per_kilo = 1000 * NANOS_PER_UNIT;
    nanos.div_euclid(per_kilo) + i128::from(nanos.rem_euclid(per_kilo) != 0)
}

fn at(major: u32, minor: u32, patch: u32) -> Version {
    Version::new(major, minor, patch)
}

/// KubeVirt's overhead O for a VMI spec (as stored) under version `v`.
pub fn overhead(spec: &VmiSpec, v: Version, cluster: &ClusterInputs) -> Overhead {
    let mut sum = Sum {
        terms: Vec::new(),
        nanos: 0,
        notes: Vec::new(),
    };
    page_tables_and_processes(&mut sum, spec, v);
    cpu_and_devices(&mut sum, spec, v, cluster);
    let g = v >= at(1, 1, 0) && (dedicated_cpu(spec) || inputs::guaranteed_qos(spec, v));
    if g && v >= at(1, 5, 3) {
        sum.add(
            TermKind::Guaranteed,
            "dedicated CPU / guaranteed QoS",
            100 * MI,
        );
    }
    if v >= at(1, 8, 0) {
        added_overhead(&mut sum, spec);
    }
    let ratio_used = apply_ratio(&mut sum, v, cluster.ratio.as_deref());
    if g && v < at(1, 5, 3) {
        sum.add(
            TermKind::Guaranteed,
            "dedicated CPU / guaranteed QoS",
            100 * MI,
        );
    }
    if v >= at(1, 3, 0) {
        binding_plugins(&mut sum, spec, cluster);
    }
    if v >= at(1, 8, 0)
        && spec
            .domain
            .devices
            .interfaces
            .iter()
            .any(|i| i.passt_binding.is_some())
    {
        sum.add(TermKind::Passt, "passt binding", 250 * MI);
    }
    Overhead {
        version: v,
        total: sum.total_bytes(),
        terms: sum.terms,
        ratio: ratio_used,
        notes: sum.notes,
    }
}

/// Page tables (one byte per 512 of the memory request, counted in whole kilobytes) and the
/// launcher's processes.
fn page_tables_and_processes(sum: &mut Sum, spec: &VmiSpec, v: Version) {
    let request_nanos = spec
        .domain
        .resources
        .requests
        .memory
        .as_ref()
        .and_then(|q| q.memory_nanos().ok())
        .unwrap_or(0)
        .max(0);
    sum.add(
        TermKind::PageTables,
        "page tables (request/512)",
        i64::try_from(kilos_ceil(request_nanos) * 1000 / 512).unwrap_or(0),
    );
    let consts = ProcessConstants::for_version(v);
    match consts.combined {
        Some(c) => sum.add(TermKind::Processes, "launcher processes (fixed)", c * MI),
        None => {
            sum.add(
                TermKind::Processes,
                "virt-launcher-monitor",
                consts.monitor * MI,
            );
            sum.add(TermKind::Processes, "virt-launcher", consts.launcher * MI);
            sum.add(TermKind::Processes, "virtlogd", consts.virtlogd * MI);
            let daemon = if v >= at(0, 59, 0) {
                "virtqemud"
            } else {
                "libvirtd"
            };
            sum.add(TermKind::Processes, daemon, consts.libvirt * MI);
            sum.add(TermKind::Processes, "qemu", consts.qemu * MI);
        }
    }
}

/// vCPUs, IOThread, video, architecture, devices, probes, SEV, TPM and the old passt term.
fn cpu_and_devices(sum: &mut Sum, spec: &VmiSpec, v: Version, cluster: &ClusterInputs) {
    let d = &spec.domain;
    let count = inputs::vcpu_count(spec);
    if let Some(note) = count.note() {
        sum.notes.push(note);
    }
    let n = count.kubevirt;
    sum.add(
        TermKind::VcpuThreads,
        format!("vCPU threads ({n} x 8Mi)"),
        8 * MI * n,
    );
    sum.add(TermKind::IoThread, "IOThread", 8 * MI);
    if d.devices.autoattach_graphics_device != Some(false) {
        sum.add(
            TermKind::Video,
            "video",
            ProcessConstants::for_version(v).video * MI,
        );
    }
    if inputs::architecture(spec, v, cluster.cluster_arch.as_deref()) == Some("arm64") {
        sum.add(TermKind::Architecture, "arm64", 128 * MI);
    }
    let sriov = d.devices.interfaces.iter().any(|i| i.sriov.is_some());
    if !d.devices.host_devices.is_empty() || !d.devices.gpus.is_empty() || sriov {
        sum.add(TermKind::Devices, "host devices / GPUs / SR-IOV", GI);
    }
    if spec
        .volumes
        .iter()
        .any(|vol| vol.downward_metrics.is_some())
    {
        sum.add(TermKind::DownwardMetrics, "downwardMetrics volume", MI);
    }
    let exec_probes = [&spec.liveness_probe, &spec.readiness_probe]
        .into_iter()
        .filter(|p| p.as_ref().is_some_and(|p| p.exec.is_some()))
        .count() as i64;
    if exec_probes > 0 {
        sum.add(
            TermKind::ExecProbes,
            format!("exec probes ({exec_probes} x 10Mi + 100Mi)"),
            exec_probes * 10 * MI + 100 * MI,
        );
    }
    if let Some(ls) = &d.launch_security {
        if ls.sev.is_some() || (v >= at(1, 7, 0) && ls.snp.is_some()) {
            sum.add(TermKind::Sev, "SEV", 256 * MI);
        }
    }
    if let Some(tpm) = &d.devices.tpm {
        if tpm.enabled != Some(false) || !inputs::tpm_can_be_disabled(v) {
            sum.add(TermKind::Tpm, "TPM", 53 * MI);
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
            sum.add(TermKind::Passt, "passt without ports", passt * 800 * MI);
        }
    }
}

/// `memory.reservedOverhead.addedOverhead` (v1.8+), exact.
fn added_overhead(sum: &mut Sum, spec: &VmiSpec) {
    let Some(added) = spec
        .domain
        .memory
        .as_ref()
        .and_then(|m| m.reserved_overhead.as_ref())
        .and_then(|ro| ro.added_overhead.as_ref())
    else {
        return;
    };
    match added.memory_nanos() {
        Ok(n) => sum.add_nanos(TermKind::AddedOverhead, "reservedOverhead.addedOverhead", n),
        Err(e) => sum.notes.push(format!("addedOverhead ignored: {e}")),
    }
}

/// The largest O the ratio may produce: past it the ratio is no overhead any machine has (and
/// KubeVirt's float-to-int64 conversion would be undefined).
const RATIO_CEILING_BYTES: f64 = crate::units::MAX_MEMORY_BYTES as f64;

/// `additionalGuestMemoryOverheadRatio` r: O grows by `1000 × trunc(ceil(O / 1000) × (r − 1))`
/// (float multiply, as KubeVirt's `multiplyMemory`). Returns the ratio when applied.
fn apply_ratio(sum: &mut Sum, v: Version, ratio: Option<&str>) -> Option<String> {
    let ratio = ratio.map(str::trim).filter(|r| !r.is_empty())?;
    if !ratio_supported(v) {
        sum.notes.push(format!(
            "additionalGuestMemoryOverheadRatio {ratio} is not supported by KubeVirt {v} and is ignored"
        ));
        return None;
    }
    let extra_kilos = match ratio.parse::<f64>() {
        Ok(rf) if rf.is_finite() && rf >= 1.0 => (sum.kilos() as f64 * (rf - 1.0)).trunc(),
        _ => {
            sum.notes.push(format!(
                "additionalGuestMemoryOverheadRatio {ratio:?} is invalid (must be a number >= 1.0) and is ignored"
            ));
            return None;
        }
    };
    if extra_kilos * 1000.0 > RATIO_CEILING_BYTES {
        sum.notes.push(format!(
            "additionalGuestMemoryOverheadRatio {ratio} would make the overhead larger than any memory size and is ignored"
        ));
        return None;
    }
    sum.add(
        TermKind::Ratio,
        format!("overhead ratio {ratio}"),
        1000 * extra_kilos as i64,
    );
    Some(ratio.to_string())
}

/// The memory overhead of each network binding plugin the VMI uses (each plugin once), v1.3+.
fn binding_plugins(sum: &mut Sum, spec: &VmiSpec, cluster: &ClusterInputs) {
    let net = cluster.config.network.as_ref();
    let mut used: Vec<&str> = spec
        .domain
        .devices
        .interfaces
        .iter()
        .filter_map(|i| i.binding.as_ref().map(|b| b.name.as_str()))
        .collect();
    used.sort_unstable();
    used.dedup();
    for name in used {
        let request = net
            .and_then(|n| n.binding.get(name))
            .and_then(|p| p.compute_resource_overhead.as_ref())
            .and_then(|c| c.requests.memory.as_ref());
        if let Some(q) = request {
            match q.memory_nanos() {
                Ok(n) => sum.add_nanos(
                    TermKind::BindingPlugin,
                    format!("network binding {name}"),
                    n,
                ),
                Err(e) => sum
                    .notes
                    .push(format!("binding plugin {name} overhead ignored: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
