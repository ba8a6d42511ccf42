//! The soak (`cargo bench --bench scale -- soak`, or `SCALE_SOAK_MINUTES=N`): the real dashboard
//! (`top -A --refresh 2s` in a 200x50 tmux pane) left open for an hour against 5,000 VMs on
//! 200 nodes while the cluster changes under it, its RSS read every minute.
//!
//! The simulator runs in this process (so its fault hooks can be used) with the scale
//! benchmark's options (exec latency 50 ms, counters stepping every 60 s). Meanwhile:
//! - one VM in a hundred leaks (`memhold`) and is OOM-killed and restarted by the simulator, as
//!   in the benchmark's generated scenario;
//! - 20 VMs hotplug memory two minutes after each start (a live migration to a new pod on
//!   another node), 20 more start with a migration that never ends (two pods);
//! - every minute 10 VMs' launcher pods are deleted (`kubectl delete pod`): each VM restarts
//!   with a new VMI and pod;
//! - every 10 minutes (from minute 3) someone else deletes the dashboard's agent pods
//!   (`kubectl delete pods -l app.kubernetes.io/managed-by=kubectl-vmmem`);
//! - from minute 5 to the end, exec into one node's pods hangs (a hung node).
//!
//! `SCALE_SOAK_VMS` changes the size (default 5000). Prints the per-minute RSS (with its anonymous
//! and file pages, and the thread count: what grows, if anything) as it goes and a
//! table at the end; fails when the RSS of the last minute is more than 4 MiB above the highest
//! RSS of minutes 10 to 20 (growth after the first ten minutes).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmmem_sim::handle::{Sim, SimOptions};
use vmmem_sim::scenario::{HotplugSpec, Scenario};
use vmmem_sim::units::Quantity;

use super::tmux::{status_fields, TmuxDashboard};
use super::{load_average, mib, VMS_PER_NODE};

/// The generated scenario with VMs that migrate: hotplugs that complete, migrations that do not.
fn scenario(vms: usize, nodes: usize) -> Scenario {
    let mut s = Scenario::generated(vms, nodes);
    let node = |i: usize| format!("node-{:03}", i % nodes + 1);
    for (i, vm) in s.vms.iter_mut().enumerate() {
        if vm.run_strategy == "Halted" {
            continue;
        }
        if i % 250 == 7 {
            vm.memory = Quantity::new("2560Mi");
            vm.guest = Some(Quantity::new("2Gi"));
            vm.no_limit = false;
            vm.hotplug = Some(HotplugSpec {
                max_guest: Quantity::new("8Gi"),
                to: Quantity::new("3Gi"),
                after_seconds: 120.0,
                migration_seconds: 30.0,
                target_node: Some(node(i + 1)),
            });
        } else if i % 250 == 107 {
            vm.migrate_to = Some(node(i + 3));
        }
    }
    s
}

/// The VMs whose launcher pods are deleted in minute `m` (10 a minute, across the namespaces).
fn restarted_in(s: &Scenario, m: usize) -> Vec<(String, String)> {
    let running: Vec<_> = s
        .vms
        .iter()
        .filter(|v| v.run_strategy != "Halted")
        .collect();
    (0..10)
        .map(|k| {
            let v = running[(m * 10 + k) * 37 % running.len()];
            (v.namespace.clone(), v.name.clone())
        })
        .collect()
}

fn kubectl_quiet(kubectl: &Path, kubeconfig: &Path, args: &[&str]) {
    let ok = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("soak: kubectl {} failed", args.join(" "));
    }
}

pub fn run(minutes: usize, kubectl: &Path) {
    let vms = super::env_num("SCALE_SOAK_VMS", 5000);
    let nodes = vms.div_ceil(VMS_PER_NODE).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("vmmem-soak-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir");
    let s = scenario(vms, nodes);
    let opts = SimOptions {
        exec_latency: Duration::from_millis(50),
        counter_period: Duration::from_secs(60),
        host_root: Some(dir.path().join("hosts")),
        ..SimOptions::default()
    };
    let sim = rt
        .block_on(Sim::start(s.clone(), opts))
        .expect("start the simulator");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    println!(
        "kubectl-vmmem soak: {vms} VMs on {nodes} nodes, {minutes} minutes; load average at start {}",
        load_average()
    );
    let dash = TmuxDashboard::start(&kubeconfig, &[]);
    assert!(
        dash.wait_for_rows(Duration::from_secs(300)),
        "the dashboard showed no rows within 300 s:\n{}",
        dash.screen()
    );
    let hung = format!("node-{:03}", nodes.min(7));
    let t0 = Instant::now();
    let mut samples: Vec<(usize, [i64; 5], String)> = Vec::new();
    for m in 1..=minutes {
        for (ns, name) in restarted_in(&s, m) {
            let selector = format!("vm.kubevirt.io/name={name}");
            kubectl_quiet(
                kubectl,
                &kubeconfig,
                &["delete", "pods", "-n", &ns, "-l", &selector, "--wait=false"],
            );
        }
        if m % 10 == 3 {
            kubectl_quiet(
                kubectl,
                &kubeconfig,
                &[
                    "delete",
                    "pods",
                    "-A",
                    "-l",
                    "app.kubernetes.io/managed-by=kubectl-vmmem",
                    "--wait=false",
                ],
            );
        }
        if m == 5 {
            sim.hang_node_exec(&hung, true);
        }
        let until = t0 + Duration::from_secs(60 * m as u64);
        while Instant::now() < until {
            assert!(dash.alive(), "the dashboard exited during the soak");
            std::thread::sleep(Duration::from_millis(500));
        }
        // What grows, if anything: the heap's pages (anonymous), the binary's pages touched so
        // far (file), or threads.
        let status = status_fields(
            dash.pid,
            ["VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"],
        );
        let [rss, hwm, anon, file, threads] = status;
        let load = load_average();
        eprintln!(
            "soak minute {m}: RSS {:.1} MiB (anonymous {:.1}, file {:.1}), peak {:.1} MiB, {threads} threads, load {load}",
            mib(rss),
            mib(anon),
            mib(file),
            mib(hwm)
        );
        samples.push((m, status, load));
    }
    let stale = dash.screen().contains("STALE");
    drop(dash);
    drop(sim);
    println!();
    println!("| minute | RSS | anonymous | file | peak RSS | threads | load average |");
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for (m, [rss, hwm, anon, file, threads], load) in &samples {
        println!(
            "| {m} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {threads} | {load} |",
            mib(*rss),
            mib(*anon),
            mib(*file),
            mib(*hwm)
        );
    }
    if stale {
        eprintln!("warning: the dashboard showed STALE data at the end (machine too busy?)");
    }
    if minutes >= 20 {
        let settled = samples[9..20].iter().map(|x| x.1[0]).max().unwrap_or(0);
        let last = samples.last().map_or(0, |x| x.1[0]);
        println!(
            "\nRSS after minutes 10-20: at most {:.1} MiB; at the end {:.1} MiB",
            mib(settled),
            mib(last)
        );
        assert!(
            last <= settled + 4096,
            "the dashboard's RSS grew after the first ten minutes: {:.1} MiB at most in minutes 10-20, {:.1} MiB at the end",
            mib(settled),
            mib(last)
        );
    }
}
