//! `kubectl vmmem agent cleanup`: delete the agent pods left behind by killed runs of this
//! machine and those past their deadline; with `--all` every agent pod in the namespace.

use std::process::ExitCode;

use anyhow::Context;

use super::args::{AgentArgs, AgentCommand};
use crate::node::agent_spec::{AgentConfig, Session};
use crate::node::agents::Sweep;
use crate::node::owners::Owners;
use crate::session::Options;

pub fn run(opts: &Options, args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        AgentCommand::Cleanup { all } => rt.block_on(cleanup(opts, all)),
    }
}

async fn cleanup(opts: &Options, all: bool) -> anyhow::Result<ExitCode> {
    let live = crate::session::source::open(opts).await?;
    let inventory = live.source.snapshot();
    let session = Session::new(crate::session::readings::unix_now());
    let owners = Owners::in_state_dir();
    let which = if all {
        Sweep::All
    } else {
        Sweep::Stale {
            keep: &session,
            owners: &owners,
        }
    };
    let result = match AgentConfig::for_cluster(&inventory, &opts.agent, session.clone()) {
        Ok(config) => crate::node::agents::sweep(&live.conn.client, &config.namespace, which)
            .await
            .map(|gone| (config.namespace, gone))
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    live.close().await;
    let (namespace, gone) = result?;
    let text = if gone.is_empty() {
        format!("no agent pods to delete in namespace {namespace}\n")
    } else {
        gone.iter()
            .map(|name| format!("pod/{name} deleted\n"))
            .collect()
    };
    // The pods are gone already: a reader that went away (`| head`) loses only this list.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the list of deleted agent pods")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
