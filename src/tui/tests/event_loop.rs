//! The loop with injected key events: keys are answered while a fetch is stuck, the source is
//! shut down on quit, and snapshots from the background are drawn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::future::BoxFuture;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::*;
use crate::session::dashboard::snapshot::DataSource;
use crate::tui::event_loop::run_with_events;

/// A source whose fetch takes `delay` and returns the seed report.
struct Source {
    delay: Duration,
    shut_down: Arc<AtomicBool>,
}

impl DataSource for Source {
    fn fetch<'a>(&'a mut self, scope: &'a Scope) -> BoxFuture<'a, Snapshot> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            snapshot(
                Some(seed_report(0)),
                std::time::SystemTime::now(),
                Health::Ok,
                scope.clone(),
            )
        })
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
        delay: Duration::from_secs(600),
        shut_down: shut_down.clone(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_snapshots_are_drawn() {
    let source = Source {
        delay: Duration::ZERO,
        shut_down: Arc::new(AtomicBool::new(false)),
    };
    let (tx, rx) = mpsc::channel(16);
    let mut term = Terminal::new(TestBackend::new(120, 20)).unwrap();
    let app = App::new(Scope::default(), Duration::from_secs(2), false, t0());
    let keys = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.send(key(KeyCode::Char('q'), KeyModifiers::NONE))
            .await
            .unwrap();
        tx
    });
    run_with_events(&mut term, app, source, None, rx)
        .await
        .unwrap();
    let screen = buffer_text(term.backend().buffer());
    assert!(
        screen.contains("vm4") && screen.contains("critical"),
        "{screen}"
    );
    drop(keys.await.unwrap());
}

/// A closed terminal (its reader stopped) must end the dashboard, not leave it running unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_terminal_quits() {
    let source = Source {
        delay: Duration::ZERO,
        shut_down: Arc::new(AtomicBool::new(false)),
    };
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
