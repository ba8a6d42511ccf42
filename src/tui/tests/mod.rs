//! Dashboard tests: state changes (update.rs) and rendered screens (insta snapshots of
//! `TestBackend` buffers), all from the seed fixtures with live readings built here.

mod event_loop;
mod fake_fix;
mod history;
mod oom_history;
mod render;
mod state;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::model::inventory::{Inventory, Readings};
use crate::model::overhead::MI;
use crate::model::readings::{
    CgroupCounters, CgroupLevel, CgroupVersion, LiveSource, MemoryStat, NodeReadings, PodReading,
    ProcessReading,
};
use crate::model::report::{build, Report, ReportOptions};

use super::app::App;
use crate::session::dashboard::snapshot::{ContextInfo, Health, Scope, Snapshot};

/// 2024-05-20T15:00:00Z, so ages on screen do not depend on the clock.
pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_716_217_200)
}

pub fn seed_inventory() -> Inventory {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    // The fixtures as `--from` reads them.
    crate::session::inputs::from_files(&dir, &crate::session::Options::default())
        .unwrap()
        .inventory
}

fn proc_(comm: &str, anon: i64) -> ProcessReading {
    ProcessReading {
        pid: 100,
        comm: comm.into(),
        rss_anon_bytes: anon as u64,
        rss_file_bytes: 0,
        rss_shmem_bytes: 0,
        container_id: None,
    }
}

/// A pod-level reading: guest resident `guest`, helpers with fixed sizes, qemu's own heap
/// `qemu`, kernel and file pages; usage is their sum.
fn pod_reading(uid: &str, limit: i64, guest: i64, qemu: i64, oom_kills: u64) -> PodReading {
    let helpers = [
        ("virt-launcher-m", 21 * MI),
        ("virt-launcher", 62 * MI),
        ("virtqemud", 33 * MI),
        ("virtlogd", 17 * MI),
    ];
    let kernel = 24 * MI;
    let file = 40 * MI;
    let usage = guest + qemu + helpers.iter().map(|h| h.1).sum::<i64>() + kernel + file;
    let mut processes: Vec<ProcessReading> = helpers.iter().map(|(c, b)| proc_(c, *b)).collect();
    processes.push(proc_("qemu-system-x86", guest + qemu));
    PodReading {
        uid: uid.into(),
        cgroup: CgroupCounters {
            level: CgroupLevel::Pod,
            path: format!("/kubepods.slice/pod{uid}"),
            container_id: None,
            limit_bytes: Some(limit as u64),
            usage_bytes: usage as u64,
            working_set_bytes: (usage - file) as u64,
            peak_bytes: Some((usage + 8 * MI) as u64),
            failcnt: Some(oom_kills * 3),
            oom_kills,
            oom_group_kills: None,
            swap_bytes: None,
            swap_limit_bytes: None,
            stat: MemoryStat {
                file: Some(file as u64),
                inactive_file: Some(file as u64),
                kernel: Some(kernel as u64),
                ..Default::default()
            },
        },
        guest_resident_bytes: Some(guest as u64),
        guest_resident_taken_at: None,
        guest_hugetlb_bytes: None,
        usage_after_smaps_bytes: None,
        guest_grown_since_bytes: None,
        containers: vec![],
        processes,
    }
}

/// Live readings for the seed: vm2 close to its budget (warn), vm4 the memhold VM whose
/// overhead is past its budget before the guest has even filled up, with an OOM kill (critical), vm-16g comfortable (ok); prod/vm-64g's node has no reading.
/// `step` grows the overheads a little, for the sparklines.
pub fn seed_readings(step: i64) -> Readings {
    let grow = step * 6 * MI;
    let mut r = Readings::new();
    r.insert(
        "harv41".into(),
        Arc::new(NodeReadings {
            node: "harv41".into(),
            cgroup_version: CgroupVersion::V1,
            kernel: "5.14.21".into(),
            source: LiveSource::Agent,
            taken_at: 0,
            missing_pods: Vec::new(),
            pods: vec![
                pod_reading(
                    "99ee3a64-645b-4699-9384-5a3875d78b41",
                    2_472_419_328,
                    1900 * MI,
                    170 * MI + grow,
                    0,
                ),
                pod_reading(
                    "bc31d215-d48e-4416-8e2b-68716b8f5bcb",
                    2_472_419_328,
                    1500 * MI,
                    600 * MI + grow,
                    1,
                ),
            ],
        }),
    );
    r.insert(
        "harvester-node-1".into(),
        Arc::new(NodeReadings {
            node: "harvester-node-1".into(),
            cgroup_version: CgroupVersion::V2,
            kernel: "5.3.18".into(),
            source: LiveSource::Agent,
            taken_at: 0,
            missing_pods: Vec::new(),
            pods: vec![pod_reading(
                "968a06fb-9ab9-4819-8caf-0392ddff3d9b",
                17_432_924_161,
                9000 * MI,
                60 * MI + grow / 2,
                0,
            )],
        }),
    );
    r
}

pub fn seed_report(step: i64) -> Report {
    build(
        &seed_inventory(),
        &seed_readings(step),
        &ReportOptions::default(),
    )
}

pub fn context() -> ContextInfo {
    ContextInfo {
        context: "harvester-prod".into(),
        cluster: "harvester".into(),
        server: "https://10.0.0.10:6443".into(),
    }
}

/// A snapshot of a whole report, with the full rows of all its VMs (a live source sends only
/// the focus's; the tests of that are in event_loop.rs and state.rs).
pub fn snapshot(report: Option<Report>, at: SystemTime, health: Health, scope: Scope) -> Snapshot {
    let (table, details) = match report {
        Some(r) => {
            let (t, d) = crate::model::report::Table::split(r, |_| true);
            (Some(t), d)
        }
        None => (None, Vec::new()),
    };
    Snapshot {
        table,
        details,
        taken_at: at,
        context: context(),
        health,
        live: "agent".into(),
        scope,
        history_loading: None,
    }
}

/// An app after `n` snapshots two seconds apart, the clock one second after the last.
pub fn app_with_data(n: i64, w: u16, h: u16) -> App {
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(super::action::Action::Resize(w, h));
    for step in 0..n {
        let at = t0() + Duration::from_secs(2 * step as u64);
        app.update(super::action::Action::Snapshot(Box::new(snapshot(
            Some(seed_report(step)),
            at,
            Health::Ok,
            Scope::default(),
        ))));
    }
    let last = t0() + Duration::from_secs(2 * (n.max(1) - 1) as u64 + 1);
    app.update(super::action::Action::Tick(last));
    app
}

/// Render into a `w`×`h` buffer and return its text (symbols only, trailing spaces trimmed).
pub fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| super::view::draw(f, app)).unwrap();
    buffer_text(term.backend().buffer())
}

pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
