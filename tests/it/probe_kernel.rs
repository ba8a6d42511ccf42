//! assets/probe.sh on this machine's real kernel: a systemd-layout pod slice with container scopes
//! built in the memory cgroup v1 hierarchy below this test's own cgroup, helper processes holding
//! known amounts of memory inside, then an OOM kill. Fails (never skips) where that hierarchy is not
//! writable. Every cgroup and process is removed by Drop guards, also when an assertion fails.

use crate::cgtree;

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use vmmem::model::readings::{CgroupVersion, NodeReadings, PodReading};
use vmmem::node::local::{readings, LocalRun};

const MIB: u64 = 1 << 20;

/// Run `sh assets/probe.sh ARGS` with VMMEM_CGROUP_ROOT and VMMEM_PROC_ROOT set, as an operator would.
fn probe(shell: &[&str], cgroup_root: &Path, args: &[String]) -> NodeReadings {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/probe.sh");
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .arg(&script)
        .args(args)
        .env("VMMEM_CGROUP_ROOT", cgroup_root)
        .env("VMMEM_PROC_ROOT", "/proc")
        .output()
        .unwrap();
    let run = LocalRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
        status: out.status.to_string(),
        wall: Duration::ZERO,
    };
    assert!(run.success && run.stderr.is_empty(), "{run:?}");
    readings(&run, "this-machine", 0).unwrap_or_else(|e| panic!("{e}\n{}", run.stdout))
}

fn within_1mib(got: u64, want: u64, what: &str) {
    let diff = got.abs_diff(want);
    assert!(
        diff <= MIB,
        "{what}: {got} bytes, expected {want} ± 1 MiB (off by {diff})"
    );
}

#[test]
fn probe_reads_real_cgroups_processes_guest_ram_and_an_oom_kill() {
    let mut tree = cgtree::Tree::new("kernel").unwrap_or_else(|why| {
        panic!("the real-kernel probe test cannot run on this machine: {why}")
    });
    let bin = tempfile::tempdir().unwrap();
    let names = [
        "virt-launcher-monitor",
        "virt-launcher",
        "virtqemud",
        "virtlogd",
        "qemu-system-x86_64",
        "pause",
        "memhold",
    ];
    let exe = cgtree::helpers(bin.path(), &names).unwrap();

    let uid = format!("5eed0000-0000-4000-8000-{:012x}", std::process::id());
    let pod_rel = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    );
    let (compute_id, pause_id) = (cgtree::container_id(1), cgtree::container_id(2));
    let pod = tree.mkdir(&pod_rel).unwrap();
    let compute = tree
        .mkdir(&format!("{pod_rel}/cri-containerd-{compute_id}.scope"))
        .unwrap();
    let pause = tree
        .mkdir(&format!("{pod_rel}/cri-containerd-{pause_id}.scope"))
        .unwrap();
    let limit = 400 * MIB;
    tree.set(&pod, "memory.limit_in_bytes", &limit.to_string())
        .unwrap();

    // (name, comm as the kernel shows it, anon MiB held, container)
    let guest_mib = 256;
    let touched_mib = 96;
    let qemu_own_mib = 12;
    let held = [
        ("virt-launcher-monitor", "virt-launcher-m", 6, &compute_id),
        ("virt-launcher", "virt-launcher", 20, &compute_id),
        ("virtqemud", "virtqemud", 10, &compute_id),
        ("virtlogd", "virtlogd", 4, &compute_id),
        (
            "qemu-system-x86_64",
            "qemu-system-x86",
            qemu_own_mib + touched_mib,
            &compute_id,
        ),
        ("pause", "pause", 1, &pause_id),
    ];
    let mut pids = Vec::new();
    for (name, _, mib, container) in held {
        let cgroup = if container == &compute_id {
            &compute
        } else {
            &pause
        };
        let args: Vec<String> = if name.starts_with("qemu") {
            vec![
                qemu_own_mib.to_string(),
                guest_mib.to_string(),
                touched_mib.to_string(),
            ]
        } else {
            vec![mib.to_string()]
        };
        pids.push(tree.spawn(&exe[name], &args, cgroup).unwrap());
    }

    let arg = format!("{uid}:{}", guest_mib * MIB);
    // The kernel's own numbers around the probe. Idle helpers keep them still, but other cgroups
    // on a busy machine can drain per-CPU charge caches meanwhile: retry until they held still.
    let kernel = || {
        [&pod, &compute, &pause].map(|d| {
            (
                read_u64(&d.join("memory.usage_in_bytes")),
                stat_key(d, "total_inactive_file"),
            )
        })
    };
    let (r, still) = (0..10)
        .map(|_| {
            let before = kernel();
            let r = probe(&["sh"], tree.fake.path(), std::slice::from_ref(&arg));
            (r, (before == kernel()).then_some(before))
        })
        .find(|(_, still)| still.is_some())
        .expect("the kernel's usage counters never held still for the length of a probe");
    let still = still.unwrap();
    assert_eq!(r.cgroup_version, CgroupVersion::V1);
    assert_eq!(
        r.kernel,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
    );
    assert!(r.missing_pods.is_empty());
    assert_eq!(r.pods.len(), 1);
    let p: &PodReading = &r.pods[0];
    assert_eq!(p.uid, uid);
    assert_eq!(p.cgroup.path, format!("/{pod_rel}"));

    // Counters: the limit exactly, usage as the kernel counts it (the helpers sit idle).
    assert_eq!(p.cgroup.limit_bytes, Some(limit));
    assert_eq!(p.cgroup.usage_bytes, still[0].0);
    assert_eq!(p.cgroup.working_set_bytes, still[0].0 - still[0].1);
    assert_eq!(p.cgroup.failcnt, Some(0));
    assert_eq!(p.cgroup.oom_kills, 0);
    assert!(p.cgroup.peak_bytes.unwrap() >= p.cgroup.usage_bytes);
    assert_eq!(p.cgroup.stat.anon, Some(stat_key(&pod, "total_rss")));
    let held_total: u64 = held.iter().map(|h| h.2).sum::<u64>() * MIB;
    assert!(
        p.cgroup.usage_bytes >= held_total,
        "{} < {held_total}",
        p.cgroup.usage_bytes
    );
    assert_eq!(p.containers.len(), 2);
    for c in &p.containers {
        let k = if c.container_id.as_deref() == Some(compute_id.as_str()) {
            still[1]
        } else {
            still[2]
        };
        assert_eq!(c.usage_bytes, k.0);
        assert_eq!(c.working_set_bytes, k.0 - k.1);
        assert_eq!(c.limit_bytes, None, "scopes have no limit of their own");
        assert!(c
            .path
            .ends_with(&format!("{}.scope", c.container_id.as_deref().unwrap())));
    }

    // Each process: its comm, its container, its private memory within 1 MiB.
    assert_eq!(p.processes.len(), held.len(), "{:?}", p.processes);
    for ((_, comm, mib, container), pid) in held.iter().zip(&pids) {
        let got = p.processes.iter().find(|x| x.pid == *pid).unwrap();
        assert_eq!(got.comm, *comm);
        assert_eq!(
            got.container_id.as_deref(),
            Some(container.as_str()),
            "{comm}"
        );
        within_1mib(got.rss_anon_bytes, mib * MIB, comm);
        assert_eq!(got.rss_shmem_bytes, 0, "{comm}");
    }
    // Guest RAM resident in qemu: exactly what the "guest" touched.
    within_1mib(
        p.guest_resident_bytes.unwrap(),
        touched_mib * MIB,
        "guest resident",
    );
    assert_eq!(p.guest_hugetlb_bytes, None);
    // Swap (issue 16): the v1 hierarchy counts memory + swap in memory.memsw.*, present only when
    // the kernel accounts swap. This test needs it: without it the probe's swap reading is untested.
    let memsw = pod.join("memory.memsw.usage_in_bytes");
    assert!(
        memsw.exists(),
        "{} is missing: this kernel does not account swap (swapaccount), so the probe's v1 swap \
         reading cannot be checked here",
        memsw.display()
    );
    // Swap in use is memsw − memory, as the kernel counts both (no swap device: 0); the kubelet
    // never limits memsw, so no swap limit.
    assert_eq!(p.cgroup.swap_bytes, Some(0), "{:?}", p.cgroup);
    assert_eq!(p.cgroup.swap_limit_bytes, None);
    for c in &p.containers {
        assert_eq!((c.swap_bytes, c.swap_limit_bytes), (Some(0), None));
    }
    // The pod's usage read again after qemu's smaps scan: the helpers sit still, so the same.
    assert_eq!(p.usage_after_smaps_bytes, Some(still[0].0));

    // busybox sh reads the same tree the same way.
    if Command::new("busybox")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        let b = probe(
            &["busybox", "sh"],
            tree.fake.path(),
            std::slice::from_ref(&arg),
        );
        let bp = &b.pods[0];
        assert_eq!(bp.cgroup.limit_bytes, Some(limit));
        assert_eq!(bp.processes.len(), held.len());
        within_1mib(
            bp.guest_resident_bytes.unwrap(),
            touched_mib * MIB,
            "guest resident (busybox)",
        );
    }

    // Listing every pod (no arguments) finds this one too, without a smaps pass.
    let all = probe(&["sh"], tree.fake.path(), &[]);
    assert_eq!(all.pods.len(), 1);
    assert_eq!(all.pods[0].uid, uid);
    assert_eq!(all.pods[0].guest_resident_bytes, None);

    // Push the pod past its limit: a "memhold" in the compute scope asks for more than is left.
    let i = tree
        .start(&exe["memhold"], &["500".to_string()], &compute)
        .unwrap();
    let status = wait_for_exit(&mut tree.children[i], Duration::from_secs(60))
        .expect("memhold was not OOM-killed within 60 s");
    assert!(
        !status.success(),
        "memhold should have been killed: {status:?}"
    );

    let r = probe(&["sh"], tree.fake.path(), std::slice::from_ref(&arg));
    let p = &r.pods[0];
    assert_eq!(
        p.cgroup.oom_kills, 1,
        "the pod's OOM kills (pod slice + its scopes)"
    );
    let c = p
        .containers
        .iter()
        .find(|c| c.container_id.as_deref() == Some(compute_id.as_str()))
        .unwrap();
    assert_eq!(
        c.oom_kills, 1,
        "v1 counts the kill in the scope that held the task"
    );
    assert!(p.cgroup.failcnt.unwrap() > 0, "the pod slice hit its limit");
    assert_eq!(p.cgroup.peak_bytes, Some(limit));
    // The helpers that were not killed are all still there and read.
    assert_eq!(p.processes.len(), held.len());
}

/// The installed binary carries the script: `kubectl vmmem probe --local` on the real tree.
#[test]
fn probe_local_command_on_the_real_kernel() {
    let mut tree = cgtree::Tree::new("cli").unwrap_or_else(|why| {
        panic!("the real-kernel probe test cannot run on this machine: {why}")
    });
    let bin = tempfile::tempdir().unwrap();
    let exe = cgtree::helpers(bin.path(), &["virt-launcher"]).unwrap();
    let uid = format!("c11c0000-0000-4000-8000-{:012x}", std::process::id());
    let pod_rel = format!("kubepods.slice/kubepods-pod{}.slice", uid.replace('-', "_"));
    tree.mkdir(&pod_rel).unwrap();
    let scope = tree
        .mkdir(&format!(
            "{pod_rel}/cri-containerd-{}.scope",
            cgtree::container_id(3)
        ))
        .unwrap();
    let pid = tree
        .spawn(&exe["virt-launcher"], &["8".to_string()], &scope)
        .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["probe", "--local", "--cgroup-root"])
        .arg(tree.fake.path())
        .args([uid.as_str(), "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "local");
    assert_eq!(v["pods"][0]["uid"], uid.as_str());
    assert_eq!(v["pods"][0]["limitBytes"], serde_json::Value::Null);
    let procs = v["pods"][0]["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(procs[0]["pid"], pid);
    assert_eq!(procs[0]["comm"], "virt-launcher");
    within_1mib(
        procs[0]["rssAnonBytes"].as_u64().unwrap(),
        8 * MIB,
        "virt-launcher",
    );
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// A `memory.stat` key's value.
fn stat_key(cgroup: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(cgroup.join("memory.stat")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in memory.stat"))
}

/// Wait up to `timeout` for `child` to end; its exit status.
fn wait_for_exit(child: &mut std::process::Child, timeout: Duration) -> Option<ExitStatus> {
    let until = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < until {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
