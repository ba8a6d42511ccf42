//! Agent faults through the simulator: an agent deleted by someone else is recreated in the
//! next refresh; a hung node's VMs are stale with the reason in `list`; and a `kill -9` of the
//! real binary leaves agents that end at their deadline (the simulated kubelet kills them) and
//! that the next run on this machine sweeps before then.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::live::{agent_pods, inventory_within, read_options, start_readings};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::Value;
use vmmem::model::readings::LiveSource as Source;
use vmmem::node::readers::Mode;
use vmmem_sim::SimHandle;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-vmmem");

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap()
}

fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn kubeconfig(sim: &SimHandle, dir: &Path) -> PathBuf {
    let p = dir.join("admin.kubeconfig");
    sim.write_kubeconfig(&p).unwrap();
    p
}

/// Run the real binary to the end.
async fn run(args: Vec<String>) -> std::process::Output {
    crate::common::run_plugin(args).await
}

fn args(kc: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    v.extend(["--kubeconfig".into(), kc.display().to_string()]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_deleted_by_someone_else_is_recreated_in_the_next_refresh() {
    let sim = common::demo().await;
    let (client, inv) = inventory_within(&sim, "admin", Duration::from_secs(20)).await;
    let mut live = start_readings(&client, &inv, read_options(Mode::Agent), 1).await;
    let first = live.read(&inv, 1).await;
    assert!(first.stale.is_empty(), "{:?}", first.stale);
    let before = agent_pods(&client).await;
    assert_eq!(before.len(), 4);
    let victim = before
        .iter()
        .find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("harvester-node-1"))
        .unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "vmmem-system");
    api.delete(&name(victim), &DeleteParams::default())
        .await
        .unwrap();

    let second = live.read(&inv, 2).await;
    assert!(
        second.stale.is_empty(),
        "the refresh after the deletion reads every node: {:?}",
        second.stale
    );
    let node1 = &second.readings["harvester-node-1"];
    assert_eq!((node1.source, node1.taken_at), (Source::Agent, 2), "fresh");
    let after = agent_pods(&client).await;
    assert_eq!(after.len(), 4, "one agent per node again");
    let names: Vec<String> = after.iter().map(name).collect();
    assert!(!names.contains(&name(victim)));
    let replacement = after
        .iter()
        .find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("harvester-node-1"))
        .unwrap();
    assert_eq!(phase(replacement), "Running");
    // The other agents were reused.
    for p in before.iter().filter(|p| name(p) != name(victim)) {
        assert!(names.contains(&name(p)), "{} was replaced", name(p));
    }
    live.close().await;
    assert!(agent_pods(&client).await.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_marks_a_hung_nodes_vms_stale_with_the_reason() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&sim, dir.path());
    sim.hang_node_exec("harvester-node-2", true);
    let out = run(args(&kc, &["list", "-A", "--live", "agent", "-o", "json"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = "live data for node harvester-node-2 is stale: exec into pod vmmem-system/";
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.starts_with(reason) && w.ends_with("did not finish within 10s")
        }),
        "{warnings:?}"
    );
    let mut stale = 0;
    let mut fresh = 0;
    for vm in report["vms"].as_array().unwrap() {
        if vm["phase"] != "Running" {
            continue;
        }
        let flags: Vec<&str> = vm["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        if vm["node"] == "harvester-node-2" {
            stale += 1;
            assert!(flags.contains(&"stale"), "{vm}");
            assert!(vm["cgroup"].is_null(), "{vm}");
            assert!(
                vm["notes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n.as_str().unwrap().starts_with(reason)),
                "{vm}"
            );
        } else {
            fresh += 1;
            assert!(!flags.contains(&"stale"), "{vm}");
            assert!(vm["cgroup"]["usageBytes"].as_i64().unwrap() > 0, "{vm}");
        }
    }
    assert!(stale >= 1 && fresh >= 5, "stale {stale}, fresh {fresh}");
    // The table says it on stderr, once for the node.
    let out = run(args(&kc, &["list", "-A", "--live", "agent"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("warning: live data for node harvester-node-2 is stale: "))
            .count(),
        1,
        "{stderr}"
    );
    sim.shutdown().await;
}

/// Start `list` with probes that take minutes, wait until its agents run, and SIGKILL it.
/// Returns the names of the agents it left behind.
async fn kill_list_after_its_agents_run(sim: &SimHandle, kc: &Path) -> Vec<String> {
    let client = sim.client().await.unwrap();
    sim.set_exec_latency(Duration::from_secs(300));
    let mut child: Child = Command::new(BIN)
        .env("XDG_STATE_HOME", crate::common::state_home())
        .args(args(kc, &["list", "-A", "--live", "agent"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let until = Instant::now() + Duration::from_secs(60);
    let left = loop {
        // The only agents in this cluster (their labels name no process).
        let ours: Vec<Pod> = agent_pods(&client).await;
        if ours.len() == 4 && ours.iter().all(|p| phase(p) == "Running") {
            break ours;
        }
        assert!(
            Instant::now() < until,
            "the agents of pid {pid} never all ran: {:?}",
            ours.iter().map(|p| (name(p), phase(p))).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().unwrap(); // SIGKILL: no clean-up can run
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    sim.set_exec_latency(Duration::ZERO);
    let mut names: Vec<String> = left.iter().map(name).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_plugins_agents_end_at_their_deadline_and_the_next_run_sweeps_them() {
    let sim = common::demo().await;
    let client = sim.client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&sim, dir.path());

    // 1. Killed, then a new run long before the deadline: it deletes the orphans at start-up.
    let orphans = kill_list_after_its_agents_run(&sim, &kc).await;
    let still: Vec<String> = agent_pods(&client).await.iter().map(name).collect();
    assert!(
        orphans.iter().all(|o| still.contains(o)),
        "SIGKILL left them"
    );
    let out = run(args(&kc, &["list", "-A", "--live", "agent"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: deleted 4 agent pod(s) left behind by earlier runs: "),
        "{stderr}"
    );
    for o in &orphans {
        assert!(stderr.contains(o.as_str()), "{o} not named: {stderr}");
    }
    assert!(
        agent_pods(&client).await.is_empty(),
        "the orphans were swept and the new run deleted its own"
    );

    // 2. Killed again, and nobody runs the tool: at the deadline the kubelet ends them.
    let orphans = kill_list_after_its_agents_run(&sim, &kc).await;
    let deadline = agent_pods(&client).await[0]
        .spec
        .as_ref()
        .unwrap()
        .active_deadline_seconds
        .unwrap();
    sim.advance(Duration::from_secs(deadline as u64 - 60));
    assert!(
        agent_pods(&client)
            .await
            .iter()
            .all(|p| phase(p) == "Running"),
        "still running a minute before the deadline"
    );
    sim.advance(Duration::from_secs(61));
    let ended = agent_pods(&client).await;
    assert_eq!(ended.len(), 4);
    for p in &ended {
        assert!(orphans.contains(&name(p)));
        let st = p.status.as_ref().unwrap();
        assert_eq!(
            (st.phase.as_deref(), st.reason.as_deref()),
            (Some("Failed"), Some("DeadlineExceeded")),
            "{}",
            name(p)
        );
    }
    // And what is left of them (ended pods) goes at the next start.
    let out = run(args(&kc, &["list", "-A", "--live", "agent"])).await;
    assert!(out.status.success());
    assert!(agent_pods(&client).await.is_empty());
    sim.shutdown().await;
}
