//! Benchmark: the dashboard with 5,000 VMs. Measures, on a 200x50 `TestBackend`:
//! one frame of the main table, one frame of the detail view, and taking in a snapshot
//! (history, filter, sort). Target (issue 7): a frame in under 5 ms.
//! Run: `cargo bench --bench tui_render`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use vmmem::cluster::files::load_inventory;
use vmmem::model::inventory::Readings;
use vmmem::model::readings::{
    CgroupCounters, CgroupLevel, CgroupVersion, LiveSource, MemoryStat, NodeReadings, PodReading,
    ProcessReading,
};
use vmmem::model::report::{build, Report, ReportOptions};
use vmmem::session::dashboard::snapshot::{ContextInfo, Detail, Health, Scope, Snapshot};
use vmmem::tui::action::Action;
use vmmem::tui::app::App;

const MI: u64 = 1 << 20;
const VMS: usize = 5_000;

fn reading(uid: &str, limit: u64, guest: u64, qemu: u64) -> PodReading {
    let helpers = [
        ("virt-launcher-m", 21 * MI),
        ("virt-launcher", 62 * MI),
        ("virtqemud", 33 * MI),
        ("virtlogd", 17 * MI),
    ];
    let mut processes: Vec<ProcessReading> = helpers
        .iter()
        .map(|(c, b)| ProcessReading {
            pid: 1,
            comm: (*c).into(),
            rss_anon_bytes: *b,
            rss_file_bytes: 0,
            rss_shmem_bytes: 0,
            container_id: None,
        })
        .collect();
    processes.push(ProcessReading {
        pid: 2,
        comm: "qemu-system-x86".into(),
        rss_anon_bytes: guest + qemu,
        rss_file_bytes: 0,
        rss_shmem_bytes: 0,
        container_id: None,
    });
    let usage = guest + qemu + 133 * MI + 64 * MI;
    PodReading {
        uid: uid.into(),
        cgroup: CgroupCounters {
            level: CgroupLevel::Pod,
            path: String::new(),
            container_id: None,
            limit_bytes: Some(limit),
            usage_bytes: usage,
            working_set_bytes: usage,
            peak_bytes: Some(usage),
            failcnt: Some(0),
            oom_kills: 0,
            oom_group_kills: None,
            swap_bytes: None,
            swap_limit_bytes: None,
            stat: MemoryStat {
                file: Some(40 * MI),
                inactive_file: Some(40 * MI),
                kernel: Some(24 * MI),
                ..Default::default()
            },
        },
        guest_resident_bytes: Some(guest),
        guest_resident_taken_at: None,
        guest_hugetlb_bytes: None,
        usage_after_smaps_bytes: None,
        guest_grown_since_bytes: None,
        containers: vec![],
        processes,
    }
}

/// The seed's VMs with live readings, repeated to 5,000 rows with varied numbers.
fn report(step: u64) -> Report {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    let inv = load_inventory(&dir).expect("seed fixtures").inventory;
    let mut readings = Readings::new();
    readings.insert(
        "harv41".into(),
        Arc::new(NodeReadings {
            node: "harv41".into(),
            cgroup_version: CgroupVersion::V1,
            kernel: "5.14".into(),
            source: LiveSource::Agent,
            taken_at: 0,
            missing_pods: Vec::new(),
            pods: vec![
                reading(
                    "99ee3a64-645b-4699-9384-5a3875d78b41",
                    2_472_419_328,
                    1900 * MI,
                    170 * MI,
                ),
                reading(
                    "bc31d215-d48e-4416-8e2b-68716b8f5bcb",
                    2_472_419_328,
                    1500 * MI,
                    600 * MI,
                ),
            ],
        }),
    );
    let base = build(&inv, &readings, &ReportOptions::default());
    let mut r = base.clone();
    r.vms.clear();
    for i in 0..VMS {
        let mut row = base.vms[i % base.vms.len()].clone();
        row.name = format!("vm-{i:05}");
        row.namespace = format!("ns-{:02}", i % 20);
        row.node = Some(format!("node-{:03}", i % 200));
        if let Some(h) = row.headroom_bytes.as_mut() {
            *h -= ((i as u64 * 7919 + step * 13) % 300) as i64 * MI as i64;
        }
        if let Some(c) = row.cgroup.as_mut() {
            c.usage_bytes = c.usage_bytes.saturating_sub((i as u64 * 31 % 200) * MI);
        }
        r.vms.push(row);
    }
    r
}

/// A snapshot as the source sends it: the table of every VM, no full rows (the one looked at
/// comes on its own, as a `Detail`).
fn snapshot(report: Report, at: SystemTime) -> Snapshot {
    Snapshot {
        context: ContextInfo {
            context: "bench".into(),
            cluster: "bench".into(),
            server: "-".into(),
        },
        live: "agent".into(),
        ..Snapshot::of_report(Some(report), None, at, Health::Ok, Scope::default())
    }
}

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "{name:<40} n={:<4} mean {:>7.3} ms  p50 {:>7.3} ms  p99 {:>7.3} ms",
        samples.len(),
        mean.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

fn main() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_716_217_200);
    let reports: Vec<Report> = (0..4).map(report).collect();
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0);
    app.update(Action::Resize(200, 50));
    // Taking in a snapshot: history, filter, sort of 5,000 rows.
    let mut apply = Vec::new();
    for i in 0..40 {
        let s = snapshot(
            reports[i % reports.len()].clone(),
            t0 + Duration::from_secs(2 * i as u64),
        );
        let start = Instant::now();
        app.update(Action::Snapshot(Box::new(s)));
        apply.push(start.elapsed());
    }
    assert_eq!(app.visible.len(), VMS);
    stats("snapshot of 5,000 VMs taken in", apply);
    for (w, h) in [(200u16, 50u16), (80, 24)] {
        app.update(Action::Resize(w, h));
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
        let mut frames = Vec::new();
        for i in 0..300 {
            // Move the selection so frames differ (scrolling through the list).
            app.update(if i % 50 == 49 {
                Action::PageDown
            } else {
                Action::Down
            });
            let start = Instant::now();
            term.draw(|f| vmmem::tui::view::draw(f, &app))
                .expect("draw");
            frames.push(start.elapsed());
        }
        stats(&format!("main view frame, 5,000 VMs, {w}x{h}"), frames);
        app.update(Action::Open);
        let key = app.focus().expect("a VM is open");
        let row = reports[0].vms.iter().find(|r| key.matches(*r)).cloned();
        assert!(row.is_some(), "{key} is in the report");
        app.update(Action::Detail(Box::new(Detail {
            scope: Scope::default(),
            key,
            row,
        })));
        let mut frames = Vec::new();
        for _ in 0..300 {
            let start = Instant::now();
            term.draw(|f| vmmem::tui::view::draw(f, &app))
                .expect("draw");
            frames.push(start.elapsed());
        }
        stats(&format!("detail view frame, {w}x{h}"), frames);
        app.update(Action::Back);
    }
}
