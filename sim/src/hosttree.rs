//! A node's host files as a probe on that node would see them: the cgroup v1 memory hierarchy
//! (systemd driver) with real kernel file formats, `/proc/<pid>/…` of every launcher process,
//! and the kernel log. Written from the workload model whenever someone looks (exec).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::procfs::{cmdline_of, write_proc, ProcFile};
pub use super::treefiles::write_atomic;
use super::treefiles::TreeWriter;
use super::workload::{ProcMem, Sample};
use super::world::{Launcher, NodeModel};

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

/// Memory charged to one cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Charge {
    pub anon: i64,
    pub shmem: i64,
    pub active_file: i64,
    pub inactive_file: i64,
    pub kernel: i64,
    pub anon_huge: i64,
}

impl Charge {
    pub fn usage(&self) -> i64 {
        self.anon + self.shmem + self.active_file + self.inactive_file + self.kernel
    }

    fn add(&mut self, o: &Charge) {
        self.anon += o.anon;
        self.shmem += o.shmem;
        self.active_file += o.active_file;
        self.inactive_file += o.inactive_file;
        self.kernel += o.kernel;
        self.anon_huge += o.anon_huge;
    }
}

/// Counters of one cgroup directory.
#[derive(Debug, Clone, Default)]
pub struct CgroupFiles {
    pub limit: Option<i64>,
    /// Own charge (processes directly in it); `total` is the hierarchical sum.
    pub local: Charge,
    pub total: Charge,
    pub max_usage: i64,
    pub failcnt: u64,
    pub oom_kill: u64,
    pub procs: Vec<u32>,
}

fn memory_stat(c: &CgroupFiles) -> String {
    let mut s = String::new();
    let l = &c.local;
    let t = &c.total;
    let lim = c.limit.unwrap_or(UNLIMITED);
    let pages = |b: i64| b / 4096;
    let rows: [(&str, i64, i64); 17] = [
        (
            "cache",
            l.active_file + l.inactive_file + l.shmem,
            t.active_file + t.inactive_file + t.shmem,
        ),
        ("rss", l.anon, t.anon),
        ("rss_huge", l.anon_huge, t.anon_huge),
        ("shmem", l.shmem, t.shmem),
        ("mapped_file", l.active_file, t.active_file),
        ("dirty", 0, 0),
        ("writeback", 0, 0),
        ("swap", 0, 0),
        ("pgpgin", pages(l.usage()) + 1200, pages(t.usage()) + 1200),
        ("pgpgout", 1200, 1200),
        ("pgfault", pages(l.anon) * 2, pages(t.anon) * 2),
        ("pgmajfault", 0, 1),
        ("inactive_anon", l.anon - l.anon / 8, t.anon - t.anon / 8),
        ("active_anon", l.anon / 8 + l.shmem, t.anon / 8 + t.shmem),
        ("inactive_file", l.inactive_file, t.inactive_file),
        ("active_file", l.active_file, t.active_file),
        ("unevictable", 0, 0),
    ];
    for (k, v, _) in &rows {
        let _ = writeln!(s, "{k} {v}");
    }
    let _ = writeln!(s, "hierarchical_memory_limit {lim}");
    let _ = writeln!(s, "hierarchical_memsw_limit {UNLIMITED}");
    for (k, _, v) in &rows {
        let _ = writeln!(s, "total_{k} {v}");
    }
    s
}

fn write_cgroup(w: &mut TreeWriter, dir: &Path, c: &CgroupFiles) -> io::Result<()> {
    w.dir(dir)?;
    let usage = c.total.usage();
    let files: [(&str, String); 9] = [
        (
            "memory.limit_in_bytes",
            format!("{}\n", c.limit.unwrap_or(UNLIMITED)),
        ),
        ("memory.usage_in_bytes", format!("{usage}\n")),
        (
            "memory.max_usage_in_bytes",
            format!("{}\n", c.max_usage.max(usage)),
        ),
        ("memory.failcnt", format!("{}\n", c.failcnt)),
        ("memory.stat", memory_stat(c)),
        (
            "memory.oom_control",
            format!("oom_kill_disable 0\nunder_oom 0\noom_kill {}\n", c.oom_kill),
        ),
        (
            "memory.kmem.usage_in_bytes",
            format!("{}\n", c.total.kernel),
        ),
        ("memory.memsw.limit_in_bytes", format!("{UNLIMITED}\n")),
        (
            "cgroup.procs",
            c.procs.iter().map(|p| format!("{p}\n")).collect(),
        ),
    ];
    for (name, text) in files {
        w.file(&dir.join(name), text)?;
    }
    Ok(())
}

/// The memory cgroups of one virt-launcher pod: the pod slice and its container scopes.
pub struct LauncherCgroups {
    pub pod: CgroupFiles,
    /// (container name, container id, counters): `pause` (the sandbox, which the kubelet does not
    /// list as a container), `compute`, and `guest-console-log` where the pod has it.
    pub containers: Vec<(&'static str, String, CgroupFiles)>,
}

/// What the node's cgroups hold for launcher `l` with memory `s`: the one source of both the
/// host tree the probe reads and the kubelet's stats summary.
pub fn launcher_cgroups(l: &Launcher, s: &Sample) -> LauncherCgroups {
    let file = |p: &ProcMem| Charge {
        anon: p.anon,
        shmem: p.shmem,
        ..Charge::default()
    };
    let pause = file(&s.pause);
    let console = file(&s.sidecar);
    let compute = Charge {
        anon: s.compute.iter().map(|p| p.anon).sum(),
        shmem: s.compute.iter().map(|p| p.shmem).sum(),
        active_file: s.active_file,
        inactive_file: s.inactive_file,
        kernel: s.pagetables + s.kernel_stack + s.slab,
        anon_huge: s.guest_resident / (2 << 20) * (2 << 20),
    };
    let leaf = |charge: Charge, limit: Option<i64>, procs: Vec<u32>| CgroupFiles {
        limit,
        local: charge,
        total: charge,
        procs,
        ..CgroupFiles::default()
    };
    let compute_pids: Vec<u32> = (0..s.compute.len()).map(|i| compute_pid(l, i)).collect();
    let mut containers = vec![
        (
            "pause",
            l.container_ids[0].clone(),
            leaf(pause, None, vec![l.pids[0]]),
        ),
        (
            "compute",
            l.container_ids[1].clone(),
            CgroupFiles {
                max_usage: l.max_usage,
                failcnt: l.failcnt,
                oom_kill: l.oom_kills,
                ..leaf(compute, l.compute_limit, compute_pids)
            },
        ),
    ];
    if l.has_console_sidecar() {
        containers.push((
            "guest-console-log",
            l.container_ids[2].clone(),
            leaf(console, None, vec![l.pids[6]]),
        ));
    }
    let mut pod = Charge::default();
    for (_, _, c) in &containers {
        pod.add(&c.total);
    }
    LauncherCgroups {
        pod: CgroupFiles {
            limit: l.pod_limit,
            local: Charge::default(),
            total: pod,
            max_usage: l.max_usage + pause.usage() + console.usage(),
            ..CgroupFiles::default()
        },
        containers,
    }
}

/// A launcher and its memory now (qemu gone after an OOM kill).
pub struct LauncherNow<'a> {
    pub launcher: &'a Launcher,
    pub sample: Sample,
}

/// Rewrite a node's cgroup tree, `/proc` and kernel log (only the files that changed).
pub fn write_node(
    w: &mut TreeWriter,
    node_root: &Path,
    node: &NodeModel,
    launchers: &[LauncherNow],
) -> io::Result<()> {
    let mem_root = cgroup_root(node_root).join("memory");
    let kubepods = mem_root.join("kubepods.slice");
    let procs = proc_root(node_root);
    // The kernel release, as /proc/sys/kernel/osrelease shows it (the probe reads it).
    w.dir(&procs.join("sys/kernel"))?;
    w.file(
        &procs.join("sys/kernel/osrelease"),
        format!("{}\n", node.kernel),
    )?;
    let mut live_dirs: HashSet<PathBuf> = HashSet::new();
    let mut qos_totals: std::collections::BTreeMap<&str, Charge> = Default::default();
    let mut all = Charge::default();
    for ln in launchers {
        let l = ln.launcher;
        let s = &ln.sample;
        let slice = pod_slice(l.qos, &l.pod_uid);
        let cgroups = launcher_cgroups(l, s);
        let pod = cgroups.pod.total;
        let [pause_pid, monitor_pid, ..] = l.pids;
        for (_, id, c) in &cgroups.containers {
            live_dirs.insert(mem_root.join(slice.trim_start_matches('/')).join(scope(id)));
            write_cgroup(
                w,
                &mem_root.join(slice.trim_start_matches('/')).join(scope(id)),
                c,
            )?;
        }
        write_cgroup(
            w,
            &mem_root.join(slice.trim_start_matches('/')),
            &cgroups.pod,
        )?;
        live_dirs.insert(mem_root.join(slice.trim_start_matches('/')));
        qos_totals.entry(l.qos).or_default().add(&pod);
        all.add(&pod);
        // Processes.
        let cg = |i: usize| format!("{slice}/{}", scope(&l.container_ids[i]));
        write_proc(
            w,
            &procs,
            &ProcFile {
                pid: pause_pid,
                ppid: 1,
                mem: &s.pause,
                guest: None,
                cmdline: cmdline_of("pause", l),
                cgroup: cg(0),
                threads: 1,
            },
        )?;
        for (i, p) in s.compute.iter().enumerate() {
            let pid = compute_pid(l, i);
            let is_qemu = i == 4;
            write_proc(
                w,
                &procs,
                &ProcFile {
                    pid,
                    ppid: if i == 0 { pause_pid } else { monitor_pid },
                    mem: p,
                    guest: is_qemu.then_some((s.guest_resident, l.shape.guest)),
                    cmdline: cmdline_of(p.comm, l),
                    cgroup: cg(1),
                    threads: if is_qemu { l.shape.vcpus + 5 } else { 12 },
                },
            )?;
        }
        if l.has_console_sidecar() {
            write_proc(
                w,
                &procs,
                &ProcFile {
                    pid: l.pids[6],
                    ppid: pause_pid,
                    mem: &s.sidecar,
                    guest: None,
                    cmdline: cmdline_of("virt-tail", l),
                    cgroup: cg(2),
                    threads: 4,
                },
            )?;
        }
    }
    for qos in ["Burstable", "BestEffort"] {
        let total = qos_totals.get(qos).copied().unwrap_or_default();
        let name = if qos == "Burstable" {
            "kubepods-burstable.slice"
        } else {
            "kubepods-besteffort.slice"
        };
        write_cgroup(
            w,
            &kubepods.join(name),
            &CgroupFiles {
                total,
                ..CgroupFiles::default()
            },
        )?;
    }
    write_cgroup(
        w,
        &kubepods,
        &CgroupFiles {
            limit: Some(node.memory / 4096 * 4096),
            total: all,
            ..CgroupFiles::default()
        },
    )?;
    // The hierarchy root (what the probe checks for cgroup v1): the node as a whole.
    write_cgroup(
        w,
        &mem_root,
        &CgroupFiles {
            total: all,
            ..CgroupFiles::default()
        },
    )?;
    let live_pids: HashSet<String> = launchers
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
        .collect();
    if w.live_changed(&live_dirs, &live_pids) {
        prune(w, &kubepods, &live_dirs, &live_pids, &procs)?;
    }
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
    )?;
    Ok(())
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
    kubepods: &Path,
    live_dirs: &HashSet<PathBuf>,
    live_pids: &HashSet<String>,
    procs: &Path,
) -> io::Result<()> {
    let qos_dirs = [
        kubepods.to_path_buf(),
        kubepods.join("kubepods-burstable.slice"),
        kubepods.join("kubepods-besteffort.slice"),
    ];
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

/// PID of the i-th compute process (monitor, launcher, libvirt, virtlogd, qemu, sh, memhold).
pub fn compute_pid(l: &Launcher, i: usize) -> u32 {
    match i {
        0..=4 => l.pids[i + 1],
        5 => l.pids[7],
        _ => l.pids[8],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::tick::write_host_tree;
    use crate::world::World;

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn node_tree_has_kernel_formats_for_every_launcher() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = World::new(&Scenario::demo().unwrap(), dir.path().to_path_buf()).unwrap();
        let root = write_host_tree(&mut w, "harvester-node-1").unwrap();
        let here: Vec<&Launcher> = w
            .launchers
            .values()
            .filter(|l| l.node == "harvester-node-1")
            .collect();
        assert!(here.len() >= 4);
        let mem = cgroup_root(&root).join("memory");
        for l in &here {
            let slice = mem.join(pod_slice(l.qos, &l.pod_uid).trim_start_matches('/'));
            let compute = slice.join(scope(&l.container_ids[1]));
            let limit: i64 = read(&compute.join("memory.limit_in_bytes"))
                .trim()
                .parse()
                .unwrap();
            assert_eq!(Some(limit), l.compute_limit);
            assert_eq!(limit % 4096, 0);
            let stat = read(&slice.join("memory.stat"));
            for key in [
                "total_rss ",
                "total_cache ",
                "total_inactive_file ",
                "hierarchical_memory_limit ",
            ] {
                assert!(stat.lines().any(|x| x.starts_with(key)), "{key} in {stat}");
            }
            let usage: i64 = read(&slice.join("memory.usage_in_bytes"))
                .trim()
                .parse()
                .unwrap();
            let rss: i64 = stat
                .lines()
                .find_map(|x| x.strip_prefix("total_rss "))
                .unwrap()
                .parse()
                .unwrap();
            assert!(rss < usage && usage < limit + 60_000_000);
            assert_eq!(
                read(&compute.join("memory.oom_control")),
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
            );
            let procs: Vec<u32> = read(&compute.join("cgroup.procs"))
                .lines()
                .map(|p| p.parse().unwrap())
                .collect();
            assert_eq!(procs.len(), 5);
            let qemu = proc_root(&root).join(procs[4].to_string());
            assert_eq!(read(&qemu.join("comm")), "qemu-system-x86\n");
            let status = read(&qemu.join("status"));
            assert!(status.starts_with("Name:\tqemu-system-x86\n"));
            assert!(status
                .lines()
                .any(|x| x.starts_with("VmRSS:") && x.ends_with(" kB")));
            let smaps = read(&qemu.join("smaps"));
            let guest_kb = format!("Size:           {:>8} kB", l.shape.guest / 1024);
            assert!(
                smaps.contains(&guest_kb),
                "guest mapping {guest_kb} in\n{smaps}"
            );
            assert!(read(&qemu.join("cgroup")).contains(&format!(
                "memory:{}/{}",
                pod_slice(l.qos, &l.pod_uid),
                scope(&l.container_ids[1])
            )));
        }
        // Rewriting after a pod is gone prunes it.
        let (gone, qos) = (here[0].pod_uid.clone(), here[0].qos);
        let slice = mem.join(pod_slice(qos, &gone).trim_start_matches('/'));
        w.launchers.remove(&gone);
        write_host_tree(&mut w, "harvester-node-1").unwrap();
        assert!(!slice.exists());
        assert!(root.join("var/log/kern.log").exists());
    }
}
