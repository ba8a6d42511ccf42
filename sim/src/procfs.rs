//! `/proc/<pid>/{status,smaps,comm,cmdline,cgroup}` of launcher processes, in the kernel's formats.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::treefiles::TreeWriter;
use super::workload::{GuestBacking, ProcMem};
use super::world::Launcher;

/// One process to write under `/proc`.
pub struct ProcFile<'a> {
    pub pid: u32,
    pub ppid: u32,
    pub mem: &'a ProcMem,
    /// qemu's guest RAM mappings as (resident, size): one, or with memory hotplug the boot RAM
    /// and the virtio-mem device. Empty for other processes.
    pub guest: Vec<(i64, i64)>,
    /// What backs guest RAM: inside `anon`, a shared memfd (`shmem`), or hugetlb (neither).
    pub backing: GuestBacking,
    pub cmdline: Vec<String>,
    pub cgroup: String,
    pub threads: i64,
}

fn kb(b: i64) -> i64 {
    b / 1024
}

fn status_file(p: &ProcFile) -> String {
    let m = p.mem;
    let rss = m.rss();
    let field = |name: &str, v: i64| format!("{name}:\t{:>8} kB\n", kb(v));
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
    /// Hugetlb pages mapped (not in `Rss`).
    hugetlb: i64,
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
    line(out, "Private_Hugetlb", m.hugetlb);
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

/// qemu's guest RAM mapping: anonymous (transparent huge pages), a shared memfd (shmem,
/// `Rss` but not `Anonymous`), or hugetlbfs (counted in `Private_Hugetlb`, not in `Rss`).
/// One guest RAM mapping of qemu at `start`, as its backing shows in smaps.
fn guest_mapping(backing: GuestBacking, start: u64, rss: i64, size: i64) -> Mapping<'static> {
    match backing {
        GuestBacking::Anon => Mapping {
            start,
            size,
            perms: "rw-p",
            path: "",
            rss,
            anon: true,
            huge: rss / (2 << 20) * (2 << 20),
            hugetlb: 0,
        },
        GuestBacking::Memfd => Mapping {
            start,
            size,
            perms: "rw-s",
            path: "/memfd:memory-backend-memfd (deleted)",
            rss,
            anon: false,
            huge: 0,
            hugetlb: 0,
        },
        GuestBacking::Hugepages => Mapping {
            start,
            size,
            perms: "rw-p",
            path: "/dev/hugepages/libvirt/qemu/qemu_back_mem._objects_ram-node0 (deleted)",
            rss: 0,
            anon: false,
            huge: 0,
            hugetlb: rss,
        },
    }
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
            hugetlb: 0,
        },
    );
    let guest_rss: i64 = p.guest.iter().map(|(rss, _)| rss).sum();
    let guest_anon = if p.backing == GuestBacking::Anon {
        guest_rss
    } else {
        0
    };
    let heap = (m.anon - guest_anon - 135_168).max(0);
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
            hugetlb: 0,
        },
    );
    let mut start = 0x7f00_0000_0000u64;
    for &(rss, size) in p.guest.iter().filter(|(_, size)| *size > 0) {
        smaps_entry(&mut out, &guest_mapping(p.backing, start, rss, size));
        start += (size as u64).next_multiple_of(1 << 30) + (1 << 30);
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
            hugetlb: 0,
        },
    );
    out
}

pub fn write_proc(w: &mut TreeWriter, proc_root: &Path, p: &ProcFile) -> io::Result<()> {
    let dir = proc_root.join(p.pid.to_string());
    w.dir(&dir)?;
    w.file(&dir.join("status"), status_file(p))?;
    w.file(&dir.join("smaps"), smaps_file(p))?;
    w.file(&dir.join("comm"), format!("{}\n", p.mem.comm))?;
    let mut cmdline: String = p.cmdline.iter().map(|a| format!("{a}\0")).collect();
    if cmdline.is_empty() {
        cmdline.push('\0');
    }
    w.file(&dir.join("cmdline"), cmdline)?;
    w.file(
        &dir.join("cgroup"),
        format!(
            "12:memory:{c}\n11:pids:{c}\n4:cpu,cpuacct:{c}\n1:name=systemd:{c}\n0::/\n",
            c = p.cgroup
        ),
    )?;
    Ok(())
}

pub fn cmdline_of(comm: &str, l: &Launcher) -> Vec<String> {
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
