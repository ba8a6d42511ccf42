//! The dashboard's cluster source and screen while the API server goes away and comes back
//! (the simulator in this process stops serving and serves again on the same address): the
//! banner says the server is unreachable and the rows are marked stale instead of freezing
//! silently, and everything is current again once the server is back.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use vmmem::cli::args::Cli;
use vmmem::session::dashboard::cluster::ClusterSource;
use vmmem::session::dashboard::cluster_fix::ClientSlot;
use vmmem::session::dashboard::snapshot::{DataSource, Health, Request, Scope, Snapshot};
use vmmem::tui::action::Action;
use vmmem::tui::app::App;

fn screen(app: &App) -> String {
    let mut term = Terminal::new(TestBackend::new(160, 30)).unwrap();
    term.draw(|f| vmmem::tui::view::draw(f, app)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Fetch until `pred` holds (each fetch is one dashboard refresh).
async fn fetch_until(
    source: &mut ClusterSource,
    scope: &Scope,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let request = Request {
            scope: scope.clone(),
            ..Request::default()
        };
        let s = source.fetch(&request).await;
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; last health {:?}",
            s.health
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn live_rows(s: &Snapshot) -> usize {
    s.table.as_ref().map_or(0, |r| {
        r.rows
            .iter()
            .filter(|v| v.usage_bytes.is_some() && !v.stale)
            .count()
    })
}

/// A 160x30 dashboard of `scope` with a 2 s refresh.
fn app_160x30(scope: &Scope) -> App {
    let mut app = App::new(
        scope.clone(),
        Duration::from_secs(2),
        false,
        SystemTime::now(),
    );
    app.update(Action::Resize(160, 30));
    app
}

/// The dashboard's cluster source for `top -A --live agent` with `extra` flags against `kc`.
fn agent_source(kc: &Path, extra: &[&str]) -> ClusterSource {
    // In this process: no peak store, so nothing is written to the user's state directory.
    let head = [
        "kubectl-vmmem",
        "top",
        "-A",
        "--live",
        "agent",
        "--history",
        "off",
    ];
    let tail = ["--kubeconfig", kc.to_str().unwrap()];
    let cli = Cli::try_parse_from(head.iter().chain(extra).chain(&tail)).unwrap();
    ClusterSource::new(
        vmmem::cli::options::options(&cli.global).unwrap(),
        ClientSlot::default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_says_the_server_is_gone_and_recovers_when_it_returns() {
    let mut sim = common::demo().await;
    let (_dir, kc) = common::admin_kubeconfig(&sim);
    let mut source = agent_source(&kc, &["--request-timeout", "3s"]);
    let scope = Scope { namespace: None };
    let mut app = app_160x30(&scope);

    let first = fetch_until(&mut source, &scope, "live numbers", |s| {
        s.health == Health::Ok && live_rows(s) >= 10
    })
    .await;
    app.update(Action::Snapshot(Box::new(first)));
    let s = screen(&app);
    assert!(!s.contains("UNREACHABLE"), "{s}");
    assert!(s.contains("web-01"), "{s}");

    sim.stop_server().await;
    let gone = fetch_until(&mut source, &scope, "the unreachable state", |s| {
        matches!(s.health, Health::Unreachable(_))
    })
    .await;
    let Health::Unreachable(why) = &gone.health else {
        unreachable!()
    };
    assert!(why.starts_with("watching https://127.0.0.1:"), "{why}");
    // The last objects are still there, every row marked stale.
    let table = gone.table.as_ref().expect("the last objects are kept");
    assert_eq!(table.rows.len(), 23);
    app.update(Action::Snapshot(Box::new(gone.clone())));
    app.update(Action::Tick(SystemTime::now()));
    let s = screen(&app);
    assert!(
        s.contains(
            "UNREACHABLE (showing the last data, marked stale): watching https://127.0.0.1:"
        ),
        "a visible status line: {s}"
    );
    assert!(s.contains("(showing the last data, marked stale)"), "{s}");
    assert!(s.contains("web-01"), "the rows stay: {s}");
    assert!(app.data_stale());

    sim.restart_server().await.unwrap();
    sim.bump_vm("default", "web-01").unwrap();
    let back = fetch_until(&mut source, &scope, "recovery with live numbers", |s| {
        s.health == Health::Ok && live_rows(s) >= 10
    })
    .await;
    assert!(back.table.as_ref().unwrap().rows.len() == 23);
    app.update(Action::Snapshot(Box::new(back)));
    app.update(Action::Tick(SystemTime::now()));
    let s = screen(&app);
    assert!(!s.contains("UNREACHABLE"), "{s}");
    assert!(!app.data_stale(), "{s}");
    source.shutdown().await;
    let client = sim.client().await.unwrap();
    let left = common::live::agent_pods(&client).await;
    assert!(
        left.is_empty(),
        "the dashboard's agents are deleted at the end, also those made before the outage"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_node_is_stale_with_its_reason_on_the_dashboard() {
    let sim = common::demo().await;
    let (_dir, kc) = common::admin_kubeconfig(&sim);
    sim.hang_node_exec("harvester-node-2", true);
    let mut source = agent_source(&kc, &[]);
    let scope = Scope { namespace: None };
    let snap = fetch_until(&mut source, &scope, "a round with live numbers", |s| {
        live_rows(s) >= 5
    })
    .await;
    assert_eq!(snap.health, Health::Ok, "the API is fine; one node is not");
    let report = snap.table.as_ref().unwrap();
    let reason = report
        .warnings
        .iter()
        .find(|w| w.starts_with("live data for node harvester-node-2 is stale: "))
        .unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(reason.ends_with("did not finish within 10s"), "{reason}");
    for vm in report.rows.iter().filter(|v| v.phase == "Running") {
        let on_hung = vm.node.as_deref() == Some("harvester-node-2");
        assert_eq!(vm.stale, on_hung, "{}", vm.name);
        assert_eq!(vm.usage_bytes.is_some(), !on_hung, "{}", vm.name);
    }
    let mut app = app_160x30(&scope);
    app.update(Action::Snapshot(Box::new(snap)));
    let s = screen(&app);
    assert!(
        s.contains("warning: live data for node harvester-node-2 is stale: exec into pod"),
        "the banner gives the reason: {s}"
    );
    source.shutdown().await;
    sim.shutdown().await;
}
