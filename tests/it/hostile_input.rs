//! Crafted inputs to `--from` (issue 18): each one ends, through the real binary, within
//! seconds, with one clear sentence, and with the child's peak memory (the high-water mark of its
//! own address space, `VmHWM`) under 200 MiB: a 3 MB zip whose entry unpacks to 3 GiB, declared honestly or
//! not; sparse files of 1 GiB (YAML) and 2.1 GiB (dmesg); `/dev/zero`; a FIFO named `*.yaml`;
//! flow-style YAML nested 80 KB and 200 KB deep; a folder past the total cap.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAX_RSS_KIB: i64 = 200 * 1024;
const MAX_SECONDS: u64 = 20;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss_kib: i64,
    elapsed: Duration,
}

/// The child's peak resident memory, watched every 2 ms from /proc/PID/status until it exits:
/// `VmHWM` is the high-water mark of the address space the binary got at exec, its own. (The
/// child's `ru_maxrss` would not do: exec folds the high-water mark of the address space it
/// replaces into it, and a child spawned with vfork replaces the test process's own, which
/// grows with the tests running beside it.) It is a lower bound: a run refused at once may end
/// before the first look; but memory that grows takes page faults, and a blow-up past the cap
/// lasts far longer than the 2 ms between two looks.
fn watch_peak_rss(pid: libc::pid_t, done: std::sync::Arc<std::sync::atomic::AtomicBool>) -> i64 {
    let mut peak = 0;
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            break;
        };
        let hwm = status.lines().find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<i64>()
                .ok()
        });
        match hwm {
            Some(kib) => peak = peak.max(kib),
            None if status.contains("State:\tZ") => break,
            None => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    peak
}

/// Run the binary; kill it past `MAX_SECONDS` (a hang fails the test instead of stalling it);
/// watch its peak resident memory until it exits, and reap it with `wait4`.
// The child is reaped by `wait4` (which `Child::wait` cannot do: it gives no rusage).
#[allow(clippy::zombie_processes)]
fn run(args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let exited = exited.clone();
        std::thread::spawn(move || watch_peak_rss(pid, exited))
    };
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx
            .recv_timeout(Duration::from_secs(MAX_SECONDS))
            .is_err()
        {
            // SAFETY: kill has no memory preconditions; the child is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut status = 0;
    // Wait for the exit without reaping (WNOWAIT): the watcher still sees the process, as a
    // zombie, and its PID cannot be taken by another process before the watcher has stopped.
    // SAFETY: an all-zero siginfo is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not waited for elsewhere; the pointer is valid.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0, "waitid: {}", std::io::Error::last_os_error());
    let elapsed = started.elapsed();
    exited.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_rss_kib = watcher.join().unwrap();
    // SAFETY: as above; this reaps the child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        peak_rss_kib,
        elapsed,
    }
}

/// The run failed with one clear line holding every part, fast and small.
fn refused(args: &[&str], parts: &[&str]) -> Run {
    let r = run(args);
    assert!(
        r.elapsed < Duration::from_secs(MAX_SECONDS),
        "{args:?}: killed after {:?} (hung)",
        r.elapsed
    );
    assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected:\n{}", r.stderr);
    for p in parts {
        assert!(
            lines[0].contains(p),
            "{args:?}: {p:?} missing in {}",
            lines[0]
        );
    }
    assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    assert!(
        r.peak_rss_kib < MAX_RSS_KIB,
        "{args:?}: peak RSS {} KiB",
        r.peak_rss_kib
    );
    eprintln!(
        "{args:?}: {:?}, peak RSS {} KiB: {}",
        r.elapsed, r.peak_rss_kib, lines[0]
    );
    r
}

/// A raw deflate stream of `n_mib` MiB of zeros, built from one compressed MiB repeated (every
/// copy refers back to zeros only), so a 3 GiB entry is made in milliseconds.
fn deflated_zeros(n_mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mib = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut chunk = |input: &[u8], flush: FlushCompress| {
        let mut out = Vec::with_capacity(64 << 10);
        let before = c.total_in();
        c.compress_vec(input, &mut out, flush).unwrap();
        assert_eq!(c.total_in() - before, input.len() as u64);
        out
    };
    let first = chunk(&mib, FlushCompress::Sync);
    let steady = chunk(&mib, FlushCompress::Sync);
    let end = chunk(&[], FlushCompress::Finish);
    let mut stream = first;
    for _ in 1..n_mib {
        stream.extend_from_slice(&steady);
    }
    stream.extend_from_slice(&end);
    stream
}

/// A zip of one deflated entry, its sizes and CRC as given (a crafted header may lie).
fn zip_with(name: &str, data: &[u8], declared_size: u32, crc: u32) -> Vec<u8> {
    let mut z = Vec::new();
    let local = |z: &mut Vec<u8>| {
        z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        z.extend_from_slice(&20u16.to_le_bytes()); // version needed
        z.extend_from_slice(&0u16.to_le_bytes()); // flags
        z.extend_from_slice(&8u16.to_le_bytes()); // deflate
        z.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&declared_size.to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
    };
    local(&mut z);
    z.extend_from_slice(data);
    let cd_start = z.len() as u32;
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&20u16.to_le_bytes()); // made by
    z.extend_from_slice(&20u16.to_le_bytes()); // needed
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(&8u16.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0x21, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&(data.len() as u32).to_le_bytes());
    z.extend_from_slice(&declared_size.to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    z.extend_from_slice(name.as_bytes());
    let cd_len = z.len() as u32 - cd_start;
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0; 4]);
    z.extend_from_slice(&1u16.to_le_bytes());
    z.extend_from_slice(&1u16.to_le_bytes());
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd_start.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_small_zip_that_unpacks_to_gigabytes_stops_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let gib3 = deflated_zeros(3 << 10);
    assert!(gib3.len() < 4 << 20, "{} bytes", gib3.len());
    // Declared honestly (3 GiB): refused by its header, nothing unpacked.
    let honest = dir.path().join("honest.zip");
    write(&honest, &zip_with("pods.yaml", &gib3, 3 << 30, 0));
    refused(
        &["list", "--from", p(&honest)],
        &["honest.zip!pods.yaml", "3GiB", "--max-file-size"],
    );
    // Declaring 64 MiB: unpacking stops one byte past that, not at 3 GiB.
    let liar = dir.path().join("liar.zip");
    write(&liar, &zip_with("kernel.log", &gib3, 64 << 20, 0));
    refused(
        &["oom", "--from", p(&liar)],
        &[
            "liar.zip!kernel.log",
            "holds more than the 64MiB",
            "it declares",
        ],
    );
    // Declaring 3 GiB with the cap raised to 4 GiB: still at most 100 MiB, the total cap.
    refused(
        &[
            "list",
            "--from",
            p(&honest),
            "--max-file-size",
            "4Gi",
            "--max-total-size",
            "100Mi",
        ],
        &["honest.zip!pods.yaml", "--max-total-size"],
    );
    // A lowered cap is checked against the declared size before unpacking.
    refused(
        &["list", "--from", p(&liar), "--max-file-size", "16Mi"],
        &["liar.zip!kernel.log", "--max-file-size"],
    );
}

#[test]
fn sparse_giants_devices_and_fifos_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("huge.yaml");
    sparse(&yaml, 1 << 30);
    refused(
        &["list", "--from", p(&yaml)],
        &[
            "huge.yaml",
            "1GiB",
            "more than the 256MiB",
            "--max-file-size",
        ],
    );
    let dmesg = dir.path().join("dmesg");
    sparse(&dmesg, 2_100_000_000);
    refused(&["oom", "--from", p(&dmesg)], &["dmesg", "--max-file-size"]);
    // The same inside a folder.
    let folder = dir.path().join("bundle");
    std::fs::create_dir_all(folder.join("nodes/n1/logs")).unwrap();
    sparse(&folder.join("nodes/n1/logs/kernel.log"), 2_100_000_000);
    refused(
        &["oom", "--from", p(&folder)],
        &["nodes/n1/logs/kernel.log", "--max-file-size"],
    );
    refused(
        &["list", "--from", "/dev/zero"],
        &["/dev/zero: not a regular file (it is a device)"],
    );
    let fifo = dir.path().join("vms.yaml");
    let c = std::ffi::CString::new(p(&fifo)).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    refused(
        &["list", "--from", p(&fifo)],
        &["vms.yaml: not a regular file (it is a named pipe)"],
    );
    // Not a manifest by name: refused from its first bytes, never read whole.
    let blob = dir.path().join("disk.img");
    sparse(&blob, 8 << 30);
    refused(
        &["list", "--from", p(&blob)],
        &[
            "disk.img: not a YAML/JSON manifest",
            "(it holds binary data)",
        ],
    );
}

#[test]
fn deeply_nested_flow_yaml_is_refused_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    for kib in [80, 200, 4096] {
        let path = dir.path().join(format!("deep-{kib}.yaml"));
        let text = format!("kind: VirtualMachine\nspec: {}\n", "[".repeat(kib << 10));
        write(&path, text.as_bytes());
        let r = refused(
            &["list", "--from", p(&path)],
            &[
                &format!("deep-{kib}.yaml"),
                "line 2 nests [ ] / { } more than 128 deep",
            ],
        );
        assert!(
            r.elapsed < Duration::from_secs(2),
            "{kib} KiB: {:?}",
            r.elapsed
        );
    }
}

#[test]
fn the_total_cap_holds_for_a_folder_and_can_be_raised() {
    let dir = tempfile::tempdir().unwrap();
    let vm = "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: a\n  namespace: default\nspec:\n  template:\n    spec:\n      domain:\n        memory:\n          guest: 1Gi\n";
    write(&dir.path().join("a.yaml"), vm.as_bytes());
    // Three 40 MiB manifests of comments: 120 MiB together.
    let filler = format!("# {}\n", "x".repeat(1021)).repeat(40 << 10);
    for n in ["b", "c", "d"] {
        write(&dir.path().join(format!("{n}.yaml")), filler.as_bytes());
    }
    refused(
        &["list", "--from", p(dir.path()), "--max-total-size", "100Mi"],
        &["d.yaml", "more than 100MiB", "--max-total-size"],
    );
    refused(
        &["list", "--from", p(dir.path()), "--max-file-size", "32Mi"],
        &["b.yaml", "more than the 32MiB", "--max-file-size"],
    );
    let r = run(&["list", "--from", p(dir.path()), "-o", "json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("\"name\": \"a\""), "{}", r.stdout);
    refused(
        &["list", "--from", p(dir.path()), "--max-file-size", "0"],
        &["--max-file-size \"0\" must be larger than 0"],
    );
    refused(
        &["list", "--from", p(dir.path()), "--max-total-size=-1Gi"],
        &["--max-total-size \"-1Gi\"", "negative"],
    );
}
