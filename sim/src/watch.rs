//! Watches: newline-delimited JSON events from a resourceVersion (or a synthetic ADDED list),
//! bookmarks, 410 Gone for versions the history no longer holds, and the end of the stream on
//! timeout or server stop.

use std::time::Duration;

use std::sync::Arc;

use axum::body::{Body as AxumBody, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::channel::mpsc;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::server::App;
use super::status::ApiError;
use super::store::{meta_str, Event, Store};

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

/// How events are written: as JSON lines, objects as one-row Tables when asked.
struct Encoder {
    rt: &'static ResourceType,
    as_table: bool,
    /// Model time minus wall time, in seconds (ages in Tables use model time).
    skew: i64,
}

impl Encoder {
    fn line(&self, kind: &str, object: &Value) -> Bytes {
        if !self.as_table || matches!(kind, "ERROR" | "BOOKMARK") {
            return line(kind, object);
        }
        let now = epoch(std::time::SystemTime::now()) + self.skew;
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        line(
            kind,
            &super::table::table(self.rt, std::slice::from_ref(object), rv, now),
        )
    }
}

fn epoch(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Which objects a watch sends: its namespace and selectors.
struct Filter {
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, o: &Value) -> bool {
        self.ns
            .as_deref()
            .is_none_or(|n| meta_str(o, "namespace") == n)
            && self.labels.matches(o)
            && self.fields.matches(o)
    }
}

/// A watch's state between events: what it sends and the last version it sent.
struct Stream {
    rt: &'static ResourceType,
    encoder: Encoder,
    filter: Filter,
    last_rv: u64,
    bookmarks: bool,
    timeout: Duration,
}

type Body = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Start a watch; the response body streams until timeout, server stop or client hang-up.
pub fn watch(app: &App, req: WatchRequest) -> Response {
    // Model time runs ahead of the wall clock by what tests skipped; ages use model time.
    let skew = epoch(app.world().clock.wall()) - epoch(std::time::SystemTime::now());
    let mut stream = Stream {
        rt: req.rt,
        encoder: Encoder {
            rt: req.rt,
            as_table: req.as_table,
            skew,
        },
        filter: Filter {
            ns: req.ns,
            labels: req.labels,
            fields: req.fields,
        },
        last_rv: 0,
        bookmarks: req.bookmarks,
        timeout: Duration::from_secs(req.timeout_secs),
    };
    let (rx, initial) = {
        let w = app.world();
        let rx = w.store.subscribe();
        stream.last_rv = w.store.resource_version();
        (rx, stream.initial(&w.store, req.rv))
    };
    let (tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(stream.send(tx, initial, rx, app.stop.clone()));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(AxumBody::from_stream(body_rx))
        .unwrap_or_default()
}

impl Stream {
    /// The first events: ADDED for every object now (no version given), else every event after
    /// the version (410 Gone when the history no longer holds it).
    fn initial(&self, store: &Store, rv: Option<u64>) -> Result<Vec<Bytes>, ApiError> {
        let enc = &self.encoder;
        match rv {
            None => Ok(store
                .list(self.rt, self.filter.ns.as_deref())
                .filter(|o| self.filter.matches(o))
                .map(|o| enc.line("ADDED", o))
                .collect()),
            Some(from) => store.since(self.rt.key, from).map(|evs| {
                evs.iter()
                    .filter(|e| self.filter.matches(&e.object))
                    .map(|e| enc.line(e.kind.as_str(), &e.object))
                    .collect()
            }),
        }
    }

    /// Send the first events, then every new one (and bookmarks) until timeout, server stop or
    /// client hang-up.
    async fn send(
        mut self,
        mut tx: Body,
        initial: Result<Vec<Bytes>, ApiError>,
        mut rx: broadcast::Receiver<Arc<Event>>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
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
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = super::server::stopped(&mut stop) => break,
                _ = bookmark.tick(), if self.bookmarks => {
                    if !self.bookmark(&mut tx).await {
                        break;
                    }
                }
                ev = rx.recv() => if !self.event(&mut tx, ev).await {
                    break;
                },
            }
        }
    }

    /// Send a bookmark at the last version; false when the client is gone.
    async fn bookmark(&self, tx: &mut Body) -> bool {
        let rt = self.rt;
        let obj = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": self.last_rv.to_string()}});
        tx.send(Ok(line("BOOKMARK", &obj))).await.is_ok()
    }

    /// Pass on a store event of this watch's resource; false when the watch ends.
    async fn event(&mut self, tx: &mut Body, ev: Result<Arc<Event>, RecvError>) -> bool {
        match ev {
            Ok(ev) => {
                if ev.resource != self.rt.key || ev.rv <= self.last_rv {
                    return true;
                }
                self.last_rv = ev.rv;
                !(self.filter.matches(&ev.object)
                    && tx
                        .send(Ok(self.encoder.line(ev.kind.as_str(), &ev.object)))
                        .await
                        .is_err())
            }
            Err(RecvError::Lagged(_)) => {
                let gone = ApiError::gone(self.last_rv, self.last_rv + 1).body();
                let _ = tx.send(Ok(line("ERROR", &gone))).await;
                false
            }
            Err(RecvError::Closed) => false,
        }
    }
}
