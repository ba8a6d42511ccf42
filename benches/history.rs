//! Benchmark (issue 20): a week of history for thousands of VMs in a real Prometheus (Debian's
//! package, tests/prometheus), and what the contract's queries cost against it.
//!
//! 1. Generates the history (`tests/it/common/prom_history.rs`, `fleet`: launcher pods with
//!    restarts, OOM kills and spikes) one 2-hour window at a time and loads each window with
//!    `promtool tsdb create-blocks-from openmetrics` into a cache directory, once: later runs with
//!    the same size reuse the blocks (`target/history-blocks/…`; an interrupted first run resumes
//!    from the blocks it finished). The history ends at a fixed time so the cache stays valid.
//! 2. Starts Prometheus on a copy of the blocks (tests/prometheus/start.sh) and times one query
//!    per metric for every VM over the week (the contract's shape, `max by (namespace, pod)
//!    (max_over_time(M{…}[1h]))` at a 1-hour step), plain HTTP like curl: wall time, response
//!    size, series; `HISTORY_RUNS` runs each, the median printed.
//! 3. With `HISTORY_TOOL_KUBECONFIG` set (a cluster holding the same VMs), runs
//!    [`tool_with_history`]: `kubectl-vmmem list -A -o json --prometheus URL`, its wall time and
//!    peak RSS. Without it, says that it did not.
//!
//! Run: `cargo bench --bench history`. Environment: `HISTORY_VMS` (default 5000), `HISTORY_DAYS`
//! (7), `HISTORY_SCRAPE` (the history's sample interval in seconds, default 600: see
//! docs/performance.md for why), `HISTORY_RUNS` (3). Fails loudly when Prometheus is missing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/it/common/prom_history.rs"]
#[allow(dead_code)]
mod prom_history;
#[path = "../tests/it/common/prom_http.rs"]
mod prom_http;

use prom_history::{fleet, History, FAMILIES};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-vmmem");
/// The history's end: a fixed time (2026-11-21 22:00 UTC, a multiple of promtool's 2-hour
/// blocks) so cached blocks stay valid.
const END: i64 = 1_795_298_400;

fn env_num(key: &str, default: i64) -> i64 {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn du(path: &Path) -> u64 {
    let out = Command::new("du")
        .args(["-sb"])
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// What making the blocks cost.
struct Made {
    samples: u64,
    text_bytes: u64,
    generate: Duration,
    promtool: Duration,
}

/// Write and import the history one 2-hour window at a time (promtool reads its input once per
/// block it cuts, so a window per file reads each byte once; one file at a time keeps the disk
/// free).
fn make_blocks(history: &History, blocks: &Path) -> Made {
    let work = tempfile::tempdir().expect("temp dir");
    // An interrupted run left whole blocks in `partial`: their windows are not made again.
    let partial = blocks.with_extension("partial");
    std::fs::create_dir_all(&partial).expect("block dir");
    let done = made_windows(&partial);
    let mut made = Made {
        samples: 0,
        text_bytes: 0,
        generate: Duration::ZERO,
        promtool: Duration::ZERO,
    };
    let step = prom_history::BLOCK_SECONDS;
    let mut from = history.start - history.start.rem_euclid(step);
    while from < history.end {
        if done.contains(&from) {
            from += step;
            continue;
        }
        let file = work.path().join("window.om");
        let t = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("window file"));
        made.samples += history
            .write_window(from, from + step, &mut out)
            .expect("writing the window");
        out.flush().expect("writing the window");
        drop(out);
        made.generate += t.elapsed();
        made.text_bytes += std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let t = Instant::now();
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&file)
            .arg(&partial)
            .output()
            .unwrap_or_else(|e| panic!("promtool (Debian package prometheus) not runnable: {e}"));
        assert!(
            out.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        made.promtool += t.elapsed();
        from += step;
    }
    std::fs::rename(&partial, blocks).expect("moving the blocks into the cache");
    made
}

/// The windows (their first second) of the whole blocks in `dir`: a block's `minTime` is its
/// window's first sample, which the fleet has at the window's start.
fn made_windows(dir: &Path) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("meta.json")).ok())
        .filter_map(|meta| serde_json::from_str::<serde_json::Value>(&meta).ok())
        .filter_map(|meta| meta["minTime"].as_i64().map(|ms| ms / 1000))
        .collect()
}

/// A Prometheus started by tests/prometheus/start.sh, stopped (by PID, stop.sh) when dropped.
struct Prom {
    url: String,
    state: tempfile::TempDir,
}

impl Prom {
    fn start(blocks: &Path) -> (Prom, Duration) {
        let state = tempfile::Builder::new()
            .prefix("vmmem-history-bench-")
            .tempdir()
            .expect("state dir");
        let t = Instant::now();
        let out = Command::new("bash")
            .arg(root().join("tests/prometheus/start.sh"))
            .arg("--watch")
            .arg(std::process::id().to_string())
            .arg("--blocks")
            .arg(blocks)
            .arg(state.path().join("run"))
            .stdin(Stdio::null())
            .output()
            .expect("running tests/prometheus/start.sh");
        assert!(
            out.status.success(),
            "Prometheus could not be started: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let url = env.get("URL").expect("start.sh printed no URL").clone();
        (Prom { url, state }, t.elapsed())
    }
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("tests/prometheus/stop.sh"))
            .arg(self.state.path().join("run"))
            .status();
    }
}

/// One timed query: wall time, response bytes, series.
fn timed_query(url: &str, query: &str, start: i64, end: i64, step: i64) -> (f64, usize, usize) {
    let path = format!(
        "{url}/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
        prom_http::encode(query)
    );
    let t = Instant::now();
    let reply = prom_http::get(&path, &[], Duration::from_secs(300)).expect("query");
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(
        reply.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    let series = v["data"]["result"].as_array().map_or(0, Vec::len);
    (wall, reply.body.len(), series)
}

/// The contract's query for every VM of one metric family over the window.
fn contract_query(metric: &str) -> String {
    let (by, func, matchers) = match metric {
        "kubevirt_vmi_memory_resident_bytes" | "kubevirt_vmi_memory_domain_bytes" => {
            ("namespace, name", "max_over_time", String::new())
        }
        "container_oom_events_total" => (
            "namespace, pod",
            "increase",
            "container=\"compute\"".to_string(),
        ),
        "kube_pod_container_status_last_terminated_reason" => (
            "namespace, pod, reason",
            "max_over_time",
            "reason=\"OOMKilled\"".to_string(),
        ),
        "kube_pod_labels" => (
            "namespace, pod, label_kubevirt_io_created_by",
            "max_over_time",
            "label_kubevirt_io=\"virt-launcher\"".to_string(),
        ),
        "kube_pod_container_resource_limits" => (
            "namespace, pod",
            "max_over_time",
            "resource=\"memory\",container=\"compute\"".to_string(),
        ),
        _ => (
            "namespace, pod",
            "max_over_time",
            "container=\"compute\"".to_string(),
        ),
    };
    format!("max by ({by}) ({func}({metric}{{{matchers}}}[1h]))")
}

/// `kubectl-vmmem list -A -o json --prometheus URL` against the cluster of `kubeconfig`: wall
/// seconds and peak RSS (KiB), measured with wait4. The lead points this at the tool once the
/// product reads history (issue 20's product side).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives the rusage
fn tool_with_history(kubeconfig: &Path, prometheus_url: &str) -> (f64, i64) {
    let start = Instant::now();
    let child = Command::new(PLUGIN)
        .args(["list", "-A", "-o", "json", "--prometheus", prometheus_url])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl-vmmem");
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.expect("stderr");
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child this function spawned, once.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "kubectl-vmmem list --prometheus failed:\n{err}"
    );
    (wall, ru.ru_maxrss)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; this one only runs under `cargo bench`
    }
    let vms = env_num("HISTORY_VMS", 5000) as usize;
    let days = env_num("HISTORY_DAYS", 7);
    let scrape = env_num("HISTORY_SCRAPE", 600);
    let runs = env_num("HISTORY_RUNS", 3) as usize;
    let history = fleet(vms, END, days, scrape);
    let blocks = root().join(format!(
        "target/history-blocks/{vms}vms-{days}d-{scrape}s-{END}"
    ));
    println!("# history: {vms} VMs × {days} days, one sample every {scrape} s, ending {END}");
    if blocks.is_dir() {
        println!(
            "blocks cached in {} ({} MB)",
            blocks.display(),
            du(&blocks) / 1_000_000
        );
    } else {
        let made = make_blocks(&history, &blocks);
        println!(
            "made {} samples: {:.1} s generating {:.0} MB of OpenMetrics text, {:.1} s in promtool; blocks {} MB",
            made.samples,
            made.generate.as_secs_f64(),
            made.text_bytes as f64 / 1e6,
            made.promtool.as_secs_f64(),
            du(&blocks) / 1_000_000
        );
    }
    let (prom, ready) = Prom::start(&blocks);
    println!(
        "Prometheus ready in {:.1} s at {}",
        ready.as_secs_f64(),
        prom.url
    );
    let (start, end) = (history.start, history.end);
    println!("| metric | median wall (s) | response | series |");
    println!("|---|---|---|---|");
    let mut total = 0.0;
    for fam in FAMILIES {
        let q = contract_query(fam.metric());
        let mut walls = Vec::new();
        let (mut bytes, mut series) = (0, 0);
        for _ in 0..runs.max(1) {
            let (w, b, s) = timed_query(&prom.url, &q, start, end, 3600);
            walls.push(w);
            (bytes, series) = (b, s);
        }
        let m = median(walls);
        total += m;
        println!(
            "| {} | {m:.2} | {:.1} MB | {series} |",
            fam.metric(),
            bytes as f64 / 1e6
        );
    }
    println!(
        "all {} queries, one after the other: {total:.1} s",
        FAMILIES.len()
    );
    match std::env::var_os("HISTORY_TOOL_KUBECONFIG") {
        Some(kc) => {
            let (wall, rss) = tool_with_history(Path::new(&kc), &prom.url);
            println!(
                "kubectl-vmmem list -A -o json --prometheus: {wall:.1} s, peak RSS {:.0} MiB",
                rss as f64 / 1024.0
            );
        }
        None => println!(
            "the tool's own run with --prometheus was NOT measured (set HISTORY_TOOL_KUBECONFIG)"
        ),
    }
    drop(prom);
}
