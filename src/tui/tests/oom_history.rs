//! OOM kills from kernel logs in the dashboard: when the source reads a node's log
//! ([`OomWatch`]), how the kills map to VMs across pods and count once in the OOMS column,
//! and what the detail view shows of them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{render, seed_inventory, seed_readings, snapshot, t0};
use crate::model::inventory::{Inventory, Readings};
use crate::model::oom_event::OomEvent;
use crate::model::report::{build, Flag, Report, ReportOptions, VmRow};
use crate::session::dashboard::oom_watch::{OomWatch, MIN_INTERVAL, RETRY_INTERVAL};
use crate::session::dashboard::snapshot::{Health, Scope};
use crate::tui::action::Action;
use crate::tui::app::{App, View};
use crate::tui::history::VmKey;

const VM4_POD: &str = "bc31d215-d48e-4416-8e2b-68716b8f5bcb";
/// vm4's pod after a restart.
const VM4_NEW_POD: &str = "0f0f0f0f-1111-4222-8333-444455556666";

/// The seed's Example 3 (vm4's pod on harv41, killed by `CPU 1/KVM`), as the agent's dmesg.
fn example3_on_harv41() -> Vec<OomEvent> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oom/seed-example3-dmesg.log");
    let text = std::fs::read_to_string(p).unwrap();
    crate::parse::oom::parse_node_kernel_log(&text, "harv41")
}

fn report(inv: &Inventory, readings: &Readings, watch: &OomWatch) -> Report {
    let opts = ReportOptions {
        oom_history: watch.explanations(inv, None, &Default::default()),
        ..Default::default()
    };
    build(inv, readings, &opts)
}

fn row<'a>(r: &'a Report, name: &str) -> &'a VmRow {
    r.vms.iter().find(|v| v.name == name).unwrap()
}

fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

/// vm4 restarted: its pod has a new UID (the old pod is gone from the cluster).
fn vm4_restarted(inv: &Inventory) -> Inventory {
    let mut inv = inv.clone();
    let new_uid = VM4_NEW_POD;
    for p in &mut inv.pods {
        if p.metadata.uid == VM4_POD {
            Arc::make_mut(p).metadata.uid = new_uid.into();
        }
    }
    for v in &mut inv.vmis {
        if v.metadata.name == "vm4" {
            let v = Arc::make_mut(v);
            v.status.active_pods.clear();
            v.status.active_pods.insert(new_uid.into(), "harv41".into());
        }
    }
    inv
}

/// The seed inventory and readings, and a watch that has observed their report.
fn watching_seed() -> (Inventory, Readings, OomWatch) {
    let inv = seed_inventory();
    let readings = seed_readings(0);
    let mut w = OomWatch::new();
    w.observe(&report(&inv, &readings, &w), &readings);
    (inv, readings, w)
}

/// Every node due at the start read, each log holding no kill.
fn read_every_due_node_empty(w: &mut OomWatch) {
    for n in w.due(at(0)) {
        w.finished(&n, Ok(Vec::new()), at(0));
    }
}

/// `readings` with vm4's pod on harv41 replaced by the restarted one, its cgroup counting
/// `oom_kills`.
fn vm4_restarted_readings(readings: &Readings, oom_kills: u64) -> Readings {
    let mut fresh = readings.clone();
    let pod = &mut Arc::make_mut(fresh.get_mut("harv41").unwrap()).pods[1];
    pod.uid = VM4_NEW_POD.into();
    pod.cgroup.oom_kills = oom_kills;
    fresh
}

/// A dashboard of `cols`x`rows` at `secs` showing the report `r`.
fn app_showing(r: &Report, secs: u64, (cols, rows): (u16, u16)) -> App {
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, at(secs));
    app.update(Action::Resize(cols, rows));
    app.update(Action::Snapshot(Box::new(snapshot(
        Some(r.clone()),
        at(secs),
        Health::Ok,
        Scope::default(),
    ))));
    app
}

#[test]
fn every_node_is_read_once_at_start_then_only_on_a_trigger() {
    let (inv, readings, mut w) = watching_seed();
    let due = w.due(at(0));
    assert_eq!(due, ["harv41", "harvester-node-1", "harvester-node-2"]);
    // In flight: not asked again; nothing changed: not due later either.
    assert!(w.due(at(1)).is_empty());
    for n in &due {
        w.finished(n, Ok(Vec::new()), at(1));
    }
    w.observe(&report(&inv, &readings, &w), &readings);
    assert!(w.due(at(100)).is_empty(), "no trigger, no read");
    // vm2's cgroup counter rises on harv41: that node is read again, not before MIN_INTERVAL.
    let mut more = readings.clone();
    Arc::make_mut(more.get_mut("harv41").unwrap()).pods[0]
        .cgroup
        .oom_kills = 1;
    w.observe(&report(&inv, &more, &w), &more);
    assert!(w.due(at(1) + MIN_INTERVAL / 2).is_empty());
    assert_eq!(w.due(at(1) + MIN_INTERVAL), ["harv41"]);
}

#[test]
fn a_kill_seen_by_the_cgroup_counter_and_the_log_counts_once() {
    let (inv, readings, mut w) = watching_seed();
    w.due(at(0));
    w.finished("harv41", Ok(example3_on_harv41()), at(1));
    // The same report read again (the log still holds it) is not a second kill.
    w.finished("harv41", Ok(example3_on_harv41()), at(20));
    assert_eq!(w.events().count(), 1);
    let r = report(&inv, &readings, &w);
    let vm4 = row(&r, "vm4");
    assert_eq!(vm4.cgroup.as_ref().unwrap().oom_kills, Some(1));
    assert_eq!(vm4.oom_history.len(), 1);
    assert_eq!(vm4.oom_kills, Some(1), "counter and log saw the same kill");
    assert!(vm4.has_flag(Flag::OomKilled));
    let v = &vm4.oom_history[0].verdict;
    assert!(
        v.starts_with("VM default/vm4 was OOM-killed at 8758.722811 on harv41"),
        "{v}"
    );
    assert_eq!(row(&r, "vm2").oom_kills, Some(0));
}

#[test]
fn kills_of_an_earlier_pod_still_count_after_the_pod_is_gone() {
    let (inv, readings, mut w) = watching_seed();
    read_every_due_node_empty(&mut w);
    // vm4 comes back in a new pod before its kill was read: the changed pod triggers a read.
    let later = vm4_restarted(&inv);
    let fresh = vm4_restarted_readings(&readings, 0);
    w.observe(&report(&later, &fresh, &w), &fresh);
    assert_eq!(w.due(at(0) + MIN_INTERVAL), ["harv41"]);
    w.finished("harv41", Ok(example3_on_harv41()), at(11));
    // The old pod is in no inventory any more; the watch remembers its VM.
    assert!(later.pods.iter().all(|p| p.metadata.uid != VM4_POD));
    let r = report(&later, &fresh, &w);
    let vm4 = row(&r, "vm4");
    assert_eq!(vm4.oom_kills, Some(1));
    assert!(vm4.has_flag(Flag::OomKilledBefore), "{:?}", vm4.flags);
    assert!(vm4.oom_history[0].verdict.contains("VM default/vm4"));
    // The detail view lists it as the earlier pod's, with the verdict.
    let mut app = app_showing(&r, 12, (100, 60));
    app.view = View::Detail(VmKey::of(vm4));
    let screen = render(&app, 100, 60);
    assert!(screen.contains("OOM kills                 1"), "{screen}");
    assert!(screen.contains("current pod 0, earlier pods 1"), "{screen}");
    assert!(
        screen.contains("#1 8758.722811  node harv41  pod bc31d215… (earlier)"),
        "{screen}"
    );
    assert!(
        screen.contains("trigger CPU 1/KVM  killed qemu-system-x86"),
        "{screen}"
    );
    assert!(
        screen.contains("VM default/vm4 was OOM-killed at"),
        "{screen}"
    );
}

#[test]
fn a_vmi_that_fails_gets_its_node_read() {
    let (mut inv, readings, mut w) = watching_seed();
    read_every_due_node_empty(&mut w);
    for v in &mut inv.vmis {
        if v.metadata.name == "vm-16g" {
            Arc::make_mut(v).status.phase = Some("Failed".into());
        }
    }
    w.observe(&report(&inv, &readings, &w), &readings);
    assert_eq!(w.due(at(60)), ["harvester-node-1"]);
}

#[test]
fn a_failed_read_is_said_and_retried_later() {
    let (_, _, mut w) = watching_seed();
    w.due(at(0));
    let why = "reading a node's kernel log needs the agent (--live auto or agent)";
    w.finished("harv41", Err(why.into()), at(1));
    assert_eq!(w.error("harv41"), Some(why));
    assert!(w.due(at(1) + MIN_INTERVAL).is_empty());
    assert_eq!(w.due(at(1) + RETRY_INTERVAL), ["harv41"]);
    w.finished("harv41", Ok(Vec::new()), at(70));
    assert_eq!(w.error("harv41"), None);
}

#[test]
fn ooms_column_counts_earlier_pods_and_long_verdicts_scroll() {
    let (inv, readings, mut w) = watching_seed();
    w.due(at(0));
    w.finished("harv41", Ok(example3_on_harv41()), at(1));
    let later = vm4_restarted(&inv);
    // The new pod was killed too (its cgroup counter says so; its log report not read yet).
    let fresh = vm4_restarted_readings(&readings, 1);
    w.observe(&report(&later, &fresh, &w), &fresh);
    let r = report(&later, &fresh, &w);
    assert_eq!(
        row(&r, "vm4").oom_kills,
        Some(2),
        "one earlier pod's, one current"
    );
    let mut app = app_showing(&r, 2, (120, 24));
    let table = render(&app, 120, 24);
    let line = table.lines().find(|l| l.contains(" vm4 ")).unwrap();
    assert!(line.trim_end().ends_with("critical*  2"), "{table}");
    // 80 columns, 24 rows: the verdict is below the fold; scrolling brings it up.
    app.update(Action::Resize(80, 24));
    app.view = View::Detail(VmKey::of(row(&r, "vm4")));
    let first = render(&app, 80, 24);
    assert!(!first.contains("was OOM-killed"), "{first}");
    let mut scrolled = first;
    for _ in 0..60 {
        if scrolled.contains("was OOM-killed") {
            break;
        }
        app.update(Action::Down);
        scrolled = render(&app, 80, 24);
    }
    assert!(
        scrolled.contains("VM default/vm4 was OOM-killed"),
        "{scrolled}"
    );
    assert!(app.detail_scroll > 0);
    // Wrapped to the column with its indent (ratatui's own wrap would start lines at 0).
    for _ in 0..3 {
        app.update(Action::Down);
    }
    let scrolled = render(&app, 80, 24);
    let verdict: Vec<&str> = scrolled
        .lines()
        .skip_while(|l| !l.contains("was OOM-killed"))
        .take(4)
        .collect();
    assert_eq!(verdict.len(), 4, "{scrolled}");
    assert!(verdict.iter().all(|l| l.starts_with("     ")), "{scrolled}");
}

/// A dashboard started after vm4's old pod was deleted: neither this session nor the cluster
/// knows the pod of the kill, but the pods remembered on this machine do.
#[test]
fn a_kill_in_a_pod_deleted_before_the_session_maps_through_the_remembered_pods() {
    let inv = vm4_restarted(&seed_inventory());
    let readings = seed_readings(0);
    let mut w = OomWatch::new();
    w.due(at(0));
    w.finished("harv41", Ok(example3_on_harv41()), at(1));
    let unmapped = w.explanations(&inv, None, &Default::default());
    assert!(unmapped[0].vm.is_none());
    let vm4_uid = inv
        .vms
        .iter()
        .find(|v| v.metadata.name == "vm4")
        .map(|v| v.metadata.uid.clone())
        .unwrap();
    let remembered = [(VM4_POD.to_string(), vm4_uid)].into_iter().collect();
    let opts = ReportOptions {
        oom_history: w.explanations(&inv, None, &remembered),
        ..Default::default()
    };
    let r = build(&inv, &readings, &opts);
    let vm4 = row(&r, "vm4");
    assert_eq!(vm4.oom_history.len(), 1);
    assert!(vm4.has_flag(Flag::OomKilledBefore), "{:?}", vm4.flags);
}
