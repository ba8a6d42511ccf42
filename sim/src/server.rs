//! The HTTP server: shared state, routes, and serving until told to stop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode as Code;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::Tokens;
use super::requests::RequestCounters;
use super::status::ApiError;
use super::tls::ServerTls;
use super::world::World;

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub world: Arc<Mutex<World>>,
    pub addr: SocketAddr,
    /// Turns true when the server stops: watches and exec sessions end.
    pub stop: watch::Receiver<bool>,
    /// A random first path segment every request must carry (it is in the kubeconfig's server
    /// URL), on top of the bearer token: the API's exec runs commands on this machine.
    pub prefix: String,
    /// The bearer tokens this simulator issued (in its kubeconfigs only); every API request
    /// needs one.
    pub tokens: Arc<Tokens>,
    /// The server's certificate and the CA that signed it (served over TLS only, so that
    /// kubectl sends its token).
    pub tls: ServerTls,
    /// Requests served, by kind.
    pub requests: Arc<RequestCounters>,
}

impl App {
    /// Lock the world; a panic in another handler does not poison the simulator for good.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(app: App) -> Router {
    let prefix = format!("/{}", app.prefix);
    let api = Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            any(super::exec::handle),
        )
        .route("/vmmem-sim/requests", get(requests))
        .route("/vmmem-sim/nodes", get(nodes))
        // cAdvisor's metrics per node and rancher-monitoring's Prometheus (issue 20)
        .merge(super::metrics::routes())
        .fallback(super::rest::handle)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::faults::middleware,
        ))
        .with_state(app);
    Router::new()
        .nest(&prefix, api)
        .fallback(|| async { error_response(&ApiError::path_not_found()) })
}

/// Serve HTTPS until `stop` turns true: each connection's TLS handshake and requests run in a
/// task of their own (a slow or silent client holds up nobody), with WebSocket upgrades for exec.
pub async fn serve(listener: TcpListener, app: App) {
    let acceptor = tokio_rustls::TlsAcceptor::from(app.tls.config());
    let mut stop = app.stop.clone();
    let r = router(app.clone());
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
            _ = stopped(&mut stop) => return,
        };
        tokio::spawn(serve_connection(
            tcp,
            acceptor.clone(),
            r.clone(),
            app.stop.clone(),
        ));
    }
}

/// How long a client may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    r: Router,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
        return;
    };
    let service = hyper_util::service::TowerToHyperService::new(r);
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The request counters, for benchmarks that run the simulator as a separate process.
async fn requests(State(app): State<App>) -> Response {
    let tally = serde_json::to_value(app.requests.tally()).unwrap_or_default();
    json_response(Code::OK, &tally)
}

/// The nodes' counter steps and stored probe outputs (`sim::nodecpu`), for benchmarks.
async fn nodes(State(app): State<App>) -> Response {
    let w = app.world();
    let status = w.exec.cpus.status(w.now(), w.nodes.len());
    drop(w);
    json_response(Code::OK, &status)
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

pub fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.body())
}

/// Resolves when the server is stopping.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
