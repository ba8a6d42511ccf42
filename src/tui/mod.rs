//! `kubectl vmmem top`: the interactive dashboard.
//!
//! One [`app::App`] holds the state; keys and background results become [`action::Action`]s;
//! `App::update` (update.rs) changes the state and returns [`effect::Effect`]s that the
//! [`event_loop`] runs. Data arrives as owned [`snapshot::Snapshot`]s from a
//! [`snapshot::DataSource`] task; fixes go through a [`fix::FixBackend`]. Views draw from `&App`.

pub mod action;
pub mod app;
pub mod cluster_fix;
pub mod cluster_source;
pub mod columns;
pub mod effect;
pub mod event_loop;
pub mod fix;
pub mod history;
pub mod kernel_logs;
pub mod oom_watch;
pub mod snapshot;
pub mod terminal;
pub mod update;
pub mod view;

#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::cli::args::{GlobalArgs, TopArgs};
use app::App;
use snapshot::{DataSource, FilesSource, Scope};

/// Parse `--refresh` like kubectl durations (`2s`, `500ms`, `1m`, or seconds like k9s's `2`).
pub fn parse_refresh(s: &str) -> anyhow::Result<Duration> {
    let d = crate::parse::duration::parse(s).context("--refresh")?;
    if d < Duration::from_millis(100) {
        bail!("--refresh {s:?} is too short (at least 100ms)");
    }
    Ok(d)
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match &global.from {
        // Files cannot be changed: the fix keys say so.
        Some(path) => {
            let source = FilesSource::new(path.clone(), global.clone());
            run_with(&runtime, global, refresh, source, None)
        }
        None => {
            let slot = cluster_fix::ClientSlot::default();
            let fix = cluster_fix::ClusterFix::new(
                slot.clone(),
                crate::cli::list::report_options(global)?,
            );
            let source = cluster_source::ClusterSource::new(global.clone(), slot);
            run_with(&runtime, global, refresh, source, Some(Arc::new(fix)))
        }
    }
}

fn run_with<S: DataSource>(
    runtime: &tokio::runtime::Runtime,
    global: &GlobalArgs,
    refresh: Duration,
    source: S,
    fix: Option<Arc<dyn fix::FixBackend>>,
) -> anyhow::Result<ExitCode> {
    let scope = initial_scope(global, &source);
    let mut app = App::new(scope, refresh, global.readonly, SystemTime::now());
    app.colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    app.log_file = crate::diag::log_file().map(std::path::Path::to_path_buf);
    let mut guard = terminal::TerminalGuard::enter()?;
    runtime.block_on(event_loop::run(&mut guard.terminal, app, source, fix))?;
    drop(guard);
    Ok(ExitCode::SUCCESS)
}
