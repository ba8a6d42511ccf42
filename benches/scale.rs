//! Benchmark (issue 10): the plugin at scale against the simulated cluster, side by side with the
//! real `kubectl`.
//!
//! For each size it starts the release `kubectl-vmmem sim --vms N --nodes N/25 --exec-latency 50ms`
//! (counters stepping every 60 s, its default) as a child process, then
//! - runs `kubectl-vmmem list -A -o json` once on the fresh simulator ("cold": every node's probe
//!   runs on this machine during the list, as the nodes' files are written the first time),
//! - waits until the simulator's nodes have prepared their probe output for the current counter
//!   step in the background (`/vmmem-sim/nodes`; on a cluster each node runs its probe on its
//!   own CPU), with at least 15 s of the step left,
//! - then alternately runs `kubectl-vmmem list -A -o json` (objects plus live data from every
//!   node: agent pods, one probe exec per node; start to first complete report) and the real
//!   `kubectl get vm,vmi,pods -A -o json`,
//!
//! each as a child measured by `wait4` (wall, user+sys CPU, peak RSS) with the requests the
//! simulator served for it (read from its `/vmmem-sim/requests` counters), the simulator's CPU
//! meanwhile (with the probe processes it ran) and how many probe execs it answered from stored
//! output and how many it ran. Then it drives the
//! dashboard's refresh path headless (`tui::cluster_source::ClusterSource`: watches plus one round
//! of node readings per refresh) in a child of its own and reports requests and CPU per refresh.
//!
//! Run: `cargo bench --bench scale`. Environment: `SCALE_VMS` (sizes, default `500,5000,20000`),
//! `SCALE_RUNS` (runs of each command per size, default 3), `SCALE_REFRESHES` (dashboard refreshes
//! measured after the first, default 5). Fails loudly when `kubectl` is missing.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The allocator the binary ships with (src/main.rs): the headless dashboard below runs in this
// process's child, and the soak's simulator in this process.
vmmem::jemalloc!();

use serde::de::IgnoredAny;
use serde::Deserialize;
use vmmem_sim::requests::RequestTally;

#[path = "scale/dashboard.rs"]
mod dashboard;
#[path = "common/kubectl.rs"]
mod kubectl;
#[path = "common/sim_child.rs"]
mod sim_child;
#[path = "scale/soak.rs"]
mod soak;
#[path = "scale/tmux.rs"]
mod tmux;

use dashboard::{dashboard_child, DashboardResult};
use kubectl::kubectl;
use sim_child::SimChild;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-vmmem");
const VMS_PER_NODE: usize = 25;
const EXEC_LATENCY: &str = "50ms";

/// The simulator, running as a child process; stopped (SIGTERM, by PID) when dropped.
struct SimProc(SimChild);

impl std::ops::Deref for SimProc {
    type Target = SimChild;
    fn deref(&self) -> &SimChild {
        &self.0
    }
}

impl SimProc {
    fn start(vms: usize, nodes: usize) -> SimProc {
        let args = [
            "--vms".to_string(),
            vms.to_string(),
            "--nodes".into(),
            nodes.to_string(),
            "--exec-latency".into(),
            EXEC_LATENCY.into(),
        ];
        SimProc(SimChild::start(PLUGIN, &args, |_| Vec::new()))
    }

    fn requests(&self) -> RequestTally {
        serde_json::from_str(&sim_get(&self.kubeconfig, "/vmmem-sim/requests"))
            .expect("the simulator's request counters")
    }

    /// The nodes' counter steps and stored probe output (`/vmmem-sim/nodes`).
    fn nodes(&self) -> NodesStatus {
        serde_json::from_str(&sim_get(&self.kubeconfig, "/vmmem-sim/nodes"))
            .expect("the simulator's node status")
    }

    /// Wait until the background has prepared every node for the current counter step with at
    /// least `margin` left of it (else for the next step); gives up after `within`.
    fn wait_prepared(&self, margin: f64, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let s = self.nodes();
            if s.counter_period_seconds <= 0.0 || s.fresh {
                return false;
            }
            if s.prepared >= s.nodes && s.seconds_to_next_step >= margin {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// The simulator's own CPU seconds so far.
    fn cpu(&self) -> f64 {
        proc_cpu(self.child.id())
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodesStatus {
    counter_period_seconds: f64,
    seconds_to_next_step: f64,
    fresh: bool,
    nodes: usize,
    prepared: usize,
    /// Execs answered from stored probe output.
    served: u64,
    /// Probe runs for an exec.
    ran: u64,
}

/// An HTTPS GET of `path` on the simulator of `kubeconfig` (its server URL with the secret path,
/// its CA and its bearer token), for the counters endpoints; HTTP/1.1 by hand over rustls.
fn sim_get(kubeconfig: &Path, path: &str) -> String {
    use base64::Engine;
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
    let text = std::fs::read_to_string(kubeconfig).expect("the sim's kubeconfig");
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in the sim's kubeconfig"))
            .trim()
            .to_string()
    };
    let server = field("server:");
    let token = field("token:");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(field("certificate-authority-data:"))
        .expect("the sim's CA data");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&ca).expect("the sim's CA"))
        .expect("a usable CA");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let rest = server.strip_prefix("https://").expect("https URL");
    let (host, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(host).expect("connect to the simulator");
    let mut s = rustls::Stream::new(&mut conn, &mut tcp);
    write!(
        s,
        "GET {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    // The server may close without a TLS close_notify: what was read before counts.
    if let Err(e) = s.read_to_string(&mut text) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof,
            "read the answer: {e}"
        );
    }
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_string()
}

/// CPU of a running process and its reaped children, from /proc/PID/stat.
fn proc_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // utime + stime, plus cutime + cstime: the probe processes the simulator ran and reaped.
    (ticks(11) + ticks(12) + ticks(13) + ticks(14)) / hz
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One finished child: wall time, CPU, peak RSS.
#[derive(Clone)]
struct Run {
    wall: f64,
    cpu: f64,
    rss_kib: i64,
}

/// Run a command with stdout to `out`, measured with wait4; panics when it fails.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
fn measure(cmd: &mut Command, out: &Path, what: &str) -> Run {
    let file = std::fs::File::create(out).expect("output file");
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(r, pid, "wait4 failed");
    let err = err_reader.join().unwrap_or_default();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} failed:\n{err}"
    );
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Run {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        rss_kib: ru.ru_maxrss,
    }
}

#[derive(Deserialize)]
struct ReportOut {
    vms: Vec<VmOut>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct VmOut {
    phase: String,
    cgroup: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct KubectlOut {
    items: Vec<KubectlItem>,
}

#[derive(Deserialize)]
struct KubectlItem {
    kind: String,
}

/// Checks the report has every VM; returns (running VMs, running VMs with live data).
fn check_report(path: &Path, vms: usize) -> (usize, usize) {
    let r: ReportOut =
        serde_json::from_reader(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
            .expect("list -o json output");
    let running = r.vms.iter().filter(|v| v.phase == "Running").count();
    let live = r
        .vms
        .iter()
        .filter(|v| v.phase == "Running" && v.cgroup.is_some())
        .count();
    assert_eq!(r.vms.len(), vms, "list returned {} VMs", r.vms.len());
    if live < running {
        eprintln!(
            "INCOMPLETE: {live} of {running} running VMs have live data; warnings: {:?}",
            r.warnings
        );
    }
    (running, live)
}

fn check_kubectl(path: &Path, vms: usize) {
    let r: KubectlOut =
        serde_json::from_reader(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
            .expect("kubectl -o json output");
    let count = |kind: &str| r.items.iter().filter(|i| i.kind == kind).count();
    let (v, vmis, pods) = (
        count("VirtualMachine"),
        count("VirtualMachineInstance"),
        count("Pod"),
    );
    // Stopped VMs have no VMI and no pod.
    assert!(
        v == vms && vmis > 0 && pods >= vmis,
        "kubectl returned {v} VMs, {vmis} VMIs, {pods} pods for {vms} VMs"
    );
}

fn requests_cell(t: &RequestTally) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (t.discovery, "discovery"),
        (t.list, "list"),
        (t.watch, "watch"),
        (t.get, "get"),
        (t.create, "create"),
        (t.patch, "patch"),
        (t.delete, "delete"),
        (t.exec, "exec"),
        (t.other + t.update + t.subresource, "other"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("{} ({})", t.total(), parts.join(", "))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct SizeResult {
    vms: usize,
    nodes: usize,
    sim_start: f64,
    /// The first list on a fresh simulator: every node's probe runs on this machine during it.
    cold: (Run, RequestTally, f64, (u64, u64)),
    /// Whether the simulator's nodes had prepared their probe output before the measured runs.
    prepared: bool,
    ours: Vec<(Run, RequestTally, f64, (u64, u64))>,
    theirs: Vec<(Run, RequestTally, f64, (u64, u64))>,
    dash: DashboardResult,
    /// The real dashboard in tmux (`None` with `SCALE_TMUX_SECONDS=0`).
    tmux: Option<tmux::TmuxResult>,
}

/// One measured command against the simulator: its run, the requests it made, the simulator's
/// CPU meanwhile, and (execs answered from stored probe output, probes run for execs).
fn against(
    sim: &SimProc,
    cmd: &mut Command,
    out: &Path,
    what: &str,
) -> (Run, RequestTally, f64, (u64, u64)) {
    let (req0, sim0, n0) = (sim.requests(), sim.cpu(), sim.nodes());
    let r = measure(cmd, out, what);
    let n1 = sim.nodes();
    (
        r,
        sim.requests().since(&req0),
        sim.cpu() - sim0,
        (n1.served - n0.served, n1.ran - n0.ran),
    )
}

fn bench_size(
    vms: usize,
    runs: usize,
    refreshes: usize,
    kubectl: &Path,
    incomplete: &mut Vec<String>,
) -> SizeResult {
    let nodes = vms.div_ceil(VMS_PER_NODE).max(1);
    let t = Instant::now();
    let sim = SimProc::start(vms, nodes);
    let sim_start = t.elapsed().as_secs_f64();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let list = || {
        let mut c = Command::new(PLUGIN);
        c.arg("--kubeconfig")
            .arg(&sim.kubeconfig)
            .args(["list", "-A", "-o", "json"]);
        c
    };
    // Cold: the simulator has run no probe yet; every node's runs on this machine meanwhile.
    let cold = against(&sim, &mut list(), &out, "kubectl-vmmem list");
    let (running, live) = check_report(&out, vms);
    if live < running {
        incomplete.push(format!("{vms} VMs, cold run: {live} of {running}"));
    }
    // The nodes prepare their probe output for the current counter step in the background (on
    // a cluster, each on its own CPU): measure once they have, with time left in the step.
    let prepared = sim.wait_prepared(15.0, Duration::from_secs(180));
    if !prepared {
        eprintln!("the simulator's nodes did not prepare their probe output within 180 s");
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate which goes first, so neither always meets a warmer (or busier) simulator.
        for ours_turn in [i % 2 == 0, i % 2 != 0] {
            if ours_turn {
                ours.push(against(&sim, &mut list(), &out, "kubectl-vmmem list"));
                let (running, live) = check_report(&out, vms);
                if live < running {
                    incomplete.push(format!("{vms} VMs, run {}: {live} of {running}", i + 1));
                }
            } else {
                theirs.push(against(
                    &sim,
                    Command::new(kubectl)
                        .arg("--kubeconfig")
                        .arg(&sim.kubeconfig)
                        .args(["get", "vm,vmi,pods", "-A", "-o", "json"]),
                    &out,
                    "kubectl get",
                ));
                check_kubectl(&out, vms);
            }
        }
    }
    let exe = std::env::current_exe().unwrap();
    let dash_out = tmp.path().join("dashboard.json");
    let run = measure(
        Command::new(exe)
            .env("SCALE_DASHBOARD_CHILD", "1")
            .env("SCALE_KUBECONFIG", &sim.kubeconfig)
            .env("SCALE_CHILD_VMS", vms.to_string())
            .env("SCALE_REFRESHES", refreshes.to_string()),
        &dash_out,
        "the headless dashboard",
    );
    let mut dash: DashboardResult =
        serde_json::from_str(std::fs::read_to_string(&dash_out).unwrap().trim())
            .expect("dashboard result");
    dash.hwm_kib = dash.hwm_kib.max(run.rss_kib);
    for (running, live) in &dash.incomplete {
        incomplete.push(format!("{vms} VMs, dashboard refresh: {live} of {running}"));
    }
    let tmux = match env_num("SCALE_TMUX_SECONDS", 60) {
        0 => None,
        secs => Some(tmux::measure(&sim.kubeconfig, secs as u64)),
    };
    SizeResult {
        vms,
        nodes,
        sim_start,
        cold,
        prepared,
        ours,
        theirs,
        dash,
        tmux,
    }
}

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    if std::env::args().any(|a| a == "soak") || std::env::var_os("SCALE_SOAK_MINUTES").is_some() {
        let state = tempfile::tempdir().expect("a temporary state directory");
        std::env::set_var("XDG_STATE_HOME", state.path());
        soak::run(env_num("SCALE_SOAK_MINUTES", 60), &kubectl());
        return;
    }
    if std::env::var_os("SCALE_DASHBOARD_CHILD").is_some() {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
        dashboard_child(
            &var("SCALE_KUBECONFIG"),
            var("SCALE_CHILD_VMS").parse().unwrap(),
            var("SCALE_REFRESHES").parse().unwrap(),
        );
        return;
    }
    // The plugin remembers peaks per VM in the user's state directory and reads them back on
    // every run: each benchmark starts with an empty one of its own (children inherit it), so
    // neither earlier runs nor the user's own clusters change what is measured.
    let state = tempfile::tempdir().expect("a temporary state directory");
    std::env::set_var("XDG_STATE_HOME", state.path());
    let kubectl = kubectl();
    let sizes: Vec<usize> = std::env::var("SCALE_VMS")
        .unwrap_or_else(|_| "500,5000,20000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs = env_num("SCALE_RUNS", 3).max(1);
    let refreshes = env_num("SCALE_REFRESHES", 5).max(1);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "kubectl-vmmem scale benchmark: sim --exec-latency {EXEC_LATENCY}, {VMS_PER_NODE} VMs per node, {runs} runs each, {refreshes} dashboard refreshes; {cores} cores, load average at start {}",
        load_average()
    );
    let mut results = Vec::new();
    let mut incomplete = Vec::new();
    for &vms in &sizes {
        let r = bench_size(vms, runs, refreshes, &kubectl, &mut incomplete);
        eprintln!("done: {vms} VMs (load average {})", load_average());
        results.push(r);
    }
    println!();
    println!("`list -A -o json` (start to complete report, live data from every node) vs `kubectl get vm,vmi,pods -A -o json`, median of {runs}:");
    println!();
    println!("| VMs / nodes | command | wall | CPU user+sys | peak RSS | requests served | simulator CPU (with its probes) | probe execs: stored / run |");
    println!("|---:|---|---:|---:|---:|---|---:|---:|");
    for r in &results {
        let cold = [r.cold.clone()];
        let prepared = if r.prepared {
            "kubectl-vmmem list (nodes prepared)"
        } else {
            "kubectl-vmmem list (nodes NOT prepared)"
        };
        for (name, runs) in [
            ("kubectl-vmmem list, cold simulator", &cold[..]),
            (prepared, &r.ours[..]),
            ("kubectl get", &r.theirs[..]),
        ] {
            let wall = median(runs.iter().map(|x| x.0.wall).collect());
            let cpu = median(runs.iter().map(|x| x.0.cpu).collect());
            let rss = runs.iter().map(|x| x.0.rss_kib).max().unwrap_or(0);
            let sim_cpu = median(runs.iter().map(|x| x.2).collect());
            let (served, ran) = runs[0].3;
            println!(
                "| {} / {} | {name} | {wall:.2} s | {cpu:.2} s | {:.1} MiB | {} | {sim_cpu:.2} s | {served} / {ran} |",
                r.vms,
                r.nodes,
                mib(rss),
                requests_cell(&runs[0].1)
            );
        }
        let ratio = median(r.ours.iter().map(|x| x.0.wall).collect())
            / median(r.theirs.iter().map(|x| x.0.wall).collect());
        println!(
            "| {} / {} | ratio list ({}) / kubectl | {ratio:.2} | | | | | |",
            r.vms,
            r.nodes,
            if r.prepared {
                "nodes prepared"
            } else {
                "nodes NOT prepared"
            }
        );
    }
    println!();
    println!("Dashboard refresh path (headless `top -A`: watches + one round of node readings per refresh), after the first refresh:");
    println!();
    println!("| VMs | first refresh | requests per refresh | CPU per refresh | CPU per refresh per 1,000 VMs | wall per refresh | RSS (peak) |");
    println!("|---:|---:|---|---:|---:|---:|---:|");
    for r in &results {
        let d = &r.dash;
        println!(
            "| {} | {:.2} s | {} | {:.3} s | {:.3} s | {:.2} s | {:.1} MiB ({:.1} MiB) |",
            r.vms,
            d.first_seconds,
            requests_cell(&d.requests_per_refresh),
            d.cpu_per_refresh,
            d.cpu_per_refresh / (r.vms as f64 / 1000.0),
            d.wall_per_refresh,
            mib(d.rss_kib),
            mib(d.hwm_kib)
        );
    }
    println!();
    println!(
        "The real dashboard (`top -A --refresh 2s`, tmux 200x50), from its first screen of rows:"
    );
    println!();
    println!("| VMs | seconds | CPU | CPU per refresh per 1,000 VMs | RSS at the end | peak RSS |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        if let Some(t) = &r.tmux {
            println!(
                "| {} | {:.0} | {:.2} s | {:.3} s | {:.1} MiB | {:.1} MiB |",
                r.vms,
                t.seconds,
                t.cpu,
                t.cpu / (t.seconds / 2.0) / (r.vms as f64 / 1000.0),
                mib(t.rss_kib),
                mib(t.hwm_kib)
            );
        }
    }
    println!();
    println!(
        "simulator start: {}; load average at end {}",
        results
            .iter()
            .map(|r| format!("{} VMs {:.1} s", r.vms, r.sim_start))
            .collect::<Vec<_>>()
            .join(", "),
        load_average()
    );
    // The figures are printed either way; a list without every node's live data is not the
    // figure the target asks for.
    assert!(
        incomplete.is_empty(),
        "some lists were not complete (running VMs with live data): {incomplete:?}"
    );
}
