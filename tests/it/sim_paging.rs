//! Paged lists through the simulated cluster, as real clients page them: the real `kubectl`
//! with `--chunk-size`, raw `limit`/`continue` requests (tokens, `remainingItemCount`, 410 after
//! compaction), and the live source (kube-rs watchers, page size 500, and `list`'s one-shot
//! paged read) getting a complete inventory across pages — with the simulator's request
//! counters showing that paging happened.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use vmmem::cluster::connect::{connect_with_env, ConnectFlags, Env};
use vmmem::cluster::live::{LiveOptions, LiveSource, Scope};
use vmmem::model::inventory::SourceKind;
use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

async fn sim(vms: usize) -> SimHandle {
    Sim::start(Scenario::generated(vms, 7), SimOptions::default())
        .await
        .unwrap()
}

fn vm_api(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    );
    Api::all_with(client, &ar)
}

fn kubectl_available() -> bool {
    std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_with_chunk_size_2_gets_everything() {
    if !kubectl_available() {
        panic!("no working `kubectl` on PATH: this test runs the real kubectl (.ci/run installs it) and fails rather than pass without it");
    }
    let sim = sim(11).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let before = sim.request_tally();
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "vm,vmi,pods", "-A", "-o", "json", "--chunk-size=2"])
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    let count = |kind: &str| items.iter().filter(|i| i["kind"] == kind).count();
    let (vms, vmis, pods) = (
        count("VirtualMachine"),
        count("VirtualMachineInstance"),
        count("Pod"),
    );
    assert_eq!(vms, 11);
    assert!(vmis > 0 && pods >= vmis, "{vmis} VMIs, {pods} pods");
    let mut names: Vec<&str> = items
        .iter()
        .filter(|i| i["kind"] == "VirtualMachine")
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 11, "every VM once");
    // Two objects a page: at least ceil(n/2) list requests per type.
    let lists = sim.request_tally().since(&before).list as usize;
    let least = vms.div_ceil(2) + vmis.div_ceil(2) + pods.div_ceil(2);
    assert!(
        lists >= least,
        "{lists} list requests, expected at least {least}"
    );

    // And the Table path (`kubectl get` without -o) pages too.
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "vm", "-A", "--no-headers", "--chunk-size=3"])
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 11);
}

#[tokio::test]
async fn limit_continue_and_remaining_count_over_http_and_410_after_compaction() {
    let sim = sim(9).await;
    let api = vm_api(sim.client().await.unwrap());
    let mut lp = ListParams::default().limit(4);
    let first = api.list(&lp).await.unwrap();
    assert_eq!(first.items.len(), 4);
    assert_eq!(first.metadata.remaining_item_count, Some(5));
    let rv = first.metadata.resource_version.clone();
    let mut seen: Vec<String> = first
        .items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap())
        .collect();
    let mut token = first.metadata.continue_.clone();
    while let Some(t) = token.filter(|t| !t.is_empty()) {
        lp.continue_token = Some(t);
        let page = api.list(&lp).await.unwrap();
        assert_eq!(
            page.metadata.resource_version, rv,
            "one version for the whole list"
        );
        seen.extend(page.items.iter().map(|o| o.metadata.name.clone().unwrap()));
        token = page.metadata.continue_;
    }
    assert_eq!(seen.len(), 9);

    // A token from before a compaction: 410 Expired with a token that continues at the newest.
    let first = api.list(&ListParams::default().limit(4)).await.unwrap();
    let any_vm = &first.items[0].metadata;
    sim.bump_vm(
        any_vm.namespace.as_deref().unwrap(),
        any_vm.name.as_deref().unwrap(),
    )
    .unwrap();
    sim.compact();
    let stale = ListParams {
        continue_token: first.metadata.continue_.clone(),
        ..ListParams::default().limit(4)
    };
    match api.list(&stale).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert!(
                s.message.contains("continue parameter is too old"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_source_gets_a_complete_inventory_through_pages() {
    // More objects than one page of kube-rs's watcher (500) and of the one-shot list.
    let sim = sim(1_203).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let flags = ConnectFlags {
        kubeconfig: Some(kc),
        ..ConnectFlags::default()
    };
    let conn = connect_with_env(&flags, &Env::default()).await.unwrap();
    let opts = || LiveOptions {
        scope: Scope::All,
        source: SourceKind::Live,
        initial_timeout: Some(Duration::from_secs(60)),
    };
    let vmis = sim
        .world()
        .store
        .count(&vmmem_sim::resources::VIRTUAL_MACHINE_INSTANCES);
    for once in [false, true] {
        let before = sim.request_tally();
        let live = if once {
            LiveSource::list_once(&conn, opts()).await.unwrap()
        } else {
            LiveSource::start(&conn, opts()).await.unwrap()
        };
        let inv = live.into_snapshot().await;
        let d = sim.request_tally().since(&before);
        assert_eq!(inv.vms.len(), 1_203, "once={once}");
        assert_eq!(inv.vmis.len(), vmis, "once={once}");
        let mut names: Vec<(&str, &str)> = inv
            .vms
            .iter()
            .map(|v| (v.metadata.namespace.as_str(), v.metadata.name.as_str()))
            .collect();
        names.dedup();
        assert_eq!(names.len(), 1_203, "no VM twice (once={once})");
        // VMs, VMIs and pods each take three pages of 500.
        assert!(d.list >= 9, "{} list requests (once={once})", d.list);
        assert_eq!(d.watch > 0, !once, "watches only when watching: {d:?}");
    }
}
