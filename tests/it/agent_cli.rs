//! The real binary against the simulated cluster in this process: `list` with agents (deleted
//! afterwards), `agent cleanup`, and `oom --node` reading a node's kernel log through its agent.

use crate::common;

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};
use vmmem_sim::SimHandle;

async fn run(sim: &SimHandle, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap()
}

async fn agents(client: &kube::Client) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "vmmem-system");
    api.list(&ListParams::default().labels("app.kubernetes.io/managed-by=kubectl-vmmem"))
        .await
        .unwrap()
        .items
}

fn ok_json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The report's VMs in phase Running.
fn running_vms(report: &Value) -> Vec<&Value> {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["phase"] == "Running")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_through_agents_and_deletes_them() {
    let sim = common::demo().await;
    let client = sim.client().await.unwrap();
    let report = ok_json(&run(&sim, &["list", "-A", "-o", "json", "--live", "agent"]).await);
    let running = running_vms(&report);
    assert!(running.len() >= 10);
    for vm in &running {
        assert_eq!(vm["liveSource"], "agent", "{}", vm["name"]);
        assert!(vm["cgroup"]["usageBytes"].as_u64().unwrap() > 0);
        // Hugepage-backed guest RAM is not in the memory cgroup: nothing to read in smaps.
        if !hugepages(vm) {
            assert!(vm["guestResidentExact"].as_bool().unwrap());
        }
    }
    assert!(agents(&client).await.is_empty(), "list deletes its agents");
    // --live off: no agents, no live numbers.
    let report = ok_json(&run(&sim, &["list", "-A", "-o", "json", "--live", "off"]).await);
    assert!(report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["liveSource"].is_null()));
    // Nothing read, nothing known: no OOM kill count (not 0) where no cgroup or log was read.
    for vm in report["vms"].as_array().unwrap() {
        assert!(
            vm["oomKills"].is_null(),
            "{}: {}",
            vm["name"],
            vm["oomKills"]
        );
    }
    // With agents every running VM's count is known (the demo's are 0 until memhold is killed).
    for vm in &running {
        assert!(vm["oomKills"].as_u64().is_some(), "{}", vm["name"]);
    }
    sim.shutdown().await;
}

/// `kubectl-vmmem ARGS` with `home` as HOME (its state directory holds the session records).
async fn run_home(sim: &SimHandle, home: &std::path::Path, args: &[&str]) -> Output {
    let kc = home.join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("KUBECONFIG", &kc)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap()
}

/// `agent cleanup` deletes what this machine's records say its killed runs left, and leaves
/// the agents of other machines (no record here, even with the same host name: the labels name
/// no host) until their deadline; `--all` deletes every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_cleanup_deletes_this_machines_leftovers_and_all_only_when_asked() {
    let sim = common::demo().await;
    let client = sim.client().await.unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "vmmem-system");
    let home = tempfile::tempdir().unwrap();
    // A session of this machine whose process is gone (a child that has exited).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let records = home.path().join(".local/state/kubectl-vmmem/agents");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(records.join("1700000000-aaaa"), format!("{dead} 1\n")).unwrap();
    for session in ["1700000000-aaaa", "1700000000-bbbb", "99999999999-cccc"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"generateName": "vmmem-agent-x-", "labels": {
                "app.kubernetes.io/managed-by": "kubectl-vmmem", "vmmem.kubectl.io/session": session}},
            "spec": {"nodeName": "harvester-node-3", "activeDeadlineSeconds": 3600,
                     "containers": [{"name": "agent", "image": "busybox:1.37.0"}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &pod).await.unwrap();
    }
    assert_eq!(agents(&client).await.len(), 3);
    let out = run_home(&sim, home.path(), &["agent", "cleanup"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(" deleted").count(), 1, "{stdout}");
    let left: Vec<String> = agents(&client)
        .await
        .iter()
        .map(|p| p.metadata.labels.as_ref().unwrap()["vmmem.kubectl.io/session"].clone())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&"1700000000-aaaa".to_string()), "{left:?}");
    assert!(
        !records.join("1700000000-aaaa").exists(),
        "the record goes with its agents"
    );
    // Another machine (an empty state directory) deletes none of them.
    let other = tempfile::tempdir().unwrap();
    let out = run_home(&sim, other.path(), &["agent", "cleanup"]).await;
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("no agent pods to delete in namespace vmmem-system"));
    assert_eq!(agents(&client).await.len(), 2);
    let out = run_home(&sim, other.path(), &["agent", "cleanup", "--all"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(" deleted").count(), 2, "{stdout}");
    assert!(agents(&client).await.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_node_reads_the_kernel_log_and_names_the_vm() {
    let sim = common::demo().await;
    let client = sim.client().await.unwrap();
    // memhold grows 2Mi/s from 20s on until its cgroup kills qemu.
    sim.advance(Duration::from_secs(400));
    assert!(
        sim.kernel_log("harvester-node-1")
            .iter()
            .any(|l| l.contains("Memory cgroup out of memory")),
        "the sim's memhold VM was OOM-killed"
    );
    let out = run(&sim, &["oom", "--node", "harvester-node-1", "-o", "json"]).await;
    let v = ok_json(&out);
    let events = v["events"].as_array().unwrap();
    assert!(!events.is_empty());
    let e = &events[0];
    assert_eq!(e["node"], "harvester-node-1");
    assert_eq!(
        e["vm"],
        json!({"namespace": "default", "name": "memhold-vm"})
    );
    assert_eq!(e["kubevirt"], true);
    assert!(agents(&client).await.is_empty(), "oom deletes its agent");
    // A node that is not there: one sentence, no agent left behind.
    let out = run(&sim, &["oom", "--node", "nope"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains("scheduled"), "{err}");
    assert!(agents(&client).await.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_exec_reads_each_compute_container_and_auto_falls_back_to_it() {
    let sim = common::demo().await;
    let client = sim.client().await.unwrap();
    let check = |report: &Value| {
        let running = running_vms(report);
        assert!(running.len() >= 10);
        for vm in running {
            assert_eq!(vm["liveSource"], "pod-exec", "{}", vm["name"]);
            assert_eq!(vm["cgroup"]["level"], "container", "{}", vm["name"]);
            // The compute container's limit is the pod spec's (as the kernel stores it).
            let spec = vm["podLimitBytes"].as_u64();
            let got = vm["cgroup"]["limitBytes"].as_u64();
            assert_eq!(got, spec.map(|l| l / 4096 * 4096), "{}", vm["name"]);
            assert!(hugepages(vm) || vm["guestResidentBytes"].as_u64().unwrap() > 0);
        }
    };
    check(&ok_json(
        &run(&sim, &["list", "-A", "-o", "json", "--live", "pod-exec"]).await,
    ));
    assert!(agents(&client).await.is_empty(), "pod-exec makes no agents");
    // The agent cannot be created (no such namespace): auto reads the containers instead.
    let out = run(
        &sim,
        &["list", "-A", "-o", "json", "--agent-namespace", "nope"],
    )
    .await;
    check(&ok_json(&out));
    sim.shutdown().await;
}

/// The memhold VM's row in a `list -o json`.
fn memhold(report: &Value) -> Value {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "memhold-vm")
        .cloned()
        .expect("memhold-vm is listed")
}

/// Seconds after an OOM kill failed the memhold VM (its pod is not running, so no probe reads
/// its counters), `list` counts the kill: it reads the node's kernel log through the same agent
/// as the probe. `fix` plans from the same evidence (its node's probe), unless `--live off`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_counts_a_kill_from_the_kernel_log_and_fix_measures() {
    // The VM stays failed for a while before KubeVirt restarts it.
    let opts = vmmem_sim::SimOptions {
        restart_backoff: Duration::from_secs(600),
        ..vmmem_sim::SimOptions::default()
    };
    let sim = vmmem_sim::Sim::start(vmmem_sim::Scenario::demo().unwrap(), opts)
        .await
        .unwrap();
    let client = sim.client().await.unwrap();
    let list = ["list", "-A", "-o", "json", "--live", "agent"];
    let before = memhold(&ok_json(&run(&sim, &list).await));
    assert_eq!(before["oomKills"], 0, "{before}");
    let vmis: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &common::vmi_resource());
    // The memhold process grows past the budget: qemu is killed, the VMI fails.
    sim.advance(Duration::from_secs(400));
    let start = std::time::Instant::now();
    while vmis.get("memhold-vm").await.unwrap().data["status"]["phase"] != "Failed" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "memhold-vm did not fail"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = memhold(&ok_json(&run(&sim, &list).await));
    assert_eq!(after["oomKills"], 1, "{after}");
    let flags = after["flags"].as_array().unwrap();
    assert!(
        flags
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("oom-killed")),
        "{after}"
    );
    assert!(agents(&client).await.is_empty(), "list deletes its agents");

    // fix: the plan measures from the VM's live numbers (one probe of its node), or says it
    // has none with --live off (without the demo's Prometheus history, whose week's peak would
    // be the worst evidence).
    let fix = ["fix", "prod/db-02", "--dry-run", "--history", "off"];
    let out = run(&sim, &fix).await;
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains("evidence: ") && plan.contains("the reading now"),
        "{plan}"
    );
    let off: Vec<&str> = fix.iter().copied().chain(["--live", "off"]).collect();
    let out = run(&sim, &off).await;
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("no measurement of this VM yet"), "{plan}");
    assert!(agents(&client).await.is_empty(), "fix deletes its agent");
    sim.shutdown().await;
}

/// A kernel log that cannot be read is said in the JSON warnings (the kills of earlier pods on
/// that node are not counted), and the VMs there have no kill count from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_says_when_a_nodes_kernel_log_could_not_be_read() {
    let sim = common::demo().await;
    sim.hang_node_exec("harvester-node-2", true);
    let report = ok_json(&run(&sim, &["list", "-A", "-o", "json", "--live", "agent"]).await);
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let log = "OOM kills of earlier pods on node harvester-node-2 are not counted: its kernel log could not be read: ";
    assert!(warnings.iter().any(|w| w.starts_with(log)), "{warnings:#?}");
    assert!(
        !warnings
            .iter()
            .any(|w| w.contains("harvester-node-1 are not counted")),
        "{warnings:#?}"
    );
    sim.shutdown().await;
}

/// `list` with a state directory: what `cmd` prints, run with `XDG_STATE_HOME=state`.
async fn run_with_state(sim: &SimHandle, state: &std::path::Path, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", state)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap()
}

fn evidence_kinds(row: &Value) -> Vec<String> {
    row["recommendation"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The peak store's one cluster file under the state directory `state` (one cluster per test).
fn peak_file(state: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(state.join("kubectl-vmmem/peaks"))
        .expect("the peak store was not written")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peaks_are_remembered_across_runs_unless_history_is_off() {
    let sim = common::start(vmmem_sim::Scenario::demo().unwrap()).await;
    let state = tempfile::tempdir().unwrap();
    let list = ["list", "-A", "-o", "json", "--live", "agent"];
    // The first run sees only its own reading; it keeps it.
    let first = memhold(&ok_json(&run_with_state(&sim, state.path(), &list).await));
    assert!(
        evidence_kinds(&first).contains(&"now".to_string()),
        "{first}"
    );
    assert!(
        !evidence_kinds(&first).contains(&"history".to_string()),
        "{first}"
    );
    let file = peak_file(state.path());
    // The memhold process grows: the next run sees more now, and the first run's peak from the
    // store.
    sim.advance(Duration::from_secs(30));
    let second = memhold(&ok_json(&run_with_state(&sim, state.path(), &list).await));
    let history: Vec<&Value> = second["recommendation"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "history")
        .collect();
    assert_eq!(history.len(), 1, "{second}");
    assert!(
        history[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("this machine's peak store"),
        "{second}"
    );
    // --history off reads and writes nothing.
    let before = std::fs::read(&file).unwrap();
    let off: Vec<&str> = list.iter().copied().chain(["--history", "off"]).collect();
    let third = memhold(&ok_json(&run_with_state(&sim, state.path(), &off).await));
    assert!(
        !evidence_kinds(&third).contains(&"history".to_string()),
        "{third}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "--history off wrote the store"
    );
    // A broken store is set aside with a warning; the run still succeeds.
    std::fs::write(&file, b"{not json").unwrap();
    let out = run_with_state(&sim, state.path(), &list).await;
    let doc = ok_json(&out);
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains("could not be read"), "{warnings}");
    let mut aside = file.clone().into_os_string();
    aside.push(".broken");
    assert!(std::path::PathBuf::from(aside).is_file());
    sim.shutdown().await;
}

/// KubeVirt deleted a failed launcher pod: the node's kernel log names only its UID. The peak
/// store remembers the VM's launcher pods, so `list` still counts that kill for its VM and `oom
/// --node` names the VM; with `--history off` neither can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_in_a_deleted_pod_counts_for_the_vm_the_store_remembers_it_for() {
    let sim = common::start(vmmem_sim::Scenario::demo().unwrap()).await;
    let state = tempfile::tempdir().unwrap();
    let list = ["list", "-A", "-o", "json", "--live", "agent"];
    let first = ok_json(&run_with_state(&sim, state.path(), &list).await);
    let vm = first["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["oomKills"] == 0 && v["node"].is_string() && v["name"] != "memhold-vm")
        .cloned()
        .expect("a running VM without kills");
    let (name, node) = (vm["name"].clone(), vm["node"].as_str().unwrap().to_string());
    // Its launcher pod, as the cluster has it.
    let pods: Api<Pod> = Api::namespaced(
        sim.client().await.unwrap(),
        vm["namespace"].as_str().unwrap(),
    );
    let pod = pods
        .list(&ListParams::default().labels(&format!(
            "vm.kubevirt.io/name={}",
            vm["name"].as_str().unwrap()
        )))
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .expect("the VM's launcher pod");
    let pod_uid = pod.metadata.uid.unwrap();
    // The first run remembered the VM's current pod; add an earlier one, now deleted.
    let file = peak_file(state.path());
    let mut store: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let vms = store["peaks"]["vms"].as_object_mut().unwrap();
    let (_, entry) = vms
        .iter_mut()
        .find(|(_, e)| e["pods"] == json!([pod_uid]))
        .expect("the store remembers the VM's pod");
    let gone = "0d1e2f30-4a5b-4c6d-8e9f-a0b1c2d3e4f5";
    entry["pods"] = json!([gone, pod_uid]);
    std::fs::write(&file, serde_json::to_vec(&store).unwrap()).unwrap();
    // The node's kernel log has a kill in that pod (the seed's Example 3 report, in its cgroup).
    let report = include_str!("../fixtures/oom/seed-example3-dmesg.log").replace(
        "bc31d215_d48e_4416_8e2b_68716b8f5bcb",
        &gone.replace('-', "_"),
    );
    sim.world()
        .nodes
        .get_mut(&node)
        .unwrap()
        .kernel_log
        .extend(report.lines().map(str::to_string));
    let find = |doc: &Value| {
        doc["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap()
    };
    let second = find(&ok_json(&run_with_state(&sim, state.path(), &list).await));
    assert_eq!(second["oomKills"], 1, "{second}");
    let flags = second["flags"].to_string();
    assert!(flags.contains("oom-killed-before"), "{flags}");
    let kills: Vec<&Value> = second["recommendation"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "oom-kill")
        .collect();
    assert_eq!(kills.len(), 1, "{second}");
    assert_eq!(kills[0]["source"], format!("kernel log of node {node}"));
    assert_eq!(second["oomHistory"][0]["podUid"], gone);
    // `oom --node` names the VM too, from the same store.
    let oom = ["oom", "--node", &node, "-o", "json"];
    let kill_in_gone_pod = |doc: Value| {
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["podUid"] == gone)
            .cloned()
            .expect("the kill in the deleted pod")
    };
    let kill = kill_in_gone_pod(ok_json(&run_with_state(&sim, state.path(), &oom).await));
    assert_eq!(kill["vm"]["name"], name, "{kill}");
    // --history off: the store is not read, so the kill has no VM.
    let oom_off: Vec<&str> = oom.iter().copied().chain(["--history", "off"]).collect();
    let kill = kill_in_gone_pod(ok_json(&run_with_state(&sim, state.path(), &oom_off).await));
    assert!(kill["vm"].is_null(), "{kill}");
    let off: Vec<&str> = list.iter().copied().chain(["--history", "off"]).collect();
    let third = find(&ok_json(&run_with_state(&sim, state.path(), &off).await));
    assert_eq!(third["oomKills"], 0, "{third}");
    assert!(
        !third["flags"].to_string().contains("oom-killed"),
        "{third}"
    );
    sim.shutdown().await;
}

/// Whether the row's guest RAM is hugepage-backed (outside the memory cgroup).
fn hugepages(vm: &Value) -> bool {
    vm["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "hugepages"))
}
