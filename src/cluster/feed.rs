//! One watched resource in one scope: a kube-rs watcher feeding a reflector store, run as a task,
//! with the state the caller needs: how the initial list went, the last error while watching,
//! and how many (re)lists and change events it saw. A feed can also list once, page by page,
//! without watching ([`Feed::list_once`]), for readers that take a single snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::task::JoinHandle;

use super::lean::{Kind, Lean};

mod cache;
use cache::Cache;

/// How the first list of a feed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Ready,
    /// 403: the user may not list this resource in this scope. Carries the server's message.
    Forbidden(String),
    /// Any other failure: the server's status code (`None` when no answer came) and message.
    Failed {
        code: Option<u16>,
        message: String,
    },
}

/// Shared between the watching task and the readers.
#[derive(Debug)]
pub struct FeedState {
    phase: tokio::sync::watch::Sender<Phase>,
    lists: AtomicU64,
    events: AtomicU64,
    error: Mutex<Option<(String, Instant)>>,
}

impl FeedState {
    fn new() -> FeedState {
        FeedState {
            phase: tokio::sync::watch::Sender::new(Phase::Pending),
            lists: AtomicU64::new(0),
            events: AtomicU64::new(0),
            error: Mutex::new(None),
        }
    }

    fn set_error(&self, msg: String) {
        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if e.as_ref().is_none_or(|(m, _)| *m != msg) {
            let since = e.as_ref().map_or_else(Instant::now, |(_, t)| *t);
            *e = Some((msg, since));
        }
    }

    pub fn clear_error(&self) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The last error while watching, and since when the feed has been failing.
    pub fn error(&self) -> Option<(String, Instant)> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Initial lists and relists (watch restarts that had to list again).
    pub fn lists(&self) -> u64 {
        self.lists.load(Ordering::Relaxed)
    }

    /// Changes received through the watch (after the initial list).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// A one-shot list ended: Ready, or Forbidden/Failed with the server's message.
    fn listed(&self, result: Result<(), kube::Error>) {
        match result {
            Ok(()) => {
                self.lists.fetch_add(1, Ordering::Relaxed);
                self.record::<()>(&Ok(watcher::Event::InitDone));
            }
            Err(e) => self.record::<()>(&Err(watcher::Error::InitialListFailed(e))),
        }
    }

    fn record<K>(&self, ev: &Result<watcher::Event<K>, watcher::Error>) {
        match ev {
            Ok(watcher::Event::Init) => {
                self.lists.fetch_add(1, Ordering::Relaxed);
            }
            Ok(watcher::Event::InitApply(_)) => {}
            Ok(watcher::Event::InitDone) => {
                self.clear_error();
                self.phase.send_if_modified(|p| {
                    let first = *p == Phase::Pending;
                    if first {
                        *p = Phase::Ready;
                    }
                    first
                });
            }
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                self.events.fetch_add(1, Ordering::Relaxed);
                self.clear_error();
            }
            // An expired watch (410 Gone: the server's watch cache moved on) is routine: the
            // watcher lists again at once, and the feed stays healthy.
            Err(e) if expired(e) => {}
            Err(e) => {
                let failure = describe(e);
                self.set_error(failure.message.clone());
                self.phase.send_if_modified(|p| {
                    let first = *p == Phase::Pending;
                    if first {
                        *p = if failure.forbidden {
                            Phase::Forbidden(failure.message)
                        } else {
                            Phase::Failed {
                                code: failure.code,
                                message: failure.message,
                            }
                        };
                    }
                    first
                });
            }
        }
    }
}

/// Whether the server ended the watch with 410 Gone (an expired resourceVersion).
fn expired(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::WatchError(s) => s.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 410,
        _ => false,
    }
}

/// A watcher error as the feed keeps it.
struct Failure {
    /// The server refused with reason Forbidden.
    forbidden: bool,
    /// The server's status code; `None` when no answer came.
    code: Option<u16>,
    /// The message to show.
    message: String,
}

/// Whether a watcher error is a 403, its code, and the message to show.
fn describe(e: &watcher::Error) -> Failure {
    let (status, throttled) = match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => match k {
            kube::Error::Api(s) => (s, super::retry::throttled_sentence(k)),
            other => {
                return Failure {
                    forbidden: false,
                    code: None,
                    message: super::connect::root_cause(other),
                }
            }
        },
        watcher::Error::WatchError(s) => (s, None),
        watcher::Error::NoResourceVersion => {
            return Failure {
                forbidden: false,
                code: None,
                message: e.to_string(),
            }
        }
    };
    let not_throttled = throttled.is_none();
    let message = match throttled {
        Some(sentence) => sentence,
        None if status.message.is_empty() => format!("HTTP {}", status.code),
        None => status.message.clone(),
    };
    Failure {
        forbidden: not_throttled && status.is_forbidden(),
        code: Some(status.code),
        message,
    }
}

/// Retry quickly after the server comes back: 250ms doubling to 5s, reset on success.
struct QuickBackoff {
    next: Duration,
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Iterator for QuickBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Some(d)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Where a feed keeps its objects.
enum Held<T: Kind> {
    /// The watch's objects, kept current by it.
    Watched(Arc<Cache<T>>),
    /// The result of one paged list.
    Listed(Arc<Mutex<Vec<Arc<T>>>>),
}

/// A running watch (or one-shot list) of `T` in one namespace (or all), stopped when dropped.
pub struct Feed<T: Kind> {
    pub namespace: Option<String>,
    held: Held<T>,
    state: Arc<FeedState>,
    task: JoinHandle<()>,
}

fn api_for<T: Kind>(client: kube::Client, namespace: Option<&str>) -> Api<Lean<T>> {
    match namespace {
        Some(ns) if T::NAMESPACED => Api::namespaced_with(client, ns, &()),
        _ => Api::all_with(client, &()),
    }
}

impl<T: Kind> Drop for Feed<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Kind> Feed<T> {
    /// Start watching (needs a tokio runtime). `labels` narrows the list (e.g. launcher pods),
    /// `name` to one object (a field selector on `metadata.name`, which RBAC authorizes by
    /// `resourceNames`).
    pub fn start(
        client: kube::Client,
        namespace: Option<&str>,
        labels: Option<&str>,
        name: Option<&str>,
    ) -> Feed<T> {
        let api = api_for::<T>(client, namespace);
        let mut cfg = watcher::Config::default();
        if let Some(l) = labels {
            cfg = cfg.labels(l);
        }
        if let Some(n) = name {
            cfg = cfg.fields(&format!("metadata.name={n}"));
        }
        let cache = Arc::new(Cache::default());
        let state = Arc::new(FeedState::new());
        let (task_cache, task_state) = (cache.clone(), state.clone());
        let stream = watcher(api, cfg)
            .backoff(QuickBackoff { next: BACKOFF_MIN })
            .for_each(move |mut ev| {
                // The object goes into the cache; the `Lean` wrapper (kube's metadata) goes.
                task_cache.apply(&mut ev);
                task_state.record(&ev);
                futures::future::ready(())
            });
        let task = tokio::spawn(stream);
        Feed {
            namespace: namespace.filter(|_| T::NAMESPACED).map(str::to_string),
            held: Held::Watched(cache),
            state,
            task,
        }
    }

    /// List once, page by page, and keep the objects (no watch): for readers that take one
    /// snapshot. Phases and errors are reported as for a watch's first list.
    pub fn list_once(
        client: kube::Client,
        namespace: Option<&str>,
        labels: Option<&str>,
        name: Option<&str>,
    ) -> Feed<T> {
        let api = api_for::<T>(client, namespace);
        let held = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(FeedState::new());
        let (task_held, task_state) = (held.clone(), state.clone());
        let labels = labels.map(str::to_string);
        let name = name.map(str::to_string);
        let task = tokio::spawn(async move {
            let result = super::paged::list_all(&api, labels.as_deref(), name.as_deref()).await;
            let result = result.map(|(objects, _pages)| {
                *task_held.lock().unwrap_or_else(|p| p.into_inner()) = objects;
            });
            task_state.listed(result);
        });
        Feed {
            namespace: namespace.filter(|_| T::NAMESPACED).map(str::to_string),
            held: Held::Listed(held),
            state,
            task,
        }
    }

    /// Wait for the first list to end (or fail).
    pub async fn initial(&self) -> Phase {
        let mut rx = self.state.phase.subscribe();
        let phase = match rx.wait_for(|p| *p != Phase::Pending).await {
            Ok(p) => p.clone(),
            Err(_) => Phase::Failed {
                code: None,
                message: "the watch stopped".to_string(),
            },
        };
        phase
    }

    pub fn phase(&self) -> Phase {
        self.state.phase.borrow().clone()
    }

    pub fn state(&self) -> &Arc<FeedState> {
        &self.state
    }

    /// The objects as of now: shared with the store, not copied (a watch replaces an object
    /// that changes; it never changes one in place).
    pub fn objects(&self) -> Vec<Arc<T>> {
        match &self.held {
            Held::Watched(cache) => cache.objects(),
            Held::Listed(list) => list.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Stop watching and hand over the objects (for one-shot readers).
    pub async fn into_objects(mut self) -> Vec<Arc<T>> {
        self.task.abort();
        // Once the task is gone its writer is dropped: the store below holds the only references.
        let _ = (&mut self.task).await;
        match &mut self.held {
            Held::Listed(list) => {
                std::mem::take(&mut *list.lock().unwrap_or_else(|p| p.into_inner()))
            }
            // The cache's own references go: the objects are then held once.
            Held::Watched(cache) => cache.take(),
        }
    }

    pub fn len(&self) -> usize {
        match &self.held {
            Held::Watched(cache) => cache.len(),
            Held::Listed(list) => list.lock().unwrap_or_else(|p| p.into_inner()).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_failed(code: u16, reason: &str, message: &str) -> watcher::Error {
        let status = kube::core::Status::failure(message, reason).with_code(code);
        watcher::Error::InitialListFailed(kube::Error::Api(status.boxed()))
    }

    #[test]
    fn the_first_list_ends_by_the_status_not_its_words() {
        let state = FeedState::new();
        state.record::<()>(&Err(list_failed(403, "Forbidden", "pods is forbidden")));
        assert_eq!(
            *state.phase.borrow(),
            Phase::Forbidden("pods is forbidden".into())
        );
        // A 403 with no Kubernetes Status (a proxy's page): failed, with its code kept.
        let state = FeedState::new();
        let plain = list_failed(403, "Failed to parse error data", "Access denied");
        state.record::<()>(&Err(plain));
        assert_eq!(
            *state.phase.borrow(),
            Phase::Failed {
                code: Some(403),
                message: "Access denied".into()
            }
        );
        // No answer at all: no code.
        let state = FeedState::new();
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = watcher::Error::InitialListFailed(kube::Error::Service(Box::new(io)));
        state.record::<()>(&Err(e));
        assert_eq!(
            *state.phase.borrow(),
            Phase::Failed {
                code: None,
                message: "refused".into()
            }
        );
    }
}
