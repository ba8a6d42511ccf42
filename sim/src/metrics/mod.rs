//! The monitoring a KubeVirt cluster usually has, simulated (issue 20):
//! - each node's kubelet serves cAdvisor's metrics at `/api/v1/nodes/N/proxy/metrics/cadvisor`
//!   (Prometheus text format, the kubelet's names and labels) from the simulated cgroups
//!   (`cadvisor`);
//! - with the scenario's `monitoring: true`, rancher-monitoring's Prometheus is a Service
//!   (`cattle-monitoring-system/rancher-monitoring-prometheus`, port 9090) whose query API
//!   (`/api/v1/query_range`, `/api/v1/query`) answers through the API server's service proxy
//!   (`promapi`) from a week of history made from the simulated VMs' own workload model
//!   (`history`), evaluated by `crate::promql`.
//!
//! Mounted in `server::router` with one `merge`.

pub mod cadvisor;
pub mod history;
pub mod promapi;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::resources::{NAMESPACES, NODES, SERVICES};
use super::server::{error_response, App};
use super::status::ApiError;
use super::world::World;

/// Where rancher-monitoring puts its Prometheus.
pub const MONITORING_NAMESPACE: &str = "cattle-monitoring-system";
pub const PROMETHEUS_SERVICE: &str = "rancher-monitoring-prometheus";
pub const PROMETHEUS_PORT: u16 = 9090;

/// The routes, for `server::router`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/api/v1/nodes/{node}/proxy/metrics/cadvisor",
            get(cadvisor_metrics),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{service}/proxy/{*path}",
            get(service_proxy),
        )
}

async fn cadvisor_metrics(
    State(app): State<App>,
    Path(node): Path<String>,
    headers: HeaderMap,
) -> Response {
    app.requests
        .access("get", "", "nodes/proxy", None, Some(&node));
    let w = app.world();
    let answer = super::rest::user_of(&app.tokens, &headers)
        .and_then(|user| w.auth.check(&user, "get", &NODES, Some("proxy"), None))
        .and_then(|()| cadvisor::exposition(&w, &node));
    match answer {
        Ok(text) => (
            StatusCode::OK,
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error_response(&e),
    }
}

/// `SCHEME:NAME:PORT`, `NAME:PORT` or `NAME` (the API server's service proxy forms) naming the
/// Prometheus service's port (9090, or its name `http-web`).
fn names_prometheus(service: &str) -> Option<bool> {
    let parts: Vec<&str> = service.split(':').collect();
    let (name, port) = match parts.as_slice() {
        [name] => (*name, ""),
        [name, port] => (*name, *port),
        ["http", name, port] => (*name, *port),
        _ => return None,
    };
    (name == PROMETHEUS_SERVICE).then_some(matches!(port, "" | "9090" | "http-web"))
}

async fn service_proxy(
    State(app): State<App>,
    Path((ns, service, path)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    app.requests
        .access("get", "", "services/proxy", Some(&ns), Some(&service));
    let w = app.world();
    let checked = super::rest::user_of(&app.tokens, &headers).and_then(|user| {
        w.auth
            .check(&user, "get", &SERVICES, Some("proxy"), Some(&ns))
    });
    if let Err(e) = checked {
        return error_response(&e);
    }
    let name = service
        .rsplit(':')
        .nth(usize::from(service.contains(':')))
        .unwrap_or("");
    let exists = w.store.get(&SERVICES, &ns, name).is_some();
    match (
        exists,
        ns == MONITORING_NAMESPACE,
        names_prometheus(&service),
    ) {
        (true, true, Some(true)) => {}
        (true, _, _) => {
            return error_response(&ApiError::service_unavailable(format!(
                "no endpoints available for service \"{service}\""
            )))
        }
        (false, _, _) => {
            return error_response(&ApiError::not_found(&SERVICES, name));
        }
    }
    promapi::answer(&w, &path, uri.query())
}

/// Create rancher-monitoring's namespace and Prometheus Service (what `kubectl get svc -A` lists).
pub fn install(w: &mut World, now: &str) -> Result<(), ApiError> {
    if w.store.get(&NAMESPACES, "", MONITORING_NAMESPACE).is_none() {
        w.store.create(
            &NAMESPACES,
            json!({"metadata": {"name": MONITORING_NAMESPACE,
                    "labels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            now,
        )?;
    }
    let labels = json!({"app": "rancher-monitoring-prometheus", "release": "rancher-monitoring",
                        "self-monitor": "true"});
    w.store.create(
        &SERVICES,
        json!({"metadata": {"name": PROMETHEUS_SERVICE, "namespace": MONITORING_NAMESPACE,
                            "labels": labels},
               "spec": {"type": "ClusterIP", "clusterIP": "10.53.112.40", "clusterIPs": ["10.53.112.40"],
                        "ports": [{"name": "http-web", "port": PROMETHEUS_PORT, "protocol": "TCP",
                                   "targetPort": PROMETHEUS_PORT}],
                        "selector": {"app.kubernetes.io/name": "prometheus",
                                     "prometheus": "rancher-monitoring-prometheus"},
                        "sessionAffinity": "None"},
               "status": {"loadBalancer": {}}}),
        now,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_proxy_forms_name_the_prometheus_port() {
        for s in [
            "rancher-monitoring-prometheus",
            "rancher-monitoring-prometheus:9090",
            "http:rancher-monitoring-prometheus:9090",
            "rancher-monitoring-prometheus:http-web",
        ] {
            assert_eq!(names_prometheus(s), Some(true), "{s}");
        }
        assert_eq!(
            names_prometheus("rancher-monitoring-prometheus:80"),
            Some(false)
        );
        assert_eq!(names_prometheus("other:9090"), None);
    }
}
