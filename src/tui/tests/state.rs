//! How actions change the App and which effects they ask for.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::fake_fix::FakeFix;
use super::*;
use crate::model::recommend::Strategy;
use crate::model::report::Risk;
use crate::session::dashboard::fix::{ApplyOutcome, FixBackend, FixKind, NOT_IN_THIS_BUILD};
use crate::tui::action::{from_key, Action};
use crate::tui::app::{Overlay, Stage, View};
use crate::tui::columns::Column;
use crate::tui::effect::Effect;
use crate::tui::history::VmKey;

fn names(app: &App) -> Vec<String> {
    (0..app.visible.len())
        .map(|i| app.visible_row(i).unwrap().name.clone())
        .collect()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Run the effects the way the event loop does, with `fix` as the backend.
pub fn drive(app: &mut App, fix: &dyn FixBackend, effects: Vec<Effect>) -> Vec<Effect> {
    let mut left = Vec::new();
    let mut queue = effects;
    while let Some(e) = queue.pop() {
        match e {
            Effect::Plan(row, req) => {
                let plan = futures::executor::block_on(fix.plan(*row, req.clone()));
                queue.extend(app.update(Action::Planned(req, plan)));
            }
            Effect::Apply(row, req) => {
                let outcome =
                    futures::executor::block_on(fix.apply(*row, req.clone(), Box::new(|_| {})));
                queue.extend(app.update(Action::Applied(req, outcome)));
            }
            other => left.push(other),
        }
    }
    left
}

#[test]
fn default_order_is_risk_then_headroom() {
    let app = app_with_data(1, 200, 50);
    assert_eq!(names(&app), ["vm4", "vm2", "vm-64g", "vm-16g"]);
    let risks: Vec<Risk> = (0..4).map(|i| app.visible_row(i).unwrap().risk).collect();
    assert_eq!(risks, [Risk::Critical, Risk::Warn, Risk::Unknown, Risk::Ok]);
    assert_eq!(app.counts.critical, 1);
    assert_eq!(app.counts.warn, 1);
    assert_eq!(app.counts.unknown, 1);
    assert_eq!(app.counts.ok, 1);
}

#[test]
fn shift_letter_sorts_and_repeating_reverses() {
    let mut app = app_with_data(1, 200, 50);
    let a = from_key(&app, key('N')).unwrap();
    app.update(a);
    assert_eq!(names(&app), ["vm-16g", "vm-64g", "vm2", "vm4"]);
    let a = from_key(&app, key('N')).unwrap();
    app.update(a);
    assert_eq!(names(&app), ["vm4", "vm2", "vm-64g", "vm-16g"]);
    assert!(app.sort.reverse);
    app.update(Action::SortBy(Column::Guest));
    assert_eq!(app.visible_row(0).unwrap().name, "vm2");
    assert_eq!(
        app.visible_row(3).unwrap().name,
        "vm-64g",
        "no guest set sorts last"
    );
}

#[test]
fn selection_follows_the_vm_across_snapshots_and_sorts() {
    let mut app = app_with_data(1, 200, 50);
    app.update(Action::Down);
    assert_eq!(app.selected_row().unwrap().name, "vm2");
    app.update(Action::SortBy(Column::Name));
    assert_eq!(app.selected_row().unwrap().name, "vm2");
    app.update(Action::Snapshot(Box::new(snapshot(
        Some(seed_report(3)),
        t0() + Duration::from_secs(8),
        Health::Ok,
        Scope::default(),
    ))));
    assert_eq!(app.selected_row().unwrap().name, "vm2");
}

#[test]
fn filter_narrows_as_you_type_and_esc_clears() {
    let mut app = app_with_data(1, 200, 50);
    app.update(from_key(&app, key('/')).unwrap());
    for c in "prod".chars() {
        let a = from_key(&app, key(c)).unwrap();
        app.update(a);
    }
    assert_eq!(names(&app), ["vm-64g"]);
    // While typing, letters are text, not commands: `q` did not quit.
    app.update(from_key(&app, key('q')).unwrap());
    assert!(!app.quit);
    assert!(names(&app).is_empty());
    app.update(Action::InputBackspace);
    app.update(Action::InputSubmit);
    assert_eq!(app.filter, "prod");
    app.update(Action::Back);
    assert_eq!(app.filter, "");
    assert_eq!(names(&app).len(), 4);
    // Filter by risk word too.
    app.update(Action::StartFilter);
    for c in "crit".chars() {
        app.update(Action::InputChar(c));
    }
    assert_eq!(names(&app), ["vm4"]);
}

#[test]
fn namespace_switch_asks_for_a_fetch_and_filters() {
    let mut app = app_with_data(1, 200, 50);
    app.update(from_key(&app, key('n')).unwrap());
    for c in "prod".chars() {
        app.update(Action::InputChar(c));
    }
    let eff = app.update(Action::InputSubmit);
    assert!(
        matches!(&eff[..], [Effect::Fetch(s)] if s.namespace.as_deref() == Some("prod")),
        "{eff:?}"
    );
    assert_eq!(names(&app), ["vm-64g"]);
    // A late snapshot of the old scope does not replace the rows.
    app.update(Action::Snapshot(Box::new(snapshot(
        Some(seed_report(1)),
        t0() + Duration::from_secs(3),
        Health::Ok,
        Scope::default(),
    ))));
    assert_eq!(names(&app), ["vm-64g"]);
    let eff = app.update(Action::AllNamespaces);
    assert!(matches!(&eff[..], [Effect::Fetch(s)] if s.namespace.is_none()));
    assert_eq!(names(&app).len(), 4);
    app.update(Action::StartCommand);
    for c in "bogus".chars() {
        app.update(Action::InputChar(c));
    }
    app.update(Action::InputSubmit);
    assert!(app
        .flash
        .as_deref()
        .unwrap()
        .contains("unknown command :bogus"));
    app.update(Action::StartCommand);
    app.update(Action::InputChar('q'));
    app.update(Action::InputSubmit);
    assert!(app.quit);
}

#[test]
fn refresh_keys_and_quit() {
    let app = app_with_data(1, 80, 24);
    let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
    assert!(matches!(from_key(&app, ctrl('r')), Some(Action::Refresh)));
    assert!(matches!(from_key(&app, ctrl('c')), Some(Action::Quit)));
    assert!(matches!(from_key(&app, key('q')), Some(Action::Quit)));
    assert!(matches!(from_key(&app, key('?')), Some(Action::Help)));
    let mut app = app;
    let eff = app.update(Action::Refresh);
    assert!(app.fetching);
    assert!(matches!(&eff[..], [Effect::Fetch(_)]));
}

#[test]
fn data_turns_stale_after_three_refreshes_or_a_failed_fetch() {
    let mut app = app_with_data(1, 80, 24);
    assert!(!app.data_stale());
    app.update(Action::Tick(t0() + Duration::from_secs(6)));
    assert!(!app.data_stale());
    app.update(Action::Tick(t0() + Duration::from_secs(7)));
    assert!(app.data_stale());
    let mut app = app_with_data(1, 80, 24);
    app.update(Action::Snapshot(Box::new(snapshot(
        None,
        t0() + Duration::from_secs(2),
        Health::Unreachable("dial tcp 10.0.0.10:6443: connect: connection refused".into()),
        Scope::default(),
    ))));
    assert!(app.data_stale());
    assert_eq!(app.visible.len(), 4, "old rows stay on screen");
    assert!(app.row_stale(app.selected_row().unwrap().stale));
}

#[test]
fn history_records_live_rows_and_is_bounded() {
    let app = app_with_data(5, 80, 24);
    let key = crate::tui::history::VmKey {
        namespace: "default".into(),
        name: "vm4".into(),
    };
    let s = app.history.get(&key).unwrap();
    assert_eq!(s.usage.len(), 5);
    assert!(s.overhead.back() > s.overhead.front(), "overhead grows");
    let no_live = crate::tui::history::VmKey {
        namespace: "prod".into(),
        name: "vm-64g".into(),
    };
    assert!(app.history.get(&no_live).is_none());
    let mut h = crate::tui::history::History::default();
    let rows = table_rows(&seed_report(0).vms);
    for _ in 0..crate::tui::history::SAMPLES + 10 {
        h.record(&rows);
    }
    assert_eq!(
        h.get(&key).unwrap().usage.len(),
        crate::tui::history::SAMPLES
    );
}

#[test]
fn enter_opens_details_and_esc_goes_back() {
    let mut app = app_with_data(1, 80, 24);
    app.update(from_key(&app, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)).unwrap());
    assert!(matches!(&app.view, View::Detail(k) if k.name == "vm4"));
    app.update(Action::Down);
    assert_eq!(app.detail_scroll, 1, "j scrolls the detail view");
    app.update(Action::Back);
    assert_eq!(app.view, View::Table);
}

#[test]
fn fix_keys_without_a_backend_say_so() {
    let mut app = app_with_data(1, 80, 24);
    for a in [Action::Fix, Action::RemoveLimit, Action::Undo] {
        let eff = app.update(a);
        assert!(eff.is_empty());
        match &app.overlay {
            Some(Overlay::Notice(n)) => assert_eq!(n.text, NOT_IN_THIS_BUILD),
            o => panic!("{o:?}"),
        }
        app.update(Action::Back);
        assert!(app.overlay.is_none());
    }
}

#[test]
fn readonly_disables_mutating_keys_and_says_so() {
    let mut app = app_with_data(1, 80, 24);
    app.readonly = true;
    app.fix_enabled = true;
    let eff = app.update(Action::Fix);
    assert!(eff.is_empty());
    match &app.overlay {
        Some(Overlay::Notice(n)) => assert!(n.text.contains("--readonly"), "{}", n.text),
        o => panic!("{o:?}"),
    }
}

#[test]
fn fix_flow_plans_confirms_applies_and_refreshes() {
    let fake = Arc::new(FakeFix::new(ApplyOutcome::Applied(
        "patched; VM restarting".into(),
    )));
    let mut app = app_with_data(1, 80, 24);
    app.fix_enabled = true;
    let eff = app.update(Action::Fix);
    let left = drive(&mut app, fake.as_ref(), eff);
    assert!(left.is_empty());
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!("{:?}", app.overlay)
    };
    assert_eq!(d.key.name, "vm4");
    assert_eq!(d.kind, FixKind::Reserve(Strategy::Annotation));
    assert_eq!(d.stage, Stage::Review);
    assert!(
        // 1.25 x this reading's overhead: the cgroup's peak counter is an upper bound (it
        // includes page cache), listed but never the reason for a reservation.
        matches!(&d.plan, Some(Ok(p)) if p.lines[1].after == "640Mi"),
        "{:?}",
        d.plan
    );
    // Change the strategy and ask for a restart: each re-plans.
    let eff = app.update(Action::CycleStrategy);
    drive(&mut app, fake.as_ref(), eff);
    let eff = app.update(Action::ToggleRestart);
    drive(&mut app, fake.as_ref(), eff);
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!()
    };
    assert_eq!(d.kind, FixKind::Reserve(Strategy::Guest));
    assert!(d.restart);
    // Nothing was applied before the confirmation.
    assert!(fake.applied.lock().unwrap().is_empty());
    let eff = app.update(Action::Confirm);
    let left = drive(&mut app, fake.as_ref(), eff);
    assert!(
        matches!(&left[..], [Effect::Fetch(_)]),
        "an applied fix refreshes"
    );
    let applied = fake.applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].name, "vm4");
    assert!(applied[0].restart);
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!()
    };
    assert!(matches!(&d.stage, Stage::Done(ApplyOutcome::Applied(_))));
    app.update(Action::Confirm);
    assert!(app.overlay.is_none());
}

#[test]
fn conflict_is_shown_and_does_not_refresh() {
    let fake = FakeFix::new(ApplyOutcome::Conflict(
        "the object has been modified; please apply your changes to the latest version".into(),
    ));
    let mut app = app_with_data(1, 80, 24);
    app.fix_enabled = true;
    let eff = app.update(Action::RemoveLimit);
    drive(&mut app, &fake, eff);
    let eff = app.update(Action::Confirm);
    let left = drive(&mut app, &fake, eff);
    assert!(left.is_empty());
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!()
    };
    assert!(matches!(&d.stage, Stage::Done(ApplyOutcome::Conflict(_))));
}

#[test]
fn a_plan_error_cannot_be_confirmed() {
    let fake = FakeFix::new(ApplyOutcome::Applied("x".into()));
    let mut app = app_with_data(1, 80, 24);
    app.fix_enabled = true;
    let eff = app.update(Action::Undo);
    drive(&mut app, &fake, eff);
    let eff = app.update(Action::Confirm);
    assert!(eff.is_empty());
    assert!(app.overlay.is_none(), "confirm on an error closes");
    assert!(fake.applied.lock().unwrap().is_empty());
}

#[test]
fn history_keeps_a_vm_without_live_data_and_forgets_a_deleted_one() {
    let mut h = crate::tui::history::History::default();
    let rows = table_rows(&seed_report(0).vms);
    h.record(&rows);
    let key = |name: &str| crate::tui::history::VmKey {
        namespace: "default".into(),
        name: name.into(),
    };
    // vm2 loses its live data (node unreachable); vm4 is deleted.
    let mut next: Vec<_> = rows.iter().filter(|r| r.name != "vm4").cloned().collect();
    for r in next.iter_mut().filter(|r| r.name == "vm2") {
        r.usage_bytes = None;
        r.overhead_used_bytes = None;
    }
    h.record(&next);
    assert_eq!(h.get(&key("vm2")).unwrap().usage.len(), 1);
    assert!(h.get(&key("vm4")).is_none());
    assert_eq!(h.get(&key("vm-16g")).unwrap().usage.len(), 2);
}

#[test]
fn initial_scope_from_the_flags() {
    use crate::session::dashboard::initial_scope;
    use crate::session::dashboard::snapshot::FilesSource;
    use crate::session::{Namespaces, Options};
    let files = FilesSource::new("x".into(), Options::default());
    assert_eq!(initial_scope(&Namespaces::Default, &files).namespace, None);
    assert_eq!(
        initial_scope(&Namespaces::One("prod".into()), &files)
            .namespace
            .as_deref(),
        Some("prod")
    );
    assert_eq!(initial_scope(&Namespaces::All, &files).namespace, None);
}

fn table_rows(rows: &[crate::model::report::VmRow]) -> Vec<crate::model::report::TableRow> {
    rows.iter()
        .map(crate::model::report::TableRow::of)
        .collect()
}

/// Samples keep their value to the unit the series' largest sample needs, and a larger sample
/// coarsens the older ones instead of clipping.
#[test]
fn history_samples_hold_small_and_huge_values() {
    let mut s = crate::tui::history::Samples::default();
    let mi = 1u64 << 20;
    s.push(300 * mi + 5 * 1024);
    assert_eq!(s.back(), Some(300 * mi), "in 8 KiB units up to 512 MiB");
    s.push(16 << 30);
    s.push(4 << 40);
    let got: Vec<u64> = s.iter().collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], 4 << 40, "4 TiB kept");
    assert_eq!(got[1], 16 << 30, "16 GiB kept");
    let err = got[0].abs_diff(300 * mi);
    assert!(
        err <= 128 * mi,
        "300 MiB within the 4 TiB series' unit: {err}"
    );
    for _ in 0..crate::tui::history::SAMPLES {
        s.push(mi);
    }
    assert_eq!(s.len(), crate::tui::history::SAMPLES);
}

/// An app whose snapshots carry the table only, as a live source sends them (no full rows).
fn app_with_table_only() -> App {
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(80, 24));
    let snap = crate::session::dashboard::snapshot::Snapshot::of_report(
        Some(seed_report(0)),
        None,
        t0(),
        Health::Ok,
        Scope::default(),
    );
    app.update(Action::Snapshot(Box::new(snap)));
    app
}

fn detail_of(app: &App, row: Option<crate::model::report::VmRow>) -> Action {
    Action::Detail(Box::new(crate::session::dashboard::snapshot::Detail {
        scope: app.scope.clone(),
        key: app.focus().unwrap(),
        row,
    }))
}

/// `f` before the VM's full row came: the dialog waits, then plans with the VM's own strategy
/// once the row arrives.
#[test]
fn a_fix_dialog_waits_for_its_row_and_takes_the_vms_strategy() {
    let mut app = app_with_table_only();
    app.fix_enabled = true;
    assert!(app.details.is_empty());
    let eff = app.update(Action::Fix);
    assert!(eff.is_empty(), "no plan without the row: {eff:?}");
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!("{:?}", app.overlay)
    };
    assert!(d.waiting_for_row);
    assert_eq!(d.stage, Stage::Planning);
    let key = d.key.clone();
    let mut row = seed_report(0)
        .vms
        .into_iter()
        .find(|r| key.matches(r))
        .unwrap();
    row.recommendation.strategy = Strategy::Guest;
    let eff = app.update(detail_of(&app, Some(row)));
    assert!(
        matches!(&eff[..], [Effect::Plan(r, _)] if key.matches(r.as_ref())),
        "{eff:?}"
    );
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!()
    };
    assert!(!d.waiting_for_row);
    assert_eq!(d.kind, FixKind::Reserve(Strategy::Guest));
}

/// A row that could not be built is said, in the detail view and in a waiting fix dialog,
/// instead of "Reading…" for good.
#[test]
fn a_row_that_cannot_be_built_is_said() {
    let mut app = app_with_table_only();
    app.fix_enabled = true;
    app.update(Action::Open);
    let key = app.focus().unwrap();
    assert!(render(&app, 120, 30).contains(&format!("Reading {key}…")));
    app.update(Action::Fix);
    let eff = app.update(detail_of(&app, None));
    assert!(eff.is_empty());
    let Some(Overlay::Fix(d)) = &app.overlay else {
        panic!()
    };
    assert!(
        matches!(&d.plan, Some(Err(m)) if m.contains("could not be read just now")),
        "{:?}",
        d.plan
    );
    app.update(Action::Back);
    let screen = render(&app, 120, 30);
    assert!(screen.contains("could not be read just now"), "{screen}");
}

/// The row that came stays when the focus moved on meanwhile (it may come back before the
/// next refresh); other rows not in focus go.
#[test]
fn a_detail_that_came_stays_until_the_next_snapshot() {
    let mut app = app_with_table_only();
    let first = app.focus().unwrap();
    let row = |k: &VmKey| seed_report(0).vms.into_iter().find(|r| k.matches(r));
    app.update(detail_of(&app, row(&first)));
    app.update(Action::Down);
    let second = app.focus().unwrap();
    assert_ne!(first, second);
    app.update(detail_of(&app, row(&second)));
    assert!(app.detail(&second).is_some());
    assert!(app.detail(&first).is_none(), "not in focus any more");
    // The answer for the first arrives late, after the focus moved back and forth.
    app.update(Action::Up);
    app.update(Action::Detail(Box::new(
        crate::session::dashboard::snapshot::Detail {
            scope: app.scope.clone(),
            key: second.clone(),
            row: row(&second),
        },
    )));
    assert!(app.detail(&second).is_some(), "the row that came is kept");
}
