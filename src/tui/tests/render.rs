//! Screens as text (insta snapshots): main table, details, dialogs, help, empty and error
//! states, at 80x24 and 200x50.

use std::time::Duration;

use insta::assert_snapshot;

use super::fake_fix::FakeFix;
use super::state::drive;
use super::*;
use crate::model::inventory::Inventory;
use crate::session::dashboard::fix::ApplyOutcome;
use crate::tui::action::Action;

#[test]
fn main_200x50() {
    let app = app_with_data(5, 200, 50);
    let screen = render(&app, 200, 50);
    assert!(screen.contains("1 critical"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn main_80x24() {
    let app = app_with_data(5, 80, 24);
    let screen = render(&app, 80, 24);
    // Columns collapse: the key ones stay, the wide-only ones go.
    assert!(
        screen.contains("HEADROOM") && screen.contains("RISK"),
        "{screen}"
    );
    assert!(!screen.contains("SOURCE"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn main_one_namespace_hides_the_namespace_column() {
    let mut app = app_with_data(1, 120, 20);
    app.update(Action::StartNamespace);
    for c in "default".chars() {
        app.update(Action::InputChar(c));
    }
    app.update(Action::InputSubmit);
    let screen = render(&app, 120, 20);
    assert!(!screen.contains("NAMESPACE"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn main_without_colour_keeps_every_fact() {
    let mut app = app_with_data(5, 120, 20);
    app.colour = false;
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 20)).unwrap();
    term.draw(|f| crate::tui::view::draw(f, &app)).unwrap();
    let buf = term.backend().buffer();
    let coloured = buf
        .content()
        .iter()
        .any(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset);
    assert!(!coloured, "NO_COLOR draws no colour");
    let text = buffer_text(buf);
    assert!(text.contains("critical") && text.contains("warn"), "{text}");
}

#[test]
fn detail_200x50() {
    let mut app = app_with_data(8, 200, 50);
    app.update(Action::Open);
    assert_snapshot!(render(&app, 200, 50));
}

#[test]
fn detail_80x24() {
    let mut app = app_with_data(8, 80, 24);
    app.update(Action::Open);
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn detail_without_live_data() {
    let mut app = app_with_data(1, 100, 40);
    app.update(Action::SortBy(crate::tui::columns::Column::Namespace));
    app.update(Action::Bottom);
    assert_eq!(app.selected_row().unwrap().name, "vm-64g");
    app.update(Action::Open);
    assert_snapshot!(render(&app, 100, 40));
}

fn fix_app(answer: ApplyOutcome, w: u16, h: u16) -> (App, FakeFix) {
    let fake = FakeFix::new(answer);
    let mut app = app_with_data(1, w, h);
    app.fix_enabled = true;
    (app, fake)
}

/// Each action in turn, with the fake fix backend answering the effects it asks for.
fn press<const N: usize>(app: &mut App, fake: &FakeFix, actions: [Action; N]) {
    for a in actions {
        let eff = app.update(a);
        drive(app, fake, eff);
    }
}

/// The 100x30 screen after pressing fix and confirming, the server answering `answer`.
fn after_confirmed_fix(answer: ApplyOutcome) -> String {
    let (mut app, fake) = fix_app(answer, 100, 30);
    press(&mut app, &fake, [Action::Fix, Action::Confirm]);
    render(&app, 100, 30)
}

#[test]
fn dialog_fix_review() {
    let (mut app, fake) = fix_app(ApplyOutcome::Applied("patched".into()), 100, 30);
    press(&mut app, &fake, [Action::Fix]);
    assert_snapshot!(render(&app, 100, 30));
}

#[test]
fn dialog_fix_review_80x24() {
    let (mut app, fake) = fix_app(ApplyOutcome::Applied("patched".into()), 80, 24);
    press(&mut app, &fake, [Action::Fix, Action::ToggleRestart]);
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn dialog_fix_applied() {
    assert_snapshot!(after_confirmed_fix(ApplyOutcome::Applied(
        "patched default/vm4 and restarted it".into()
    )));
}

#[test]
fn dialog_fix_conflict() {
    assert_snapshot!(after_confirmed_fix(ApplyOutcome::Conflict("Operation cannot be fulfilled on virtualmachines.kubevirt.io \"vm4\": the object has been modified".into())));
}

#[test]
fn dialog_fix_forbidden() {
    assert_snapshot!(after_confirmed_fix(ApplyOutcome::Forbidden("virtualmachines.kubevirt.io \"vm4\" is forbidden: User \"viewer\" cannot patch resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"default\"".into())));
}

#[test]
fn dialog_remove_limit_warns() {
    let (mut app, fake) = fix_app(ApplyOutcome::Applied("patched".into()), 100, 30);
    press(&mut app, &fake, [Action::RemoveLimit]);
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("exhaust all memory on the host"),
        "{screen}"
    );
    assert_snapshot!(screen);
}

#[test]
fn dialog_undo_cannot_plan() {
    let (mut app, fake) = fix_app(ApplyOutcome::Applied("patched".into()), 100, 30);
    press(&mut app, &fake, [Action::Undo]);
    assert_snapshot!(render(&app, 100, 30));
}

#[test]
fn notice_fix_not_in_this_build() {
    let mut app = app_with_data(1, 80, 24);
    app.update(Action::Fix);
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn notice_readonly() {
    let mut app = app_with_data(1, 80, 24);
    app.readonly = true;
    app.update(Action::RemoveLimit);
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn help_80x24() {
    let mut app = app_with_data(1, 80, 24);
    app.update(Action::Help);
    let screen = render(&app, 80, 24);
    for (k, _) in crate::tui::action::KEYS {
        assert!(screen.contains(k), "help lacks {k}:\n{screen}");
    }
    assert_snapshot!(screen);
}

#[test]
fn help_200x50() {
    let mut app = app_with_data(1, 200, 50);
    app.update(Action::Help);
    assert_snapshot!(render(&app, 200, 50));
}

#[test]
fn empty_cluster() {
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(80, 24));
    let report = crate::model::report::build(
        &Inventory::default(),
        &Readings::new(),
        &ReportOptions::default(),
    );
    app.update(Action::Snapshot(Box::new(snapshot(
        Some(report),
        t0(),
        Health::Ok,
        Scope::default(),
    ))));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn loading() {
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(80, 24));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn forbidden_without_data() {
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(80, 24));
    app.update(Action::Snapshot(Box::new(snapshot(
        None,
        t0(),
        Health::Forbidden("virtualmachines.kubevirt.io is forbidden: User \"viewer\" cannot list resource \"virtualmachines\" in API group \"kubevirt.io\" at the cluster scope".into()),
        Scope::default(),
    ))));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn unreachable_with_old_data_200x50() {
    let mut app = app_with_data(3, 200, 50);
    app.update(Action::Snapshot(Box::new(snapshot(
        None,
        t0() + Duration::from_secs(30),
        Health::Unreachable("Get \"https://10.0.0.10:6443/apis/kubevirt.io/v1/virtualmachines\": dial tcp 10.0.0.10:6443: connect: connection refused".into()),
        Scope::default(),
    ))));
    app.update(Action::Tick(t0() + Duration::from_secs(31)));
    let screen = render(&app, 200, 50);
    assert!(
        screen.contains("STALE") && screen.contains("stale"),
        "{screen}"
    );
    assert_snapshot!(screen);
}

#[test]
fn stale_node_rows_are_marked() {
    let mut opts = ReportOptions::default();
    opts.stale_nodes.insert(
        "harv41".into(),
        "agent pod Pending: ImagePullBackOff".into(),
    );
    let report = build(&seed_inventory(), &seed_readings(0), &opts);
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(200, 12));
    app.update(Action::Snapshot(Box::new(snapshot(
        Some(report),
        t0(),
        Health::Ok,
        Scope::default(),
    ))));
    let screen = render(&app, 200, 12);
    let stale_lines: Vec<&str> = screen.lines().filter(|l| l.ends_with("stale")).collect();
    assert_eq!(stale_lines.len(), 2, "{screen}");
    assert!(stale_lines.iter().all(|l| l.contains("harv41")), "{screen}");
}

#[test]
fn a_dialog_taller_than_the_screen_keeps_its_question_visible() {
    let (mut app, fake) = fix_app(ApplyOutcome::Applied("patched".into()), 80, 14);
    press(&mut app, &fake, [Action::RemoveLimit]);
    let screen = render(&app, 80, 14);
    assert!(screen.contains("Apply this change? [y] yes"), "{screen}");
}

#[test]
fn detail_says_when_the_guest_figure_is_carried_from_an_earlier_smaps_read() {
    let mut app = app_with_data(8, 200, 50);
    let now = app
        .now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let selected = app.selected_row().unwrap().name.clone();
    for vm in app.details.iter_mut().filter(|v| v.name == selected) {
        assert!(vm.guest_resident_exact, "the seed data reads smaps");
        vm.guest_resident_carried_from = Some(now - 30);
    }
    app.update(Action::Open);
    let screen = render(&app, 200, 50);
    assert!(
        screen.contains("exact, from qemu's smaps read 30s ago"),
        "{screen}"
    );
}

/// A memory hotplug under way and a version nothing states: the detail view says both.
#[test]
fn detail_shows_the_running_guest_and_an_inferred_version() {
    let mut app = app_with_data(8, 200, 50);
    let selected = app.selected_row().unwrap().name.clone();
    let table = app.table.as_mut().unwrap();
    table.kubevirt.version_source = "inferredFromPod";
    table.kubevirt.inferred_versions = vec!["v0.57.0–v0.58.0".into()];
    for vm in app.details.iter_mut().filter(|v| v.name == selected) {
        vm.guest_running_bytes = vm.guest_bytes.map(|g| g / 2);
    }
    app.update(Action::Open);
    let screen = render(&app, 200, 50);
    assert!(screen.contains("guest running"), "{screen}");
    assert!(
        screen.contains("what qemu has: hotplug under way"),
        "{screen}"
    );
    assert!(
        screen.contains("v0.54.0 inferred: the pods' O is v0.57.0–v0.58.0's"),
        "{screen}"
    );
}

#[test]
fn detail_shows_swap_in_use_and_its_limit() {
    let mut app = app_with_data(8, 200, 50);
    let selected = app.selected_row().unwrap().name.clone();
    for vm in app.details.iter_mut().filter(|v| v.name == selected) {
        let cg = vm.cgroup.as_mut().expect("the seed data is live");
        cg.swap_bytes = Some(200 << 20);
        cg.swap_limit_bytes = Some(512 << 20);
    }
    app.update(Action::Open);
    let screen = render(&app, 200, 50);
    assert!(screen.contains("swap"), "{screen}");
    assert!(
        screen.contains("of 512MiB allowed; the headroom counts what is left"),
        "{screen}"
    );
}

/// A name with terminal controls (clear screen, a C1 CSI, a bidi override) is drawn without
/// them raw, in the table, the detail view and the messages that name the VM.
#[test]
fn hostile_names_reach_the_screen_escaped() {
    let mut report = seed_report(0);
    let bad = "vm\u{1b}[2J\u{9b}31m\u{202e}x";
    for vm in report.vms.iter_mut().filter(|v| v.name == "vm4") {
        vm.name = bad.into();
    }
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(160, 40));
    let snap = crate::session::dashboard::snapshot::Snapshot::of_report(
        Some(report.clone()),
        None,
        t0(),
        Health::Ok,
        Scope::default(),
    );
    app.update(Action::Snapshot(Box::new(snap)));
    let clean = |screen: &str| {
        assert!(
            !screen
                .chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
            "raw control {:?} in:\n{screen}",
            screen
                .chars()
                .find(|c| *c != '\n' && (c.is_control() || *c == '\u{202e}'))
        );
    };
    clean(&render(&app, 160, 40));
    // The detail view waiting for the row, then with it.
    let key = crate::tui::history::VmKey::new("default", bad);
    app.view = crate::tui::app::View::Detail(key.clone());
    clean(&render(&app, 160, 40));
    let row = report.vms.into_iter().find(|r| key.matches(r));
    app.update(Action::Detail(Box::new(
        crate::session::dashboard::snapshot::Detail {
            scope: Scope::default(),
            key: key.clone(),
            row,
        },
    )));
    clean(&render(&app, 160, 40));
}
