//! `kubectl vmmem agent cleanup`: delete the agent pods left behind (e.g. by a killed run).

use std::process::ExitCode;

use anyhow::Context;

use super::args::{AgentArgs, AgentCommand};
use crate::node::agent_spec::{AgentConfig, Session};
use crate::session::Options;

pub fn run(opts: &Options, args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        AgentCommand::Cleanup => rt.block_on(cleanup(opts)),
    }
}

async fn cleanup(opts: &Options) -> anyhow::Result<ExitCode> {
    let live = crate::session::source::open(opts).await?;
    let inventory = live.source.snapshot();
    let result = match AgentConfig::for_cluster(&inventory, &opts.agent, Session::new(0)) {
        Ok(config) => crate::node::agents::sweep(&live.conn.client, &config.namespace, None, 0)
            .await
            .map(|gone| (config.namespace, gone))
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    live.close().await;
    let (namespace, gone) = result?;
    let text = if gone.is_empty() {
        format!("no agent pods in namespace {namespace}\n")
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
