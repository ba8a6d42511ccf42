//! Watches: newline-delimited JSON events from a resourceVersion (or a synthetic ADDED list),
//! bookmarks, 410 Gone for versions the history no longer holds, and the end of the stream on
//! timeout or server stop.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::channel::mpsc;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::server::App;
use super::status::ApiError;
use super::store::meta_str;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// What a watch sends and how.
pub struct WatchRequest {
    pub rt: &'static ResourceType,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Start after this version; `None` starts with ADDED events for every current object.
    pub rv: Option<u64>,
    pub timeout_secs: u64,
    pub bookmarks: bool,
    /// Send each object as a one-row Table (`kubectl get -w`).
    pub as_table: bool,
}

/// Start a watch; the response body streams until timeout, server stop or client hang-up.
pub fn watch(app: &App, req: WatchRequest) -> Response {
    let WatchRequest {
        rt,
        ns,
        labels,
        fields,
        rv,
        timeout_secs,
        bookmarks,
        as_table,
    } = req;
    let epoch = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    // Model time runs ahead of the wall clock by what tests skipped; ages use model time.
    let skew = epoch(app.world().clock.wall()) - epoch(std::time::SystemTime::now());
    let line = move |kind: &str, object: &Value| {
        if !as_table || matches!(kind, "ERROR" | "BOOKMARK") {
            return line(kind, object);
        }
        let now = epoch(std::time::SystemTime::now()) + skew;
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        line(
            kind,
            &super::table::table(rt, std::slice::from_ref(object), rv, now),
        )
    };
    let matches = {
        let ns = ns.clone();
        move |o: &Value| {
            ns.as_deref().is_none_or(|n| meta_str(o, "namespace") == n)
                && labels.matches(o)
                && fields.matches(o)
        }
    };
    let (mut rx, initial, mut last_rv) = {
        let w = app.world();
        let rx = w.store.subscribe();
        let now_rv = w.store.resource_version();
        let initial: Result<Vec<Bytes>, ApiError> = match rv {
            None => Ok(w
                .store
                .list(rt, ns.as_deref())
                .filter(|o| matches(o))
                .map(|o| line("ADDED", o))
                .collect()),
            Some(from) => w.store.since(rt.key, from).map(|evs| {
                evs.iter()
                    .filter(|e| matches(&e.object))
                    .map(|e| line(e.kind.as_str(), &e.object))
                    .collect()
            }),
        };
        (rx, initial, rv.map_or(now_rv, |_| now_rv))
    };
    let (mut tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let mut stop = app.stop.clone();
    tokio::spawn(async move {
        let lines = match initial {
            Ok(l) => l,
            Err(gone) => {
                let _ = tx.send(Ok(line("ERROR", &gone.body()))).await;
                return;
            }
        };
        for l in lines {
            if tx.send(Ok(l)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout_secs));
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = super::server::stopped(&mut stop) => break,
                _ = bookmark.tick(), if bookmarks => {
                    let obj = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(Ok(line("BOOKMARK", &obj))).await.is_err() {
                        break;
                    }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.resource != rt.key || ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if matches(&ev.object) && tx.send(Ok(line(ev.kind.as_str(), &ev.object))).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(Ok(line("ERROR", &ApiError::gone(last_rv, last_rv + 1).body()))).await;
                        break;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(body_rx))
        .unwrap_or_default()
}
