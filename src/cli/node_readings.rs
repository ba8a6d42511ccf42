//! Node readings from the command line's flags: `--live`, `--agent-*`, `--request-timeout`, and
//! the exit paths (Ctrl-C, SIGTERM) that must still delete the agent pods.

use anyhow::{bail, Context};

use super::args::{GlobalArgs, LiveMode};
use crate::model::inventory::Inventory;
use crate::node::agent_spec::AgentFlags;
use crate::node::readers::{LiveReadings, Mode, ReadOptions, Round};

pub fn agent_flags(global: &GlobalArgs) -> AgentFlags {
    AgentFlags {
        namespace: global.agent_namespace.clone(),
        image: global.agent_image.clone(),
        pull_secret: global.agent_pull_secret.clone(),
        pull_policy: global.agent_pull_policy.clone(),
    }
}

/// Reading options from the flags.
pub fn read_options(global: &GlobalArgs) -> anyhow::Result<ReadOptions> {
    let mode = match global.live {
        LiveMode::Auto => Mode::Auto,
        LiveMode::Agent => Mode::Agent,
        LiveMode::PodExec => Mode::PodExec,
        LiveMode::Off => Mode::Off,
        LiveMode::Kubelet => Mode::Kubelet,
    };
    Ok(ReadOptions {
        mode,
        ..ReadOptions::default()
    })
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM on Unix).
pub async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let ctrl_c = tokio::signal::ctrl_c();
        match term {
            Ok(mut t) => tokio::select! {
                _ = ctrl_c => "interrupted",
                _ = t.recv() => "terminated",
            },
            Err(_) => {
                let _ = ctrl_c.await;
                "interrupted"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

/// Listen now for SIGINT, SIGTERM and SIGHUP (Ctrl-C, kill, a closed terminal); the returned
/// future resolves with a word for the first one. Installing the handlers before the work starts
/// means no signal can arrive unanswered in between, and a signal that was ignored when the
/// process started (a background job of a non-interactive shell) is answered too.
pub fn stop_signals(
) -> anyhow::Result<impl std::future::Future<Output = &'static str> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => "interrupted",
                _ = term.recv() => "terminated",
                _ = hup.recv() => "hung up",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        })
    }
}

/// Start the readers, read one round, and delete the agents again, also when interrupted.
pub async fn one_round(
    global: &GlobalArgs,
    client: kube::Client,
    inv: &Inventory,
) -> anyhow::Result<Round> {
    let opts = read_options(global)?;
    if opts.mode == Mode::Off {
        return Ok(Round::default());
    }
    let now = unix_now();
    let flags = agent_flags(global);
    let mut live = tokio::select! {
        r = LiveReadings::start(client, inv, &flags, opts, now) => r.context("starting live readings")?,
        why = interrupted() => bail!("{why} before any agent pod was created"),
    };
    let outcome = tokio::select! {
        round = live.read(inv, now) => Ok(round),
        why = interrupted() => Err(why),
    };
    live.close().await;
    match outcome {
        Ok(round) => Ok(round),
        Err(why) => bail!("{why}; the agent pods were deleted"),
    }
}
