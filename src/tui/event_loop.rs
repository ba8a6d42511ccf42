//! The loop: keys, snapshots, effect results, a clock tick and signals become actions; the App
//! updates; the screen is redrawn; effects are run here, never inside the App.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use crossterm::event::{self, Event};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::{mpsc, watch};

use super::action::{self, Action};
use super::app::App;
use super::effect::Effect;
use super::history::VmKey;
use super::view;
use crate::session::dashboard::fix::FixBackend;
use crate::session::dashboard::snapshot::{fetch_loop, DataSource, Feed, Request};
use crate::session::signals::StopSignals;

/// Reads terminal events on a thread (crossterm's reads block) until `stop` is set.
fn spawn_input(tx: mpsc::Sender<Event>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // A hung-up terminal (its window closed, its tmux server killed) makes poll return at
        // once with nothing to read; a run of such instant empty polls means it is gone, and
        // returning drops `tx`, which ends the dashboard.
        let mut instant_empty = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let asked = std::time::Instant::now();
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        instant_empty = 0;
                        if tx.blocking_send(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) if asked.elapsed() < Duration::from_millis(50) => {
                    instant_empty += 1;
                    if instant_empty >= 100 {
                        return;
                    }
                }
                Ok(false) => instant_empty = 0,
                Err(_) => return,
            }
        }
    })
}

/// Run the dashboard on the real terminal until the user quits or a terminating signal arrives.
pub async fn run<B, S>(
    terminal: &mut Terminal<B>,
    app: App,
    source: S,
    fix: Option<Arc<dyn FixBackend>>,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: std::error::Error + Send + Sync + 'static,
    S: DataSource,
{
    let (key_tx, key_rx) = mpsc::channel(64);
    let stop = Arc::new(AtomicBool::new(false));
    let input = spawn_input(key_tx, stop.clone());
    let result = run_with_events(terminal, app, source, fix, key_rx).await;
    stop.store(true, Ordering::Relaxed);
    // Not joined: on a hung-up terminal crossterm's poll can spin without returning, and waiting
    // for it kept closed dashboards alive at full CPU. The thread ends with the process.
    drop(input);
    result
}

/// The loop itself, with terminal events from `events` (tests inject them).
pub async fn run_with_events<B, S>(
    terminal: &mut Terminal<B>,
    mut app: App,
    source: S,
    fix: Option<Arc<dyn FixBackend>>,
    mut key_rx: mpsc::Receiver<Event>,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: std::error::Error + Send + Sync + 'static,
    S: DataSource,
{
    let (req_tx, req_rx) = watch::channel(Request {
        scope: app.scope.clone(),
        focus: None,
        generation: 0,
    });
    let (snap_tx, mut snap_rx) = mpsc::channel(2);
    let fetcher = tokio::spawn(fetch_loop(source, app.refresh, req_rx, snap_tx));
    let (act_tx, mut act_rx) = mpsc::channel::<Action>(16);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // SIGTERM, SIGHUP and SIGINT end the dashboard like `q` does.
    let mut terms = StopSignals::new().context("listening for SIGTERM, SIGHUP and SIGINT")?;
    app.fix_enabled = fix.is_some();
    if let Ok(size) = terminal.size() {
        app.update(Action::Resize(size.width, size.height));
    }
    let result: anyhow::Result<()> = async {
        loop {
            terminal
                .draw(|f| view::draw(f, &app))
                .context("drawing the screen")?;
            if app.quit {
                return Ok(());
            }
            let act = tokio::select! {
                ev = key_rx.recv() => match ev {
                    Some(Event::Key(k)) => action::from_key(&app, k),
                    Some(Event::Resize(w, h)) => Some(Action::Resize(w, h)),
                    Some(_) => None,
                    // The terminal is gone (its reader stopped on an error): nobody can see or
                    // quit the dashboard any more, so it quits itself.
                    None => Some(Action::Quit),
                },
                Some(feed) = snap_rx.recv() => Some(match feed {
                    Feed::Snapshot(s) => Action::Snapshot(s),
                    Feed::Detail(d) => Action::Detail(d),
                }),
                Some(a) = act_rx.recv() => Some(a),
                _ = tick.tick() => Some(Action::Tick(SystemTime::now())),
                _ = terms.recv() => Some(Action::Quit),
            };
            let Some(act) = act else { continue };
            // A key clears the last one-line message.
            if !matches!(
                act,
                Action::Tick(_) | Action::Snapshot(_) | Action::Detail(_)
            ) {
                app.flash = None;
            }
            // The source builds the full row of the VM looked at, and only that one: the focus
            // goes with a fetch asked for by the same action, or alone when it changed.
            let effects = app.update(act);
            let focus = app.focus();
            for eff in effects {
                run_effect(eff, &req_tx, &focus, &act_tx, fix.as_ref());
            }
            req_tx.send_if_modified(|r| {
                let changed = r.focus != focus;
                r.focus = focus;
                changed
            });
        }
    }
    .await;
    drop(req_tx);
    drop(snap_rx);
    // Give the source a moment to clean up (agent pods) before the runtime goes away.
    let _ = tokio::time::timeout(Duration::from_secs(10), fetcher).await;
    result
}

fn run_effect(
    eff: Effect,
    req_tx: &watch::Sender<Request>,
    focus: &Option<VmKey>,
    act_tx: &mpsc::Sender<Action>,
    fix: Option<&Arc<dyn FixBackend>>,
) {
    match eff {
        // The fetch task always sees the latest request; it only fails once the task is gone.
        Effect::Fetch(scope) => {
            req_tx.send_modify(|r| {
                r.scope = scope;
                r.generation += 1;
                r.focus = focus.clone();
            });
        }
        Effect::Plan(row, req) => {
            let tx = act_tx.clone();
            match fix {
                Some(b) => {
                    let fut = b.plan(*row, req.clone());
                    tokio::spawn(async move {
                        let plan = fut.await;
                        let _ = tx.send(Action::Planned(req, plan)).await;
                    });
                }
                None => {
                    let _ = act_tx.try_send(Action::Planned(
                        req,
                        Err(crate::session::dashboard::fix::NOT_IN_THIS_BUILD.to_string()),
                    ));
                }
            }
        }
        Effect::Apply(row, req) => {
            let tx = act_tx.clone();
            match fix {
                Some(b) => {
                    let (ptx, preq) = (act_tx.clone(), req.clone());
                    let progress = Box::new(move |line: &str| {
                        let _ = ptx.try_send(Action::FixProgress(preq.clone(), line.to_string()));
                    });
                    let fut = b.apply(*row, req.clone(), progress);
                    tokio::spawn(async move {
                        let outcome = fut.await;
                        let _ = tx.send(Action::Applied(req, outcome)).await;
                    });
                }
                None => {
                    let _ = act_tx.try_send(Action::Applied(
                        req,
                        crate::session::dashboard::fix::ApplyOutcome::Failed(
                            crate::session::dashboard::fix::NOT_IN_THIS_BUILD.into(),
                        ),
                    ));
                }
            }
        }
    }
}
