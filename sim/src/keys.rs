//! Label and annotation keys KubeVirt and Harvester put on the objects the simulator serves.

/// Harvester's VM annotation: memory kept back from the guest (`memory.guest = limit − it`).
pub const HARVESTER_RESERVED_MEMORY: &str = "harvesterhci.io/reservedMemory";
/// Harvester's VM annotation that turns on CPU and memory hotplug.
pub const HARVESTER_HOTPLUG: &str = "harvesterhci.io/enableCPUAndMemoryHotplug";
/// `kubevirt.io=virt-launcher` on every launcher pod.
pub const LAUNCHER_LABEL: &str = "kubevirt.io";
pub const LAUNCHER_LABEL_VALUE: &str = "virt-launcher";
/// The UID of the VMI a launcher pod runs.
pub const CREATED_BY: &str = "kubevirt.io/created-by";
/// v1.8+: the overhead KubeVirt added to the pod, on the pod.
pub const MEMORY_OVERHEAD_ANNOTATION: &str = "kubevirt.io/memory-overhead-bytes";
/// The VMI's hostname (usually the VM's name).
pub const VM_NAME_LABEL: &str = "vm.kubevirt.io/name";
/// VMI (and VM template) annotation: a JSON list of hook sidecars.
pub const HOOK_SIDECARS: &str = "hooks.kubevirt.io/hookSidecars";
