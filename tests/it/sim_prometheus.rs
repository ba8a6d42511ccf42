//! The simulator's monitoring (issue 20), through the kubeconfig the tool uses: cAdvisor's metrics
//! per node through the API server's node proxy, and rancher-monitoring's Prometheus through the
//! service proxy answering the contract's queries from a week of history, with Prometheus' own
//! errors.

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::common;
use crate::common::prom_http::encode;

const PROXY: &str = "/api/v1/namespaces/cattle-monitoring-system/services/http:rancher-monitoring-prometheus:9090/proxy";

/// GET `path` through `client`: the status and the body.
async fn get(client: &kube::Client, path: &str) -> (u16, Vec<u8>) {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

async fn prom(client: &kube::Client, api: &str, params: &str) -> (u16, Value) {
    let (status, body) = get(client, &format!("{PROXY}/api/v1/{api}?{params}")).await;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{status}: {}", String::from_utf8_lossy(&body)));
    (status, v)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rows(status: u16, v: &Value) -> Vec<Value> {
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("success")),
        "{v}"
    );
    v["data"]["result"].as_array().cloned().unwrap()
}

/// The demo as `--demo` runs it: with rancher-monitoring's Prometheus.
async fn demo_with_prometheus() -> vmmem_sim::SimHandle {
    common::start(vmmem_sim::Scenario::demo().unwrap()).await
}

fn peak(row: &Value) -> f64 {
    row["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
        .fold(f64::MIN, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_lists_rancher_monitorings_prometheus_service() {
    let sim = demo_with_prometheus().await;
    let client = sim.client().await.unwrap();
    let services: Api<Service> = Api::all(client);
    let names: Vec<String> = services
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| {
            format!(
                "{}/{}",
                s.metadata.namespace.unwrap_or_default(),
                s.metadata.name.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        names,
        ["cattle-monitoring-system/rancher-monitoring-prometheus"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelets_cadvisor_metrics_name_the_compute_container_like_the_summary() {
    let sim = demo_with_prometheus().await;
    sim.freeze_model_time(true);
    let client = sim.client().await.unwrap();
    let (status, body) = get(
        &client,
        "/api/v1/nodes/harvester-node-1/proxy/metrics/cadvisor",
    )
    .await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("# TYPE container_oom_events_total counter\n"));
    let (_, summary) = get(
        &client,
        "/api/v1/nodes/harvester-node-1/proxy/stats/summary",
    )
    .await;
    let summary: Value = serde_json::from_slice(&summary).unwrap();
    let pods = summary["pods"].as_array().unwrap();
    assert!(!pods.is_empty());
    for pod in pods {
        let name = pod["podRef"]["name"].as_str().unwrap();
        let compute = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "compute")
            .unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("container_memory_working_set_bytes{container=\"compute\",")
                    && l.contains(&format!("pod=\"{name}\""))
            })
            .unwrap_or_else(|| panic!("no compute working set for {name}:\n{text}"));
        let value: i64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(value, compute["memory"]["workingSetBytes"], "{line}");
        assert!(line.contains("id=\"/kubepods.slice/"), "{line}");
        // the pod's own cgroup: no container, image or name
        assert!(text.lines().any(|l| l
            .starts_with("container_memory_working_set_bytes{container=\"\",")
            && l.contains(&format!("pod=\"{name}\""))
            && l.contains("image=\"\"")));
    }
    let (status, _) = get(&client, "/api/v1/nodes/nope/proxy/metrics/cadvisor").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_behind_the_service_proxy_answers_a_week_with_a_spike_and_an_oom() {
    let sim = demo_with_prometheus().await;
    let client = sim.client().await.unwrap();
    let events = vmmem_sim::metrics::history::events(&sim.world());
    let spike = events.iter().find(|e| e.3 == "spike").unwrap().clone();
    let oom = events.iter().find(|e| e.3 == "oom").unwrap().clone();
    let end = now();
    let start = end - 7 * 86400;
    let range =
        |q: &str, step: i64| format!("query={}&start={start}&end={end}&step={step}", encode(q));

    let ws = "max by (namespace, pod) (max_over_time(container_memory_working_set_bytes{container=\"compute\"}[1h]))";
    let (status, v) = prom(&client, "query_range", &range(ws, 3600)).await;
    let result = rows(status, &v);
    // every VM's earlier pod and its current one
    let spiky: Vec<&Value> = result
        .iter()
        .filter(|r| r["metric"]["namespace"] == spike.0.as_str())
        .filter(|r| {
            r["metric"]["pod"]
                .as_str()
                .unwrap()
                .starts_with(&format!("virt-launcher-{}-", spike.1))
        })
        .collect();
    assert_eq!(spiky.len(), 2, "{spiky:?}");
    let earlier = spiky
        .iter()
        .find(|r| r["metric"]["pod"] == spike.2.as_str())
        .unwrap();
    let (sp_status, sp_v) = prom(
        &client,
        "query_range",
        &range(&ws.replace("[1h]", "[1m]"), 60),
    )
    .await;
    let fine = rows(sp_status, &sp_v);
    let fine = fine
        .iter()
        .find(|r| r["metric"]["pod"] == spike.2.as_str())
        .unwrap();
    let values = fine["values"].as_array().unwrap();
    let at_spike = values
        .iter()
        .find(|p| p[0].as_i64().unwrap() >= spike.4)
        .unwrap();
    let before: f64 = values
        .iter()
        .rev()
        .find(|p| p[0].as_i64().unwrap() < spike.4 - 600)
        .unwrap()[1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let at: f64 = at_spike[1].as_str().unwrap().parse().unwrap();
    assert!(at > before * 1.05, "spike {at} vs before {before}");
    assert_eq!(peak(earlier), at, "the spike is the week's peak");
    assert_eq!(earlier["metric"].as_object().unwrap().len(), 2);

    // The OOM kill: cAdvisor's counter rises in the earlier pod, kube-state-metrics says why.
    let ooms =
        "max by (namespace, pod) (increase(container_oom_events_total{container=\"compute\"}[1h]))";
    let (status, v) = prom(&client, "query_range", &range(ooms, 3600)).await;
    let risen: Vec<String> = rows(status, &v)
        .iter()
        .filter(|r| peak(r) > 0.0)
        .map(|r| r["metric"]["pod"].as_str().unwrap().to_string())
        .collect();
    assert!(risen.contains(&oom.2), "{risen:?} {oom:?}");
    let reason = "max by (namespace, pod, reason) (max_over_time(kube_pod_container_status_last_terminated_reason{reason=\"OOMKilled\"}[1h]))";
    let (status, v) = prom(&client, "query_range", &range(reason, 3600)).await;
    let killed = rows(status, &v);
    assert!(
        killed.iter().any(|r| r["metric"]["pod"] == oom.2.as_str()),
        "{killed:?}"
    );
    let first = killed[0]["values"][0][0].as_i64().unwrap();
    assert!(first > oom.4, "reason only after the kill");

    // The instant shape, VMs joined by KubeVirt's labels.
    let (status, v) = prom(
        &client,
        "query",
        &format!(
            "query={}&time={end}",
            encode("max by (namespace, name) (kubevirt_vmi_memory_domain_bytes{namespace=~\"prod|default\"})")
        ),
    )
    .await;
    let vms = rows(status, &v);
    assert_eq!(v["data"]["resultType"], "vector");
    assert!(vms.len() >= 3, "{vms:?}");
    assert!(vms.iter().all(|r| r["metric"]["namespace"] != "lab"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_prometheus_refuses_like_the_real_one() {
    let sim = demo_with_prometheus().await;
    let client = sim.client().await.unwrap();
    let end = now();
    let q = "max by (pod) (max_over_time(container_memory_rss{container=\"compute\"}[5m]))";
    let (status, v) = prom(
        &client,
        "query_range",
        &format!(
            "query={}&start={}&end={end}&step=50",
            encode(q),
            end - 7 * 86400
        ),
    )
    .await;
    assert_eq!((status, v["errorType"].as_str()), (400, Some("bad_data")));
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("exceeded maximum resolution of 11,000 points per timeseries"));
    let (status, v) = prom(
        &client,
        "query",
        &format!("query={}", encode("sum(rate(container_memory_rss[5m]))")),
    )
    .await;
    assert_eq!((status, v["errorType"].as_str()), (400, Some("bad_data")));
    assert!(
        v["error"].as_str().unwrap().contains("unsupported query: "),
        "{v}"
    );

    // The service proxy needs `get services/proxy`: RBAC's 403 otherwise.
    sim.forbid_verb("nobody", "get", "services/proxy");
    let nobody = kube::Client::try_from(sim.kube_config_as("nobody").await.unwrap()).unwrap();
    let (status, body) = get(
        &nobody,
        &format!("{PROXY}/api/v1/query?query={}", encode(q)),
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("services/proxy"));
    // A service that does not exist.
    let (status, _) = get(
        &client,
        "/api/v1/namespaces/monitoring/services/prometheus-k8s:9090/proxy/api/v1/query?query=up",
    )
    .await;
    assert_eq!(status, 404);
}
