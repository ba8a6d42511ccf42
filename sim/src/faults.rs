//! Faults tests switch on, in front of every API request: throttling (429 with `Retry-After`
//! and a `Status` body, like API Priority and Fairness), watches that expire (an `ERROR` event
//! with a 410 `Expired` Status, then the end of the stream, like a real apiserver whose watch
//! cache moved on), and nodes whose kubelet is gone (pods sent there stay `Pending`, as on a
//! real API server without kubelets). A log of recent requests lets tests see the client's
//! pacing.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use serde_json::json;

use super::handle::SimHandle;
use super::server::{json_response, App};
use super::status::ApiError;

/// Requests kept in the log.
const LOG_MAX: usize = 4096;

/// Answer matching requests with 429.
#[derive(Debug, Clone)]
struct Throttle {
    /// Requests still to refuse; `None`: every one, until cleared.
    remaining: Option<u32>,
    /// Only requests whose path (after the simulator's secret prefix) contains this.
    path: Option<String>,
    retry_after_secs: u64,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub at: Instant,
    pub method: String,
    /// Path and query, without the secret prefix.
    pub path: String,
    pub code: u16,
}

/// The faults in force (held in the world).
#[derive(Debug)]
pub struct Faults {
    throttles: Vec<Throttle>,
    /// Nodes whose kubelet is gone: pods bound to them are never started.
    kubelet_down: HashSet<String>,
    /// Bumped to end every open watch with 410 Gone.
    expire: tokio::sync::watch::Sender<u64>,
    log: VecDeque<Logged>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            throttles: Vec::new(),
            kubelet_down: HashSet::new(),
            expire: tokio::sync::watch::Sender::new(0),
            log: VecDeque::new(),
        }
    }
}

impl Faults {
    /// Whether the pods of `node` are never started.
    pub fn kubelet_down(&self, node: &str) -> bool {
        self.kubelet_down.contains(node)
    }

    /// The `Retry-After` seconds when this request is to be throttled (and counts it).
    fn throttle(&mut self, path: &str) -> Option<u64> {
        let i = self
            .throttles
            .iter()
            .position(|t| t.path.as_deref().is_none_or(|p| path.contains(p)))?;
        let t = &mut self.throttles[i];
        let secs = t.retry_after_secs;
        if let Some(n) = &mut t.remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.throttles.remove(i);
            }
        }
        Some(secs)
    }

    fn record(&mut self, method: &str, path: &str, code: u16) {
        if self.log.len() >= LOG_MAX {
            self.log.pop_front();
        }
        self.log.push_back(Logged {
            at: Instant::now(),
            method: method.to_string(),
            path: path.to_string(),
            code,
        });
    }
}

/// What a real apiserver sends when API Priority and Fairness rejects a request.
fn too_many_requests(retry_after_secs: u64) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": retry_after_secs},
        "code": 429
    });
    let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

fn is_watch(query: &str) -> bool {
    query
        .split('&')
        .any(|p| matches!(p, "watch=1" | "watch=true"))
}

fn requested_rv(query: &str) -> u64 {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("resourceVersion="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The middleware: throttle, log, and make watches expirable.
pub async fn middleware(State(app): State<App>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let path = if query.is_empty() {
        req.uri().path().to_string()
    } else {
        format!("{}?{query}", req.uri().path())
    };
    let throttled = app.world().faults.throttle(&path);
    if let Some(secs) = throttled {
        app.world().faults.record(&method, &path, 429);
        return too_many_requests(secs);
    }
    let expire = app.world().faults.expire.subscribe();
    let resp = next.run(req).await;
    let code = resp.status().as_u16();
    app.world().faults.record(&method, &path, code);
    if code == 200 && is_watch(&query) {
        expirable(app, resp, expire, requested_rv(&query))
    } else {
        resp
    }
}

/// Pass a watch's events through until the watches are expired; then send the ERROR event a
/// real apiserver sends and end the stream.
fn expirable(
    app: App,
    resp: Response,
    mut expire: tokio::sync::watch::Receiver<u64>,
    requested: u64,
) -> Response {
    let (parts, body) = resp.into_parts();
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, axum::Error>>(16);
    tokio::spawn(async move {
        let mut inner = body.into_data_stream();
        loop {
            // Expiry first: nothing that happens after it reaches this stream.
            tokio::select! {
                biased;
                changed = expire.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = app.world().store.resource_version();
                    let status = ApiError::gone(requested, now).body();
                    let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
                    line.push(b'\n');
                    let _ = tx.send(Ok(Bytes::from(line))).await;
                    return;
                }
                chunk = inner.next() => match chunk {
                    Some(c) => if tx.send(c).await.is_err() { return },
                    None => return,
                },
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(rx))
}

/// The hooks tests use.
impl SimHandle {
    /// Answer the next `n` requests whose path contains `path` (all with `None`) with 429
    /// Too Many Requests and `Retry-After: retry_after_secs`.
    pub fn throttle(&self, n: u32, path: Option<&str>, retry_after_secs: u64) {
        if n == 0 {
            return;
        }
        self.world().faults.throttles.push(Throttle {
            remaining: Some(n),
            path: path.map(str::to_string),
            retry_after_secs,
        });
    }

    /// Answer every matching request with 429 until [`SimHandle::stop_throttling`].
    pub fn throttle_always(&self, path: Option<&str>, retry_after_secs: u64) {
        self.world().faults.throttles.push(Throttle {
            remaining: None,
            path: path.map(str::to_string),
            retry_after_secs,
        });
    }

    pub fn stop_throttling(&self) {
        self.world().faults.throttles.clear();
    }

    /// End every open watch with an `ERROR` event carrying 410 Expired.
    pub fn expire_watches(&self) {
        self.world().faults.expire.send_modify(|g| *g += 1);
    }

    /// Take `node`'s kubelet away (pods bound to it stay Pending) or bring it back.
    pub fn set_kubelet_down(&self, node: &str, down: bool) {
        let mut w = self.world();
        if down {
            w.faults.kubelet_down.insert(node.to_string());
        } else {
            w.faults.kubelet_down.remove(node);
        }
    }

    /// The requests served so far (the last few thousand), oldest first.
    pub fn requests(&self) -> Vec<Logged> {
        self.world().faults.log.iter().cloned().collect()
    }

    /// How long ago the simulator last answered 429, if ever.
    pub fn since_last_throttle(&self) -> Option<Duration> {
        self.world()
            .faults
            .log
            .iter()
            .rev()
            .find(|l| l.code == 429)
            .map(|l| l.at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_count_down_and_match_paths() {
        let mut f = Faults::default();
        f.throttles.push(Throttle {
            remaining: Some(2),
            path: Some("/virtualmachines".into()),
            retry_after_secs: 3,
        });
        assert_eq!(f.throttle("/api/v1/pods"), None);
        assert_eq!(
            f.throttle("/apis/kubevirt.io/v1/virtualmachines?watch=1"),
            Some(3)
        );
        assert_eq!(
            f.throttle("/apis/kubevirt.io/v1/namespaces/a/virtualmachines/x"),
            Some(3)
        );
        assert_eq!(f.throttle("/apis/kubevirt.io/v1/virtualmachines"), None);
        f.throttles.push(Throttle {
            remaining: None,
            path: None,
            retry_after_secs: 1,
        });
        for _ in 0..10 {
            assert_eq!(f.throttle("/version"), Some(1));
        }
    }

    #[test]
    fn watch_queries() {
        assert!(is_watch("labelSelector=a&watch=1"));
        assert!(is_watch("watch=true&resourceVersion=5"));
        assert!(!is_watch("watch=false"));
        assert!(!is_watch("limit=500"));
        assert_eq!(requested_rv("watch=1&resourceVersion=42"), 42);
        assert_eq!(requested_rv("watch=1"), 0);
    }

    #[test]
    fn the_429_is_an_apf_status_with_retry_after() {
        let r = too_many_requests(2);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
