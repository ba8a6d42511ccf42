//! VMs restarting while the dashboard refreshes (issue 21): a VM whose launcher pod is replaced
//! between the objects a refresh starts from and the node probe has a new pod the probe was not
//! asked about, and its old pod is gone from the node. Every refresh must still give every
//! running VM on a node that answered its live data (the new pod, read in the same refresh), or
//! its last reading marked stale while its objects still say it runs on a pod that is gone.

use crate::common;

use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use vmmem::cli::args::Cli;
use vmmem::model::evidence::VmKey;
use vmmem::session::dashboard::cluster::ClusterSource;
use vmmem::session::dashboard::cluster_fix::ClientSlot;
use vmmem::session::dashboard::snapshot::{DataSource, Request};
use vmmem_sim::handle::{Sim, SimHandle, SimOptions};
use vmmem_sim::scenario::Scenario;

/// Running VMs on nodes that answered, without live data, in one refresh's report. A row with
/// its last reading carried (marked stale: the VMI said Running while its pod was gone from the
/// objects) has live data; `a_vm_restarted_during_the_probe_round_is_read_in_the_same_refresh`
/// checks the new pod is read in the same refresh.
fn without_live_data(r: &vmmem::model::report::Table, stale_nodes: &[String]) -> Vec<String> {
    r.rows
        .iter()
        .filter(|v| v.phase == "Running" && v.usage_bytes.is_none())
        .filter(|v| !v.node.as_ref().is_some_and(|n| stale_nodes.contains(n)))
        .map(|v| format!("{}/{}", v.namespace, v.name))
        .collect()
}

fn top_cli(kc: &std::path::Path) -> Cli {
    Cli::try_parse_from([
        "kubectl-vmmem",
        "top",
        "-A",
        "--live",
        "agent",
        "--history",
        "off",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ])
    .unwrap()
}

/// The simulator with `opts`, and a dashboard source on it (`top -A --live agent`).
async fn started(
    scenario: Scenario,
    opts: SimOptions,
) -> (SimHandle, tempfile::TempDir, ClusterSource) {
    let sim = Sim::start(scenario, opts).await.unwrap();
    let (dir, kc) = common::admin_kubeconfig(&sim);
    let cli = top_cli(&kc);
    let source = ClusterSource::new(
        vmmem::cli::options::options(&cli.global).unwrap(),
        ClientSlot::default(),
    );
    (sim, dir, source)
}

/// A running VM the first refresh read live, with its launcher pods' API and selector.
async fn a_vm_read_live(
    sim: &SimHandle,
    source: &mut ClusterSource,
) -> (vmmem::model::report::TableRow, Api<Pod>, ListParams) {
    let first = source.fetch(&Request::default()).await.table.unwrap();
    let vm = first
        .rows
        .iter()
        .find(|v| v.phase == "Running" && v.usage_bytes.is_some() && !v.stale)
        .expect("a running VM read live")
        .clone();
    let pods: Api<Pod> = Api::namespaced(sim.client().await.unwrap(), &vm.namespace);
    let lp = ListParams::default().labels(&format!("vm.kubevirt.io/name={}", vm.name));
    (vm, pods, lp)
}

/// On a real cluster a VMI says `Running` for a while after its launcher pod is gone (until
/// virt-handler reports the domain gone); the simulator waits a minute here. The refreshes in
/// between have the VMI without its pod: the VM keeps its last reading, marked stale, with its
/// time in the detail view, rather than a running row without live data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_vm_whose_pod_is_gone_keeps_its_last_reading_marked_stale() {
    let opts = SimOptions {
        pod_gone_notice: Duration::from_secs(60),
        ..SimOptions::default()
    };
    let (sim, _dir, mut source) = started(Scenario::generated(8, 2), opts).await;
    let (vm, pods, lp) = a_vm_read_live(&sim, &mut source).await;
    let deleted = pods
        .delete_collection(&DeleteParams::default(), &lp)
        .await
        .unwrap();
    assert!(deleted.left().is_some_and(|l| !l.items.is_empty()));
    // The watch has the deletion well within this.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let focus = Request {
        focus: Some(VmKey::new(&vm.namespace, &vm.name)),
        ..Request::default()
    };
    for refresh in 0..2 {
        let s = source.fetch(&focus).await;
        let table = s.table.unwrap();
        let row = table
            .rows
            .iter()
            .find(|r| r.namespace == vm.namespace && r.name == vm.name)
            .unwrap();
        assert_eq!(row.phase, "Running", "the VMI has not failed yet");
        assert_eq!(
            (row.usage_bytes, row.stale),
            (vm.usage_bytes, true),
            "refresh {refresh}: the first refresh's reading, marked stale"
        );
        let detail = &s.details[0];
        assert!(detail.pod_uid.is_none(), "the pod is gone from the objects");
        assert!(
            detail
                .notes
                .iter()
                .any(|n| n.contains("could not read the VM") && n.contains("Unix time")),
            "{:?}",
            detail.notes
        );
        // Every other running VM is read live.
        assert!(table
            .rows
            .iter()
            .filter(|r| r.phase == "Running" && r.name != vm.name)
            .all(|r| r.usage_bytes.is_some() && !r.stale));
    }
    source.shutdown().await;
    sim.shutdown().await;
}

/// A VM restarted while a refresh's probe round runs: its new pod is not among those the round
/// was asked for, and is read right after the round, in the same refresh (not carried, not
/// stale, the new pod's UID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_restarted_during_the_probe_round_is_read_in_the_same_refresh() {
    let opts = SimOptions {
        pod_start_delay: Duration::from_millis(100),
        domain_start_delay: Duration::from_millis(100),
        restart_backoff: Duration::from_millis(100),
        exec_latency: Duration::from_secs(3),
        ..SimOptions::default()
    };
    let (sim, _dir, mut source) = started(Scenario::generated(8, 2), opts).await;
    let (vm, pods, lp) = a_vm_read_live(&sim, &mut source).await;
    let key = VmKey::new(&vm.namespace, &vm.name);
    let old_pod = pods.list(&lp).await.unwrap().items[0]
        .metadata
        .uid
        .clone()
        .unwrap();
    let focus = Request {
        focus: Some(key.clone()),
        ..Request::default()
    };
    // The restart lands a second into the round's 3 s execs, and is over well before they end.
    let restart = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        pods.delete_collection(&DeleteParams::default(), &lp)
            .await
            .unwrap();
    };
    let (s, ()) = tokio::join!(source.fetch(&focus), restart);
    let table = s.table.unwrap();
    let row = table.rows.iter().find(|r| key.matches(*r)).unwrap();
    let detail = &s.details[0];
    assert_eq!(row.phase, "Running", "{:?}", detail.notes);
    assert!(
        row.usage_bytes.is_some() && !row.stale,
        "the new pod read in the same refresh: {:?}",
        detail.notes
    );
    let new_pod = detail.pod_uid.clone().expect("the new pod");
    assert_ne!(new_pod, old_pod, "a new launcher pod");
    source.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_restarting_during_refreshes_keep_their_live_data() {
    // Execs take 400 ms, so a refresh's probe round is long enough for restarts to land in it;
    // a restarted VM is back (new VMI, new pod) within about 600 ms. Its pod is there 300 ms
    // before its VMI runs (KubeVirt takes seconds): far more than the pod and VMI watches drift
    // apart on a busy machine.
    let opts = SimOptions {
        domain_start_delay: Duration::from_millis(300),
        restart_backoff: Duration::from_millis(200),
        exec_latency: Duration::from_millis(400),
        ..SimOptions::default()
    };
    let (sim, _dir, mut source) = started(Scenario::generated(60, 4), opts).await;
    let scope = Request::default();
    let first = source.fetch(&scope).await;
    let report = first.table.expect("a first report");
    assert!(
        without_live_data(&report, &[]).is_empty(),
        "before any restart every running VM has live data: {:?}",
        report.warnings
    );
    // Someone restarts VMs, one every 150 ms, while the dashboard refreshes.
    let client = sim.client().await.unwrap();
    let names: Vec<(String, String)> = report
        .rows
        .iter()
        .filter(|v| v.phase == "Running")
        .map(|v| (v.namespace.clone(), v.name.clone()))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let restarter = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut restarted = 0usize;
            for (ns, name) in names.iter().cycle().step_by(7) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
                let lp = ListParams::default().labels(&format!("vm.kubevirt.io/name={name}"));
                if pods
                    .delete_collection(&DeleteParams::default(), &lp)
                    .await
                    .is_ok()
                {
                    restarted += 1;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            restarted
        })
    };
    let until = Instant::now() + Duration::from_secs(20);
    let (mut refreshes, mut read_again) = (0, 0);
    while Instant::now() < until {
        let s = source.fetch(&scope).await;
        let r = s.table.expect("a report");
        let stale: Vec<String> = r
            .warnings
            .iter()
            .filter_map(|w| w.strip_prefix("live data for node "))
            .filter_map(|w| w.split_once(' ').map(|(n, _)| n.to_string()))
            .collect();
        let missing = without_live_data(&r, &stale);
        assert!(
            missing.is_empty(),
            "refresh {refreshes}: running VMs without live data on nodes that answered: {missing:?}; warnings {:?}",
            r.warnings
        );
        read_again += r
            .rows
            .iter()
            .filter(|v| v.phase == "Running" && v.usage_bytes.is_some())
            .count();
        refreshes += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let restarted = restarter.await.unwrap();
    assert!(refreshes >= 5, "only {refreshes} refreshes in 20 s");
    assert!(
        restarted >= 50,
        "only {restarted} restarts: the test did not race the refreshes"
    );
    assert!(read_again > 0);
    source.shutdown().await;
    sim.shutdown().await;
}
