//! Diagnostics: `-v N` (or `--v=N`), as kubectl's verbosity. From 6 each request to the API
//! server is logged with its method, URL, status and latency; from 8 the request and response
//! bodies too (a body chunk cut at 4 KiB at 8, whole from 9). Commands log to stderr; the
//! dashboard owns the terminal, so it logs to a file ([`log_file`], named in its `?` help).
//! Without `-v` nothing is set up and nothing is logged.
//!
//! The requests are logged by [`HttpLogLayer`], a tower layer around the kube client's own
//! stack (inside the retry layer, so every attempt is a line of its own).

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::prelude::*;

/// From this level each API request is logged.
pub const REQUESTS: u8 = 6;
/// From this level request and response bodies are logged (cut to [`BODY_CUT`] bytes).
pub const BODIES: u8 = 8;
/// From this level bodies are logged whole.
pub const WHOLE_BODIES: u8 = 9;
const BODY_CUT: usize = 4096;
/// The tracing target of the request lines.
const HTTP: &str = "vmmem::http";

static VERBOSITY: AtomicU8 = AtomicU8::new(0);
static LOG_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Where the log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    /// A file of its own (the dashboard): `kubectl-vmmem-<pid>.log` in the temporary directory.
    File,
}

/// Why diagnostics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("creating the log file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("setting up the log: {0}")]
    Subscriber(String),
}

/// Set up logging for `verbosity` (0: none) into `sink`. Call once, before any request.
pub fn init(verbosity: u8, sink: Sink) -> Result<(), DiagError> {
    if verbosity == 0 {
        return Ok(());
    }
    VERBOSITY.store(verbosity, Ordering::Relaxed);
    let level = match verbosity {
        1..=5 => LevelFilter::INFO,
        6 | 7 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // Only this tool's own events: kube's and hyper's spans say less than the request lines.
    let filter = tracing_subscriber::filter::Targets::new().with_target("vmmem", level);
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    let result = match sink {
        Sink::Stderr => tracing_subscriber::registry()
            .with(layer.with_writer(std::io::stderr).with_filter(filter))
            .try_init(),
        Sink::File => {
            let path =
                std::env::temp_dir().join(format!("kubectl-vmmem-{}.log", std::process::id()));
            let file = create_private(&path).map_err(|source| DiagError::File {
                path: path.display().to_string(),
                source,
            })?;
            let _ = LOG_FILE.set(path);
            tracing_subscriber::registry()
                .with(layer.with_writer(Mutex::new(file)).with_filter(filter))
                .try_init()
        }
    };
    result.map_err(|e| DiagError::Subscriber(e.to_string()))
}

/// The dashboard's log file, when `-v` made one.
pub fn log_file() -> Option<&'static Path> {
    LOG_FILE.get().map(PathBuf::as_path)
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Text from the cluster made safe for a terminal: control characters as escapes.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A body chunk as log text: escaped, and cut unless the level asks for whole bodies.
fn body_text(bytes: &[u8]) -> String {
    let whole = VERBOSITY.load(Ordering::Relaxed) >= WHOLE_BODIES;
    let shown = if whole || bytes.len() <= BODY_CUT {
        bytes
    } else {
        &bytes[..BODY_CUT]
    };
    let mut text = printable(&String::from_utf8_lossy(shown));
    if shown.len() < bytes.len() {
        let _ = write!(text, " … ({} bytes; -v 9 logs them whole)", bytes.len());
    }
    text
}

/// Logs each request of the kube client it wraps (see the module's note).
#[derive(Debug, Clone)]
pub struct HttpLogLayer {
    /// The API server's URL: requests at this layer carry only path and query.
    server: Arc<str>,
}

impl HttpLogLayer {
    pub fn new(server: &str) -> Self {
        HttpLogLayer {
            server: printable(server.trim_end_matches('/')).into(),
        }
    }
}

impl<S> tower::Layer<S> for HttpLogLayer {
    type Service = HttpLog<S>;

    fn layer(&self, inner: S) -> HttpLog<S> {
        HttpLog {
            inner,
            server: self.server.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpLog<S> {
    inner: S,
    server: Arc<str>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<Request<kube::client::Body>> for HttpLog<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    B: Body<Data = Bytes> + Unpin,
{
    type Response = Response<LoggedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let requests = tracing::enabled!(target: HTTP, tracing::Level::DEBUG);
        let bodies = tracing::enabled!(target: HTTP, tracing::Level::TRACE);
        let line = requests.then(|| {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            format!("{} {}{}", req.method(), self.server, printable(path))
        });
        if bodies {
            log_request_body(req.body());
        }
        let started = Instant::now();
        let response = self.inner.call(req);
        Box::pin(async move {
            let result = response.await;
            if let Some(line) = line {
                let ms = started.elapsed().as_millis();
                match &result {
                    Ok(r) => {
                        tracing::debug!(target: HTTP, "{line} {} in {ms} milliseconds", r.status())
                    }
                    Err(e) => {
                        tracing::debug!(target: HTTP, "{line} failed after {ms} milliseconds: {}", printable(&e.to_string()))
                    }
                }
            }
            result.map(|r| r.map(|inner| LoggedBody { inner, bodies }))
        })
    }
}

/// A request body that is in memory (not a stream) is logged; streams are not read here.
fn log_request_body(body: &kube::client::Body) {
    use futures::FutureExt;
    use http_body_util::BodyExt;
    let Some(copy) = body.try_clone() else {
        return;
    };
    if let Some(Ok(collected)) = copy.collect().now_or_never() {
        let bytes = collected.to_bytes();
        if !bytes.is_empty() {
            tracing::trace!(target: HTTP, "Request Body: {}", body_text(&bytes));
        }
    }
}

/// A response body that logs each chunk as it passes (from level 8).
#[derive(Debug)]
pub struct LoggedBody<B> {
    inner: B,
    bodies: bool,
}

impl<B: Body<Data = Bytes> + Unpin> Body for LoggedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if self.bodies {
            if let Poll::Ready(Some(Ok(frame))) = &polled {
                if let Some(data) = frame.data_ref() {
                    tracing::trace!(target: HTTP, "Response Body: {}", body_text(data));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_text_is_escaped_and_long_bodies_are_cut() {
        assert_eq!(printable("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        let long = vec![b'x'; BODY_CUT + 10];
        let text = body_text(&long);
        assert!(text.ends_with(&format!(
            " … ({} bytes; -v 9 logs them whole)",
            BODY_CUT + 10
        )));
        assert!(body_text(b"{}") == "{}");
    }
}
