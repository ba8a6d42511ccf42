//! History from Prometheus (issue 20), end to end through the real binary against the demo
//! cluster, with a small Prometheus HTTP API v1 server in the test that speaks the contract:
//! `query_range` answers as a matrix, too many points refused with Prometheus's own 422, 401 and
//! 403 on demand. It checks the queries' shape and count (one per metric, never one per VM), the
//! retry with a coarser step, the figures in `-o json` and `-o wide`, the evidence in the
//! recommendation, and every failure as a sentence on stderr with the report still printed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

const MI: i64 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    NoKubeVirt,
    Unauthorized,
    Forbidden,
}

/// A VM of the demo: namespace, name, guest bytes.
type Vm = (String, String, i64);

#[derive(Clone)]
struct Fake {
    vms: Arc<Vec<Vm>>,
    mode: Mode,
    /// More points per series than this are refused (Prometheus's limit is 11,000).
    max_points: i64,
    seen: Arc<Mutex<Vec<String>>>,
    /// The `end` of every query asked.
    ends: Arc<Mutex<Vec<i64>>>,
}

fn points(start: i64, end: i64, step: i64) -> Vec<i64> {
    (0..)
        .map(|i| start + i * step)
        .take_while(|t| *t <= end)
        .collect()
}

/// The metric a query asks, after checking it has the contract's shape:
/// `max by (LABELS) (FUNC(METRIC{MATCHERS}[RANGE]))`.
fn metric_of(q: &str) -> &str {
    let rest = q.strip_prefix("max by (").expect(q);
    let (labels, rest) = rest.split_once(") (").expect(q);
    assert!(
        labels == "namespace,pod" || labels == "namespace,name",
        "{q}"
    );
    let (func, rest) = rest.split_once('(').expect(q);
    assert!(
        ["max_over_time", "min_over_time", "increase"].contains(&func),
        "{q}"
    );
    let (metric, rest) = rest.split_once('{').expect(q);
    let (_, range) = rest.rsplit_once("}[").expect(q);
    let secs = range.strip_suffix("s]))").expect(q);
    assert!(secs.parse::<u64>().is_ok(), "{q}");
    metric
}

fn value(
    metric: &str,
    guest: i64,
    target: bool,
    second_pod: bool,
    at_spike: bool,
    first: bool,
) -> Option<f64> {
    let rss = guest
        + if target && at_spike {
            702 * MI
        } else {
            100 * MI
        };
    Some(match metric {
        "container_memory_rss" => rss,
        "container_memory_working_set_bytes" => rss + 30 * MI,
        "container_memory_usage_bytes" => rss + 60 * MI,
        // The second pod's limit was raised (a reservation): the spike (usage 762Mi above the
        // guest) fits under it, as it must in a memory cgroup.
        "container_spec_memory_limit_bytes" => {
            guest + if second_pod { 1024 * MI } else { 256 * MI }
        }
        "container_oom_events_total" => i64::from(target && first),
        _ => return None,
    } as f64)
}

fn matrix(result: Vec<Value>) -> Response {
    Json(json!({"status":"success","data":{"resultType":"matrix","result":result}})).into_response()
}

async fn query_range(State(f): State<Fake>, Query(p): Query<HashMap<String, String>>) -> Response {
    let q = p.get("query").cloned().unwrap_or_default();
    f.seen.lock().unwrap().push(q.clone());
    match f.mode {
        Mode::Unauthorized => return (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response(),
        Mode::Forbidden => return (StatusCode::FORBIDDEN, "Forbidden\n").into_response(),
        _ => {}
    }
    let num = |k: &str| {
        p.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as i64)
    };
    let (Some(start), Some(end), Some(step)) = (num("start"), num("end"), num("step")) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"status":"error","errorType":"bad_data","error":"missing start, end or step"}))).into_response();
    };
    if (end - start) / step > f.max_points {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"status":"error","errorType":"execution","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"})),
        )
            .into_response();
    }
    f.ends.lock().unwrap().push(end);
    let metric = metric_of(&q).to_string();
    let ts = points(start, end, step);
    let half = ts.len() / 2;
    let spike = ts.len() * 3 / 4;
    let mut result = Vec::new();
    for (i, (ns, name, guest)) in f.vms.iter().enumerate() {
        let target = i == 0;
        if metric == "kubevirt_vmi_memory_domain_bytes" {
            if f.mode == Mode::Serve {
                let values: Vec<Value> = ts.iter().map(|t| json!([t, guest.to_string()])).collect();
                result.push(json!({"metric":{"namespace":ns,"name":name},"values":values}));
            }
            continue;
        }
        for (pod, range) in [("aaaaa", 0..half), ("bbbbb", half..ts.len())] {
            let second = pod == "bbbbb";
            let values: Vec<Value> = range
                .clone()
                .filter_map(|k| {
                    let v = value(&metric, *guest, target, second, k == spike, k == 2)?;
                    Some(json!([ts[k], v.to_string()]))
                })
                .collect();
            if !values.is_empty() {
                result.push(json!({"metric":{"namespace":ns,"pod":format!("virt-launcher-{name}-{pod}")},"values":values}));
            }
        }
    }
    matrix(result)
}

async fn serve(f: Fake) -> SocketAddr {
    let app = Router::new()
        .route("/api/v1/query_range", get(query_range))
        .with_state(f);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn plugin(args: &[&str]) -> Run {
    let state = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("XDG_STATE_HOME", state.path())
        .env("HOME", state.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("VMMEM_PROMETHEUS_TOKEN")
        .output()
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The demo's running VMs with their guest sizes, from the tool itself without history.
async fn demo_vms() -> Vec<Vm> {
    let run = plugin(&["list", "--demo", "-o", "json", "--history", "off"]).await;
    assert!(run.ok, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let vms: Vec<Vm> = v["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "Running" && r["guestBytes"].as_i64().is_some())
        .filter(|r| r["hugepagesBytes"].is_null())
        .map(|r| {
            (
                r["namespace"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["guestBytes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(vms.len() >= 5, "the demo has running VMs: {vms:?}");
    assert!(v["vms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("prometheus").is_none()));
    vms
}

async fn fake(mode: Mode, max_points: i64) -> (Fake, String) {
    let f = Fake {
        vms: Arc::new(demo_vms().await),
        mode,
        max_points,
        seen: Arc::default(),
        ends: Arc::default(),
    };
    let addr = serve(f.clone()).await;
    (f, format!("http://{addr}"))
}

fn row<'a>(report: &'a Value, vm: &Vm) -> &'a Value {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["namespace"] == vm.0.as_str() && r["name"] == vm.1.as_str())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_history_becomes_figures_evidence_and_columns() {
    // 100 points at most: the first step (one hour, 168 points) is refused.
    let (f, url) = fake(Mode::Serve, 100).await;
    let run = list_json(&url, &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "note: history: the last 7 d from Prometheus at {url} (one point per 4 h)"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("refused 168 points per series for container_memory_working_set_bytes")
            && run.stderr.contains("asked again with one point per 4 h"),
        "{}",
        run.stderr
    );
    // One query per metric for every VM (8), plus the refused one: never one per VM.
    let seen = f.seen.lock().unwrap().clone();
    f.seen.lock().unwrap().clear();
    assert_eq!(seen.len(), 9, "{seen:#?}");
    let metrics: std::collections::BTreeSet<&str> = seen.iter().map(|q| metric_of(q)).collect();
    assert_eq!(metrics.len(), 8, "{metrics:?}");
    assert!(
        seen.iter().all(|q| !q.contains("namespace=")),
        "the demo's scope is every namespace: {seen:#?}"
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let target = &f.vms[0];
    let h = &row(&report, target)["prometheus"];
    assert_eq!(h["source"], url.as_str());
    assert_eq!(h["stepSeconds"], 4 * 3600);
    assert_eq!(h["peakOverhead"]["bytes"], 702 * MI, "{h:#}");
    assert_eq!(h["peakOverhead"]["bound"], "lower");
    assert_eq!(h["peakUsage"]["bytes"], target.2 + 762 * MI);
    assert_eq!(
        h["pods"].as_array().unwrap().len(),
        2,
        "a restart does not cut the history"
    );
    assert_eq!(h["oomKills"].as_array().unwrap().len(), 1, "{h:#}");
    let change = &h["limitChanges"][0];
    assert_eq!(change["fromBytes"], target.2 + 256 * MI);
    assert_eq!(change["toBytes"], target.2 + 1024 * MI);
    let rec = &row(&report, target)["recommendation"];
    let items: Vec<&Value> = rec["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "prometheus")
        .collect();
    assert_eq!(items.len(), 1, "{rec:#}");
    assert_eq!(items[0]["bytes"], 702 * MI);
    assert_eq!(rec["decidedBy"], "prometheus", "{rec:#}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Prometheus's peak on ")
            && reason.contains("UTC had 702MiB outside guest RAM"),
        "{reason}"
    );
    // Another VM: 100Mi outside its guest all week.
    let other = &row(&report, &f.vms[1])["prometheus"];
    assert_eq!(other["peakOverhead"]["bytes"], 100 * MI, "{other:#}");

    // fix decides with the same evidence.
    let fix = plugin(&[
        "fix",
        &target.1,
        "-n",
        &target.0,
        "--demo",
        "--dry-run",
        "-o",
        "json",
        "--prometheus",
        &url,
    ])
    .await;
    assert!(fix.ok, "{}", fix.stderr);
    let plan: Value = serde_json::from_str(&fix.stdout).unwrap();
    let plan = &plan["plan"];
    assert!(
        plan["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "prometheus" && e["bytes"] == 702 * MI),
        "{plan:#}"
    );
    assert_eq!(plan["reserveBytes"], rec["reserveBytes"], "{plan:#}");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .starts_with("Prometheus's peak on "),
        "{plan:#}"
    );

    let wide = plugin(&["list", "--demo", "-o", "wide", "--prometheus", &url]).await;
    assert!(wide.ok, "{}", wide.stderr);
    let head = wide.stdout.lines().next().unwrap();
    let names: Vec<&str> = head
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        names[names.len() - 4..],
        ["PEAK USAGE", "PEAK OUTSIDE GUEST", "PEAK AT", "PEAK OOMS"],
        "{head}"
    );
    let line = wide
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(target.1.as_str()))
        .unwrap();
    assert!(line.contains("≥702Mi"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_exporter_is_named_and_the_spec_s_guest_stands_in() {
    let (f, url) = fake(Mode::NoKubeVirt, 11_000).await;
    let run = list_json(&url, &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("has no kubevirt_vmi_memory_domain_bytes (KubeVirt's VMI metrics (virt-handler's /metrics is not scraped)"),
        "{}",
        run.stderr
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let h = &row(&report, &f.vms[0])["prometheus"];
    assert_eq!(h["stepSeconds"], 3600);
    assert_eq!(h["peakOverhead"]["bytes"], 702 * MI, "{h:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_an_unreachable_server_are_sentences_and_the_report_stands() {
    let (f, url) = fake(Mode::Unauthorized, 11_000).await;
    for (args, said) in [
        (vec![], "refused the kubeconfig user's credentials (pass --prometheus-token if it wants another) (401 Unauthorized)"),
        (vec!["--prometheus-token", "wrong"], "refused the --prometheus-token (401 Unauthorized)"),
    ] {
        let mut all = vec!["list", "--demo", "-o", "json", "--prometheus", &url];
        all.extend(args);
        let run = plugin(&all).await;
        assert!(run.ok, "{}", run.stderr);
        assert!(run.stderr.contains(&format!("note: no history from Prometheus: Prometheus at {url} {said}")), "{}", run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        assert!(report["vms"].as_array().unwrap().iter().all(|r| r.get("prometheus").is_none()));
    }
    // The server's failure stops the other queries: one asked each run.
    assert_eq!(f.seen.lock().unwrap().len(), 2);

    let (_, url) = fake(Mode::Forbidden, 11_000).await;
    let run = list_json(&url, &[]).await;
    assert!(
        run.stderr.contains(&format!("Prometheus at {url} answered 403 Forbidden to the kubeconfig user: that user may not query it")),
        "{}",
        run.stderr
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = list_json(&gone, &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "no history from Prometheus: cannot reach Prometheus at {gone}: "
        )),
        "{}",
        run.stderr
    );

    let run = plugin(&[
        "list",
        "--demo",
        "-o",
        "json",
        "--prometheus",
        "http://prom.example:9090",
        "--prometheus-token",
        "t",
    ])
    .await;
    assert!(
        run.stderr.contains(
            "refusing to send --prometheus-token in clear text to http://prom.example:9090"
        ),
        "{}",
        run.stderr
    );
}

/// `list --demo -o json --prometheus URL EXTRA…`.
async fn list_json(url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["list", "--demo", "-o", "json", "--prometheus", url];
    args.extend_from_slice(extra);
    plugin(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_off_asks_nothing() {
    let (f, url) = fake(Mode::Serve, 11_000).await;
    let run = list_json(&url, &["--history", "off"]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(f.seen.lock().unwrap().is_empty());
    assert!(!run.stderr.contains("history"), "{}", run.stderr);
    let run = plugin(&["list", "--demo", "--history", "45m"]).await;
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("--history \"45m\" is outside 1h to 30d (or off)"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_ends_where_prometheus_until_says() {
    let (f, url) = fake(Mode::Serve, 11_000).await;
    let until = "2026-11-21T22:00:00Z";
    let run = list_json(&url, &["--prometheus-until", until]).await;
    assert!(run.ok, "{}", run.stderr);
    let ends = f.ends.lock().unwrap().clone();
    assert_eq!(ends.len(), 8, "{ends:?}");
    // 2026-11-21T22:00:00Z
    assert!(ends.iter().all(|e| *e == 1_795_298_400), "{ends:?}");
    assert!(
        run.stderr.contains(&format!("history: the 7 d to {until}")),
        "{}",
        run.stderr
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let h = &report["vms"][0]["prometheus"];
    assert_eq!(h["end"], until, "{h}");
    for (bad, says) in [
        ("yesterday", "is not an RFC 3339 time"),
        ("2999-01-01T00:00:00Z", "is in the future"),
    ] {
        let run = plugin(&["list", "--demo", "--prometheus-until", bad]).await;
        assert!(!run.ok);
        assert!(run.stderr.contains(says), "{bad}: {}", run.stderr);
    }
}

// Through the API server's service proxy: a small front that answers as the API server does
// (Kubernetes Status bodies for 403/404) for the service lookups and the proxied queries.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Front {
    /// kube-prometheus's service, proxied.
    Proxied,
    /// The service is there, the proxy refused (RBAC: no `get` on `services/proxy`).
    ProxyForbidden,
    /// No monitoring service; one namespace's lookup refused (RBAC: no `get` on `services`).
    NoneSomeForbidden,
    /// No monitoring at all.
    Nothing,
}

#[derive(Clone)]
struct FrontState {
    mode: Front,
    seen: Arc<Mutex<Vec<String>>>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        Json(json!({"kind":"Status","apiVersion":"v1","status":"Failure","reason":reason,"message":message,"code":code})),
    )
        .into_response()
}

async fn front(
    State(s): State<FrontState>,
    uri: axum::http::Uri,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    s.seen.lock().unwrap().push(path.clone());
    let segs: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    match (s.mode, segs.as_slice()) {
        (Front::Proxied | Front::ProxyForbidden, ["api", "v1", "namespaces", "monitoring", "services", "prometheus-k8s"]) => {
            Json(json!({"kind":"Service","metadata":{"name":"prometheus-k8s","namespace":"monitoring"}})).into_response()
        }
        (Front::ProxyForbidden, ["api", "v1", "namespaces", "monitoring", "services", svc, "proxy", ..]) => status(
            403,
            "Forbidden",
            &format!("services \"{svc}\" is forbidden: User \"viewer\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"monitoring\""),
        ),
        (Front::Proxied, ["api", "v1", "namespaces", "monitoring", "services", "http:prometheus-k8s:9090", "proxy", "api", "v1", "query_range"]) => {
            let q = p.get("query").cloned().unwrap_or_default();
            let metric = metric_of(&q).to_string();
            assert!(q.contains("namespace=\"prod\""), "the scope's namespace: {q}");
            let start: i64 = p["start"].parse().unwrap();
            let v = match metric.as_str() {
                "container_memory_rss" => 2048 * MI + 300 * MI,
                "container_memory_usage_bytes" => 2048 * MI + 400 * MI,
                _ => return matrix(vec![]),
            };
            matrix(vec![json!({"metric":{"namespace":"prod","pod":"virt-launcher-db-x1y2z"},"values":[[start + 3600, v.to_string()]]})])
        }
        (Front::NoneSomeForbidden, ["api", "v1", "namespaces", "openshift-monitoring", "services", name]) => status(
            403,
            "Forbidden",
            &format!("services \"{name}\" is forbidden: User \"viewer\" cannot get resource \"services\""),
        ),
        _ => status(404, "NotFound", "the server could not find the requested resource"),
    }
}

async fn through_front(mode: Front) -> (vmmem::session::prometheus::Loaded, Vec<String>) {
    let s = FrontState {
        mode,
        seen: Arc::default(),
    };
    let app = Router::new().fallback(front).with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let kc = kube::config::Kubeconfig::from_yaml(&format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: k, cluster: {{server: 'http://{addr}'}}}}]\nusers: [{{name: u, user: {{token: viewer-token}}}}]\ncontexts: [{{name: c, context: {{cluster: k, user: u, namespace: prod}}}}]\n"
    ))
    .unwrap();
    let conn = vmmem::cluster::connect::from_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let vmi: vmmem::model::objects::VirtualMachineInstance = serde_json::from_value(json!({
        "metadata": {"name": "db", "namespace": "prod", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"domain": {"memory": {"guest": "2Gi"}, "resources": {}}},
    }))
    .unwrap();
    let inv = vmmem::model::inventory::Inventory {
        vmis: vec![Arc::new(vmi)],
        ..Default::default()
    };
    let opts = vmmem::session::Options::default();
    let now = 1_796_625_612;
    let loaded = vmmem::session::prometheus::load(&opts, &conn, &inv, now).await;
    let seen = s.seen.lock().unwrap().clone();
    (loaded, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_known_service_is_found_and_queried_through_the_api_server() {
    let (loaded, seen) = through_front(Front::Proxied).await;
    // The front serves no KubeVirt metric: said, and the spec's guest stands in.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("has no kubevirt_vmi_memory_domain_bytes"),
        "{:?}",
        loaded.warnings
    );
    let status = loaded.status.unwrap();
    assert!(
        status.contains("from Prometheus at monitoring/prometheus-k8s:9090 via the API server"),
        "{status}"
    );
    assert!(status.ends_with("for 1 of 1 VMs"), "{status}");
    let h = &loaded.histories[&vmmem::model::evidence::VmKey::new("prod", "db")];
    assert_eq!(h.peak_overhead.unwrap().bytes, 300 * MI);
    // Harvester's and OpenShift's services were looked for first.
    assert_eq!(
        seen[..3],
        [
            "/api/v1/namespaces/cattle-monitoring-system/services/rancher-monitoring-prometheus",
            "/api/v1/namespaces/openshift-monitoring/services/thanos-querier",
            "/api/v1/namespaces/monitoring/services/prometheus-k8s",
        ]
    );
    assert_eq!(seen.len(), 3 + 8, "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_missing_permission_is_named() {
    let (loaded, _) = through_front(Front::ProxyForbidden).await;
    assert!(loaded.histories.is_empty() && loaded.status.is_none());
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].starts_with("no history from Prometheus: the API server refused the service proxy to monitoring/prometheus-k8s:9090: your user may not get services/proxy in namespace monitoring (RBAC: get on services/proxy); it said: services \"http:prometheus-k8s:9090\" is forbidden"),
        "{}",
        loaded.warnings[0]
    );
    let (loaded, _) = through_front(Front::NoneSomeForbidden).await;
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0];
    assert!(w.contains("openshift-monitoring/thanos-querier:9091 (OpenShift cluster monitoring) could not be looked up: your user may not get services in namespace openshift-monitoring (RBAC: get on services)"), "{w}");
    assert!(
        w.contains("monitoring/prometheus-k8s:9090 (kube-prometheus) is not there"),
        "{w}"
    );
    // A cluster without monitoring: nothing to say, nothing asked but the lookups.
    let (loaded, seen) = through_front(Front::Nothing).await;
    assert!(loaded.warnings.is_empty() && loaded.status.is_none() && loaded.histories.is_empty());
    assert_eq!(seen.len(), 4);
}
