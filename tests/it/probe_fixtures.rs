//! assets/probe.sh against hand-made host trees (cgroup v2 and v1 files, /proc status and smaps),
//! under every shell the agent images have (dash as `sh`, and busybox), parsed by parse::probe.

use std::fs;
use std::path::PathBuf;

use vmmem::model::readings::{CgroupLevel, CgroupVersion, NodeReadings};
use vmmem::node::local::{readings, run_script_with};
use vmmem::node::probe::{ProbeSettings, ProbeTarget};

const SEED_V2_STAT: &str = include_str!("../fixtures/probe/seed-oom-report-memory.stat");
const SEED_V1_STAT: &str = include_str!("../fixtures/probe/seed-v1-pod-slice-memory.stat");

/// The shells to run the probe under. busybox is what the agent pod runs: CI installs it
/// (.ci/run), elsewhere a missing busybox is said out loud.
fn shells() -> Vec<Vec<&'static str>> {
    let mut out = vec![vec!["sh"]];
    let have_busybox = std::process::Command::new("busybox")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if have_busybox {
        out.push(vec!["busybox", "sh"]);
    } else if std::env::var_os("CI").is_some() {
        panic!("busybox is missing: the probe must be tested under busybox sh (apt-get install busybox-static)");
    } else {
        eprintln!("NOTE: busybox not installed; probe.sh tested under sh only");
    }
    out
}

/// A fake host: `cg/` plays /sys/fs/cgroup, `proc/` plays /proc.
struct Host {
    dir: tempfile::TempDir,
    version: CgroupVersion,
}

impl Host {
    fn new(version: CgroupVersion) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let h = Host { dir, version };
        h.write(
            "proc/sys/kernel/osrelease",
            "5.14.21-150400.24.60-default\n",
        );
        match version {
            CgroupVersion::V2 => h.write(
                "cg/cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma misc\n",
            ),
            CgroupVersion::V1 | CgroupVersion::Unknown => {
                h.write("cg/memory/memory.usage_in_bytes", "0\n");
                h.write("cg/unified/cgroup.controllers", "\n");
            }
        }
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// A cgroup below the memory hierarchy root (`rel` like `kubepods.slice/…`).
    fn cgroup(&self, rel: &str, c: &Cg) {
        let base = match self.version {
            CgroupVersion::V2 => format!("cg/{rel}"),
            CgroupVersion::V1 | CgroupVersion::Unknown => format!("cg/memory/{rel}"),
        };
        let pids: String = c.pids.iter().map(|p| format!("{p}\n")).collect();
        self.write(&format!("{base}/cgroup.procs"), &pids);
        match self.version {
            CgroupVersion::V2 => {
                let limit = c
                    .limit
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "max".into());
                self.write(&format!("{base}/memory.max"), &format!("{limit}\n"));
                self.write(&format!("{base}/memory.current"), &format!("{}\n", c.usage));
                if let Some(p) = c.peak {
                    self.write(&format!("{base}/memory.peak"), &format!("{p}\n"));
                }
                self.write(
                    &format!("{base}/memory.events"),
                    &format!(
                        "low 0\nhigh 0\nmax {}\noom {}\noom_kill {}\noom_group_kill {}\n",
                        c.failcnt, c.oom_kills, c.oom_kills, c.group_kills
                    ),
                );
                self.write(&format!("{base}/memory.stat"), &c.stat);
            }
            CgroupVersion::V1 | CgroupVersion::Unknown => {
                let limit = c.limit.unwrap_or(9_223_372_036_854_771_712);
                self.write(
                    &format!("{base}/memory.limit_in_bytes"),
                    &format!("{limit}\n"),
                );
                self.write(
                    &format!("{base}/memory.usage_in_bytes"),
                    &format!("{}\n", c.usage),
                );
                self.write(
                    &format!("{base}/memory.max_usage_in_bytes"),
                    &format!("{}\n", c.peak.unwrap_or(c.usage)),
                );
                self.write(
                    &format!("{base}/memory.failcnt"),
                    &format!("{}\n", c.failcnt),
                );
                self.write(&format!("{base}/memory.kmem.usage_in_bytes"), "21803008\n");
                self.write(
                    &format!("{base}/memory.oom_control"),
                    &format!(
                        "oom_kill_disable 0\nunder_oom 0\noom_kill {}\n",
                        c.oom_kills
                    ),
                );
                self.write(&format!("{base}/memory.stat"), &c.stat);
            }
        }
    }

    fn process(&self, pid: u32, comm: &str, anon_kb: u64, file_kb: u64, shmem_kb: u64) {
        self.write(
            &format!("proc/{pid}/status"),
            &format!(
                "Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\n\
                 PPid:\t1\nTracerPid:\t0\nVmPeak:\t  999 kB\nVmRSS:\t{} kB\nRssAnon:\t{anon_kb:>8} kB\n\
                 RssFile:\t{file_kb:>8} kB\nRssShmem:\t{shmem_kb:>8} kB\nThreads:\t1\n",
                anon_kb + file_kb + shmem_kb
            ),
        );
    }

    fn settings(&self) -> ProbeSettings {
        ProbeSettings {
            cgroup_root: Some(self.path("cg").to_string_lossy().into_owned()),
            proc_root: Some(self.path("proc").to_string_lossy().into_owned()),
            kubepods: None,
            own_pod: None,
        }
    }

    /// Run the probe under every shell; all must read the same.
    fn probe(&self, targets: &[ProbeTarget]) -> NodeReadings {
        let mut first: Option<(String, NodeReadings)> = None;
        for shell in shells() {
            let run = run_script_with(&shell, targets, &self.settings()).unwrap();
            assert!(run.success, "{shell:?}: {}\n{}", run.stdout, run.stderr);
            assert!(run.stderr.is_empty(), "{shell:?} stderr: {}", run.stderr);
            let r = readings(&run, "fake", 0).unwrap();
            match &first {
                None => first = Some((run.stdout, r)),
                Some((text, r0)) => {
                    assert_eq!(
                        &run.stdout, text,
                        "{shell:?} printed something else than sh"
                    );
                    assert_eq!(&r, r0);
                }
            }
        }
        first.unwrap().1
    }

    fn raw(&self, targets: &[ProbeTarget]) -> String {
        run_script_with(&["sh"], targets, &self.settings())
            .unwrap()
            .stdout
    }
}

#[derive(Clone)]
struct Cg {
    limit: Option<u64>,
    usage: u64,
    peak: Option<u64>,
    failcnt: u64,
    oom_kills: u64,
    /// v2 `oom_group_kill`.
    group_kills: u64,
    stat: String,
    pids: Vec<u32>,
}

impl Cg {
    fn new(usage: u64, stat: &str) -> Cg {
        Cg {
            limit: None,
            usage,
            peak: Some(usage),
            failcnt: 0,
            oom_kills: 0,
            group_kills: 0,
            stat: stat.to_string(),
            pids: vec![],
        }
    }
}

const UID: &str = "bc31d215-d48e-4416-8e2b-68716b8f5bcb";
const UID_: &str = "bc31d215_d48e_4416_8e2b_68716b8f5bcb";
const COMPUTE: &str = "b545a34b33f1939f6256113274da85221b9bce0e51188b1e78ffabe615fad9b3";
const PAUSE: &str = "71c5ece039996a0b9d5e2f1a1d1c4f9e3a8f6a2b0c5d7e9f1a3b5c7d9e1f3a5b";

fn small_stat_v2(inactive_file: u64) -> String {
    format!("anon 1000\nfile 2000\nkernel 300\nkernel_stack 100\npagetables 50\nsock 0\nshmem 0\ninactive_file {inactive_file}\nactive_file 10\nslab 20\nanon_thp 0\n")
}

/// The seed's OOM'd VM as a cgroup v2 host: seed memory.stat, seed task list, guest in smaps.
#[test]
fn v2_systemd_burstable_pod_from_the_seed() {
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    let limit = 2_355_880 * 1024;
    h.cgroup(
        &pod,
        &Cg {
            limit: Some(limit),
            peak: Some(limit),
            failcnt: 2339,
            oom_kills: 1,
            ..Cg::new(limit, SEED_V2_STAT)
        },
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &Cg {
            oom_kills: 1,
            pids: vec![24457, 24474, 24510, 24511, 24790],
            ..Cg::new(2_390_548_480 + 69_632, SEED_V2_STAT)
        },
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{PAUSE}.scope"),
        &Cg {
            pids: vec![5688],
            ..Cg::new(4096 * 60, &small_stat_v2(0))
        },
    );
    // The seed's task list (rss in 4 KiB pages), split into anon and file the way ps would.
    for (pid, comm, pages) in [
        (24457, "virt-launcher-m", 3054),
        (24474, "virt-launcher", 13694),
        (24510, "virtqemud", 8288),
        (24511, "virtlogd", 4696),
        (24790, "qemu-system-x86", 472_935),
        (5688, "pause", 1067),
    ] {
        h.process(pid, comm, pages * 4 - 1000, 1000, 0);
    }
    // qemu: guest RAM 1948Mi, 1760Mi of it resident, among other mappings.
    let guest_kb = 1948 * 1024;
    h.write(
        "proc/24790/smaps",
        &format!(
            "55d3c4a00000-55d3c4e00000 r-xp 00000000 00:1f 1234     /usr/bin/qemu-system-x86_64\n\
             Size:               4096 kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\nRss:                2048 kB\n\
             VmFlags: rd ex mr mw me\n\
             7f1a40000000-7f1abcc00000 rw-p 00000000 00:00 0 \n\
             Size:            {guest_kb} kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\n\
             Rss:             {} kB\nPss:             1 kB\nAnonymous:       1 kB\nAnonHugePages:   1 kB\n\
             Shared_Hugetlb:        0 kB\nPrivate_Hugetlb:       0 kB\nSwap: 0 kB\nVmFlags: rd wr mr mw me ac sd hg dd\n\
             7f1abcc00000-7f1abcc01000 ---p 00000000 00:00 0 \n\
             Size:                  4 kB\nRss:                   0 kB\n\
             7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]\n\
             Size:                132 kB\nRss:                  12 kB\n",
            1760 * 1024
        ),
    );
    let r = h.probe(&[ProbeTarget::with_guest(UID, 1948 << 20)]);
    assert_eq!(r.cgroup_version, CgroupVersion::V2);
    assert_eq!(r.kernel, "5.14.21-150400.24.60-default");
    assert_eq!(r.pods.len(), 1);
    let p = &r.pods[0];
    assert_eq!(p.uid, UID);
    assert_eq!(p.cgroup.path, format!("/{pod}"));
    assert_eq!(p.cgroup.limit_bytes, Some(limit));
    assert_eq!(p.cgroup.peak_bytes, Some(limit));
    assert_eq!(p.cgroup.failcnt, Some(2339));
    assert_eq!(
        p.cgroup.oom_kills, 1,
        "v2 memory.events is hierarchical: not added up again"
    );
    // Every key the model needs, exactly as the seed's memory.stat has it.
    let s = &p.cgroup.stat;
    assert_eq!(s.anon, Some(2_390_548_480));
    assert_eq!(s.file, Some(69_632));
    assert_eq!(s.kernel_stack, Some(1_015_808));
    assert_eq!(s.pagetables, Some(6_619_136));
    assert_eq!(s.sock, Some(0));
    assert_eq!(s.shmem, Some(0));
    assert_eq!(s.inactive_file, Some(65_536));
    assert_eq!(s.active_file, Some(4096));
    assert_eq!(s.slab, Some(2_754_344));
    assert_eq!(s.anon_thp, Some(1_702_887_424));
    assert_eq!(s.kernel, None, "5.14 has no `kernel` line");
    assert_eq!(p.cgroup.working_set_bytes, limit - 65_536);
    // Containers and processes, attributed by cgroup.
    let ids: Vec<_> = p
        .containers
        .iter()
        .map(|c| c.container_id.as_deref().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&COMPUTE.to_string()) && ids.contains(&PAUSE.to_string()));
    assert!(p
        .containers
        .iter()
        .all(|c| c.level == CgroupLevel::Container && c.limit_bytes.is_none()));
    assert_eq!(p.processes.len(), 6);
    let qemu = p.processes.iter().find(|x| x.pid == 24790).unwrap();
    assert_eq!(qemu.comm, "qemu-system-x86");
    assert_eq!(qemu.rss_anon_bytes, (472_935 * 4 - 1000) * 1024);
    assert_eq!(qemu.rss_file_bytes, 1000 * 1024);
    assert_eq!(qemu.container_id.as_deref(), Some(COMPUTE));
    let pause = p.processes.iter().find(|x| x.pid == 5688).unwrap();
    assert_eq!(pause.container_id.as_deref(), Some(PAUSE));
    assert_eq!(p.guest_resident_bytes, Some(1760 << 20));
    assert_eq!(p.guest_hugetlb_bytes, None);
    // Without a guest size there is no smaps pass.
    let r = h.probe(&[ProbeTarget::new(UID)]);
    assert_eq!(r.pods[0].guest_resident_bytes, None);
    assert!(!h.raw(&[ProbeTarget::new(UID)]).contains("\ng "));
}

/// Every QoS class in both layouts, found by UID and by listing.
#[test]
fn v2_all_layouts_and_qos_classes() {
    let h = Host::new(CgroupVersion::V2);
    let uids = [
        "11111111-0000-0000-0000-000000000001",
        "11111111-0000-0000-0000-000000000002",
        "11111111-0000-0000-0000-000000000003",
        "22222222-0000-0000-0000-000000000001",
        "22222222-0000-0000-0000-000000000002",
        "22222222-0000-0000-0000-000000000003",
    ];
    let u_ = |u: &str| u.replace('-', "_");
    let pods = [
        format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            u_(uids[0])
        ),
        format!("kubepods.slice/kubepods-pod{}.slice", u_(uids[1])),
        format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
            u_(uids[2])
        ),
        format!("kubepods/burstable/pod{}", uids[3]),
        format!("kubepods/pod{}", uids[4]),
        format!("kubepods/besteffort/pod{}", uids[5]),
    ];
    let ids: Vec<String> = "abcdef".chars().map(|c| c.to_string().repeat(64)).collect();
    let children = [
        format!("crio-{}.scope", ids[0]),
        format!("docker-{}.scope", ids[1]),
        format!("cri-containerd-{}.scope", ids[2]),
        ids[3].clone(),
        ids[4].clone(),
        ids[5].clone(),
    ];
    for (i, (pod, child)) in pods.iter().zip(children).enumerate() {
        let usage = 1_000_000 * (i as u64 + 1);
        h.cgroup(
            pod,
            &Cg {
                limit: Some(1 << 30),
                ..Cg::new(usage, &small_stat_v2(100))
            },
        );
        h.cgroup(
            &format!("{pod}/{child}"),
            &Cg {
                pids: vec![100 + i as u32],
                ..Cg::new(usage, &small_stat_v2(100))
            },
        );
        h.process(100 + i as u32, "virt-launcher", 1024, 0, 0);
    }
    // Not pods: a QoS slice itself, a file, and a directory of another shape.
    h.write(
        "cg/kubepods.slice/kubepods-burstable.slice/memory.current",
        "5\n",
    );
    h.write("cg/kubepods/burstable/notapod/memory.current", "5\n");

    let targets: Vec<ProbeTarget> = uids.iter().map(|u| ProbeTarget::new(*u)).collect();
    for r in [h.probe(&targets), h.probe(&[])] {
        assert!(r.missing_pods.is_empty());
        let mut got: Vec<(&str, &str, &str)> = r
            .pods
            .iter()
            .map(|p| {
                assert_eq!(p.containers.len(), 1, "{p:?}");
                assert_eq!(p.processes.len(), 1, "{p:?}");
                (
                    p.uid.as_str(),
                    p.cgroup.path.as_str(),
                    p.containers[0].container_id.as_deref().unwrap(),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String, &str)> = uids
            .iter()
            .zip(&pods)
            .zip(ids.iter().map(String::as_str))
            .map(|((u, p), c)| (u.to_string(), format!("/{p}"), c))
            .collect();
        want.sort();
        let want: Vec<(&str, &str, &str)> = want
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
            .collect();
        assert_eq!(got, want);
        for p in &r.pods {
            assert_eq!(p.cgroup.working_set_bytes, p.cgroup.usage_bytes - 100);
        }
    }
}

#[test]
fn v1_pod_slice_from_the_seed() {
    let h = Host::new(CgroupVersion::V1);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    h.cgroup(
        &pod,
        &Cg {
            limit: Some(2_472_419_328),
            peak: Some(341_999_616),
            ..Cg::new(341_094_400, SEED_V1_STAT)
        },
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &Cg {
            oom_kills: 2,
            pids: vec![7],
            ..Cg::new(300_000_000, SEED_V1_STAT)
        },
    );
    h.process(7, "qemu-system-x86", 2048, 10, 0);
    let r = h.probe(&[ProbeTarget::new(UID)]);
    assert_eq!(r.cgroup_version, CgroupVersion::V1);
    let p = &r.pods[0];
    assert_eq!(p.cgroup.limit_bytes, Some(2_472_419_328));
    assert_eq!(p.cgroup.usage_bytes, 341_094_400);
    assert_eq!(p.cgroup.peak_bytes, Some(341_999_616));
    assert_eq!(
        p.cgroup.working_set_bytes,
        341_094_400 - 1_978_368,
        "usage − total_inactive_file"
    );
    let s = &p.cgroup.stat;
    assert_eq!(s.anon, Some(320_323_584), "total_rss");
    assert_eq!(s.file, Some(2_019_328), "total_cache");
    assert_eq!(s.shmem, Some(0));
    assert_eq!(s.active_file, Some(40_960));
    assert_eq!(s.anon_thp, Some(222_298_112), "total_rss_huge");
    assert_eq!(s.kernel, Some(21_803_008), "memory.kmem.usage_in_bytes");
    assert_eq!(s.pagetables, None);
    assert_eq!(p.containers[0].limit_bytes, None, "v1 unlimited");
    assert_eq!(p.containers[0].oom_kills, 2);
    assert_eq!(
        p.cgroup.oom_kills, 2,
        "v1 kills counted in the scope belong to the pod"
    );
    assert_eq!(p.processes[0].container_id.as_deref(), Some(COMPUTE));
}

#[test]
fn guest_ram_backed_by_memfd_hugetlb_or_hotplug() {
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-pod{UID_}.slice");
    h.cgroup(&pod, &Cg::new(1, &small_stat_v2(0)));
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &Cg {
            pids: vec![40, 41],
            ..Cg::new(1, &small_stat_v2(0))
        },
    );
    h.process(40, "qemu-kvm", 10, 10, 900_000);
    h.process(41, "virtqemud", 10, 10, 0);
    let map = |hdr: &str, size_kb: u64, rss_kb: u64, page_kb: u64, huge_kb: u64| {
        format!(
            "{hdr}\nSize:   {size_kb} kB\nKernelPageSize:  {page_kb} kB\nMMUPageSize:  {page_kb} kB\nRss:  {rss_kb} kB\n\
             Shared_Hugetlb:  0 kB\nPrivate_Hugetlb:  {huge_kb} kB\nVmFlags: rd wr sh mr mw me ms\n"
        )
    };
    h.write(
        "proc/40/smaps",
        &[
            map("7f0000000000-7f0040000000 rw-s 00000000 00:01 77   /memfd:pc.ram (deleted)", 1 << 20, 900_000, 4, 0),
            map("7f1000000000-7f1020000000 rw-s 00000000 00:01 78   /memfd:memory-backend (deleted)", 512 << 10, 1000, 4, 0),
            map("7f2000000000-7f2040000000 rw-p 00000000 00:00 0 ", 1 << 20, 5, 4, 0),
        ]
        .concat(),
    );
    // Boot RAM 1Gi plus a 512Mi backend: both memfd; the anonymous 1Gi mapping counts as well, since
    // it has the size asked for (the probe cannot tell two same-sized mappings apart).
    let raw = h.raw(&[ProbeTarget {
        uid: UID.into(),
        guest_bytes: vec![1 << 30, 512 << 20],
    }]);
    assert!(raw.contains("\ng 40 1048576 900000 0 4 memfd\n"), "{raw}");
    assert!(raw.contains("\ng 40 524288 1000 0 4 memfd\n"), "{raw}");
    assert!(raw.contains("\ng 40 1048576 5 0 4 anon\n"), "{raw}");
    let r = h.probe(&[ProbeTarget {
        uid: UID.into(),
        guest_bytes: vec![1 << 30, 512 << 20],
    }]);
    assert_eq!(
        r.pods[0].guest_resident_bytes,
        Some((900_000 + 1000 + 5) * 1024)
    );
    assert_eq!(
        r.pods[0]
            .processes
            .iter()
            .find(|p| p.pid == 40)
            .unwrap()
            .rss_shmem_bytes,
        900_000 * 1024
    );

    // Hugepage-backed guest RAM: charged to hugetlb, reported apart.
    h.write(
        "proc/40/smaps",
        &map("7f0000000000-7f0040000000 rw-s 00000000 00:10 9   /dev/hugepages/libvirt/qemu/1-vm/qemu_back_mem.pc.ram", 1 << 20, 0, 2048, 786_432),
    );
    let r = h.probe(&[ProbeTarget::with_guest(UID, 1 << 30)]);
    assert_eq!(r.pods[0].guest_hugetlb_bytes, Some(768 << 20));
    assert_eq!(r.pods[0].guest_resident_bytes, Some(0));

    // A guest size that matches no mapping: unknown, not zero.
    let r = h.probe(&[ProbeTarget::with_guest(UID, 3 << 30)]);
    assert_eq!(r.pods[0].guest_resident_bytes, None);
}

/// After a memory hotplug qemu holds the boot RAM (guestAtBoot) and a virtio-mem device of
/// maxGuest − guestAtBoot, of which only the plugged part is resident: the sizes the tool asks
/// for find both, so the boot RAM is guest RAM, not overhead.
#[test]
fn hotplugged_guest_ram_is_found_in_both_mappings() {
    use vmmem::model::hotplug::GuestRunning;
    use vmmem::model::objects::VirtualMachineInstance;
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-pod{UID_}.slice");
    h.cgroup(&pod, &Cg::new(1, &small_stat_v2(0)));
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &Cg {
            pids: vec![40],
            ..Cg::new(1, &small_stat_v2(0))
        },
    );
    h.process(40, "qemu-kvm", 3_200_000, 10, 0);
    let map = |hdr: &str, size_kb: u64, rss_kb: u64| {
        format!(
            "{hdr}\nSize:   {size_kb} kB\nKernelPageSize:  4 kB\nMMUPageSize:  4 kB\nRss:  {rss_kb} kB\n\
             Shared_Hugetlb:  0 kB\nPrivate_Hugetlb:  0 kB\nVmFlags: rd wr mr mw me\n"
        )
    };
    // Boot RAM 2Gi (almost all touched), virtio-mem 6Gi with 2Gi plugged, qemu's own heap.
    h.write(
        "proc/40/smaps",
        &[
            map(
                "7f0000000000-7f0080000000 rw-p 00000000 00:00 0 ",
                2 << 20,
                2_000_000,
            ),
            map(
                "7f1000000000-7f1180000000 rw-p 00000000 00:00 0 ",
                6 << 20,
                1_048_576,
            ),
            map(
                "55d000000000-55d008000000 rw-p 00000000 00:00 0 [heap]",
                128 << 10,
                100_000,
            ),
        ]
        .concat(),
    );
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "spec": {"domain": {"memory": {"guest": "4Gi", "maxGuest": "8Gi"}}},
        "status": {"memory": {"guestAtBoot": "2Gi", "guestCurrent": "4Gi", "guestRequested": "4Gi"}}
    }))
    .unwrap();
    let sizes = GuestRunning::of(&vmi).mapping_sizes();
    assert_eq!(sizes, vec![2 << 30, 6 << 30]);
    let r = h.probe(&[ProbeTarget {
        uid: UID.into(),
        guest_bytes: sizes,
    }]);
    assert_eq!(
        r.pods[0].guest_resident_bytes,
        Some((2_000_000 + 1_048_576) * 1024)
    );
    // The VMI's guest alone (4Gi) is the size of neither mapping: nothing found, where the boot
    // RAM would otherwise have been counted as qemu's overhead.
    let r = h.probe(&[ProbeTarget::with_guest(UID, 4 << 30)]);
    assert_eq!(r.pods[0].guest_resident_bytes, None);
}

#[test]
fn v2_without_memory_peak_and_with_vanished_cgroups() {
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-pod{UID_}.slice");
    h.cgroup(
        &pod,
        &Cg {
            peak: None,
            ..Cg::new(5000, &small_stat_v2(0))
        },
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &Cg {
            peak: None,
            pids: vec![9],
            ..Cg::new(4000, &small_stat_v2(0))
        },
    );
    // A container whose files are gone (removed while the probe ran): skipped, others kept.
    h.cgroup(
        &format!("{pod}/cri-containerd-{PAUSE}.scope"),
        &Cg::new(1, &small_stat_v2(0)),
    );
    fs::remove_file(h.path(&format!(
        "cg/{pod}/cri-containerd-{PAUSE}.scope/memory.current"
    )))
    .unwrap();
    h.process(9, "virt-launcher", 1, 2, 3);
    // A process that exited between cgroup.procs and its status: not reported.
    let mut c = Cg::new(4000, &small_stat_v2(0));
    c.pids = vec![9, 10];
    h.cgroup(&format!("{pod}/cri-containerd-{COMPUTE}.scope"), &c);

    let gone = "99999999-0000-0000-0000-000000000000";
    let r = h.probe(&[ProbeTarget::new(UID), ProbeTarget::new(gone)]);
    assert_eq!(r.missing_pods, vec![gone]);
    let p = &r.pods[0];
    assert_eq!(
        p.cgroup.peak_bytes, None,
        "no memory.peak before Linux 5.19"
    );
    assert_eq!(p.containers.len(), 1);
    assert_eq!(p.containers[0].container_id.as_deref(), Some(COMPUTE));
    assert_eq!(p.processes.len(), 1);
    assert_eq!(p.processes[0].rss_shmem_bytes, 3 * 1024);

    // The pod cgroup itself vanished: the pod is missing.
    fs::remove_file(h.path(&format!("cg/{pod}/memory.current"))).unwrap();
    let r = h.probe(&[ProbeTarget::new(UID)]);
    assert!(r.pods.is_empty());
    assert_eq!(r.missing_pods, vec![UID]);
}

#[test]
fn clear_errors_for_a_wrong_root_or_bad_arguments() {
    let h = Host::new(CgroupVersion::V2);
    let s = ProbeSettings {
        cgroup_root: Some("/nonexistent/cgroup".into()),
        ..h.settings()
    };
    let run = run_script_with(&["sh"], &[], &s).unwrap();
    assert!(!run.success);
    let e = readings(&run, "n", 0).unwrap_err().to_string();
    assert!(
        e.contains("no memory cgroup hierarchy at /nonexistent/cgroup"),
        "{e}"
    );

    let run = run_script_with(&["sh"], &[], &h.settings()).unwrap();
    let e = readings(&run, "n", 0).unwrap_err().to_string();
    assert!(e.contains("no kubepods cgroup below"), "{e}");

    h.write("cg/kubepods.slice/cgroup.procs", "");
    let bad = ProbeTarget {
        uid: "x*y".into(),
        guest_bytes: vec![],
    };
    let run = run_script_with(&["sh"], &[bad], &h.settings()).unwrap();
    let e = readings(&run, "n", 0).unwrap_err().to_string();
    assert!(e.contains("bad pod argument 'x*y'"), "{e}");

    let s = ProbeSettings {
        proc_root: Some("/nonexistent/proc".into()),
        ..h.settings()
    };
    let run = run_script_with(&["sh"], &[], &s).unwrap();
    let e = readings(&run, "n", 0).unwrap_err().to_string();
    assert!(
        e.contains("cannot read the kernel release from /nonexistent/proc/sys/kernel/osrelease"),
        "{e}"
    );
}

/// `kubectl vmmem probe --local` on a fake host: the JSON contract and the exit code.
#[test]
fn probe_local_command_prints_the_json_contract() {
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    h.cgroup(
        &pod,
        &Cg {
            limit: Some(1 << 30),
            ..Cg::new(1 << 29, &small_stat_v2(1 << 20))
        },
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &Cg {
            pids: vec![5],
            ..Cg::new(1 << 29, &small_stat_v2(0))
        },
    );
    h.process(5, "qemu-system-x86", 1024, 0, 0);
    h.write(
        "proc/5/smaps",
        "7f0000000000-7f0040000000 rw-p 00000000 00:00 0 \nSize: 1048576 kB\nRss: 512 kB\n",
    );
    let exe = env!("CARGO_BIN_EXE_kubectl-vmmem");
    let out = std::process::Command::new(exe)
        .args(["probe", "--local", "--cgroup-root"])
        .arg(h.path("cg"))
        .arg("--proc-root")
        .arg(h.path("proc"))
        .arg(format!("{UID}:1Gi"))
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cgroupVersion"], "v2");
    assert_eq!(v["kernel"], "5.14.21-150400.24.60-default");
    let p = &v["pods"][0];
    assert_eq!(p["uid"], UID);
    assert_eq!(p["level"], "pod");
    assert_eq!(p["path"], format!("/{pod}"));
    assert_eq!(p["limitBytes"], 1u64 << 30);
    assert_eq!(p["usageBytes"], 1u64 << 29);
    assert_eq!(p["workingSetBytes"], (1u64 << 29) - (1 << 20));
    assert_eq!(p["peakBytes"], 1u64 << 29);
    assert_eq!(p["failcnt"], 0);
    assert_eq!(p["oomKills"], 0);
    assert_eq!(p["guestResidentBytes"], 512 * 1024);
    assert_eq!(p["containers"][0]["level"], "container");
    assert_eq!(p["containers"][0]["containerId"], COMPUTE);
    assert_eq!(p["containers"][0]["limitBytes"], serde_json::Value::Null);
    let proc0 = &p["processes"][0];
    for (k, want) in [
        ("pid", serde_json::json!(5)),
        ("comm", "qemu-system-x86".into()),
        ("rssAnonBytes", (1024 * 1024).into()),
        ("rssFileBytes", 0.into()),
        ("rssShmemBytes", 0.into()),
    ] {
        assert_eq!(proc0[k], want, "{k}");
    }

    // Table output, and a pod that is not here: exit 1 with a sentence.
    let out = std::process::Command::new(exe)
        .args(["probe", "--local", "--cgroup-root"])
        .arg(h.path("cg"))
        .arg("--proc-root")
        .arg(h.path("proc"))
        .args([UID, "abcdef00-0000-0000-0000-000000000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("POD") && stdout.contains("WORKING SET") && stdout.contains(UID),
        "{stdout}"
    );
    assert!(stdout.contains("qemu-system-x86"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "pod abcdef00-0000-0000-0000-000000000000 has no memory cgroup on this machine"
        ),
        "{stderr}"
    );
}

/// More pods than one wave of batches (the probe runs batches of 25 side by side, 4 at a time):
/// every pod's counters and processes stay its own, pods come out in argument order, and pods
/// with no cgroup are reported missing wherever they fall.
#[test]
fn many_pods_in_parallel_batches_keep_their_records_apart() {
    let h = Host::new(CgroupVersion::V1);
    let n = 130;
    let mut targets = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        let uid = format!("33333333-0000-4000-8000-{i:012x}");
        targets.push(ProbeTarget::new(uid.clone()));
        if i % 17 == 5 {
            continue; // no cgroup on this node
        }
        let pod = format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            uid.replace('-', "_")
        );
        let usage = 1_000_000 + i as u64;
        let stat = format!(
            "total_rss {}\ntotal_cache 7\ntotal_inactive_file 3\n",
            500 + i
        );
        h.cgroup(
            &pod,
            &Cg {
                limit: Some(1 << 30),
                ..Cg::new(usage, &stat)
            },
        );
        let pid = 10_000 + 2 * i as u32;
        h.cgroup(
            &format!("{pod}/cri-containerd-{:064x}.scope", i + 1),
            &Cg {
                pids: vec![pid, pid + 1],
                ..Cg::new(usage - 10, &stat)
            },
        );
        h.process(pid, "virt-launcher", i as u64, 1, 0);
        h.process(pid + 1, "qemu-system-x86_64", 2 * i as u64, 0, 3);
        want.push((uid, usage, pid));
    }
    let r = h.probe(&targets);
    let missing: Vec<String> = (0..n)
        .filter(|i| i % 17 == 5)
        .map(|i| format!("33333333-0000-4000-8000-{i:012x}"))
        .collect();
    let mut got_missing = r.missing_pods.clone();
    got_missing.sort();
    assert_eq!(got_missing, missing);
    assert_eq!(r.pods.len(), want.len());
    for (p, (uid, usage, pid)) in r.pods.iter().zip(&want) {
        assert_eq!(&p.uid, uid);
        assert_eq!(p.cgroup.usage_bytes, *usage, "{uid}");
        assert_eq!(p.cgroup.working_set_bytes, usage - 3, "{uid}");
        assert_eq!(p.containers.len(), 1, "{uid}");
        assert_eq!(p.containers[0].usage_bytes, usage - 10, "{uid}");
        let pids: Vec<u32> = p.processes.iter().map(|x| x.pid).collect();
        assert_eq!(pids, vec![*pid, pid + 1], "{uid}");
        let i = (pid - 10_000) / 2;
        assert_eq!(p.processes[0].rss_anon_bytes, u64::from(i) * 1024, "{uid}");
        assert_eq!(p.processes[1].rss_shmem_bytes, 3 * 1024, "{uid}");
    }
}

/// cgroup v2 with `memory.oom.group` (kubelet 1.28+): the compute container's group kill took
/// five processes (`oom_kill 5`, `oom_group_kill 1`), guest-console-log's sidecar lost its one
/// (kubevirt#15501); the pod slice counts all six. The probe reports each container's counters,
/// and the VM's count is the compute container's group kills: 1.
#[test]
fn v2_group_kills_per_container() {
    const CONSOLE: &str = "e8f6d4b2a0c8e6f4d2b0a8c6e4f2d0b8a6c4e2f0d8b6a4c2e0f8d6b4a2c0e8f6";
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    let kills = |oom_kills, group_kills, usage, pids: Vec<u32>| Cg {
        oom_kills,
        group_kills,
        pids,
        ..Cg::new(usage, &small_stat_v2(0))
    };
    h.cgroup(
        &pod,
        &Cg {
            limit: Some(1 << 31),
            ..kills(6, 2, 1 << 30, vec![])
        },
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &kills(5, 1, 1 << 30, vec![24790]),
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{CONSOLE}.scope"),
        &kills(1, 1, 1 << 20, vec![24801]),
    );
    h.process(24790, "qemu-system-x86", 1 << 20, 1000, 0);
    h.process(24801, "virt-tail", 2000, 1000, 0);
    let r = h.probe(&[ProbeTarget::new(UID)]);
    let p = &r.pods[0];
    assert_eq!((p.cgroup.oom_kills, p.cgroup.oom_group_kills), (6, Some(2)));
    let by_id = |id: &str| {
        p.containers
            .iter()
            .find(|c| c.container_id.as_deref() == Some(id))
            .unwrap()
    };
    assert_eq!(
        (by_id(COMPUTE).oom_kills, by_id(COMPUTE).oom_group_kills),
        (5, Some(1))
    );
    assert_eq!(
        (by_id(CONSOLE).oom_kills, by_id(CONSOLE).oom_group_kills),
        (1, Some(1))
    );
    let budgets = vmmem::model::memory::Budgets::default();
    let m = vmmem::model::memory::evaluate(1 << 30, p, Some(COMPUTE), &budgets);
    assert_eq!(
        m.oom_kills, 1,
        "one kill of the compute container, not six processes"
    );
}

/// Swap (issue 16), cgroup v2: `memory.swap.current` and `memory.swap.max` of the pod slice and of
/// the compute container (LimitedSwap sets the container's; the slice's stays "max"); and the
/// pod's usage read around qemu's smaps scan (the `u` record).
#[test]
fn v2_swap_and_the_usage_around_smaps() {
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    let ct = format!("{pod}/cri-containerd-{COMPUTE}.scope");
    h.cgroup(&pod, &Cg::new(3000, &small_stat_v2(0)));
    h.cgroup(
        &ct,
        &Cg {
            pids: vec![40],
            ..Cg::new(2000, &small_stat_v2(0))
        },
    );
    h.write(&format!("cg/{pod}/memory.swap.current"), "104857600\n");
    h.write(&format!("cg/{pod}/memory.swap.max"), "max\n");
    h.write(&format!("cg/{ct}/memory.swap.current"), "104857600\n");
    h.write(&format!("cg/{ct}/memory.swap.max"), "268435456\n");
    h.process(40, "qemu-kvm", 10, 10, 0);
    h.write(
        "proc/40/smaps",
        "7f0000000000-7f0040000000 rw-p 00000000 00:00 0 \nSize:  1048576 kB\nRss:  2048 kB\nKernelPageSize:  4 kB\n",
    );
    let target = [ProbeTarget::with_guest(UID, 1 << 30)];
    let raw = h.raw(&target);
    assert!(raw.starts_with("vmmem-probe 2\n"), "{raw}");
    assert!(raw.contains(" 104857600 max\n"), "{raw}");
    assert!(raw.contains(" 104857600 268435456\n"), "{raw}");
    assert!(raw.contains("\nu 40 3000 3000\n"), "{raw}");
    let r = h.probe(&target);
    let p = &r.pods[0];
    assert_eq!(
        (p.cgroup.swap_bytes, p.cgroup.swap_limit_bytes),
        (Some(100 << 20), None)
    );
    let c = &p.containers[0];
    assert_eq!(
        (c.swap_bytes, c.swap_limit_bytes),
        (Some(100 << 20), Some(256 << 20))
    );
    assert_eq!(p.usage_after_smaps_bytes, Some(3000));
    assert_eq!(p.guest_resident_bytes, Some(2 << 20));
}

/// Swap, cgroup v1: `memory.memsw.*` (memory + swap) where the kernel accounts swap; none where it
/// does not (the files are missing: `-`, unknown).
#[test]
fn v1_memsw_is_read_as_swap_and_its_absence_as_unknown() {
    let h = Host::new(CgroupVersion::V1);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    h.cgroup(
        &pod,
        &Cg {
            limit: Some(4_096_000),
            ..Cg::new(3000, "total_rss 1\n")
        },
    );
    h.write(
        &format!("cg/memory/{pod}/memory.memsw.usage_in_bytes"),
        "5000\n",
    );
    h.write(
        &format!("cg/memory/{pod}/memory.memsw.limit_in_bytes"),
        "9223372036854771712\n",
    );
    let r = h.probe(&[ProbeTarget::with_guest(UID, 1 << 30)]);
    let p = &r.pods[0];
    assert_eq!(
        (p.cgroup.swap_bytes, p.cgroup.swap_limit_bytes),
        (Some(2000), None)
    );
    assert_eq!(p.usage_after_smaps_bytes, None, "no qemu, no smaps scan");

    let h = Host::new(CgroupVersion::V1);
    h.cgroup(&pod, &Cg::new(3000, "total_rss 1\n"));
    let raw = h.raw(&[ProbeTarget::with_guest(UID, 1 << 30)]);
    assert!(raw.contains(" - -\n"), "{raw}");
    let r = h.probe(&[ProbeTarget::with_guest(UID, 1 << 30)]);
    assert_eq!(
        (
            r.pods[0].cgroup.swap_bytes,
            r.pods[0].cgroup.swap_limit_bytes
        ),
        (None, None)
    );
}

/// kubevirt#15501 on a cgroup v2 node, from the probe to the row: guest-console-log hit its 60M
/// limit and memory.oom.group killed its three processes at once (oom_kill 3, oom_group_kill 1,
/// counted in the pod slice too: memory.events is hierarchical). The VM is not OOM-killed, not
/// critical, and its notes say the sidecar was killed once.
#[test]
fn v2_sidecar_group_kill_is_not_the_vms_through_the_report() {
    use vmmem::model::inventory::Readings;
    use vmmem::model::report::{build, Flag, ReportOptions, Risk};
    const CONSOLE: &str = "e8f6d4b2a0c8e6f4d2b0a8c6e4f2d0b8a6c4e2f0d8b6a4c2e0f8d6b4a2c0e8f6";
    let h = Host::new(CgroupVersion::V2);
    let pod = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    let cg = |oom_kills, group_kills, usage: u64, limit, pids| Cg {
        oom_kills,
        group_kills,
        pids,
        limit,
        ..Cg::new(usage, &small_stat_v2(0))
    };
    h.cgroup(&pod, &cg(3, 1, 2300 << 20, Some(2472 << 20), vec![]));
    h.cgroup(
        &format!("{pod}/cri-containerd-{COMPUTE}.scope"),
        &cg(0, 0, 2200 << 20, Some(2412 << 20), vec![24790]),
    );
    h.cgroup(
        &format!("{pod}/cri-containerd-{CONSOLE}.scope"),
        &cg(3, 1, 58 << 20, Some(60 << 20), vec![24801]),
    );
    h.process(24790, "qemu-system-x86", 2100 << 10, 1000, 0);
    h.process(24801, "virt-tail", 2000, 1000, 0);
    let mut r = h.probe(&[ProbeTarget::new(UID)]);
    r.node = "n1".into();
    let inv = sidecar_inventory(CONSOLE);
    let mut readings = Readings::new();
    readings.insert("n1".into(), std::sync::Arc::new(r));
    let rep = build(&inv, &readings, &ReportOptions::default());
    let row = &rep.vms[0];
    assert_eq!(row.oom_kills, Some(0), "{row:?}");
    assert!(!row.has_flag(Flag::OomKilled), "{:?}", row.flags);
    assert_ne!(row.risk, Risk::Critical);
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("the guest-console-log sidecar was OOM-killed once")),
        "{:?}",
        row.notes
    );
    let json = serde_json::to_value(row).unwrap();
    assert_eq!(json["cgroup"]["oomKills"], 0);
    assert!(!json["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "oom-killed"));
}

/// A running 2Gi VM on n1 whose launcher pod (UID) has compute and guest-console-log.
fn sidecar_inventory(console_id: &str) -> vmmem::model::inventory::Inventory {
    use vmmem::model::objects::{Pod, VirtualMachine, VirtualMachineInstance};
    let domain = serde_json::json!({"memory": {"guest": "1948Mi"},
        "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "2Gi"}}});
    let vm: VirtualMachine = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "lab", "name": "console-vm", "uid": "vm-c"},
        "spec": {"template": {"spec": {"domain": domain}}}}))
    .unwrap();
    let vmi: VirtualMachineInstance = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "lab", "name": "console-vm", "uid": "vmi-c"},
        "spec": {"domain": domain}, "status": {"phase": "Running", "nodeName": "n1"}}))
    .unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "lab", "name": "virt-launcher-console-vm-x1", "uid": UID,
                     "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "vmi-c"}},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "compute", "resources": {"limits": {"memory": "2412Mi"}}},
            {"name": "guest-console-log", "resources": {"limits": {"memory": "60M"}}}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "compute", "containerID": format!("containerd://{COMPUTE}")},
            {"name": "guest-console-log", "containerID": format!("containerd://{console_id}")}]}}))
    .unwrap();
    vmmem::model::inventory::Inventory {
        vms: vec![vm.into()],
        vmis: vec![vmi.into()],
        pods: vec![pod.into()],
        ..Default::default()
    }
}
