//! Kernel logs read as a stream (issue 18 point 6): memory follows the reports kept, not the
//! input. Each input is made on the fly (a sparse file, a pipe) and the binary's peak RSS is
//! taken from wait4's rusage.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::oom_fixtures::fixture;

/// Peak RSS allowed for the binary on any of these inputs.
const RSS_LIMIT_KIB: i64 = 100 << 10;

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    peak_rss_kib: i64,
    wall: Duration,
}

/// Run `kubectl-vmmem ARGS`, `feed` writing its standard input, and measure it. The peak RSS
/// comes from GNU time, which forks the binary from its own small process: a child spawned
/// straight from this (large) test process inherits its peak into `ru_maxrss` at exec.
fn run(args: &[&str], feed: impl FnOnce(&mut dyn Write) + Send + 'static) -> Run {
    let time = "/usr/bin/time";
    assert!(
        std::path::Path::new(time).exists(),
        "{time} (GNU time) is needed to measure the binary's peak RSS: apt-get install time"
    );
    let report = tempfile::NamedTempFile::new().unwrap();
    let start = Instant::now();
    let mut child = Command::new(time)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        feed(&mut stdin);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        out.read_to_end(&mut b).unwrap();
        b
    });
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).unwrap();
    let stdout = reader.join().unwrap();
    writer.join().unwrap();
    let status = child.wait().unwrap();
    let measured = std::fs::read_to_string(report.path()).unwrap();
    // GNU time writes "Command exited with non-zero status N" before the figure.
    let peak_rss_kib = measured
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from {time}: {measured:?}"));
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        peak_rss_kib,
        wall: start.elapsed(),
    }
}

fn nothing(_: &mut dyn Write) {}

fn json(r: &Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_slice(&r.stdout).unwrap()
}

fn check_bounded(what: &str, r: &Run) {
    eprintln!(
        "{what}: peak RSS {:.1} MiB, {:.1} s",
        r.peak_rss_kib as f64 / 1024.0,
        r.wall.as_secs_f64()
    );
    assert!(
        r.peak_rss_kib < RSS_LIMIT_KIB,
        "{what}: peak RSS {} KiB",
        r.peak_rss_kib
    );
    assert!(
        r.wall < Duration::from_secs(60),
        "{what}: took {:?}",
        r.wall
    );
}

/// A 2 GiB dmesg that is a hole (zeros, no line break) and one real report at its end.
#[test]
fn sparse_two_gib_dmesg() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dmesg.log");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    write!(f, "\n{}", fixture("seed-example2-dmesg-T.log")).unwrap();
    drop(f);
    let r = run(
        &["oom", "-o", "json", "-f", path.to_str().unwrap()],
        nothing,
    );
    let v = json(&r);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "the report after the hole is found");
    assert_eq!(events[0]["victim"]["pid"], 70870);
    assert!(r.stderr.contains("lines longer than"), "{}", r.stderr);
    check_bounded("2 GiB sparse dmesg", &r);
}

/// 173 MB of report headers that never go on, through a pipe (`-f -`): the last reports are
/// kept and the rest counted.
#[test]
fn unfinished_headers_through_a_pipe() {
    const LINES: usize = 1_730_000;
    let r = run(&["oom", "-o", "json", "-f", "-"], |w| {
        let mut w = std::io::BufWriter::new(w);
        for i in 0..LINES {
            let s = i / 1000;
            let us = (i % 1000) * 1000;
            // About 100 bytes a line, as 5.14 prints it.
            writeln!(
                w,
                "[{s:>5}.{us:06}] CPU 1/KVM invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=986"
            )
            .unwrap();
        }
    });
    let v = json(&r);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), vmmem::parse::oom::MAX_REPORTS);
    assert!(events.iter().all(|e| e["partial"] == true));
    let last = events.last().unwrap();
    assert_eq!(last["line"], LINES, "the last reports are the ones kept");
    assert!(
        r.stderr.contains(&format!(
            "holds {LINES} OOM reports: the last {} are shown",
            vmmem::parse::oom::MAX_REPORTS
        )),
        "{}",
        r.stderr
    );
    check_bounded("173 MB of unfinished OOM headers", &r);
}

/// One report whose task table never ends (half a million rows, 45 MB): the rows kept are
/// bounded, the largest kept, the rest counted.
#[test]
fn endless_task_table() {
    const ROWS: u32 = 500_000;
    let r = run(&["oom", "-o", "json", "-f", "-"], |w| {
        let mut w = std::io::BufWriter::new(w);
        writeln!(w, "[ 9.000000] CPU 0/KVM invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=986").unwrap();
        writeln!(w, "[ 9.000001] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name").unwrap();
        for pid in 1..=ROWS {
            writeln!(
                w,
                "[ 9.000002] [{pid:>7}]     0 {pid:>7}    12345 {:>8}   102400        0             0 worker",
                pid % 5000
            )
            .unwrap();
        }
    });
    let v = json(&r);
    let e = &v["events"][0];
    let kept = e["tasks"].as_array().unwrap().len();
    assert_eq!(kept, vmmem::parse::oom::MAX_TASK_ROWS);
    assert_eq!(e["tasksOmitted"], (ROWS as usize - kept) as u64);
    assert!(e["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["rssBytes"].as_u64().unwrap() >= 4000 * 4096));
    check_bounded("a task table of half a million rows", &r);
}

/// A device that never ends is refused before it is read.
#[test]
fn devices_are_refused() {
    let r = run(&["oom", "-f", "/dev/zero"], nothing);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a kernel log file"), "{}", r.stderr);
}
