//! The kubelet fallback through the simulated cluster: `list --live kubelet -o json` (the real
//! binary) shows the numbers the simulator's cgroups hold, `--live auto` falls through to the
//! kubelet when neither agent pods nor pod exec are allowed, and a 403 on nodes/proxy says what
//! to grant.

use crate::common;

use std::time::Duration;

use crate::common::live::{inventory_as, one_round, read_options, timed_round};
use serde_json::Value;
use vmmem::model::readings::LiveSource as Source;
use vmmem::model::report::Flag;
use vmmem::model::report::{self, ReportOptions};
use vmmem::node::readers::Mode;
use vmmem_sim::hosttree::launcher_cgroups;
use vmmem_sim::tick::clamped;
use vmmem_sim::SimHandle;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_live_kubelet_shows_the_simulators_cgroup_numbers() {
    let sim = common::demo().await;
    // Model time stands still: the summary the binary reads holds the numbers computed below.
    sim.freeze_model_time(true);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let args = ["list", "-A", "--live", "kubelet", "-o", "json"];
    let report = common::plugin_json(&args, &kubeconfig, dir.path()).await;
    let checked = check_against_the_model(&sim, &report);
    assert!(checked >= 10, "checked {checked} VMs");
    sim.shutdown().await;
}

/// Compare each running VM of `report` with the simulator's cgroups; returns how many were checked.
fn check_against_the_model(sim: &SimHandle, report: &Value) -> usize {
    let mut checked = 0;
    let w = sim.world();
    let now = w.now();
    for vm in report["vms"].as_array().unwrap() {
        if vm["phase"] != "Running" {
            continue;
        }
        let name = vm["name"].as_str().unwrap();
        let l = w
            .launchers
            .values()
            .find(|l| {
                l.namespace == vm["namespace"].as_str().unwrap()
                    && l.vm_name == name
                    && Some(l.node.as_str()) == vm["node"].as_str()
            })
            .unwrap_or_else(|| panic!("no launcher for {name}"));
        // The Summary is cAdvisor's last sample of the pod (every housekeeping period of the
        // node, harvester-node-3's 15 s as a real kubelet's), not the model now.
        let period = w.nodes[&l.node].housekeeping;
        let (at, first) = vmmem_sim::summary::sampled_at(l, now, period);
        let mut cg = launcher_cgroups(l, &clamped(l, at - l.started));
        if first {
            // The pod's own figures are zeros at its first sample: the tool then sums its
            // containers (pause is none of them).
            let pause = cg
                .containers
                .iter()
                .find(|c| c.0 == "pause")
                .unwrap()
                .2
                .total;
            cg.pod.total.anon -= pause.anon;
            cg.pod.total.shmem -= pause.shmem;
        }
        let compute = &cg.containers.iter().find(|c| c.0 == "compute").unwrap().2;
        let c = &vm["cgroup"];
        let files = match c["level"].as_str().unwrap() {
            "pod" => &cg.pod,
            "container" => compute,
            other => panic!("level {other}"),
        };
        let usage = files.total.usage() as u64;
        assert_eq!(u(&c["usageBytes"]), usage, "{name} usage");
        assert_eq!(
            u(&c["workingSetBytes"]),
            usage - files.total.inactive_file as u64,
            "{name} working set"
        );
        assert_eq!(
            c["limitBytes"].as_u64(),
            files.limit.map(|l| l as u64),
            "{name} limit"
        );
        // What the kubelet cannot say is null, not 0.
        assert!(c["oomKills"].is_null(), "{name}: {c}");
        assert!(
            vm["oomKills"].is_null(),
            "{name}: no counter, no kernel log"
        );
        assert!(c["peakBytes"].is_null() && c["failcnt"].is_null());
        assert!(c["version"].is_null(), "the summary does not say");
        // Guest RAM: min(compute container RSS, guest), estimated; none in the memory cgroup
        // when hugepage-backed.
        let hugepages = vm["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "hugepages"));
        let guest = if hugepages { 0 } else { u(&vm["guestBytes"]) };
        // Guest RAM on a shared memfd (virtiofs) is not in any RSS: the kubelet's figures
        // cannot split it from the overhead, so the row says unknown rather than guess.
        let shared_guest = vm["sidecarBytes"].get("virtiofs").is_some();
        if shared_guest {
            assert!(vm["guestResidentBytes"].is_null(), "{name}: {vm}");
            assert!(vm["overheadUsedBytes"].is_null(), "{name}: {vm}");
            assert_eq!(vm["risk"], "unknown", "{name}");
        } else {
            assert_eq!(
                u(&vm["guestResidentBytes"]),
                (compute.total.anon as u64).min(guest),
                "{name} guest resident"
            );
        }
        assert_eq!(vm["guestResidentExact"], false);
        assert_eq!(vm["liveSource"], "kubelet");
        assert!(
            hugepages
                || shared_guest
                || vm["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == "estimated")
        );
        assert!(
            vm["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().contains("kubelet's stats summary")),
            "{name}: {}",
            vm["notes"]
        );
        if shared_guest {
            // No split, so no breakdown either: the cgroup figures above are all it shows.
            assert_eq!(vm["breakdown"], serde_json::json!([]), "{name}");
            checked += 1;
            continue;
        }
        // The breakdown adds up to usage and names no process.
        let parts = vm["breakdown"].as_array().unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["guest", "other", "file"], "{name}");
        assert_eq!(
            parts.iter().map(|p| u(&p["bytes"])).sum::<u64>(),
            usage,
            "{name}"
        );
        assert_eq!(
            u(&parts[2]["bytes"]),
            files.total.inactive_file as u64,
            "{name} file = usage − working set"
        );
        assert_eq!(
            u(&vm["overheadUsedBytes"]) as i64,
            (usage - files.total.inactive_file as u64) as i64
                - (compute.total.anon as u64).min(guest) as i64,
            "{name} overhead used"
        );
        checked += 1;
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_through_to_the_kubelet_without_agents_or_pod_exec() {
    let sim = common::demo().await;
    // May read everything, but neither create pods (agents) nor exec into them.
    sim.forbid_verb("viewer", "create", "pods");
    sim.forbid_verb("viewer", "create", "pods/exec");
    sim.forbid_verb("viewer", "get", "pods/exec");
    let (client, inv) = inventory_as(&sim, "viewer").await;
    let round = one_round(&client, &inv, read_options(Mode::Auto)).await;
    assert!(round.stale.is_empty(), "{:?}", round.stale);
    let nodes: Vec<String> = vmmem::node::readers::targets(&inv).into_keys().collect();
    assert_eq!(
        round.readings.keys().cloned().collect::<Vec<_>>(),
        nodes,
        "every node with VMs read"
    );
    assert!(round.readings.values().all(|r| r.source == Source::Kubelet));
    let rep = report::build(&inv, &round.readings, &ReportOptions::default());
    let running: Vec<_> = rep.vms.iter().filter(|r| r.phase == "Running").collect();
    assert!(running.len() >= 10);
    for row in running {
        assert_eq!(row.live_source, Some(Source::Kubelet), "{}", row.name);
        assert!(
            row.cgroup.is_some() && !row.guest_resident_exact,
            "{}",
            row.name
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nodes_proxy_the_reason_names_it_and_the_other_sources() {
    let sim = common::demo().await;
    sim.forbid_verb("viewer", "get", "nodes/proxy");
    let (client, inv) = inventory_as(&sim, "viewer").await;
    let round = one_round(&client, &inv, read_options(Mode::Kubelet)).await;
    assert!(round.readings.is_empty());
    assert_eq!(
        round.stale.len(),
        vmmem::node::readers::targets(&inv).len(),
        "{:?}",
        round.stale
    );
    for (node, why) in &round.stale {
        assert!(
            why.starts_with("user \"viewer\" may not read the kubelet's stats summary of node"),
            "{node}: {why}"
        );
        assert!(why.contains("get on nodes/proxy"), "{why}");
        assert!(why.contains("--live agent or --live pod-exec"), "{why}");
    }
    let rep = report::build(
        &inv,
        &round.readings,
        &ReportOptions {
            stale_nodes: round.stale.clone(),
            ..Default::default()
        },
    );
    for row in rep.vms.iter().filter(|r| r.phase == "Running") {
        assert!(
            row.has_flag(Flag::Stale) && row.live_source.is_none(),
            "{}",
            row.name
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_kubelet_cannot_be_reached_is_stale_alone() {
    let sim = common::demo().await;
    sim.hang_node_exec("harvester-node-2", true);
    let (client, inv) = inventory_as(&sim, "admin").await;
    let mut o = read_options(Mode::Kubelet);
    o.exec_timeout = Duration::from_secs(3);
    let (round, took) = timed_round(&client, &inv, o).await;
    assert_eq!(
        round.stale.keys().collect::<Vec<_>>(),
        ["harvester-node-2"],
        "{:?}",
        round.stale
    );
    // The node proxy's 503 (no Retry-After) is not retried: the proxy's own reason, at once.
    assert_eq!(
        round.stale["harvester-node-2"],
        "reading the kubelet's stats summary of node harvester-node-2 failed: error trying to reach service: dial tcp harvester-node-2:10250: i/o timeout"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(round.readings.contains_key("harvester-node-1"));
    assert!(round.readings.contains_key("harvester-node-3"));
    let rep = report::build(
        &inv,
        &round.readings,
        &ReportOptions {
            stale_nodes: round.stale.clone(),
            ..Default::default()
        },
    );
    for row in rep.vms.iter().filter(|r| r.phase == "Running") {
        let on_2 = row.node.as_deref() == Some("harvester-node-2");
        assert_eq!(row.has_flag(Flag::Stale), on_2, "{}", row.name);
        assert_eq!(
            row.live_source,
            (!on_2).then_some(Source::Kubelet),
            "{}",
            row.name
        );
    }
    sim.shutdown().await;
}
