//! A node's host files as a probe on that node would see them: the cgroup v1 memory hierarchy
//! (systemd driver) with real kernel file formats, `/proc/<pid>/…` of every launcher process,
//! and the kernel log. Written from the workload model whenever someone looks (exec).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

fn write_cgroup(dir: &Path, c: &CgroupFiles) -> io::Result<()> {
    fs::create_dir_all(dir)?;
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
        fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// One process to write under `/proc`.
struct ProcFile<'a> {
    pid: u32,
    ppid: u32,
    mem: &'a ProcMem,
    /// Resident guest RAM inside `anon` (qemu only) and the guest size.
    guest: Option<(i64, i64)>,
    cmdline: Vec<String>,
    cgroup: String,
    threads: i64,
}

fn kb(b: i64) -> i64 {
    b / 1024
}

fn status_file(p: &ProcFile) -> String {
    let m = p.mem;
    let rss = m.rss();
    let field = |name: &str, v: i64| format!("{:<8}{:>8} kB\n", format!("{name}:"), kb(v));
    let mut s = format!(
        "Name:\t{}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\nTracerPid:\t0\n\
         Uid:\t107\t107\t107\t107\nGid:\t107\t107\t107\t107\nFDSize:\t64\nGroups:\t107 \nNStgid:\t{pid}\nNSpid:\t{pid}\n",
        m.comm,
        p.ppid,
        pid = p.pid
    );
    s.push_str(&field("VmPeak", m.vsz));
    s.push_str(&field("VmSize", m.vsz));
    s.push_str(&field("VmLck", 0));
    s.push_str(&field("VmPin", 0));
    s.push_str(&field("VmHWM", rss));
    s.push_str(&field("VmRSS", rss));
    s.push_str(&field("RssAnon", m.anon));
    s.push_str(&field("RssFile", m.file));
    s.push_str(&field("RssShmem", m.shmem));
    s.push_str(&field("VmData", m.anon + 4 * 1024 * 1024));
    s.push_str(&field("VmStk", 132 * 1024));
    s.push_str(&field("VmExe", m.file / 4));
    s.push_str(&field("VmLib", m.file - m.file / 4));
    s.push_str(&field("VmPTE", (rss / 4096 / 512 + 8) * 4096));
    s.push_str(&field("VmSwap", 0));
    let _ = write!(
        s,
        "HugetlbPages:\t       0 kB\nCoreDumping:\t0\nTHP_enabled:\t1\nThreads:\t{}\n",
        p.threads
    );
    s.push_str(
        "SigQ:\t0/1030412\nvoluntary_ctxt_switches:\t1520\nnonvoluntary_ctxt_switches:\t12\n",
    );
    s
}

struct Mapping<'a> {
    start: u64,
    size: i64,
    perms: &'a str,
    path: &'a str,
    rss: i64,
    anon: bool,
    huge: i64,
}

fn smaps_entry(out: &mut String, m: &Mapping) {
    let end = m.start + m.size as u64;
    let (inode, dev) = if m.anon {
        (0, "00:00")
    } else {
        (1_311_000, "00:2a")
    };
    let _ = write!(
        out,
        "{:08x}-{:08x} {} 00000000 {dev} {inode}",
        m.start, end, m.perms
    );
    if m.path.is_empty() {
        out.push_str(" \n");
    } else {
        let _ = writeln!(
            out,
            "{:>width$}{}",
            "",
            m.path,
            width = 26usize.saturating_sub(inode.to_string().len())
        );
    }
    let line = |out: &mut String, k: &str, v: i64| {
        let _ = writeln!(out, "{:<16}{:>8} kB", format!("{k}:"), kb(v));
    };
    let (private_dirty, shared_clean) = if m.anon { (m.rss, 0) } else { (0, m.rss) };
    line(out, "Size", m.size);
    line(out, "KernelPageSize", 4096);
    line(out, "MMUPageSize", 4096);
    line(out, "Rss", m.rss);
    line(out, "Pss", if m.anon { m.rss } else { m.rss / 2 });
    line(out, "Pss_Dirty", private_dirty);
    line(out, "Shared_Clean", shared_clean);
    line(out, "Shared_Dirty", 0);
    line(out, "Private_Clean", 0);
    line(out, "Private_Dirty", private_dirty);
    line(out, "Referenced", m.rss);
    line(out, "Anonymous", if m.anon { m.rss } else { 0 });
    line(out, "KSM", 0);
    line(out, "LazyFree", 0);
    line(out, "AnonHugePages", m.huge);
    line(out, "ShmemPmdMapped", 0);
    line(out, "FilePmdMapped", 0);
    line(out, "Shared_Hugetlb", 0);
    line(out, "Private_Hugetlb", 0);
    line(out, "Swap", 0);
    line(out, "SwapPss", 0);
    line(out, "Locked", 0);
    out.push_str("THPeligible:    1\n");
    let _ = writeln!(
        out,
        "VmFlags: {}",
        if m.anon {
            "rd wr mr mw me ac sd "
        } else {
            "rd ex mr mw me sd "
        }
    );
}

fn smaps_file(p: &ProcFile) -> String {
    let m = p.mem;
    let exe = p.cmdline.first().map(String::as_str).unwrap_or("");
    let mut out = String::new();
    let base = 0x5555_0000_0000u64 + (p.pid as u64) * 0x1000_0000;
    smaps_entry(
        &mut out,
        &Mapping {
            start: base,
            size: (m.file * 2).max(4096),
            perms: "r-xp",
            path: exe,
            rss: m.file,
            anon: false,
            huge: 0,
        },
    );
    let (guest_rss, guest_size) = p.guest.unwrap_or((0, 0));
    let heap = (m.anon - guest_rss - 135_168).max(0);
    smaps_entry(
        &mut out,
        &Mapping {
            start: base + 0x0800_0000,
            size: heap + (1 << 20),
            perms: "rw-p",
            path: "[heap]",
            rss: heap,
            anon: true,
            huge: 0,
        },
    );
    if guest_size > 0 {
        smaps_entry(
            &mut out,
            &Mapping {
                start: 0x7f00_0000_0000,
                size: guest_size,
                perms: "rw-p",
                path: "",
                rss: guest_rss,
                anon: true,
                huge: guest_rss / (2 << 20) * (2 << 20),
            },
        );
    }
    smaps_entry(
        &mut out,
        &Mapping {
            start: 0x7ffc_0000_0000,
            size: 135_168,
            perms: "rw-p",
            path: "[stack]",
            rss: 135_168.min(m.anon),
            anon: true,
            huge: 0,
        },
    );
    out
}

fn write_proc(proc_root: &Path, p: &ProcFile) -> io::Result<()> {
    let dir = proc_root.join(p.pid.to_string());
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("status"), status_file(p))?;
    fs::write(dir.join("smaps"), smaps_file(p))?;
    fs::write(dir.join("comm"), format!("{}\n", p.mem.comm))?;
    let mut cmdline: String = p.cmdline.iter().map(|a| format!("{a}\0")).collect();
    if cmdline.is_empty() {
        cmdline.push('\0');
    }
    fs::write(dir.join("cmdline"), cmdline)?;
    fs::write(
        dir.join("cgroup"),
        format!(
            "12:memory:{c}\n11:pids:{c}\n4:cpu,cpuacct:{c}\n1:name=systemd:{c}\n0::/\n",
            c = p.cgroup
        ),
    )?;
    Ok(())
}

/// A launcher and its memory now (qemu gone after an OOM kill).
pub struct LauncherNow<'a> {
    pub launcher: &'a Launcher,
    pub sample: Sample,
}

fn cmdline_of(comm: &str, l: &Launcher) -> Vec<String> {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match comm {
        "virt-launcher-m" => v(&[
            "/usr/bin/virt-launcher-monitor",
            "--qemu-timeout",
            "301s",
            "--name",
            &l.vm_name,
        ]),
        "virt-launcher" => v(&[
            "/usr/bin/virt-launcher",
            "--qemu-timeout",
            "301s",
            "--name",
            &l.vm_name,
        ]),
        "virtqemud" => v(&[
            "/usr/sbin/virtqemud",
            "-f",
            "/var/run/libvirt/virtqemud.conf",
        ]),
        "libvirtd" => v(&["/usr/sbin/libvirtd", "-f", "/var/run/libvirt/libvirtd.conf"]),
        "virtlogd" => v(&["/usr/sbin/virtlogd", "-f", "/etc/libvirt/virtlogd.conf"]),
        "qemu-system-x86" => v(&[
            "/usr/bin/qemu-system-x86_64",
            "-name",
            &format!("guest={}_{},debug-threads=on", l.namespace, l.vm_name),
        ]),
        "qemu-kvm" => v(&[
            "/usr/libexec/qemu-kvm",
            "-name",
            &format!("guest={}_{},debug-threads=on", l.namespace, l.vm_name),
        ]),
        "virt-tail" => v(&[
            "/usr/bin/virt-tail",
            "--logfile",
            "/var/run/kubevirt-private/virt-serial0-log",
        ]),
        "pause" => v(&["/pause"]),
        "sh" => v(&["/bin/sh"]),
        "memhold" => v(&["/tmp/memhold", "400"]),
        _ => v(&[comm]),
    }
}

/// Rewrite a node's cgroup tree, `/proc` and kernel log.
pub fn write_node(node_root: &Path, node: &NodeModel, launchers: &[LauncherNow]) -> io::Result<()> {
    let mem_root = cgroup_root(node_root).join("memory");
    let kubepods = mem_root.join("kubepods.slice");
    let procs = proc_root(node_root);
    for d in [&kubepods, &procs] {
        match fs::remove_dir_all(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut qos_totals: std::collections::BTreeMap<&str, Charge> = Default::default();
    let mut all = Charge::default();
    for ln in launchers {
        let l = ln.launcher;
        let s = &ln.sample;
        let slice = pod_slice(l.qos, &l.pod_uid);
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
        let mut pod = Charge::default();
        let [pause_pid, monitor_pid, ..] = l.pids;
        let leaf = |charge: Charge, limit: Option<i64>, procs: Vec<u32>| CgroupFiles {
            limit,
            local: charge,
            total: charge,
            procs,
            ..CgroupFiles::default()
        };
        let mut scopes = vec![(&l.container_ids[0], leaf(pause, None, vec![pause_pid]))];
        let compute_pids: Vec<u32> = (0..s.compute.len()).map(|i| compute_pid(l, i)).collect();
        scopes.push((
            &l.container_ids[1],
            CgroupFiles {
                max_usage: l.max_usage,
                failcnt: l.failcnt,
                oom_kill: l.oom_kills,
                ..leaf(compute, l.compute_limit, compute_pids)
            },
        ));
        if l.has_console_sidecar() {
            scopes.push((&l.container_ids[2], leaf(console, None, vec![l.pids[6]])));
        }
        for (id, c) in &scopes {
            pod.add(&c.total);
            write_cgroup(
                &mem_root.join(slice.trim_start_matches('/')).join(scope(id)),
                c,
            )?;
        }
        let pod_files = CgroupFiles {
            limit: l.pod_limit,
            local: Charge::default(),
            total: pod,
            max_usage: l.max_usage + pause.usage() + console.usage(),
            ..CgroupFiles::default()
        };
        write_cgroup(&mem_root.join(slice.trim_start_matches('/')), &pod_files)?;
        qos_totals.entry(l.qos).or_default().add(&pod);
        all.add(&pod);
        // Processes.
        let cg = |i: usize| format!("{slice}/{}", scope(&l.container_ids[i]));
        write_proc(
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
            &kubepods.join(name),
            &CgroupFiles {
                total,
                ..CgroupFiles::default()
            },
        )?;
    }
    write_cgroup(
        &kubepods,
        &CgroupFiles {
            limit: Some(node.memory / 4096 * 4096),
            total: all,
            ..CgroupFiles::default()
        },
    )?;
    let log = kernel_log(node_root);
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(
        &log,
        node.kernel_log
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )?;
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
