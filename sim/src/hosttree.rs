//! A node's host files as a probe on that node would see them: the cgroup v1 memory hierarchy
//! (systemd driver) with real kernel file formats, `/proc/<pid>/…` of every launcher process,
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

/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice` (systemd driver).
pub fn pod_slice(qos: &str, pod_uid: &str) -> String {
    let uid = pod_uid.replace('-', "_");
    match qos {
        "Guaranteed" => format!("/kubepods.slice/kubepods-pod{uid}.slice"),
        "BestEffort" => {
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice")
        }
        _ => format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice"),
    }
}

pub fn scope(container_id: &str) -> String {
    format!("cri-containerd-{container_id}.scope")
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
