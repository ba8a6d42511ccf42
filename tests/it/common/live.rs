//! Live readings through the simulator with the real kube-rs client: the inventory a user sees,
//! the read options the tests use, starting the readers, and the agent pods on the cluster.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use vmmem::cluster::connect::{self, ConnectFlags};
use vmmem::cluster::live::{LiveOptions, LiveSource, Scope};
use vmmem::model::inventory::{Inventory, SourceKind};
use vmmem::node::agent_spec::{managed_selector, AgentFlags};
use vmmem::node::readers::{LiveReadings, Mode, ReadOptions, Round};
use vmmem_sim::SimHandle;

/// `inventory_as` the admin.
pub async fn inventory(sim: &SimHandle) -> (kube::Client, Inventory) {
    inventory_as(sim, "admin").await
}

/// The client of `user`'s kubeconfig and the inventory it sees, first list within 10 s.
pub async fn inventory_as(sim: &SimHandle, user: &str) -> (kube::Client, Inventory) {
    inventory_within(sim, user, Duration::from_secs(10)).await
}

/// `inventory_as` with the time the first list may take.
pub async fn inventory_within(
    sim: &SimHandle,
    user: &str,
    initial_timeout: Duration,
) -> (kube::Client, Inventory) {
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml(user)).unwrap();
    let conn = connect::from_kubeconfig(kc, &ConnectFlags::default())
        .await
        .unwrap();
    let source = LiveSource::start(
        &conn,
        LiveOptions {
            scope: Scope::All,
            source: SourceKind::Demo,
            initial_timeout: Some(initial_timeout),
        },
    )
    .await
    .unwrap();
    (conn.client.clone(), source.snapshot())
}

/// Read options in `mode` with 20 s for exec and for agent start.
pub fn read_options(mode: Mode) -> ReadOptions {
    ReadOptions {
        mode,
        exec_timeout: Duration::from_secs(20),
        start_timeout: Duration::from_secs(20),
        ..ReadOptions::default()
    }
}

/// The live readers for `inv` with the default agent flags, started at `now`.
pub async fn start_readings(
    client: &kube::Client,
    inv: &Inventory,
    opts: ReadOptions,
    now: i64,
) -> LiveReadings {
    LiveReadings::start(client.clone(), inv, &AgentFlags::default(), opts, now)
        .await
        .unwrap()
}

/// One round at time 1 by readers started for it and closed after.
pub async fn one_round(client: &kube::Client, inv: &Inventory, opts: ReadOptions) -> Round {
    timed_round(client, inv, opts).await.0
}

/// `one_round`, and how long the round's read took.
pub async fn timed_round(
    client: &kube::Client,
    inv: &Inventory,
    opts: ReadOptions,
) -> (Round, Duration) {
    let mut live = start_readings(client, inv, opts, 1).await;
    let t = Instant::now();
    let round = live.read(inv, 1).await;
    let took = t.elapsed();
    live.close().await;
    (round, took)
}

/// The agent pods this tool manages, in vmmem-system.
pub async fn agent_pods(client: &kube::Client) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "vmmem-system");
    api.list(&ListParams::default().labels(&managed_selector()))
        .await
        .unwrap()
        .items
}
