//! A node's host files as a probe on that node would see them: the cgroup v1 memory hierarchy
//! (systemd or cgroupfs driver) with real kernel file formats, `/proc/<pid>/…` of every launcher process,
//! and the kernel log. Written from the workload model whenever someone looks (exec).

use std::path::{Path, PathBuf};

pub use super::treefiles::write_atomic;
use super::world::Launcher;

mod cgroups;
mod cgroups_v2;
mod node;

pub use cgroups::{launcher_cgroups, CgroupFiles, Charge, Kernel, LauncherCgroups};
pub use node::{write_node, LauncherNow};

/// What v1 shows for "no limit".
pub const UNLIMITED: i64 = 9_223_372_036_854_771_712;

/// Where a node's files live below the simulator's host root.
pub fn node_root(host_root: &Path, node: &str) -> PathBuf {
    host_root.join(node)
}

/// The directory that plays the node's `/sys/fs/cgroup`.
pub fn cgroup_root(node_root: &Path) -> PathBuf {
    node_root.join("sys/fs/cgroup")
}

pub fn proc_root(node_root: &Path) -> PathBuf {
    node_root.join("proc")
}

pub fn kernel_log(node_root: &Path) -> PathBuf {
    node_root.join("var/log/kern.log")
}

/// How the node's kubelet names its cgroups (`--cgroup-driver`): `systemd` slices and scopes
/// (the default of kubeadm since Kubernetes 1.22, and of Harvester) or `cgroupfs` plain
/// directories (`/kubepods/burstable/pod<uid>/<container id>`, the kubelet's own default).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    #[default]
    Systemd,
    Cgroupfs,
}

impl CgroupDriver {
    /// The directory of every pod's cgroup, below the hierarchy's root.
    pub fn kubepods(self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "kubepods.slice",
            CgroupDriver::Cgroupfs => "kubepods",
        }
    }

    /// The Burstable and BestEffort QoS directories, below [`CgroupDriver::kubepods`].
    pub fn qos_dirs(self) -> [(&'static str, &'static str); 2] {
        match self {
            CgroupDriver::Systemd => [
                ("Burstable", "kubepods-burstable.slice"),
                ("BestEffort", "kubepods-besteffort.slice"),
            ],
            CgroupDriver::Cgroupfs => [("Burstable", "burstable"), ("BestEffort", "besteffort")],
        }
    }

    /// The pod's cgroup below the hierarchy's root: systemd
    /// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice`,
    /// cgroupfs `/kubepods/burstable/pod<uid>` (Guaranteed pods directly below kubepods).
    pub fn pod_dir(self, qos: &str, pod_uid: &str) -> String {
        match self {
            CgroupDriver::Systemd => {
                let uid = pod_uid.replace('-', "_");
                match qos {
                    "Guaranteed" => format!("/kubepods.slice/kubepods-pod{uid}.slice"),
                    "BestEffort" => format!(
                        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice"
                    ),
                    _ => format!(
                        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice"
                    ),
                }
            }
            CgroupDriver::Cgroupfs => match qos {
                "Guaranteed" => format!("/kubepods/pod{pod_uid}"),
                "BestEffort" => format!("/kubepods/besteffort/pod{pod_uid}"),
                _ => format!("/kubepods/burstable/pod{pod_uid}"),
            },
        }
    }

    /// A container's cgroup name in its pod's: systemd `cri-containerd-<id>.scope`, cgroupfs the
    /// bare id (also what the kernel prints as `cpuset=` in an OOM report).
    pub fn container_dir(self, container_id: &str) -> String {
        match self {
            CgroupDriver::Systemd => format!("cri-containerd-{container_id}.scope"),
            CgroupDriver::Cgroupfs => container_id.to_string(),
        }
    }
}

/// [`CgroupDriver::pod_dir`].
pub fn pod_slice(driver: CgroupDriver, qos: &str, pod_uid: &str) -> String {
    driver.pod_dir(qos, pod_uid)
}

/// [`CgroupDriver::container_dir`].
pub fn scope(driver: CgroupDriver, container_id: &str) -> String {
    driver.container_dir(container_id)
}

/// PID of the i-th compute process (monitor, launcher, libvirt, virtlogd, qemu, sh, memhold).
pub fn compute_pid(l: &Launcher, i: usize) -> u32 {
    match i {
        0..=4 => l.pids[i + 1],
        5 => l.pids[7],
        _ => l.pids[8],
    }
}

#[cfg(test)]
mod tests;
