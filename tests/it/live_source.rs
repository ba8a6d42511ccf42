//! The live client (kube-rs reflectors) against the simulated cluster in-process: lists, a watch
//! update reaching the next snapshot without a relist, a forbidden namespace, a server that goes
//! away and comes back.

use std::time::{Duration, Instant};

use crate::common::{connect_as, demo, eventually, version_of, vm_resource};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use vmmem::cluster::live::{Health, LiveError, LiveOptions, LiveSource, Scope};
use vmmem::model::inventory::{Inventory, SourceKind};

fn opts(scope: Scope) -> LiveOptions {
    LiveOptions {
        scope,
        source: SourceKind::Live,
        initial_timeout: Some(Duration::from_secs(20)),
    }
}

fn names(inv: &Inventory) -> Vec<String> {
    inv.vms
        .iter()
        .map(|v| format!("{}/{}", v.metadata.namespace, v.metadata.name))
        .collect()
}

fn vms(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, ns, &vm_resource())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_everything_the_sim_serves_in_each_scope() {
    let sim = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "admin", Some(Duration::from_secs(5))).await;
    assert_eq!(conn.default_namespace, "default");

    let live = LiveSource::start(&conn, opts(Scope::All)).await.unwrap();
    let inv = live.snapshot();
    assert_eq!(inv.vms.len(), 23, "{:?}", names(&inv));
    assert_eq!(inv.vmis.len(), 22, "dev-01 is stopped");
    assert_eq!(inv.pods.len(), 23, "22 launchers plus a migration target");
    assert!(
        inv.pods
            .iter()
            .all(|p| p.metadata.labels.get("kubevirt.io").map(String::as_str)
                == Some("virt-launcher"))
    );
    assert_eq!(inv.nodes.len(), 4);
    assert_eq!(inv.kubevirts.len(), 1);
    assert_eq!(
        inv.kubevirts[0]
            .status
            .observed_kube_virt_version
            .as_deref(),
        Some("v1.3.0")
    );
    let settings = inv
        .harvester_settings
        .as_ref()
        .expect("Harvester discovered");
    assert!(settings
        .iter()
        .any(|s| s.metadata.name == "additional-guest-memory-overhead-ratio"));
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_eq!(live.health(), Health::Ok);
    assert!(names(&inv).contains(&"prod/db-01".to_string()));
    drop(live);

    let scope = Scope::from_flags(false, None, &conn.default_namespace);
    let live = LiveSource::start(&conn, opts(scope)).await.unwrap();
    let inv = live.snapshot();
    assert_eq!(inv.vms.len(), 7);
    assert!(inv.vms.iter().all(|v| v.metadata.namespace == "default"));
    assert!(inv.pods.iter().all(|p| p.metadata.namespace == "default"));
    drop(live);

    let live = LiveSource::start(&conn, opts(Scope::Namespace("prod".into())))
        .await
        .unwrap();
    let inv = live.snapshot();
    assert_eq!(inv.vms.len(), 7);
    assert!(inv.vmis.iter().all(|v| v.metadata.namespace == "prod"));
    assert_eq!(inv.nodes.len(), 4, "nodes are cluster-wide");
    // The one-shot hand-over gives the same objects as a snapshot.
    let taken = live.into_snapshot().await;
    assert_eq!(names(&taken), names(&inv));
    assert_eq!(taken.pods, inv.pods);
    assert_eq!(taken.kubevirts, inv.kubevirts);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_reaches_the_next_snapshot_through_the_watch_without_relisting() {
    let sim = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "admin", Some(Duration::from_secs(5))).await;
    let live = LiveSource::start(&conn, opts(Scope::All)).await.unwrap();
    let before = live.stats();
    assert_eq!(
        before.lists, before.feeds as u64,
        "one initial list per feed"
    );

    let patch = json!({"metadata": {"annotations": {"harvesterhci.io/reservedMemory": "300Mi"}}});
    vms(conn.client.clone(), "prod")
        .patch("db-02", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let seen = eventually(Duration::from_secs(10), || {
        live.snapshot().vms.iter().any(|v| {
            v.metadata.name == "db-02"
                && v.metadata
                    .annotations
                    .get("harvesterhci.io/reservedMemory")
                    .map(String::as_str)
                    == Some("300Mi")
        })
    })
    .await;
    assert!(seen, "the patched annotation never reached a snapshot");
    let after = live.stats();
    assert_eq!(
        after.lists, before.lists,
        "no relist: {before:?} -> {after:?}"
    );
    assert!(after.events > before.events, "{before:?} -> {after:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_namespace_gives_one_warning_and_the_rest_of_the_report() {
    let sim = demo().await;
    sim.forbid_namespace("alice", "prod");
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "alice", Some(Duration::from_secs(5))).await;

    let live = LiveSource::start(&conn, opts(Scope::All)).await.unwrap();
    let inv = live.snapshot();
    assert_eq!(inv.vms.len(), 16, "{:?}", names(&inv));
    let readable = |ns: &str| ns == "default" || ns == "lab";
    assert!(inv.vms.iter().all(|v| readable(&v.metadata.namespace)));
    assert!(inv.pods.iter().all(|p| readable(&p.metadata.namespace)));
    assert!(!inv.pods.is_empty());
    assert_eq!(
        inv.kubevirts.len(),
        1,
        "the KubeVirt CR is read in the namespaces alice may read"
    );
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert_eq!(
        inv.warnings[0],
        "forbidden: user \"alice\" may not list virtualmachines, virtualmachineinstances, pods, resourcequotas, virtualmachineinstancetypes in namespace prod; the report shows only what it may read"
    );
    drop(live);

    // Nothing readable: the server's own sentence.
    let err = LiveSource::start(&conn, opts(Scope::Namespace("prod".into())))
        .await
        .err()
        .expect("prod is forbidden");
    assert!(matches!(err, LiveError::Forbidden(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "virtualmachines.kubevirt.io is forbidden: User \"alice\" cannot list resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"prod\""
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_gone_turns_stale_then_recovers_and_catches_up() {
    let mut sim = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "admin", Some(Duration::from_secs(2))).await;
    let live = LiveSource::start(&conn, opts(Scope::All)).await.unwrap();
    assert_eq!(live.snapshot().vms.len(), 23);

    sim.stop_server().await;
    let stale = eventually(Duration::from_secs(10), || {
        matches!(live.health(), Health::Stale { .. })
    })
    .await;
    assert!(stale, "health stayed {:?}", live.health());
    let Health::Stale { error, .. } = live.health() else {
        unreachable!()
    };
    assert!(
        error.starts_with(&format!("watching {} fails: ", conn.server)),
        "{error}"
    );
    // The last snapshot is still there while the server is away.
    assert_eq!(live.snapshot().vms.len(), 23);

    // A new connection fails with a clear sentence within the request timeout.
    let started = Instant::now();
    let err = LiveSource::start(&conn, opts(Scope::All))
        .await
        .err()
        .expect("server is gone")
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.starts_with(&format!(
            "cannot reach the Kubernetes API server at {}: ",
            conn.server
        )),
        "{err}"
    );

    // A change made while we were away arrives once the server is back.
    let old = version_of(&live.snapshot(), "web-01");
    sim.bump_vm("default", "web-01").unwrap();
    sim.restart_server().await.unwrap();
    let healthy = eventually(Duration::from_secs(15), || live.health() == Health::Ok).await;
    assert!(healthy, "health stayed {:?}", live.health());
    let caught_up = eventually(Duration::from_secs(15), || {
        version_of(&live.snapshot(), "web-01") != old
    })
    .await;
    assert!(caught_up, "the change made while away never arrived");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_kubevirt_cr_is_named_and_the_report_goes_on() {
    let sim = demo().await;
    sim.forbid_namespace("erin", "harvester-system");
    let dir = tempfile::tempdir().unwrap();
    let conn = connect_as(&sim, dir.path(), "erin", Some(Duration::from_secs(5))).await;
    let live = LiveSource::start(&conn, opts(Scope::Namespace("default".into())))
        .await
        .unwrap();
    let inv = live.snapshot();
    assert_eq!(inv.vms.len(), 7);
    assert!(inv.kubevirts.is_empty());
    assert_eq!(
        inv.warnings,
        vec![
            "forbidden: user \"erin\" may not list kubevirts cluster-wide; the report shows only what it may read"
                .to_string()
        ]
    );
    sim.shutdown().await;
}
