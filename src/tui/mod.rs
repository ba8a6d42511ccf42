//! `kubectl vmmem top`: the interactive dashboard.
//!
//! One [`app::App`] holds the state; keys and background results become [`action::Action`]s;
//! `App::update` (update.rs) changes the state and returns [`effect::Effect`]s that the
//! [`event_loop`] runs. Data arrives as owned snapshots from the session's data source
//! (`session::dashboard`); fixes go through its fix backend. Views draw from `&App`.

pub mod action;
pub mod app;
pub mod columns;
pub mod effect;
pub mod event_loop;
pub mod history;
pub mod terminal;
pub mod update;
pub mod view;

#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;

use crate::session::dashboard::fix::FixBackend;
use crate::session::dashboard::snapshot::DataSource;
use crate::session::dashboard::{initial_scope, sources, Sources};
use crate::session::Options;
use app::App;

pub fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match sources(opts) {
        // Files cannot be changed: the fix keys say so.
        Sources::Files(source) => run_with(&runtime, opts, *source, None),
        Sources::Cluster(source, fix) => run_with(&runtime, opts, *source, Some(fix)),
    }
}

fn run_with<S: DataSource>(
    runtime: &tokio::runtime::Runtime,
    opts: &Options,
    source: S,
    fix: Option<Arc<dyn FixBackend>>,
) -> anyhow::Result<ExitCode> {
    let scope = initial_scope(&opts.namespaces, &source);
    let mut app = App::new(scope, opts.refresh, opts.readonly, SystemTime::now());
    app.colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    app.log_file = crate::diag::log_file().map(std::path::Path::to_path_buf);
    let mut guard = terminal::TerminalGuard::enter()?;
    runtime.block_on(event_loop::run(&mut guard.terminal, app, source, fix))?;
    drop(guard);
    Ok(ExitCode::SUCCESS)
}
