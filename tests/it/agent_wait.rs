//! Waiting for agent pods to run, counted at the simulator: one list of the session's agents per
//! poll round answers every agent that is starting (no GET per agent per round); without the
//! right to list pods, each agent is polled by itself and the readings still come.

use crate::common;

use crate::common::live::{inventory, read_options, start_readings};
use vmmem::node::readers::Mode;
use vmmem_sim::Scenario;

const NODES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_wait_on_one_list_per_poll_round() {
    let sim = common::start(Scenario::generated(100, NODES)).await;
    let (client, inv) = inventory(&sim).await;
    let before = sim.request_tally();
    let mut live = start_readings(&client, &inv, read_options(Mode::Agent), 1_700_000_000).await;
    let round = live.read(&inv, 1_700_000_000).await;
    let d = sim.request_tally().since(&before);
    assert!(round.stale.is_empty(), "{:?}", round.stale);
    assert_eq!(round.readings.len(), NODES);
    assert_eq!(d.create, NODES as u64, "one agent per node");
    // One GET: the agent namespace, looked at before any agent is made.
    assert_eq!(d.get, 1, "no agent is polled by itself: {d:?}");
    // The sweep's list, then one list per 100 ms round while the pods start (they start
    // within the simulator's 100 ms pod start delay plus its 200 ms tick).
    assert!(
        (2..=8).contains(&d.list),
        "{} lists for {NODES} starting agents",
        d.list
    );
    live.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_list_right_each_agent_is_polled_by_itself() {
    let sim = common::start(Scenario::generated(40, 8)).await;
    let (client, inv) = inventory(&sim).await;
    sim.forbid_verb("admin", "list", "pods");
    let before = sim.request_tally();
    let mut live = start_readings(&client, &inv, read_options(Mode::Agent), 1_700_000_000).await;
    let round = live.read(&inv, 1_700_000_000).await;
    let d = sim.request_tally().since(&before);
    assert!(round.stale.is_empty(), "{:?}", round.stale);
    assert_eq!(round.readings.len(), 8);
    assert!(d.get >= 8, "each agent polled by GET: {d:?}");
    live.close().await;
    sim.shutdown().await;
}
