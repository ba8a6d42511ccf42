//! A real OOM kill on this machine's kernel, read back from `dmesg` and parsed.
//!
//! Needs root, a cgroup v1 memory controller at /sys/fs/cgroup/memory and `dmesg`; without them
//! the test fails and says which is missing. It builds a Kubernetes-shaped tree below its own
//! memory cgroup (`kubepods.slice/…/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`),
//! limits the pod slice to 32 MiB (plus a few bytes the kernel rounds away), and runs a copy of
//! this test binary named `qemu-system-x86_64` in the scope whose thread `CPU 0/KVM` allocates
//! until the kernel kills it.

use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmmem::model::oom_event::OomScope;
use vmmem::model::oom_verdict::{explain, TriggerKind};
use vmmem::parse::oom::parse_kernel_log;

const HELPER_ENV: &str = "VMMEM_OOM_HELPER";
const MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";
const LIMIT: u64 = 32 << 20;
const POD_UID: &str = "7e3f4a10-2b6c-4d8e-9f01-23456789abcd";
const CONTAINER_ID: &str = "5e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d";

/// Removes the cgroups (deepest first) and kills the helper on every exit path.
struct Cleanup {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.dirs.iter().rev() {
            if dir.exists() {
                if let Err(e) = std::fs::remove_dir(dir) {
                    eprintln!("could not remove cgroup {}: {e}", dir.display());
                }
            }
        }
    }
}

fn own_memory_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/cgroup: {e}"));
    text.lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| {
            panic!(
                "this test needs a cgroup v1 memory controller, but /proc/self/cgroup has no memory: line:\n{text}"
            )
        })
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value)
        .unwrap_or_else(|e| panic!("cannot write {value:?} to {}: {e}", path.display()));
}

fn dmesg() -> String {
    let out = Command::new("dmesg")
        .output()
        .unwrap_or_else(|e| panic!("this test needs `dmesg`, which could not run: {e}"));
    assert!(
        out.status.success(),
        "dmesg failed ({}): {} — the test must run as root to read the kernel log",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn real_kernel_oom_is_read_back_from_dmesg() {
    assert!(
        Path::new(MEMORY_ROOT)
            .join("memory.limit_in_bytes")
            .exists(),
        "this test needs the cgroup v1 memory controller mounted at {MEMORY_ROOT}"
    );
    let own = own_memory_cgroup();
    // Ends in this process's PID like the trees of tests/support/cgtree.rs, whose sweep of trees
    // left by dead runs (it reads the last number as their PID) may run at the same time.
    let unique = format!(
        "vmmem-oom-{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
        std::process::id(),
    );
    let rel = [
        unique.clone(),
        "kubepods.slice".into(),
        "kubepods-burstable.slice".into(),
        format!("kubepods-burstable-pod{}.slice", POD_UID.replace('-', "_")),
        format!("cri-containerd-{CONTAINER_ID}.scope"),
    ];
    let base = PathBuf::from(format!("{MEMORY_ROOT}{}", own.trim_end_matches('/')));
    let mut cleanup = Cleanup {
        dirs: Vec::new(),
        child: None,
    };
    let mut dir = base.clone();
    for seg in &rel {
        dir.push(seg);
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot create memory cgroup {} (run as root): {e}",
                dir.display()
            )
        });
        cleanup.dirs.push(dir.clone());
    }
    let pod_slice = cleanup.dirs[3].clone();
    let scope = cleanup.dirs[4].clone();
    // A limit that is not page aligned: the kernel keeps it rounded down to 4096.
    write(
        &pod_slice.join("memory.limit_in_bytes"),
        &(LIMIT + 123).to_string(),
    );

    // The helper: this test binary under QEMU's name, so its comm is `qemu-system-x86`.
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("qemu-system-x86_64");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    // The helper's name as the test harness lists it: its module path without the crate's name.
    let helper = concat!(module_path!(), "::oom_helper_allocates_until_killed");
    let helper = helper.split_once("::").map_or(helper, |(_, name)| name);
    let mut child = Command::new(&exe)
        .args([
            "--exact",
            helper,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the helper {}: {e}", exe.display()));
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    cleanup.child = Some(child);
    write(&scope.join("cgroup.procs"), &pid.to_string());
    writeln!(stdin, "go").unwrap();
    drop(stdin);

    let started = Instant::now();
    let status = loop {
        let child = cleanup.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the helper was not OOM-killed within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    cleanup.child = None;
    assert_eq!(
        status.signal(),
        Some(9),
        "the helper should die of SIGKILL (the OOM killer), got {status}"
    );

    // The kernel log may lag a moment behind the kill.
    let oom_memcg = format!("{}/{}", own.trim_end_matches('/'), rel[..4].join("/"));
    let mut found = None;
    for _ in 0..40 {
        let events = parse_kernel_log(&dmesg());
        found = events
            .into_iter()
            .rev()
            .find(|e| e.victim.as_ref().is_some_and(|v| v.pid == pid) && !e.partial);
        if found.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ev = found.unwrap_or_else(|| panic!("no complete OOM report for pid {pid} in dmesg"));
    let victim = ev.victim.as_ref().unwrap();
    assert_eq!(victim.comm, "qemu-system-x86");
    assert!(victim.anon_rss_bytes.unwrap() > 0);
    assert_eq!(ev.trigger.as_deref(), Some("CPU 0/KVM"));
    assert_eq!(ev.limit_bytes(), Some(LIMIT));
    assert_eq!(ev.oom_memcg.as_deref(), Some(oom_memcg.as_str()));
    assert_eq!(
        ev.task_memcg.as_deref(),
        Some(format!("{oom_memcg}/{}", rel[4]).as_str())
    );
    assert_eq!(ev.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
    assert_eq!(ev.scope, Some(OomScope::Pod));
    assert_eq!(ev.pod_uid.as_deref(), Some(POD_UID));
    assert_eq!(ev.container_id.as_deref(), Some(CONTAINER_ID));
    assert!(ev
        .tasks
        .iter()
        .any(|t| t.pid == pid && t.name == "qemu-system-x86"));

    let ex = explain(std::slice::from_ref(&ev), None, None).remove(0);
    assert!(ex.kubevirt, "qemu in a pod cgroup reads as a VM");
    assert_eq!(ex.trigger_kind, TriggerKind::Vcpu);
    assert!(
        ex.verdict
            .contains("its pod hit its memory limit of 32MiB (33,554,432 bytes)"),
        "{}",
        ex.verdict
    );
    drop(cleanup);
    assert!(!base.join(&unique).exists(), "cgroups were not cleaned up");
}

/// Run only by `real_kernel_oom_is_read_back_from_dmesg` (as `qemu-system-x86_64` inside the
/// limited cgroup): waits for a line on stdin, then a thread named `CPU 0/KVM` touches memory
/// until the kernel kills the process.
#[test]
#[ignore = "helper process of real_kernel_oom_is_read_back_from_dmesg"]
fn oom_helper_allocates_until_killed() {
    assert!(
        std::env::var_os(HELPER_ENV).is_some(),
        "this is a helper: run real_kernel_oom_is_read_back_from_dmesg instead"
    );
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let worker = std::thread::Builder::new()
        .name("CPU 0/KVM".into())
        .spawn(|| {
            let mut held: Vec<Vec<u8>> = Vec::new();
            for _ in 0..1024 {
                held.push(vec![1u8; 1 << 20]);
            }
            held.len()
        })
        .unwrap();
    let n = worker.join().unwrap();
    panic!("allocated {n} MiB without being OOM-killed: the cgroup limit did not apply");
}
