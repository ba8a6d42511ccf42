//! The headless dashboard child of the scale benchmark: the refresh path of `kubectl vmmem top
//! -A` (watch caches plus one round of node readings per refresh) in a process of its own, so
//! its CPU and peak RSS are its own.

use std::time::Instant;

use serde::Deserialize;
use vmmem_sim::requests::RequestTally;

use super::sim_get;

/// What the headless dashboard child prints (one JSON line).
#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardResult {
    pub first_seconds: f64,
    pub refreshes: usize,
    pub cpu_per_refresh: f64,
    pub wall_per_refresh: f64,
    pub requests_per_refresh: RequestTally,
    pub rss_kib: i64,
    pub hwm_kib: i64,
    /// Refreshes where some running VM had no live data: (running VMs, with live data).
    pub incomplete: Vec<(usize, usize)>,
}

fn status_kib(key: &str) -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn self_cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The child that plays the dashboard: the refresh path of `kubectl vmmem top -A`, headless.
pub fn dashboard_child(kubeconfig: &str, vms: usize, refreshes: usize) {
    use clap::Parser;
    use vmmem::session::dashboard::cluster::ClusterSource;
    use vmmem::session::dashboard::snapshot::{DataSource, Health, Request};
    let cli = vmmem::cli::args::Cli::try_parse_from([
        "kubectl-vmmem",
        "--kubeconfig",
        kubeconfig,
        "-A",
        "top",
    ])
    .expect("dashboard flags");
    // The dashboard's own runtime (tui::run).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = || -> RequestTally {
        serde_json::from_str(&sim_get(
            std::path::Path::new(kubeconfig),
            "/vmmem-sim/requests",
        ))
        .unwrap()
    };
    let result = rt.block_on(async {
        let opts = vmmem::cli::options::options(&cli.global).expect("dashboard options");
        let mut source = ClusterSource::new(opts, Default::default());
        let scope = Request::default();
        // Refreshes where some running VM had no live data: (running, with live data).
        let mut incomplete: Vec<(usize, usize)> = Vec::new();
        let mut check = |s: &vmmem::session::dashboard::snapshot::Snapshot| {
            assert_eq!(s.health, Health::Ok, "dashboard health");
            let r = s.table.as_ref().expect("a table");
            assert_eq!(r.rows.len(), vms);
            let running: Vec<_> = r.rows.iter().filter(|v| v.phase == "Running").collect();
            let live = running.iter().filter(|v| v.usage_bytes.is_some()).count();
            if live < running.len() {
                eprintln!(
                    "INCOMPLETE refresh: {live} of {} running VMs have live data; warnings: {:?}",
                    running.len(),
                    r.warnings
                );
                incomplete.push((running.len(), live));
            }
        };
        let start = Instant::now();
        let first = source.fetch(&scope).await;
        let first_seconds = start.elapsed().as_secs_f64();
        check(&first);
        drop(first);
        let (req0, cpu0, t0) = (tally(), self_cpu(), Instant::now());
        for _ in 0..refreshes {
            let s = source.fetch(&scope).await;
            check(&s);
        }
        let (req1, cpu1, wall) = (tally(), self_cpu(), t0.elapsed().as_secs_f64());
        source.shutdown().await;
        let d = req1.since(&req0);
        let per = |n: u64| (n as f64 / refreshes as f64).round() as u64;
        DashboardResult {
            first_seconds,
            refreshes,
            cpu_per_refresh: (cpu1 - cpu0) / refreshes as f64,
            wall_per_refresh: wall / refreshes as f64,
            requests_per_refresh: RequestTally {
                discovery: per(d.discovery),
                list: per(d.list),
                watch: per(d.watch),
                get: per(d.get),
                create: per(d.create),
                update: per(d.update),
                patch: per(d.patch),
                delete: per(d.delete),
                exec: per(d.exec),
                subresource: per(d.subresource),
                other: per(d.other),
                listed_items: per(d.listed_items),
            },
            rss_kib: status_kib("VmRSS:"),
            hwm_kib: status_kib("VmHWM:"),
            incomplete,
        }
    });
    println!("{}", serde_json::to_string(&result).unwrap());
}
