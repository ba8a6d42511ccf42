//! What an explained OOM kill says (the types [`super::oom_verdict`] fills and
//! [`super::oom_words`] puts into words).

use super::oom_event::{ContainerRuntime, OomEvent};
use super::oom_vm::{KillContainer, VmRef};
use super::overhead::ProcessRole;
use super::version::DetectedVersion;

/// What triggered the OOM (the thread that needed a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// `CPU n/KVM`: a vCPU touched guest RAM.
    Vcpu,
    /// Another QEMU thread (`IO iothread1`, `vnc_worker`, the main thread).
    Qemu,
    /// A KubeVirt launcher process (virt-launcher, virtqemud/libvirtd, virtlogd, the monitor).
    Launcher(ProcessRole),
    /// Anything else (something exec'd into the pod, a node process in a global OOM).
    Other,
    Unknown,
}

/// One task with its KubeVirt budget (qemu: its constant plus guest RAM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskVerdict {
    pub pid: u32,
    pub name: String,
    pub rss_bytes: u64,
    pub budget_bytes: Option<u64>,
}

/// Where the guest size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestSource {
    /// The VMI (or VM) spec in the inventory.
    Spec,
    /// The cgroup limit minus KubeVirt's overhead O.
    Estimated,
}

/// One explained OOM event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomExplanation {
    pub event: OomEvent,
    pub kubevirt: bool,
    pub vm: Option<VmRef>,
    /// The container of the virt-launcher pod the kill was in, when known.
    pub container: Option<KillContainer>,
    /// The container runtime: named by the cgroup path, else by the pod's status.
    pub runtime: Option<ContainerRuntime>,
    pub version: DetectedVersion,
    pub harvester: Option<bool>,
    pub trigger_kind: TriggerKind,
    pub guest_bytes: Option<u64>,
    pub guest_source: Option<GuestSource>,
    /// Guest RAM is hugepage-backed (not charged to the memory cgroup).
    pub guest_in_hugepages: bool,
    /// The VM's configured memory (the reservation table's key).
    pub configured_bytes: Option<u64>,
    /// KubeVirt's O (exact from the inventory, else estimated from the limit).
    pub overhead_bytes: Option<u64>,
    pub guest_resident_bytes: Option<u64>,
    /// Everything that is not guest RAM at the kill: usage − guest resident.
    pub overhead_used_bytes: Option<u64>,
    /// Room for it: limit − guest.
    pub overhead_budget_bytes: Option<u64>,
    pub tasks: Vec<TaskVerdict>,
    pub reserve_bytes: Option<u64>,
    pub reserve_reason: Option<String>,
    pub current_reservation: Option<String>,
    pub verdict: String,
}
