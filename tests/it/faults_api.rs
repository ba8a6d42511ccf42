//! API faults through the simulator, with the real kube-rs client as the tool builds it:
//! throttling (429 with Retry-After, like API Priority and Fairness) that lists, watches, patches
//! and execs ride out with backoff, a throttling that never ends turning into one sentence, and
//! watches that expire (410 Gone) being relisted so the report stays complete and current.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{connect_as, eventually, version_of};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use vmmem::cluster::live::{Health, LiveOptions, LiveSource, Scope};
use vmmem::model::inventory::SourceKind;
use vmmem::node::agent_spec::AgentFlags;
use vmmem::node::readers::{LiveReadings, Mode, ReadOptions};
use vmmem_sim::SimHandle;

fn opts() -> LiveOptions {
    LiveOptions {
        scope: Scope::All,
        source: SourceKind::Live,
        initial_timeout: Some(Duration::from_secs(60)),
    }
}

/// The requests whose path contains `part`, as (status, when).
fn answers(sim: &SimHandle, part: &str) -> Vec<(u16, Instant)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.contains(part))
        .map(|r| (r.code, r.at))
        .collect()
}

/// After each 429 the next try of the same request came no sooner than `retry_after`.
fn assert_paced(tries: &[(u16, Instant)], retry_after: Duration) {
    assert!(
        tries.iter().any(|(c, _)| *c == 429),
        "no 429 was answered: {tries:?}"
    );
    for pair in tries.windows(2) {
        if pair[0].0 == 429 {
            let gap = pair[1].1 - pair[0].1;
            assert!(
                gap >= retry_after,
                "retried after {gap:?}, before the server's Retry-After of {retry_after:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_watches_patches_and_execs_ride_out_a_burst_of_429s() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "admin", Some(Duration::from_secs(10))).await;

    // Lists: the first two VM lists are refused.
    sim.throttle(2, Some("/virtualmachines?"), 1);
    let live = LiveSource::start(&conn, opts()).await.unwrap();
    assert_eq!(live.snapshot().vms.len(), 23);
    let vm_lists: Vec<(u16, Instant)> = answers(&sim, "/apis/kubevirt.io/v1/virtualmachines?")
        .into_iter()
        .filter(|_| true)
        .collect();
    assert_eq!(
        vm_lists.iter().map(|(c, _)| *c).collect::<Vec<_>>()[..3],
        [429, 429, 200],
        "{vm_lists:?}"
    );
    assert_paced(&vm_lists[..3], Duration::from_secs(1));

    // Watches: every watch ends (expired) and the next watch requests are throttled; the
    // feeds come back, and a change after that reaches the snapshot.
    let watching = eventually(Duration::from_secs(10), || {
        answers(&sim, "watch=true").len() >= live.stats().feeds
    })
    .await;
    assert!(watching, "the feeds never started watching");
    sim.throttle(6, Some("watch=true"), 1);
    sim.expire_watches();
    let vms: Api<DynamicObject> =
        Api::namespaced_with(conn.client.clone(), "prod", &common::vm_resource());
    // Patches: the next two patches of db-02 are refused first.
    sim.throttle(2, Some("/namespaces/prod/virtualmachines/db-02"), 1);
    let t = Instant::now();
    let old = version_of(&live.snapshot(), "db-02");
    let patch = json!({"metadata": {"annotations": {"example.com/through-429": "yes"}}});
    vms.patch("db-02", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the patch goes through after the 429s");
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    let patches: Vec<(u16, Instant)> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/virtualmachines/db-02"))
        .map(|r| (r.code, r.at))
        .collect();
    assert_eq!(
        patches.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [429, 429, 200]
    );
    assert_paced(&patches, Duration::from_secs(1));
    let seen = eventually(Duration::from_secs(30), || {
        version_of(&live.snapshot(), "db-02") != old
    })
    .await;
    assert!(
        seen,
        "the patch never reached a snapshot after throttled watches"
    );
    let watches = answers(&sim, "watch=true");
    assert!(
        watches.iter().filter(|(c, _)| *c == 429).count() == 6,
        "{watches:?}"
    );
    assert_eq!(live.health(), Health::Ok);

    // Execs (the agents' probes): the first upgrades are refused, the round still reads all.
    let inv = live.snapshot();
    let ro = ReadOptions {
        mode: Mode::Agent,
        exec_timeout: Duration::from_secs(30),
        start_timeout: Duration::from_secs(20),
        ..ReadOptions::default()
    };
    let mut readers = LiveReadings::start(conn.client.clone(), &inv, &AgentFlags::default(), ro, 1)
        .await
        .unwrap();
    sim.throttle(3, Some("/exec?"), 1);
    let round = readers.read(&inv, 1).await;
    readers.close().await;
    assert!(round.stale.is_empty(), "{:?}", round.stale);
    assert_eq!(round.readings.len(), 4);
    let execs = answers(&sim, "/exec?");
    assert_eq!(
        execs.iter().filter(|(c, _)| *c == 429).count(),
        3,
        "{execs:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_that_never_ends_is_one_sentence_from_list_and_fix() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    sim.throttle_always(Some("/virtualmachines"), 1);
    let bin = env!("CARGO_BIN_EXE_kubectl-vmmem");
    let kc = kubeconfig.display().to_string();
    let run = |args: Vec<&'static str>| {
        let kc = kc.clone();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let out = Command::new(bin)
                .env("XDG_STATE_HOME", crate::common::state_home())
                .args(args)
                .args(["--kubeconfig", &kc, "--request-timeout", "30s"])
                .output()
                .unwrap();
            (out, t.elapsed())
        })
    };
    let (out, took) = run(vec!["list", "-A", "--live", "off"]).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the Kubernetes API server is throttling requests: it still answered 429 Too Many Requests after 5 retries with backoff (it said: Too many requests, please try again later.)"),
        "{err}"
    );
    assert!(
        err.contains("virtualmachines"),
        "names what it was reading: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    eprintln!("list gave up on a permanently throttling server after {took:?}");
    // Bounded: 5 waits of at least the server's 1s, well under a minute.
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    let refused = answers(&sim, "/virtualmachines?")
        .iter()
        .filter(|(c, _)| *c == 429)
        .count();
    assert!(refused >= 6, "one try and 5 retries: {refused}");

    // fix reads the VM first: the same sentence.
    let (out, _) = run(vec![
        "fix",
        "db-02",
        "-n",
        "prod",
        "--reserve",
        "512Mi",
        "--yes",
    ])
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("still answered 429 Too Many Requests after 5 retries"),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_watches_are_relisted_and_the_report_stays_complete_and_current() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "admin", Some(Duration::from_secs(10))).await;
    let live = LiveSource::start(&conn, opts()).await.unwrap();
    let full = live.snapshot();
    let before = live.stats();
    assert_eq!(before.lists, before.feeds as u64);

    // Every watch gets 410 Gone; a change right after reaches no open watch, only a relist.
    let watching = eventually(Duration::from_secs(10), || {
        answers(&sim, "watch=true").len() >= before.feeds
    })
    .await;
    assert!(watching, "the feeds never started watching");
    sim.expire_watches();
    let old = version_of(&live.snapshot(), "web-01");
    sim.bump_vm("default", "web-01").unwrap();
    let mut healthy = true;
    let caught_up = eventually(Duration::from_secs(20), || {
        healthy &= live.health() == Health::Ok;
        version_of(&live.snapshot(), "web-01") != old
    })
    .await;
    assert!(caught_up, "the change after the expiry never arrived");
    assert!(healthy, "an expired watch is routine, not a failure");
    let relisted = eventually(Duration::from_secs(20), || {
        live.stats().lists >= before.lists + before.feeds as u64
    })
    .await;
    assert!(
        relisted,
        "every feed relists: {before:?} -> {:?}\n{:#?}",
        live.stats(),
        sim.requests()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.code))
            .collect::<Vec<_>>()
    );
    let rewatched = eventually(Duration::from_secs(10), || {
        answers(&sim, "watch=true").len() >= 2 * before.feeds
    })
    .await;
    assert!(rewatched, "each feed watches again");

    // Complete: the same objects as before, plus the change.
    let now = live.snapshot();
    let names = |inv: &vmmem::model::inventory::Inventory| {
        (
            inv.vms.len(),
            inv.vmis.len(),
            inv.pods.len(),
            inv.nodes.len(),
            inv.kubevirts.len(),
        )
    };
    assert_eq!(names(&now), names(&full));

    // A later edit arrives as an event on the new watches, without another relist.
    let lists = live.stats().lists;
    let old = version_of(&live.snapshot(), "db-01");
    sim.bump_vm("prod", "db-01").unwrap();
    let seen = eventually(Duration::from_secs(10), || {
        version_of(&live.snapshot(), "db-01") != old
    })
    .await;
    assert!(seen);
    assert_eq!(live.stats().lists, lists, "watching again, not relisting");
    sim.shutdown().await;
}
