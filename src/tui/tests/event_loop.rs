//! The loop with injected key events: keys are answered while a fetch is stuck, the source is
//! shut down on quit, and snapshots from the background are drawn.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::future::BoxFuture;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::*;
use crate::model::report::VmRow;
use crate::session::dashboard::snapshot::{DataSource, Request};
use crate::tui::event_loop::run_with_events;
use crate::tui::history::VmKey;

/// A source whose fetch takes `delay` and returns the seed report, with the full row of the
/// focus only, as a live source does; it counts fetches and rows built on demand.
struct Source {
    delay: Duration,
    shut_down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    details: Arc<AtomicUsize>,
}

impl Source {
    fn new(delay: Duration) -> Source {
        Source {
            delay,
            shut_down: Arc::new(AtomicBool::new(false)),
            fetches: Arc::default(),
            details: Arc::default(),
        }
    }
}

impl DataSource for Source {
    fn fetch<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Snapshot> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Snapshot {
                context: context(),
                ..Snapshot::of_report(
                    Some(seed_report(0)),
                    request.focus.as_ref(),
                    std::time::SystemTime::now(),
                    Health::Ok,
                    request.scope.clone(),
                )
            }
        })
    }

    fn detail<'a>(&'a mut self, _scope: &'a Scope, key: &'a VmKey) -> BoxFuture<'a, Option<VmRow>> {
        self.details.fetch_add(1, Ordering::SeqCst);
        let row = seed_report(0).vms.into_iter().find(|r| key.matches(r));
        Box::pin(async move { row })
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.shut_down.store(true, Ordering::SeqCst) })
    }
}

fn key(code: KeyCode, m: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, m))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_answered_while_a_fetch_hangs_and_quit_shuts_the_source_down() {
    let shut_down = Arc::new(AtomicBool::new(false));
    let source = Source {
        shut_down: shut_down.clone(),
        ..Source::new(Duration::from_secs(600))
    };
    let (tx, rx) = mpsc::channel(16);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    let keys = tokio::spawn(async move {
        for ev in [
            key(KeyCode::Char('/'), KeyModifiers::NONE),
            key(KeyCode::Char('x'), KeyModifiers::NONE),
            key(KeyCode::Enter, KeyModifiers::NONE),
            key(KeyCode::Char('c'), KeyModifiers::CONTROL),
        ] {
            tx.send(ev).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx
    });
    let start = Instant::now();
    run_with_events(&mut term, app, source, None, rx)
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "quit waited for the fetch: {:?}",
        start.elapsed()
    );
    assert!(shut_down.load(Ordering::SeqCst), "the source was shut down");
    let screen = buffer_text(term.backend().buffer());
    assert!(screen.contains("filter: x"), "{screen}");
    assert!(screen.contains("Loading"), "{screen}");
    drop(keys.await.unwrap());
}

/// Run the loop on a `w`x`h` test terminal: after `wait`, `keys` 100 ms apart, then `q` 600 ms
/// later; the screen at the end.
async fn screen_after(
    source: Source,
    app: App,
    (w, h): (u16, u16),
    wait: Duration,
    keys: Vec<Event>,
) -> String {
    let (tx, rx) = mpsc::channel(16);
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let typing = tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        for ev in keys {
            tx.send(ev).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        tx.send(key(KeyCode::Char('q'), KeyModifiers::NONE))
            .await
            .unwrap();
        tx
    });
    run_with_events(&mut term, app, source, None, rx)
        .await
        .unwrap();
    drop(typing.await.unwrap());
    buffer_text(term.backend().buffer())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_snapshots_are_drawn() {
    let app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    let screen = screen_after(
        Source::new(Duration::ZERO),
        app,
        (120, 20),
        Duration::from_millis(900),
        Vec::new(),
    )
    .await;
    assert!(
        screen.contains("vm4") && screen.contains("critical"),
        "{screen}"
    );
}

/// A closed terminal (its reader stopped) must end the dashboard, not leave it running unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_terminal_quits() {
    let source = Source::new(Duration::ZERO);
    let (tx, rx) = mpsc::channel::<crossterm::event::Event>(16);
    drop(tx);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    let done = tokio::time::timeout(
        Duration::from_secs(15),
        run_with_events(&mut term, app, source, None, rx),
    )
    .await;
    assert!(done.is_ok(), "the loop kept running with no terminal");
}

/// The table holds no full rows: opening a VM asks the source for its row, which comes without
/// a refresh, and the detail view draws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_view_gets_its_row_on_demand() {
    let source = Source::new(Duration::ZERO);
    let (fetches, details) = (source.fetches.clone(), source.details.clone());
    // No refresh comes by itself during the test.
    let app = App::new(Scope::default(), Duration::from_secs(3600), false, t0());
    let keys = vec![
        key(KeyCode::Char('N'), KeyModifiers::SHIFT),
        // The sort keeps the selected VM selected: go to the top first.
        key(KeyCode::Char('g'), KeyModifiers::NONE),
        key(KeyCode::Char('j'), KeyModifiers::NONE),
        key(KeyCode::Char('j'), KeyModifiers::NONE),
        key(KeyCode::Enter, KeyModifiers::NONE),
    ];
    let screen = screen_after(source, app, (160, 40), Duration::from_millis(800), keys).await;
    // Sorted by name, the third VM of the seed.
    let third = {
        let mut names: Vec<String> = seed_report(0).vms.into_iter().map(|r| r.name).collect();
        names.sort();
        names[2].clone()
    };
    assert!(screen.contains(&format!("/{third}")), "{screen}");
    assert!(screen.contains("Recommendation"), "{screen}");
    assert!(!screen.contains("Reading "), "{screen}");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "a move or an open refreshed"
    );
    assert!(details.load(Ordering::SeqCst) >= 2, "rows built on demand");
}
