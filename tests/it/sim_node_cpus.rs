//! The simulator's stored probe output (`sim::nodecpu`), through the real kube-rs exec: an exec
//! answered from it prints byte for byte what a fresh run against the same host tree prints; a
//! changed tree (the next counter step) is never answered from an older run; the background
//! prepares the next step with the command the node was last asked; `fresh` runs every exec.

use std::time::Duration;

use crate::common::exec::run_exec;
use crate::common::{demo, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use vmmem::node::probe::{exec_command, ProbeSettings, ProbeTarget};
use vmmem_sim::SimHandle;

const NODE: &str = "harvester-node-1";

async fn agent(client: &kube::Client) -> (Api<Pod>, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "harvester-system");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "vmmem-agent-"},
        "spec": {"nodeName": NODE, "hostPID": true, "restartPolicy": "Never",
                 "containers": [{"name": "agent", "image": "busybox:1.37.0"}]}
    }))
    .unwrap();
    let name = pods
        .create(&PostParams::default(), &pod)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    for _ in 0..200 {
        let p = pods.get(&name).await.unwrap();
        if p.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            return (pods, name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("agent pod never turned Running");
}

/// The probe for every launcher on the node, with guest sizes (smaps scanned), as the plugin
/// sends it.
fn probe_command(sim: &SimHandle) -> Vec<String> {
    let targets: Vec<ProbeTarget> = sim
        .world()
        .launchers
        .values()
        .filter(|l| l.node == NODE)
        .map(|l| ProbeTarget::with_guest(l.pod_uid.clone(), l.shape.guest as u64))
        .collect();
    assert!(targets.len() >= 3, "launchers on {NODE}");
    exec_command(&targets, &ProbeSettings::default())
}

async fn exec(pods: &Api<Pod>, name: &str, cmd: &[String]) -> (String, String) {
    let (o, e, st) = run_exec(pods, name, cmd).await;
    assert_eq!(st.status.as_deref(), Some("Success"), "{st:?} {e}");
    assert!(
        o.starts_with("vmmem-probe 2\n") && o.ends_with("end\n"),
        "{o}"
    );
    (o, e)
}

/// (served from storage, run for an exec, run by the background).
fn counts(sim: &SimHandle) -> (u64, u64, u64) {
    let c = sim.world().exec.cpus.counts;
    (c.served, c.ran, c.prepared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_probe_output_is_what_a_fresh_run_prints_and_never_outlives_its_tree() {
    let sim = demo().await;
    sim.set_counters(Duration::from_secs(3600), false);
    let client = sim.client().await.unwrap();
    let (pods, name) = agent(&client).await;
    let cmd = probe_command(&sim);

    let first = exec(&pods, &name, &cmd).await;
    let after_first = counts(&sim);
    let again = exec(&pods, &name, &cmd).await;
    let after_again = counts(&sim);
    assert_eq!(
        after_again.0,
        after_first.0 + 1,
        "the second exec is answered from the stored run"
    );
    assert_eq!(after_again.1, after_first.1, "without running the probe");
    assert_eq!(again, first);

    // A fresh run against the same tree prints the same bytes.
    sim.set_counters(Duration::from_secs(3600), true);
    let fresh = exec(&pods, &name, &cmd).await;
    assert_eq!(counts(&sim).1, after_again.1 + 1, "fresh: the probe ran");
    assert_eq!(
        fresh, first,
        "stored output equals a fresh run on the same tree"
    );

    // The next counter step changes the tree: never answered from the older run.
    sim.set_counters(Duration::from_secs(3600), false);
    sim.advance(Duration::from_secs(3600));
    let before = counts(&sim);
    let (served_before, ran_before) = (before.0, before.1);
    let prepared = eventually(Duration::from_secs(30), || counts(&sim).2 > before.2).await;
    let next = exec(&pods, &name, &cmd).await;
    assert_ne!(next.0, first.0, "the counters moved with the step");
    if prepared {
        // The background ran the command this node was last asked, against the new tree.
        assert_eq!(counts(&sim).0, served_before + 1, "served the prepared run");
    } else {
        panic!("the background did not prepare the new counter step within 30 s");
    }
    sim.set_counters(Duration::from_secs(3600), true);
    let fresh_next = exec(&pods, &name, &cmd).await;
    assert_eq!(fresh_next, next, "the prepared run equals a fresh run");
    assert!(counts(&sim).1 > ran_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_continuous_counters_every_exec_runs() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let (pods, name) = agent(&client).await;
    let cmd = probe_command(&sim);
    exec(&pods, &name, &cmd).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    exec(&pods, &name, &cmd).await;
    let (served, ran, prepared) = counts(&sim);
    assert_eq!((served, ran, prepared), (0, 2, 0));
}
