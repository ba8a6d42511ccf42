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
//! 3. Starts the simulator with the same VMs (names, namespaces, nodes, guest sizes; its own
//!    Prometheus off) and times the tool on it, each run a child measured by `wait4` (wall, CPU,
//!    peak RSS): `kubectl-vmmem list -A -o json --prometheus URL` (the week's history of every
//!    VM), the same with `--history off`, and the real `kubectl get vm,vmi,pods -A -o json`. The
//!    run with history must have joined a history to every VM, or the bench fails.
//!
//! Run: `cargo bench --bench history`. Environment: `HISTORY_VMS` (default 5000), `HISTORY_DAYS`
//! (7), `HISTORY_SCRAPE` (the history's sample interval in seconds, default 600: see
//! docs/performance.md for why), `HISTORY_RUNS` (3). Fails loudly when Prometheus or kubectl is
//! missing.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/kubectl.rs"]
mod kubectl;
#[path = "../tests/it/common/prom_history.rs"]
#[allow(dead_code)]
mod prom_history;
#[path = "../tests/it/common/prom_http.rs"]
mod prom_http;
#[path = "common/sim_child.rs"]
mod sim_child;

use kubectl::kubectl;
use prom_history::{fleet, History, FAMILIES};
use sim_child::SimChild;
use vmmem_sim::units::Quantity;
use vmmem_sim::Scenario;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-vmmem");
/// The history's end: a fixed time (2026-11-21 22:00 UTC, a multiple of promtool's 2-hour
/// blocks) so cached blocks stay valid.
const END: i64 = 1_795_298_400;
/// The generator's version in the cache's name: blocks of an earlier generator are not reused.
/// `""`: until 2026-12-07 the usage series passed the compute limit at an OOM kill; `-v2`: it
/// stops at the limit.
const GENERATOR: &str = "-v2";
/// [`END`] as the tool's `--prometheus-until` takes it: the tool's window is the history's week.
const END_RFC3339: &str = "2026-11-21T22:00:00Z";

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

/// The simulator holding the history's VMs: the same names, namespaces, nodes and guest sizes
/// (its workloads and pod names are its own; the tool joins history by namespace and the
/// `virt-launcher-<vm>-` prefix).
fn fleet_cluster(history: &History) -> SimChild {
    let nodes: BTreeSet<&str> = history.vms.iter().map(|v| v.node.as_str()).collect();
    let namespaces: BTreeSet<&str> = history.vms.iter().map(|v| v.namespace.as_str()).collect();
    let mut scenario = Scenario::generated(history.vms.len(), nodes.len());
    for (spec, name) in scenario.nodes.iter_mut().zip(&nodes) {
        spec.name = name.to_string();
    }
    scenario.namespaces = namespaces.iter().map(|n| n.to_string()).collect();
    scenario.monitoring = false;
    for (spec, vm) in scenario.vms.iter_mut().zip(&history.vms) {
        spec.name = vm.name.clone();
        spec.namespace = vm.namespace.clone();
        spec.node = Some(vm.node.clone());
        spec.memory = Quantity::new(format!("{}Mi", vm.guest >> 20));
        spec.no_limit = false;
        spec.run_strategy = "Always".into();
    }
    let text = serde_json::to_string(&scenario).expect("the scenario as JSON (YAML reads it)");
    let args = ["--exec-latency".to_string(), "50ms".into()];
    SimChild::start(PLUGIN, &args, |dir| {
        let file = dir.join("fleet.json");
        std::fs::write(&file, text).expect("writing the scenario");
        vec!["--scenario".into(), file.display().to_string()]
    })
}

/// The highest `VmHWM` (KiB) of process `pid` read every 20 ms until it exits. wait4's
/// `ru_maxrss` is no measure here: a child started by posix_spawn (vfork) carries the spawning
/// process's RSS as its high-water mark through exec, and this bench holds a week of replies.
fn hwm_poller(pid: u32) -> std::thread::JoinHandle<i64> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut best = 0;
        while let Ok(text) = std::fs::read_to_string(&path) {
            // A zombie's status has no memory lines: it has exited.
            let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            else {
                break;
            };
            best = best.max(kib);
            std::thread::sleep(Duration::from_millis(20));
        }
        best
    })
}

/// One command as a child: wall and CPU seconds (wait4), peak RSS (KiB, its `VmHWM`), stdout.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives the rusage
fn measured(cmd: &mut Command) -> (f64, f64, i64, Vec<u8>) {
    let out = tempfile::tempfile().expect("temp file");
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("temp file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the command");
    let pid = child.id() as libc::pid_t;
    let hwm = hwm_poller(child.id());
    let mut stderr = child.stderr.expect("stderr");
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child this function spawned, once.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed:\n{err}"
    );
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let mut stdout = Vec::new();
    let mut out = out;
    std::io::Seek::rewind(&mut out).expect("rewind");
    out.read_to_end(&mut stdout).expect("reading stdout");
    let peak = hwm.join().expect("the RSS poller");
    (wall, cpu(ru.ru_utime) + cpu(ru.ru_stime), peak, stdout)
}

/// How many VMs of a `list -o json` carry a Prometheus history with a peak.
fn vms_with_history(json: &[u8]) -> (usize, usize) {
    let v: serde_json::Value = serde_json::from_slice(json).expect("list -o json");
    let vms = v["vms"].as_array().expect("vms");
    let with = vms
        .iter()
        .filter(|vm| !vm["prometheus"]["peakWorkingSet"].is_null())
        .count();
    (with, vms.len())
}

/// Makes a new command to run (each run needs its own).
type MakeCommand<'a> = Box<dyn Fn() -> Command + 'a>;

/// The tool with and without the history, and kubectl, `runs` times each against the fleet's
/// simulator; prints a table of medians.
fn tool_runs(history: &History, prometheus_url: &str, runs: usize) {
    let sim = fleet_cluster(history);
    let kc = sim.kubeconfig.clone();
    let kubectl = kubectl();
    let list = |extra: &[&str]| {
        let mut c = Command::new(PLUGIN);
        c.args(["list", "-A", "-o", "json"])
            .args(extra)
            .env("KUBECONFIG", &kc);
        c
    };
    let commands: Vec<(&str, MakeCommand)> = vec![
        (
            "kubectl-vmmem list -A -o json --prometheus URL --prometheus-until END",
            Box::new(|| {
                list(&[
                    "--prometheus",
                    prometheus_url,
                    "--prometheus-until",
                    END_RFC3339,
                ])
            }),
        ),
        (
            "kubectl-vmmem list -A -o json --history off",
            Box::new(|| list(&["--history", "off"])),
        ),
        (
            "kubectl get vm,vmi,pods -A -o json",
            Box::new(|| {
                let mut c = Command::new(&kubectl);
                c.args(["get", "vm,vmi,pods", "-A", "-o", "json"])
                    .env("KUBECONFIG", &kc);
                c
            }),
        ),
    ];
    println!(
        "| command ({} VMs, simulator) | median wall (s) | median CPU (s) | peak RSS (MiB, max) |",
        history.vms.len()
    );
    println!("|---|---|---|---|");
    for (label, make) in &commands {
        let (mut walls, mut cpus, mut rss) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs.max(1) {
            let (w, c, r, out) = measured(&mut make());
            if label.contains("--prometheus") {
                let (with, all) = vms_with_history(&out);
                assert_eq!(with, all, "only {with} of {all} VMs got their history");
            }
            walls.push(w);
            cpus.push(c);
            rss = rss.max(r);
        }
        println!(
            "| `{label}` | {:.2} | {:.2} | {:.1} |",
            median(walls),
            median(cpus),
            rss as f64 / 1024.0
        );
    }
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
        "target/history-blocks/{vms}vms-{days}d-{scrape}s-{END}{GENERATOR}"
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
    tool_runs(&history, &prom.url, runs);
    drop(prom);
}
