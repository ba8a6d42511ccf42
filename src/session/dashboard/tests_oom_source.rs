//! The dashboard's cluster source against the simulated cluster: the memhold VM is OOM-killed
//! (model time jumps ahead), the source reads harvester-node-1's kernel log through its agent
//! in the background, and the VM's row counts the kill, still after the VM restarted in a new
//! pod; quitting deletes the agents.

use std::time::{Duration, Instant};

use crate::cluster::connect::ConnectFlags;
use crate::history::HistoryMode;
use crate::model::evidence::VmKey;
use crate::model::report::{Flag, VmRow};
use crate::session::dashboard::cluster::ClusterSource;
use crate::session::dashboard::cluster_fix::ClientSlot;
use crate::session::dashboard::snapshot::{DataSource, Request, Scope, Snapshot};
use crate::session::options::{Namespaces, Options};
use vmmem_sim::resources::PODS;
use vmmem_sim::{Sim, SimHandle};

fn memhold(snap: &Snapshot) -> Option<VmRow> {
    snap.details
        .iter()
        .find(|v| v.name == "memhold-vm")
        .cloned()
}

/// The dashboard's source for all namespaces of the demo simulator `sim`, with agents (the
/// directory holds its kubeconfig).
pub(super) fn demo_source(sim: &SimHandle) -> (ClusterSource, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let opts = Options {
        connect: ConnectFlags {
            kubeconfig: Some(kc),
            request_timeout: Some(Duration::from_secs(10)),
            ..ConnectFlags::default()
        },
        namespaces: Namespaces::All,
        // In this process: no peak store, so nothing is written to the user's state directory
        // (the session's own peaks are still kept and are evidence).
        history: HistoryMode::Off,
        ..Options::default()
    };
    (ClusterSource::new(opts, ClientSlot::default()), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memhold_kill_reaches_the_row_from_the_kernel_log() {
    let sim = Sim::start_demo().await.unwrap();
    let (mut source, _dir) = demo_source(&sim);
    // The source builds the full row of the VM in focus only.
    let scope = Request {
        scope: Scope { namespace: None },
        focus: Some(VmKey::new("default", "memhold-vm")),
        generation: 0,
    };
    let first = source.fetch(&scope).await;
    assert!(first.health.is_ok(), "{:?}", first.health);
    let before = memhold(&first).expect("memhold-vm in the first snapshot");
    assert_eq!(before.oom_kills, Some(0));
    assert!(before.oom_history.is_empty());
    let old_pod = before.pod_uid.clone().unwrap();
    // The memhold process grows past the budget: qemu is killed, the VM restarts.
    sim.advance(Duration::from_secs(400));
    let start = Instant::now();
    let row = loop {
        let snap = source.fetch(&scope).await;
        if let Some(r) = memhold(&snap) {
            let restarted = r.pod_uid.as_ref().is_some_and(|p| p != &old_pod);
            if restarted && !r.oom_history.is_empty() {
                break r;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no kernel-log kill for memhold-vm after 60 s: {:?}",
            memhold(&snap).map(|r| (r.oom_kills, r.pod_uid, r.flags, r.notes))
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(row.oom_kills, Some(1), "{:?}", row.flags);
    assert!(row.has_flag(Flag::OomKilledBefore), "{:?}", row.flags);
    let e = &row.oom_history[0];
    assert_eq!(e.event.pod_uid.as_deref(), Some(old_pod.as_str()));
    assert_eq!(e.event.node.as_deref(), Some("harvester-node-1"));
    assert!(
        e.verdict
            .starts_with("VM default/memhold-vm was OOM-killed at "),
        "{}",
        e.verdict
    );
    assert!(e.verdict.contains("on harvester-node-1"), "{}", e.verdict);
    source.shutdown().await;
    let agents = sim
        .world()
        .store
        .list(&PODS, None)
        .filter(|p| p["metadata"]["labels"][crate::node::agent_spec::MANAGED_BY] == "kubectl-vmmem")
        .count();
    assert_eq!(agents, 0, "the agents are deleted on quit");
    sim.shutdown().await;
}
