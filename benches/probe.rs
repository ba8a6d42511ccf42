//! Node probe cost on a real cgroup tree: 100 virt-launcher-like pods (pod slice, pause scope and
//! compute scope with virt-launcher-monitor, virt-launcher, virtqemud, virtlogd and a qemu with a
//! guest RAM mapping and ~500 other mappings), built in the memory cgroup v1 hierarchy below this
//! process's cgroup and removed afterwards. Reports wall time, CPU time and output bytes per VM,
//! without and with the smaps pass, and CPU per round under the readers' smaps policy (smaps in
//! 1 round of 6 while qemu's RSS stands still), under sh (dash) and busybox sh.
//!
//!   cargo bench --bench probe [-- PODS RUNS]

#[path = "../tests/support/cgtree.rs"]
mod cgtree;

use std::collections::HashMap;
use std::time::Duration;

use vmmem::node::local::{readings, run_script_with};
use vmmem::node::probe::{ProbeSettings, ProbeTarget};
use vmmem::node::smaps_policy::{GuestMemory, SmapsPolicy};

const MIB: u64 = 1 << 20;

/// User + system CPU time of this process's waited-for children so far (clock ticks of 10 ms).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // Fields 16 and 17 of proc(5) (cutime, cstime); `after` starts at field 3.
    Duration::from_millis((f[13] + f[14]) * 10)
}

struct Measured {
    wall_median: Duration,
    wall_min: Duration,
    cpu_per_run: Duration,
    bytes: usize,
}

fn measure(
    shell: &[&str],
    targets: &[ProbeTarget],
    settings: &ProbeSettings,
    runs: u32,
    pods: usize,
) -> Measured {
    // One warm-up run, checked.
    let run = run_script_with(shell, targets, settings).unwrap();
    let r = readings(&run, "bench", 0).unwrap_or_else(|e| panic!("{e}\n{}", run.stderr));
    assert_eq!(r.pods.len(), pods, "{shell:?}: {}", run.stdout);
    let cpu0 = children_cpu();
    let mut walls = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let run = run_script_with(shell, targets, settings).unwrap();
        assert!(run.success);
        walls.push(run.wall);
        bytes = run.stdout.len();
    }
    let cpu = children_cpu() - cpu0;
    walls.sort();
    Measured {
        wall_median: walls[walls.len() / 2],
        wall_min: walls[0],
        cpu_per_run: cpu / runs,
        bytes,
    }
}

/// Rounds as the readers run them with the default smaps policy (exact in a pod's first round,
/// then every 6th or when qemu's RSS moves): CPU per round, and how many rounds read smaps.
fn policy_rounds(
    shell: &[&str],
    targets: &[ProbeTarget],
    settings: &ProbeSettings,
    rounds: u32,
) -> (Duration, u32) {
    let policy = SmapsPolicy::default();
    let mut memory = GuestMemory::default();
    let mut exact_rounds = 0;
    let cpu0 = children_cpu();
    for round in 0..u64::from(rounds) {
        let mut exact = HashMap::new();
        let this: Vec<ProbeTarget> = targets
            .iter()
            .map(|t| {
                if memory.wants_smaps(&policy, &t.uid, &t.guest_bytes, round) {
                    exact.insert(t.uid.clone(), t.guest_bytes.clone());
                    t.clone()
                } else {
                    ProbeTarget::new(t.uid.clone())
                }
            })
            .collect();
        if !exact.is_empty() {
            exact_rounds += 1;
        }
        let run = run_script_with(shell, &this, settings).unwrap();
        let mut r = readings(&run, "bench", round as i64).unwrap();
        memory.absorb(&mut r, &exact, round);
        assert!(r.pods.iter().all(|p| p.guest_resident_bytes.is_some()));
    }
    ((children_cpu() - cpu0) / rounds, exact_rounds)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let pods: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let guest_mib: u64 = 64;

    let mut tree = cgtree::Tree::new("bench")
        .unwrap_or_else(|why| panic!("cannot build the cgroup tree: {why}"));
    let bin = tempfile::tempdir().unwrap();
    let names = [
        "virt-launcher-monitor",
        "virt-launcher",
        "virtqemud",
        "virtlogd",
        "qemu-system-x86_64",
        "pause",
    ];
    let exe = cgtree::helpers(bin.path(), &names).unwrap();

    let started = std::time::Instant::now();
    let mut uids = Vec::new();
    for i in 0..pods {
        let uid = format!("be0c0000-0000-4000-8000-{:012x}", i);
        let u_ = uid.replace('-', "_");
        // Mostly Burstable like Harvester VMs, some Guaranteed and BestEffort.
        let pod_rel = match i % 10 {
            0 => format!("kubepods.slice/kubepods-pod{u_}.slice"),
            1 => format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u_}.slice"
            ),
            _ => {
                format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u_}.slice")
            }
        };
        let pod = tree.mkdir(&pod_rel).unwrap();
        tree.set(&pod, "memory.limit_in_bytes", &(256 * MIB).to_string())
            .unwrap();
        let pause = tree
            .mkdir(&format!(
                "{pod_rel}/cri-containerd-{}.scope",
                cgtree::container_id(2 * i as u64 + 1)
            ))
            .unwrap();
        let compute = tree
            .mkdir(&format!(
                "{pod_rel}/cri-containerd-{}.scope",
                cgtree::container_id(2 * i as u64 + 2)
            ))
            .unwrap();
        tree.spawn(&exe["pause"], &["0".into()], &pause).unwrap();
        for name in [
            "virt-launcher-monitor",
            "virt-launcher",
            "virtqemud",
            "virtlogd",
        ] {
            tree.spawn(&exe[name], &["1".into()], &compute).unwrap();
        }
        tree.spawn(
            &exe["qemu-system-x86_64"],
            &["1".into(), guest_mib.to_string(), "8".into(), "500".into()],
            &compute,
        )
        .unwrap();
        uids.push(uid);
    }
    eprintln!(
        "built {pods} pods ({} processes) in {:.1?}",
        pods * 6,
        started.elapsed()
    );

    let settings = ProbeSettings {
        cgroup_root: Some(tree.fake.path().to_string_lossy().into_owned()),
        proc_root: Some("/proc".into()),
        kubepods: None,
        own_pod: None,
    };
    let plain: Vec<ProbeTarget> = uids.iter().map(|u| ProbeTarget::new(u.clone())).collect();
    let smaps: Vec<ProbeTarget> = uids
        .iter()
        .map(|u| ProbeTarget::with_guest(u.clone(), guest_mib * MIB))
        .collect();
    // For profiling by hand: VMMEM_BENCH_HOLD=FILE keeps the tree until FILE is removed.
    if let Some(hold) = std::env::var_os("VMMEM_BENCH_HOLD") {
        let note = format!("{}\n{}\n", tree.fake.path().display(), uids.join(" "));
        std::fs::write(&hold, note).unwrap();
        eprintln!(
            "holding the tree until {} is removed",
            hold.to_string_lossy()
        );
        while std::path::Path::new(&hold).exists() {
            std::thread::sleep(Duration::from_millis(200));
        }
        return;
    }

    println!("node probe, {pods} pods x (pod slice + 2 scopes, 6 processes), {runs} runs each");
    println!(
        "{:<12} {:<22} {:>10} {:>10} {:>10} {:>14} {:>12}",
        "SHELL", "PASS", "WALL MED", "WALL MIN", "CPU", "BYTES/RUN", "BYTES/VM"
    );
    let mut shells: Vec<Vec<&str>> = vec![vec!["sh"]];
    if std::process::Command::new("busybox")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        shells.push(vec!["busybox", "sh"]);
    }
    for shell in &shells {
        for (pass, targets) in [
            ("uids (no smaps)", &plain),
            ("all pods (listing)", &Vec::new()),
            ("uids:guest (smaps)", &smaps),
        ] {
            let m = measure(shell, targets, &settings, runs, pods);
            println!(
                "{:<12} {:<22} {:>10.1?} {:>10.1?} {:>10.1?} {:>14} {:>12}",
                shell.join(" "),
                pass,
                m.wall_median,
                m.wall_min,
                m.cpu_per_run,
                m.bytes,
                m.bytes / pods
            );
        }
        let (cpu, exact_rounds) = policy_rounds(shell, &smaps, &settings, runs.max(12));
        println!(
            "{:<12} {:<22} {:>10} {:>10} {:>10.1?} {:>14} {:>12}",
            shell.join(" "),
            format!("smaps policy ({exact_rounds}/{})", runs.max(12)),
            "-",
            "-",
            cpu,
            "-",
            "-"
        );
    }
    drop(tree);
    eprintln!("cgroups and processes removed");
}
