//! Agent pods and live readings through the simulated cluster in this process, with the real
//! kube-rs client: pod shape, reuse across rounds, deletion, a hung node, the sweep of an earlier
//! session's agents, and the report's numbers against what the simulator's model wrote.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::common::live::{agent_pods, inventory, read_options, start_readings, timed_round};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use vmmem::model::inventory::Inventory;
use vmmem::model::readings::LiveSource as Source;
use vmmem::model::report::Flag;
use vmmem::model::report::VmRow;
use vmmem::model::report::{self, ReportOptions};
use vmmem::node::readers::Mode;
use vmmem::node::smaps_policy::SmapsPolicy;
use vmmem_sim::hosttree;

fn nodes_with_vms(inv: &Inventory) -> Vec<String> {
    let mut n: Vec<String> = vmmem::node::readers::targets(inv).into_keys().collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_shaped_reused_and_deleted() {
    let sim = common::demo().await;
    let (client, inv) = inventory(&sim).await;
    let mut live = start_readings(&client, &inv, read_options(Mode::Agent), 1_700_000_000).await;
    let first = live.read(&inv, 1_700_000_000).await;
    assert!(first.stale.is_empty(), "{:?}", first.stale);
    let nodes = nodes_with_vms(&inv);
    assert_eq!(
        first.readings.keys().cloned().collect::<Vec<_>>(),
        nodes,
        "one reading per node with VMs"
    );
    assert!(first.readings.values().all(|r| r.source == Source::Agent));
    let pods = agent_pods(&client).await;
    assert_eq!(pods.len(), nodes.len(), "one agent per node");
    for p in &pods {
        let v = serde_json::to_value(p).unwrap();
        let spec = &v["spec"];
        assert!(nodes.contains(&spec["nodeName"].as_str().unwrap().to_string()));
        assert_eq!(spec["hostPID"], true);
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["terminationGracePeriodSeconds"], 0);
        assert!(spec["activeDeadlineSeconds"].as_i64().unwrap() > 0);
        assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
        let sc = &spec["containers"][0]["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(
            sc["capabilities"],
            json!({"drop": ["ALL"], "add": ["SYS_PTRACE", "SYSLOG"]})
        );
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(
            spec["containers"][0]["image"]
                .as_str()
                .unwrap()
                .split(':')
                .next(),
            Some("registry.suse.com/bci/bci-base"),
            "Harvester's image"
        );
        assert!(v["metadata"]["labels"]["vmmem.kubectl.io/session"].is_string());
    }
    // A second round reuses the same pods.
    let names = |ps: &[Pod]| {
        let mut n: Vec<String> = ps
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        n.sort();
        n
    };
    let second = live.read(&inv, 1_700_000_002).await;
    assert!(second.stale.is_empty(), "{:?}", second.stale);
    assert_eq!(names(&agent_pods(&client).await), names(&pods));
    live.close().await;
    assert!(agent_pods(&client).await.is_empty(), "deleted at the end");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_node_is_stale_and_the_others_are_read() {
    let sim = common::demo().await;
    let (client, inv) = inventory(&sim).await;
    sim.hang_node_exec("harvester-node-2", true);
    let mut o = read_options(Mode::Agent);
    o.exec_timeout = Duration::from_secs(15);
    let (round, took) = timed_round(&client, &inv, o).await;
    assert_eq!(
        round.stale.keys().collect::<Vec<_>>(),
        ["harvester-node-2"],
        "{:?}",
        round.stale
    );
    assert!(
        round.stale["harvester-node-2"].contains("did not finish within 15s"),
        "{}",
        round.stale["harvester-node-2"]
    );
    assert!(round.readings.contains_key("harvester-node-1"));
    assert!(round.readings.contains_key("harvester-node-3"));
    assert!(
        took < Duration::from_secs(40),
        "the hung node costs its timeout, not more: {took:?}"
    );
    let rep = report::build(
        &inv,
        &round.readings,
        &ReportOptions {
            stale_nodes: round.stale.clone(),
            ..Default::default()
        },
    );
    for row in &rep.vms {
        match row.node.as_deref() {
            Some("harvester-node-2") => {
                assert!(
                    row.has_flag(Flag::Stale) && row.live_source.is_none(),
                    "{}",
                    row.name
                )
            }
            Some(_) if row.phase == "Running" => assert_eq!(
                (row.live_source, row.has_flag(Flag::Stale)),
                (Some(Source::Agent), false),
                "{}",
                row.name
            ),
            _ => {}
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_sweeps_earlier_sessions_agents() {
    let sim = common::demo().await;
    let (client, inv) = inventory(&sim).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "vmmem-system");
    let leftover = |session: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"generateName": "vmmem-agent-old-", "labels": {
                "app.kubernetes.io/managed-by": "kubectl-vmmem", "vmmem.kubectl.io/session": session}},
            "spec": {"nodeName": "harvester-node-1", "hostPID": true, "restartPolicy": "Never",
                     "containers": [{"name": "agent", "image": "busybox:1.37.0", "command": ["sleep", "3600"]}]}
        }))
        .unwrap()
    };
    // Another machine's agents (no record of their sessions here): one created two hours ago
    // (past the default deadline of an hour), one a minute ago (within it).
    let old = api
        .create(&PostParams::default(), &leftover("1700000000-dead"))
        .await
        .unwrap();
    sim.advance(std::time::Duration::from_secs(7200));
    let recent = api
        .create(&PostParams::default(), &leftover("1700007200-beef"))
        .await
        .unwrap();
    let created = recent.metadata.creation_timestamp.clone().unwrap();
    let now = created.0.as_second() + 60;
    let mut live = start_readings(&client, &inv, read_options(Mode::Agent), now).await;
    let round = live.read(&inv, now).await;
    let left: Vec<String> = agent_pods(&client)
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let old_name = old.metadata.name.unwrap();
    assert!(
        !left.contains(&old_name),
        "the stale session's agent is gone"
    );
    assert!(left.contains(&recent.metadata.name.clone().unwrap()));
    assert!(
        round.warnings.iter().any(|w| w.contains(&old_name)),
        "{:?}",
        round.warnings
    );
    live.close().await;
    // The other session's pod is not ours to delete.
    assert_eq!(agent_pods(&client).await.len(), 1);
    sim.shutdown().await;
}

fn cg_version(row: &vmmem::model::report::VmRow) -> Option<&'static str> {
    row.cgroup.as_ref().and_then(|c| c.version)
}

/// A one-number cgroup file; "max" (v2's no limit) reads as u64::MAX.
fn read_u64(p: &Path) -> u64 {
    if std::fs::read_to_string(p).is_ok_and(|t| t.trim() == "max") {
        return u64::MAX;
    }
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Rss of qemu's guest RAM mapping (size = guest) in the sim's smaps file.
fn guest_rss(smaps: &Path, guest_kb: u64) -> u64 {
    let text = std::fs::read_to_string(smaps).unwrap();
    let mut in_guest = false;
    let mut total = 0;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("Size:") {
            in_guest = v.trim().trim_end_matches(" kB").trim().parse::<u64>() == Ok(guest_kb);
        } else if let Some(v) = l.strip_prefix("Rss:") {
            if in_guest {
                total += v
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap()
                    * 1024;
            }
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_numbers_equal_the_simulators_model() {
    let sim = common::demo().await;
    let (client, inv) = inventory(&sim).await;
    let mut o = read_options(Mode::Agent);
    // smaps every round: the second round's guest resident is that round's.
    o.smaps = SmapsPolicy {
        every: 1,
        ..SmapsPolicy::default()
    };
    let mut live = start_readings(&client, &inv, o, 1).await;
    // Agents up first; then model time stands still, so every host-tree write holds the same
    // numbers and the files can be read after the round.
    let first = live.read(&inv, 1).await;
    assert!(first.stale.is_empty(), "{:?}", first.stale);
    sim.freeze_model_time(true);
    let round = live.read(&inv, 2).await;
    live.close().await;
    assert!(round.stale.is_empty(), "{:?}", round.stale);
    let rep = report::build(&inv, &round.readings, &ReportOptions::default());
    // What each exec wrote stays on disk until the next exec of that node (none now).
    let mut checked = HashMap::new();
    {
        let w = sim.world();
        for row in rep.vms.iter().filter(|r| r.phase == "Running") {
            let uid = row.pod_uid.clone().unwrap();
            let l = &w.launchers[&uid];
            let node_root = hosttree::node_root(&w.host_root, &l.node);
            // cgroup v1 below `memory/`; v2 (the lab node) at the root, with v2 file names.
            let v2 = cg_version(row) == Some("v2");
            let root = hosttree::cgroup_root(&node_root);
            let driver = w.nodes[&l.node].cgroup_driver;
            let slice = if v2 { root } else { root.join("memory") }
                .join(hosttree::pod_slice(driver, l.qos, &uid).trim_start_matches('/'));
            let cg = row.cgroup.as_ref().unwrap();
            let dir = match cg.level {
                "pod" => slice.clone(),
                _ => slice.join(hosttree::scope(driver, &l.container_ids[1])),
            };
            let (usage, limit) = if v2 {
                ("memory.current", "memory.max")
            } else {
                ("memory.usage_in_bytes", "memory.limit_in_bytes")
            };
            assert_eq!(
                cg.usage_bytes,
                read_u64(&dir.join(usage)),
                "{} usage",
                row.name
            );
            let limit = read_u64(&dir.join(limit));
            assert_eq!(
                cg.limit_bytes,
                (limit < 1 << 62).then_some(limit),
                "{} limit",
                row.name
            );
            let qemu = hosttree::compute_pid(l, 4);
            let smaps = hosttree::proc_root(&node_root).join(format!("{qemu}/smaps"));
            let guest = row.guest_bytes.unwrap() as u64;
            // Hugepage-backed guest RAM is outside the memory cgroup: smaps is not read for it.
            if row.hugepages {
                assert_eq!(row.guest_resident_bytes, Some(0), "{}", row.name);
            } else {
                assert_eq!(
                    row.guest_resident_bytes,
                    Some(guest_rss(&smaps, guest / 1024) as i64),
                    "{} guest resident",
                    row.name
                );
                assert!(row.guest_resident_exact, "{}", row.name);
            }
            assert_eq!(row.live_source, Some(Source::Agent));
            checked.insert(row.name.clone(), cg.usage_bytes);
        }
    }
    assert!(checked.len() >= 10, "{checked:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smaps_is_read_every_nth_round_and_carried_in_between() {
    let sim = common::demo().await;
    let (client, inv) = inventory(&sim).await;
    let mut o = read_options(Mode::Agent);
    o.smaps = SmapsPolicy {
        every: 3,
        rss_moved: u64::MAX,
    };
    let mut live = start_readings(&client, &inv, o, 1).await;
    let guests = |round: &vmmem::node::readers::Round| {
        let mut g: Vec<(String, Option<u64>, Option<i64>)> = round
            .readings
            .values()
            .flat_map(|r| &r.pods)
            .map(|p| {
                (
                    p.uid.clone(),
                    p.guest_resident_bytes,
                    p.guest_resident_taken_at,
                )
            })
            .collect();
        g.sort();
        g
    };
    let first = live.read(&inv, 100).await;
    assert!(first.stale.is_empty(), "{:?}", first.stale);
    let exact = guests(&first);
    assert!(exact.iter().filter(|g| g.1.is_some()).count() >= 10);
    assert!(
        exact.iter().all(|g| g.2.is_none()),
        "first round: all exact"
    );
    for now in [102, 104] {
        let r = live.read(&inv, now).await;
        for (uid, g, at) in guests(&r) {
            let (_, g0, _) = exact.iter().find(|e| e.0 == uid).unwrap();
            if g0.is_some() {
                assert_eq!((g, at), (*g0, Some(100)), "{uid} at {now}: carried, marked");
            }
        }
        let rep = report::build(&inv, &r.readings, &ReportOptions::default());
        let smaps_read = |r: &&VmRow| r.guest_resident_bytes.is_some() && !r.hugepages;
        for row in rep.vms.iter().filter(smaps_read) {
            assert_eq!(row.guest_resident_carried_from, Some(100), "{}", row.name);
            assert!(row.guest_resident_exact, "{}", row.name);
            assert!(
                row.notes.iter().any(|n| n.contains("earlier round")),
                "{}: {:?}",
                row.name,
                row.notes
            );
        }
    }
    let fourth = live.read(&inv, 106).await;
    live.close().await;
    assert!(
        guests(&fourth).iter().all(|g| g.2.is_none()),
        "the third round after an exact one reads smaps again"
    );
    let rep = report::build(&inv, &fourth.readings, &ReportOptions::default());
    assert!(rep
        .vms
        .iter()
        .all(|r| r.guest_resident_carried_from.is_none()));
    sim.shutdown().await;
}
