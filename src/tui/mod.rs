//! `kubectl vmmem top`: the interactive dashboard.
//!
//! One [`app::App`] holds the state; keys and background results become [`action::Action`]s;
//! `App::update` (update.rs) changes the state and returns [`effect::Effect`]s that the
//! [`event_loop`] runs. Data arrives as owned [`snapshot::Snapshot`]s from a
//! [`snapshot::DataSource`] task; fixes go through a [`fix::FixBackend`]. Views draw from `&App`.

pub mod action;
pub mod app;
pub mod columns;
pub mod effect;
pub mod event_loop;
pub mod fix;
pub mod history;
pub mod snapshot;
pub mod terminal;
pub mod update;
pub mod view;

#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::cli::args::{GlobalArgs, TopArgs};
use app::App;
use snapshot::{DataSource, FilesSource, Scope};

/// Parse `--refresh`: `2s`, `500ms`, `1m`, or plain seconds like k9s (`2`, `0.5`).
pub fn parse_refresh(s: &str) -> anyhow::Result<Duration> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("--refresh {s:?} is not a duration like 2s, 500ms or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("--refresh {s:?}: unknown unit {unit:?} (use ms, s, m or h)"),
    };
    if !secs.is_finite() || secs < 0.1 {
        bail!("--refresh {s:?} is too short (at least 100ms)");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The scope from `-n`/`-A`, else the source's default namespace.
pub fn initial_scope(global: &GlobalArgs, source: &dyn DataSource) -> Scope {
    if global.all_namespaces {
        Scope { namespace: None }
    } else if let Some(ns) = &global.namespace {
        Scope {
            namespace: Some(ns.clone()),
        }
    } else {
        Scope {
            namespace: source.default_namespace(),
        }
    }
}

pub fn run(global: &GlobalArgs, _args: &TopArgs) -> anyhow::Result<ExitCode> {
    let refresh = parse_refresh(&global.refresh)?;
    let Some(path) = &global.from else {
        bail!("the dashboard reads a live cluster or --demo once the live client is in this build; for now use --from PATH")
    };
    let source = FilesSource::new(path.clone(), global.clone());
    let scope = initial_scope(global, &source);
    let mut app = App::new(scope, refresh, global.readonly, SystemTime::now());
    app.colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut guard = terminal::TerminalGuard::enter()?;
    runtime.block_on(event_loop::run(&mut guard.terminal, app, source, None))?;
    drop(guard);
    Ok(ExitCode::SUCCESS)
}
