//! The detail view with history from Prometheus (issue 20): the week as a chart against the limit
//! and the budget, and the figures in words.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::model::evidence::{Bound, VmKey};
use crate::model::prom_history::{ChartPoint, LimitChange, OverheadPeak, PeakAt, VmHistory};
use crate::tui::action::Action;

const MI: i64 = 1 << 20;
const H: i64 = 3600;

fn week(end: i64, guest: i64) -> VmHistory {
    let start = end - 168 * H;
    let chart = (1..=168)
        .map(|i| {
            let at = start + i * H;
            let outside = if i == 100 { 702 * MI } else { 120 * MI };
            ChartPoint {
                at,
                usage: Some(guest + outside + 40 * MI),
                overhead: Some(outside),
                limit: Some(guest + 600 * MI),
            }
        })
        .collect();
    VmHistory {
        source: "monitoring/prometheus-k8s:9090 via the API server".into(),
        start,
        end,
        step_seconds: H,
        peak_working_set: Some(PeakAt {
            bytes: guest + 720 * MI,
            at: start + 100 * H,
        }),
        peak_usage: Some(PeakAt {
            bytes: guest + 742 * MI,
            at: start + 100 * H,
        }),
        peak_overhead: Some(OverheadPeak {
            bytes: 702 * MI,
            at: start + 100 * H,
            bound: Bound::Lower,
        }),
        oom_kills: vec![start + 101 * H],
        limit_changes: vec![LimitChange {
            at: start + 120 * H,
            from_bytes: guest + 400 * MI,
            to_bytes: guest + 600 * MI,
        }],
        pods: vec!["virt-launcher-a-1".into(), "virt-launcher-a-2".into()],
        note: None,
        set_aside: None,
        chart,
    }
}

fn app_with_history(w: u16, h: u16) -> App {
    let end = t0()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut opts = ReportOptions::default();
    // Every VM has the week, whichever the detail view opens first.
    for row in &seed_report(0).vms {
        let key = VmKey::new(&row.namespace, &row.name);
        let guest = row.guest_bytes.unwrap_or(2048 * MI);
        opts.prometheus.insert(key, Arc::new(week(end, guest)));
    }
    let report = build(&seed_inventory(), &seed_readings(0), &opts);
    assert!(
        report.vms.iter().all(|r| r.prometheus.is_some()),
        "{:?}",
        report
            .vms
            .iter()
            .map(|r| (&r.namespace, &r.name))
            .collect::<Vec<_>>()
    );
    let mut app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    app.update(Action::Resize(w, h));
    app.update(Action::Snapshot(Box::new(snapshot(
        Some(report),
        t0(),
        Health::Ok,
        Scope::default(),
    ))));
    app.update(Action::Tick(t0() + Duration::from_secs(1)));
    app.update(Action::Open);
    app
}

#[test]
fn the_detail_view_draws_the_week_and_says_its_figures() {
    let app = app_with_history(200, 90);
    let screen = render(&app, 200, 90);
    for want in [
        "History (the last 7 d, from Prometheus)",
        "source           monitoring/prometheus-k8s:9090 via the API server",
        "outside guest    at least 702MiB on ",
        "(RSS less the guest:",
        "OOM kills        1: ",
        "limit changed    ",
        "launcher pods    2 (one point per 60 min)",
        "the last 7 d",
    ] {
        assert!(screen.contains(want), "{want:?} missing:\n{screen}");
    }
    // The chart: braille dots between the axis labels.
    assert!(
        screen
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "{screen}"
    );
}

#[test]
fn a_small_terminal_leaves_the_chart_out_but_keeps_the_words() {
    let app = app_with_history(80, 24);
    let screen = render(&app, 80, 24);
    assert!(
        !screen
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "{screen}"
    );
}
