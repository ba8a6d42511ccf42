//! One round of node readings for one-shot readers (`list`, `fix`): start the readers, read the
//! nodes (probe and kernel log through the same agent), and delete the agent pods again on every
//! exit path (Ctrl-C, SIGTERM, SIGHUP included).

use anyhow::Context;

use super::options::Options;
use super::signals::interrupted;
use crate::model::inventory::Inventory;
use crate::node::readers::{LiveReadings, Mode, Round};

/// The clock, in Unix seconds (the readings' timestamps).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Start the readers, read one round (with each node's kernel log when the agent can run), and
/// delete the agents again, also when interrupted.
/// A reading round ended by a signal (the command ends; anything else may be only a warning).
#[derive(Debug, thiserror::Error)]
#[error("{why}; {agents}")]
pub struct Interrupted {
    pub why: &'static str,
    pub agents: &'static str,
}

pub async fn one_round(
    opts: &Options,
    client: kube::Client,
    inv: &Inventory,
) -> anyhow::Result<Round> {
    let mut read_opts = opts.read_options();
    if read_opts.mode == Mode::Off {
        return Ok(Round::default());
    }
    read_opts.kernel_logs = true;
    let now = unix_now();
    let mut live = tokio::select! {
        r = LiveReadings::start(client, inv, &opts.agent, read_opts, now) => r.context("starting live readings")?,
        why = interrupted() => return Err(Interrupted { why, agents: "before any agent pod was created" }.into()),
    };
    let outcome = tokio::select! {
        round = live.read(inv, now) => Ok(round),
        why = interrupted() => Err(why),
    };
    live.close().await;
    match outcome {
        Ok(round) => Ok(round),
        Err(why) => Err(Interrupted {
            why,
            agents: "the agent pods were deleted",
        }
        .into()),
    }
}
