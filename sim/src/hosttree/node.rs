//! Writing a node's host tree: every launcher's cgroups and processes, the QoS and root
//! cgroups with the node's totals, pruning what is gone, and the kernel log.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::cgroups::{launcher_cgroups, write_cgroup, CgroupFiles, Charge, Kernel};
use super::{cgroup_root, compute_pid, kernel_log, pod_slice, proc_root, scope, CgroupDriver};
use crate::procfs::{cmdline_of, write_proc, ProcFile};
use crate::treefiles::TreeWriter;
use crate::workload::{GuestBacking, Sample};
use crate::world::{Launcher, NodeModel};

/// A launcher and its memory now (qemu gone after an OOM kill).
pub struct LauncherNow<'a> {
    pub launcher: &'a Launcher,
    pub sample: Sample,
}

/// Where a node's memory cgroups and processes go.
struct NodeDirs {
    /// The memory hierarchy's root (`/sys/fs/cgroup/memory`).
    mem_root: PathBuf,
    kubepods: PathBuf,
    procs: PathBuf,
    k: Kernel,
    driver: CgroupDriver,
}

/// What the launchers' cgroups add up to, and which pod and container directories are live.
#[derive(Default)]
struct Totals {
    live_dirs: HashSet<PathBuf>,
    by_qos: BTreeMap<&'static str, Charge>,
    all: Charge,
}

/// Rewrite a node's cgroup tree, `/proc` and kernel log (only the files that changed).
pub fn write_node(
    w: &mut TreeWriter,
    node_root: &Path,
    node: &NodeModel,
    launchers: &[LauncherNow],
) -> io::Result<()> {
    let k = Kernel {
        v2: node.cgroup_v2,
        swap: node.swap,
    };
    // v1: the memory hierarchy below /sys/fs/cgroup/memory; v2: the unified one at the root.
    let mem_root = if k.v2 {
        let root = cgroup_root(node_root);
        w.dir(&root)?;
        w.file(
            &root.join("cgroup.controllers"),
            String::from("cpuset cpu io memory hugetlb pids rdma misc\n"),
        )?;
        root
    } else {
        cgroup_root(node_root).join("memory")
    };
    let dirs = NodeDirs {
        kubepods: mem_root.join(node.cgroup_driver.kubepods()),
        mem_root,
        procs: proc_root(node_root),
        k,
        driver: node.cgroup_driver,
    };
    write_kernel_release(w, &dirs.procs, node)?;
    let mut totals = Totals::default();
    for ln in launchers {
        write_launcher_cgroups(w, &dirs, ln, &mut totals)?;
        write_launcher_processes(w, &dirs, ln)?;
    }
    write_node_cgroups(w, &dirs, node, &totals)?;
    let live_pids = live_pids(launchers);
    if w.live_changed(&totals.live_dirs, &live_pids) {
        prune(w, &dirs, &totals.live_dirs, &live_pids)?;
    }
    write_kernel_log(w, node_root, node)
}

/// The kernel release, as /proc/sys/kernel/osrelease shows it (the probe reads it).
fn write_kernel_release(w: &mut TreeWriter, procs: &Path, node: &NodeModel) -> io::Result<()> {
    w.dir(&procs.join("sys/kernel"))?;
    w.file(
        &procs.join("sys/kernel/osrelease"),
        format!("{}\n", node.kernel),
    )
}

/// The pod slice and container scopes of one launcher; adds its charge to the totals.
fn write_launcher_cgroups(
    w: &mut TreeWriter,
    dirs: &NodeDirs,
    ln: &LauncherNow,
    totals: &mut Totals,
) -> io::Result<()> {
    let mem_root = &dirs.mem_root;
    let l = ln.launcher;
    let slice = pod_slice(dirs.driver, l.qos, &l.pod_uid);
    let pod_dir = mem_root.join(slice.trim_start_matches('/'));
    let cgroups = launcher_cgroups(l, &ln.sample);
    for (_, id, c) in &cgroups.containers {
        let dir = pod_dir.join(scope(dirs.driver, id));
        totals.live_dirs.insert(dir.clone());
        write_cgroup(w, &dir, c, dirs.k)?;
    }
    write_cgroup(w, &pod_dir, &cgroups.pod, dirs.k)?;
    totals.live_dirs.insert(pod_dir);
    if ln.sample.hugetlb > 0 || l.shape.guest_backing == GuestBacking::Hugepages {
        // Hugepage-backed guest RAM is charged here, not to the memory cgroup above.
        let hugetlb_dir = mem_root
            .with_file_name("hugetlb")
            .join(slice.trim_start_matches('/'));
        w.dir(&hugetlb_dir)?;
        for (name, text) in [
            (
                "hugetlb.2MB.usage_in_bytes",
                format!("{}\n", ln.sample.hugetlb),
            ),
            (
                "hugetlb.2MB.max_usage_in_bytes",
                format!("{}\n", ln.sample.hugetlb),
            ),
            ("hugetlb.2MB.limit_in_bytes", format!("{}\n", l.shape.guest)),
        ] {
            w.file(&hugetlb_dir.join(name), text)?;
        }
    }
    let pod = cgroups.pod.total;
    totals.by_qos.entry(l.qos).or_default().add(&pod);
    totals.all.add(&pod);
    Ok(())
}

/// `/proc/<pid>` of one launcher's processes: pause, the compute container's, virt-tail.
fn write_launcher_processes(
    w: &mut TreeWriter,
    dirs: &NodeDirs,
    ln: &LauncherNow,
) -> io::Result<()> {
    let (l, s) = (ln.launcher, &ln.sample);
    let procs = dirs.procs.as_path();
    let slice = pod_slice(dirs.driver, l.qos, &l.pod_uid);
    let [pause_pid, monitor_pid, ..] = l.pids;
    let cg = |i: usize| format!("{slice}/{}", scope(dirs.driver, &l.container_ids[i]));
    let pause = ProcFile {
        pid: pause_pid,
        ppid: 1,
        mem: &s.pause,
        guest: Vec::new(),
        backing: l.shape.guest_backing,
        cmdline: cmdline_of("pause", l),
        cgroup: cg(0),
        threads: 1,
    };
    write_proc(w, procs, &pause)?;
    for (i, p) in s.compute.iter().enumerate() {
        let is_qemu = i == 4;
        let process = ProcFile {
            pid: compute_pid(l, i),
            ppid: if i == 0 { pause_pid } else { monitor_pid },
            mem: p,
            guest: if is_qemu {
                l.shape.guest_mappings(s.guest_resident)
            } else {
                Vec::new()
            },
            backing: l.shape.guest_backing,
            cmdline: cmdline_of(p.comm, l),
            cgroup: cg(1),
            threads: if is_qemu { l.shape.vcpus + 5 } else { 12 },
        };
        write_proc(w, procs, &process)?;
    }
    if l.has_console_sidecar() {
        let tail = ProcFile {
            pid: l.pids[6],
            ppid: pause_pid,
            mem: &s.sidecar,
            guest: Vec::new(),
            backing: l.shape.guest_backing,
            cmdline: cmdline_of("virt-tail", l),
            cgroup: cg(2),
            threads: 4,
        };
        write_proc(w, procs, &tail)?;
    }
    Ok(())
}

/// The QoS slices, `kubepods.slice` (limited to the node's memory) and the hierarchy root
/// (what the probe checks for cgroup v1): the node as a whole.
fn write_node_cgroups(
    w: &mut TreeWriter,
    dirs: &NodeDirs,
    node: &NodeModel,
    totals: &Totals,
) -> io::Result<()> {
    for (qos, name) in dirs.driver.qos_dirs() {
        let total = totals.by_qos.get(qos).copied().unwrap_or_default();
        let files = CgroupFiles {
            total,
            ..CgroupFiles::default()
        };
        write_cgroup(w, &dirs.kubepods.join(name), &files, dirs.k)?;
    }
    let kubepods = CgroupFiles {
        limit: Some(node.memory / 4096 * 4096),
        total: totals.all,
        ..CgroupFiles::default()
    };
    write_cgroup(w, &dirs.kubepods, &kubepods, dirs.k)?;
    let root = CgroupFiles {
        total: totals.all,
        ..CgroupFiles::default()
    };
    write_cgroup(w, &dirs.mem_root, &root, dirs.k)
}

/// The PIDs of every launcher process, as `/proc` names them.
fn live_pids(launchers: &[LauncherNow]) -> HashSet<String> {
    launchers
        .iter()
        .flat_map(|ln| {
            let l = ln.launcher;
            let mut pids = vec![l.pids[0]];
            pids.extend((0..ln.sample.compute.len()).map(|i| compute_pid(l, i)));
            if l.has_console_sidecar() {
                pids.push(l.pids[6]);
            }
            pids
        })
        .map(|p| p.to_string())
        .collect()
}

fn write_kernel_log(w: &mut TreeWriter, node_root: &Path, node: &NodeModel) -> io::Result<()> {
    let log = kernel_log(node_root);
    if let Some(parent) = log.parent() {
        w.dir(parent)?;
    }
    w.file(
        &log,
        node.kernel_log
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
}

fn dirs_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Remove pod slices, container scopes and `/proc` entries of pods and processes that are gone.
fn prune(
    w: &mut TreeWriter,
    dirs: &NodeDirs,
    live_dirs: &HashSet<PathBuf>,
    live_pids: &HashSet<String>,
) -> io::Result<()> {
    let [(_, burstable), (_, besteffort)] = dirs.driver.qos_dirs();
    let qos_dirs = [
        dirs.kubepods.clone(),
        dirs.kubepods.join(burstable),
        dirs.kubepods.join(besteffort),
    ];
    let procs = dirs.procs.as_path();
    for qos in &qos_dirs {
        for pod in dirs_in(qos)? {
            if qos_dirs.contains(&pod) {
                continue;
            }
            if !live_dirs.contains(&pod) {
                fs::remove_dir_all(&pod)?;
                w.removed(&pod);
                continue;
            }
            for scope in dirs_in(&pod)? {
                if !live_dirs.contains(&scope) {
                    fs::remove_dir_all(&scope)?;
                    w.removed(&scope);
                }
            }
        }
    }
    for p in dirs_in(procs)? {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !live_pids.contains(&name) && name != "sys" {
            fs::remove_dir_all(&p)?;
            w.removed(&p);
        }
    }
    Ok(())
}
