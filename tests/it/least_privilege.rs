//! Least privilege through the real binary against the simulated cluster: `--readonly` changes
//! nothing (no agent pod created or deleted, no sweep, no patch), `--live auto` makes agents only
//! in an agent namespace that exists, and SIGHUP (the terminal closing) deletes the agents like
//! Ctrl-C does.

use crate::common;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use vmmem_sim::SimHandle;

async fn run(sim: &SimHandle, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `list --readonly` against the demo: 0 creates, 0 deletes, 0 patches or updates (counted by
/// the simulated API server), and it says where the live numbers came from instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_readonly_makes_no_change_to_the_cluster() {
    let sim = common::demo().await;
    let before = sim.request_tally();
    let out = run(&sim, &["list", "-A", "-o", "json", "--readonly"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = sim.request_tally();
    assert_eq!(after.create - before.create, 0, "creates: {after:?}");
    assert_eq!(after.delete - before.delete, 0, "deletes: {after:?}");
    assert_eq!(after.patch - before.patch, 0, "patches: {after:?}");
    assert_eq!(after.update - before.update, 0, "updates: {after:?}");
    assert!(after.exec > before.exec, "pod-exec read the VMs: {after:?}");
    // JSON carries its warnings (the table prints them on stderr).
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let said = report["warnings"].to_string();
    assert!(
        said.contains("no agent pods: --readonly changes nothing in the cluster")
            && said.contains("pod-exec"),
        "{said}"
    );
    let out = run(&sim, &["list", "-A", "--readonly"]).await;
    assert!(
        stderr(&out).contains("warning: no agent pods: --readonly changes nothing"),
        "{}",
        stderr(&out)
    );
    let running: Vec<&Value> = report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["phase"] == "Running")
        .collect();
    assert!(running.len() >= 10);
    for vm in running {
        assert_eq!(vm["liveSource"], "pod-exec", "{}", vm["name"]);
    }
    // The agent source is a pod: refused with the reason, before any request changes anything.
    let out = run(&sim, &["list", "-A", "--readonly", "--live", "agent"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--readonly makes no change to the cluster"),
        "{}",
        stderr(&out)
    );
    let end = sim.request_tally();
    assert_eq!((end.create, end.delete), (before.create, before.delete));
    sim.shutdown().await;
}

/// Without its namespace, `--live auto` makes no agent (no create request at all) and says how
/// to make the namespace; `--live agent` refuses with the manifest's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_makes_agents_only_where_their_namespace_exists() {
    let sim = common::demo().await;
    let before = sim.request_tally();
    let out = run(&sim, &["list", "-A", "--agent-namespace", "nope"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sim.request_tally().create,
        before.create,
        "no agent created"
    );
    let err = stderr(&out);
    assert!(
        err.contains("the agent namespace nope does not exist")
            && err.contains("assets/rbac/agent-namespace.yaml"),
        "{err}"
    );
    let out = run(
        &sim,
        &["list", "-A", "--live", "agent", "--agent-namespace", "nope"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("kubectl apply -f assets/rbac/agent-namespace.yaml"),
        "{}",
        stderr(&out)
    );
    // The default namespace exists in the simulated cluster (as the manifest makes it): agents.
    let before = sim.request_tally();
    let out = run(&sim, &["list", "-A", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        sim.request_tally().create > before.create,
        "agents were made"
    );
    assert!(common::live::agent_pods(&sim.client().await.unwrap())
        .await
        .is_empty());
    sim.shutdown().await;
}

/// SIGHUP while `list` waits on its agents' probes: the real binary deletes its agent pods
/// before it ends, as for Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_deletes_the_agents() {
    let sim = common::demo().await;
    let client = sim.client().await.unwrap();
    // Every probe hangs for longer than the test waits: the binary is mid-round when hung up.
    sim.set_exec_latency(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["list", "-A", "-o", "json", "--live", "agent"])
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let mut running = 0;
    while Instant::now() < until {
        running = common::live::agent_pods(&client)
            .await
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running >= 3, "the agents never ran");
    let pid = child.id().unwrap() as i32;
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the binary did not end after SIGHUP")
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("hung up") && err.contains("agent pods were deleted"),
        "{err}"
    );
    let left = common::live::agent_pods(&client).await;
    assert!(left.is_empty(), "agents left after SIGHUP: {}", left.len());
    sim.shutdown().await;
}
