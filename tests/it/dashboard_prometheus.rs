//! The dashboard never waits for Prometheus (issue 20): the real binary's dashboard (tmux) on the
//! demo cluster with `--prometheus` pointing at a Prometheus HTTP API in the test that takes the
//! connection and holds every `query_range` until the test lets it answer. The rows with live
//! data come up while the queries hang, the detail view says the history is loading, and once
//! the Prometheus answers the detail view shows the history.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::common;
use crate::common::tmux::{row, Tmux};

const MI: i64 = 1 << 20;

/// A Prometheus that answers only once `gate` is true.
#[derive(Clone)]
struct Held {
    gate: tokio::sync::watch::Receiver<bool>,
    /// Queries received (answered or not).
    asked: Arc<AtomicUsize>,
    /// The VM it has history of: namespace, name, guest bytes.
    vm: Arc<(String, String, i64)>,
}

/// The figure of `metric` for the VM: 123Mi outside its guest, a limit 1Gi above it.
fn figure(metric: &str, guest: i64) -> Option<i64> {
    Some(match metric {
        "container_memory_rss" => guest + 123 * MI,
        "container_memory_working_set_bytes" => guest + 200 * MI,
        "container_memory_usage_bytes" => guest + 300 * MI,
        "container_spec_memory_limit_bytes" => guest + 1024 * MI,
        "kubevirt_vmi_memory_domain_bytes" => guest,
        _ => return None,
    })
}

async fn query_range(State(h): State<Held>, Query(p): Query<HashMap<String, String>>) -> Response {
    h.asked.fetch_add(1, Ordering::SeqCst);
    let mut gate = h.gate.clone();
    // Held: the connection stays open with no answer until the test opens the gate.
    if gate.wait_for(|open| *open).await.is_err() {
        return ().into_response();
    }
    let q = p.get("query").cloned().unwrap_or_default();
    let num = |k: &str| p.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap() as i64;
    let (start, end, step) = (num("start"), num("end"), num("step"));
    let (ns, name, guest) = &*h.vm;
    // `max by (LABELS) (FUNC(METRIC{MATCHERS}[STEP]))`.
    let metric = q
        .split('{')
        .next()
        .and_then(|head| head.rsplit('(').next())
        .unwrap_or_default()
        .to_string();
    let result = match figure(&metric, *guest) {
        Some(v) => {
            let values: Vec<Value> = (0..)
                .map(|i| start + i * step)
                .take_while(|t| *t <= end)
                .map(|t| json!([t, v.to_string()]))
                .collect();
            let labels = if metric.starts_with("kubevirt_") {
                json!({"namespace": ns, "name": name})
            } else {
                json!({"namespace": ns, "pod": format!("virt-launcher-{name}-q7x2z"), "container": "compute"})
            };
            vec![json!({"metric": labels, "values": values})]
        }
        None => Vec::new(),
    };
    Json(json!({"status":"success","data":{"resultType":"matrix","result":result}})).into_response()
}

/// The demo's `name`: its namespace and guest size, from the tool without history.
fn demo_vm(rt: &tokio::runtime::Runtime, name: &str, home: &Path) -> (String, String, i64) {
    let args = ["list", "--demo", "-o", "json", "--history", "off"];
    let v = rt.block_on(common::plugin_json(
        &args,
        &home.join("no-kubeconfig"),
        home,
    ));
    let r = v["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("the demo has {name}"));
    (
        r["namespace"].as_str().unwrap().to_string(),
        name.to_string(),
        r["guestBytes"].as_i64().unwrap(),
    )
}

#[test]
fn the_dashboard_shows_live_rows_while_prometheus_hangs_then_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let vm = demo_vm(&rt, "memhold-vm", dir.path());
    let guest = vm.2;
    let (open, gate) = tokio::sync::watch::channel(false);
    let held = Held {
        gate,
        asked: Arc::default(),
        vm: Arc::new(vm),
    };
    let app = Router::new()
        .route("/api/v1/query_range", get(query_range))
        .with_state(held.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let d = dir.path().display();
    let bin = env!("CARGO_BIN_EXE_kubectl-vmmem");
    let script = format!(
        "{bin} top --demo --refresh 1s --prometheus {url}; echo \"EXITED rc=$?\"; sleep 60"
    );
    let state = format!("{d}/state");
    let env = [("NO_COLOR", ""), ("XDG_STATE_HOME", state.as_str())];
    let socket = format!("vmmem-e2e-promhang-{}", std::process::id());
    let timing = (Duration::from_secs(30), Duration::from_millis(100));
    let t = Tmux::start(socket, &script, (180, 80), &env, timing);

    // The rows with live data come within the usual time, while every query is held.
    let started = Instant::now();
    let s = t.wait_for("memhold-vm's row with live data", |s| {
        row(s, "memhold-vm")
            .is_some_and(|l| l.contains("/379.0MiB") && l.trim_end().ends_with("agent"))
    });
    // The load starts in the background with the first refresh: its query may reach the
    // Prometheus just after the rows are drawn, never much later. Nothing is answered until
    // the test releases it below, so the rows above came while the history could not.
    let asked_by = Instant::now() + Duration::from_secs(10);
    while held.asked.load(Ordering::SeqCst) == 0 && Instant::now() < asked_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        held.asked.load(Ordering::SeqCst) >= 1,
        "the dashboard never asked the Prometheus within 10 s of its rows:\n{s}"
    );
    t.filter_to_one("memhold");
    t.open_details("default/memhold-vm");
    let loading = format!("history: loading the last 7 d from Prometheus at {url}…");
    t.wait_for("the history loading", |s| s.contains(&loading));
    // Refreshes keep coming while the load hangs: for 5 s, the data is never more than 2 s old.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let s = t.screen();
        assert!(
            ["data: 0s old", "data: 1s old", "data: 2s old"]
                .iter()
                .any(|fresh| s.contains(fresh)),
            "a refresh waited for the Prometheus:\n{s}"
        );
    }
    let held_for = started.elapsed();
    assert_eq!(
        held.asked.load(Ordering::SeqCst),
        1,
        "one query in flight, held, and no second load started beside it"
    );

    open.send(true).unwrap();
    let s = t.wait_for("the history from Prometheus", |s| {
        s.contains("History (the last 7 d, from Prometheus)") && !s.contains(&loading)
    });
    assert!(
        s.contains("outside guest    at least 123MiB"),
        "the detail view's history:\n{s}"
    );
    let usage = vmmem::units::human(guest + 300 * MI);
    assert!(
        s.contains(&format!("peak usage       {usage} on ")),
        "{usage}:\n{s}"
    );
    assert_eq!(held.asked.load(Ordering::SeqCst), 8, "one query per metric");
    eprintln!("Prometheus was held for {held_for:?}: the rows, the loading line and 5 s of refreshes came meanwhile");
    t.keys(&["Escape", "q"]);
    t.wait_for("exit", |s| s.contains("EXITED rc=0"));
}
