//! The real kube-rs client against the simulated cluster: list, watch, patch conflicts,
//! forbidden namespaces, a server that goes away, restart, the memhold OOM, malformed writes.

use std::time::Duration;

use crate::common::{api_code, demo, vm_resource, vmi_resource};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::io::AsyncReadExt;
use vmmem_sim::{Scenario, Sim, SimOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_vms_vmis_and_launcher_pods() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::all_with(client.clone(), &vm_resource());
    let list = vms.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 23);
    let vmis: Api<DynamicObject> = Api::all_with(client.clone(), &vmi_resource());
    assert_eq!(
        vmis.list(&ListParams::default()).await.unwrap().items.len(),
        22,
        "dev-01 is stopped"
    );
    let pods: Api<Pod> = Api::all(client.clone());
    let launchers = pods
        .list(&ListParams::default().labels("kubevirt.io=virt-launcher"))
        .await
        .unwrap();
    assert_eq!(
        launchers.items.len(),
        23,
        "22 running VMs, one migrating with two pods"
    );
    let on_node1 = pods
        .list(&ListParams::default().fields("spec.nodeName=harvester-node-1"))
        .await
        .unwrap();
    assert!(on_node1
        .items
        .iter()
        .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("harvester-node-1")));
    assert!(!on_node1.items.is_empty());
    // The launcher pod is sized with the overhead formula: limit = VM limit + O (KubeVirt v1.3, ratio 1.5).
    let ns_pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = ns_pods
        .list(&ListParams::default().labels("vm.kubevirt.io/name=web-01"))
        .await
        .unwrap();
    let compute = &web.items[0].spec.as_ref().unwrap().containers[0];
    assert_eq!(compute.name, "compute");
    let limit: i64 = compute.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"]
        .0
        .parse()
        .unwrap();
    assert!(
        limit > 2 << 30 && limit < (2 << 30) + 400 * 1024 * 1024,
        "{limit}"
    );
    // Harvester's webhook wrote guest = limit - reservedMemory (384Mi) into the VM.
    let vm = Api::<DynamicObject>::namespaced_with(client, "default", &vm_resource())
        .get("web-01")
        .await
        .unwrap();
    assert_eq!(
        vm.data["spec"]["template"]["spec"]["domain"]["memory"]["guest"],
        "1664Mi"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_patch() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "prod", &vm_resource());
    let mut events = watcher(vms.clone(), watcher::Config::default().timeout(20)).boxed();
    // Initial list.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitDone) => break,
            Some(_) => continue,
            None => panic!("watch ended before the initial list"),
        }
    }
    let patch = json!({"metadata": {"annotations": {"harvesterhci.io/reservedMemory": "1536Mi"}}});
    vms.patch("db-02", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.try_next().await.unwrap() {
            if let watcher::Event::Apply(o) = ev {
                if o.metadata.name.as_deref() == Some("db-02")
                    && o.data["spec"]["template"]["spec"]["domain"]["memory"]["guest"]
                        == json!("31232Mi")
                {
                    return o;
                }
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("the patched VM reached the watcher");
    assert_eq!(
        seen.metadata.annotations.unwrap()["harvesterhci.io/reservedMemory"],
        "1536Mi"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_resource_version_conflicts_and_strategic_merge_is_refused() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::namespaced_with(client, "default", &vm_resource());
    let vm = vms.get("web-02").await.unwrap();
    let stale = vm.metadata.resource_version.clone().unwrap();
    let new_rv = sim.bump_vm("default", "web-02").unwrap();
    assert_ne!(stale, new_rv);
    let patch = json!({"metadata": {"resourceVersion": stale, "annotations": {"harvesterhci.io/reservedMemory": "512Mi"}}});
    let err = vms
        .patch("web-02", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    let (code, reason, message) = api_code(&err).unwrap();
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    // With the current version it goes through.
    let patch = json!({"metadata": {"resourceVersion": new_rv, "annotations": {"harvesterhci.io/reservedMemory": "512Mi"}}});
    vms.patch("web-02", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let err = vms
        .patch(
            "web-02",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err).unwrap().0, 415);
    let err = vms
        .patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&err).unwrap().2,
        "virtualmachines.kubevirt.io \"nope\" not found"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_namespace_is_403_like_rbac() {
    let sim = demo().await;
    sim.forbid_namespace("viewer", "prod");
    let client = kube::Client::try_from(sim.kube_config_as("viewer").await.unwrap()).unwrap();
    let prod: Api<DynamicObject> = Api::namespaced_with(client.clone(), "prod", &vm_resource());
    let err = prod.list(&ListParams::default()).await.unwrap_err();
    let (code, reason, message) = api_code(&err).unwrap();
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "virtualmachines.kubevirt.io is forbidden: User \"viewer\" cannot list resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"prod\""
    );
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &vm_resource());
    assert!(
        api_code(&all.list(&ListParams::default()).await.unwrap_err())
            .unwrap()
            .2
            .ends_with("at the cluster scope")
    );
    let default: Api<DynamicObject> = Api::namespaced_with(client, "default", &vm_resource());
    assert_eq!(
        default
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        7
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_gone_is_a_connection_error_and_comes_back() {
    let mut sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::all_with(client.clone(), &vm_resource());
    vms.list(&ListParams::default()).await.unwrap();
    sim.stop_server().await;
    let err = tokio::time::timeout(Duration::from_secs(10), vms.list(&ListParams::default()))
        .await
        .expect("fails fast")
        .unwrap_err();
    assert!(api_code(&err).is_none(), "not an API error: {err}");
    let text = format!("{err:?}").to_lowercase();
    assert!(
        text.contains("connect") || text.contains("refused"),
        "{text}"
    );
    sim.restart_server().await.unwrap();
    let fresh = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::all_with(fresh, &vm_resource());
    assert_eq!(
        vms.list(&ListParams::default()).await.unwrap().items.len(),
        23
    );
    sim.shutdown().await;
}

async fn put_subresource(
    client: &kube::Client,
    ns: &str,
    vm: &str,
    action: &str,
) -> Result<(), kube::Error> {
    let req = http::Request::put(format!(
        "/apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{vm}/{action}"
    ))
    .body(Vec::new())
    .unwrap();
    client.request_text(req).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_makes_a_new_vmi_and_pod() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vmis: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &vmi_resource());
    let before = vmis.get("web-01").await.unwrap().metadata.uid.unwrap();
    put_subresource(&client, "default", "web-01", "restart")
        .await
        .unwrap();
    let after = vmis.get("web-01").await.unwrap();
    assert_ne!(after.metadata.uid.clone().unwrap(), before);
    // Its pod runs; the VMI runs once virt-handler started the domain in it.
    assert_eq!(after.data["status"]["phase"], "Scheduled");
    sim.advance(Duration::from_secs(1));
    let after = vmis.get("web-01").await.unwrap();
    assert_eq!(after.data["status"]["phase"], "Running");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = pods
        .list(&ListParams::default().labels("vm.kubevirt.io/name=web-01"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 1);
    assert_eq!(
        web.items[0].metadata.labels.as_ref().unwrap()["kubevirt.io/created-by"],
        after.metadata.uid.unwrap()
    );
    let err = put_subresource(&client, "default", "dev-01", "restart")
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&err).unwrap().0,
        409,
        "a stopped VM cannot be restarted"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memhold_vm_is_oom_killed_and_restarts() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vmis: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &vmi_resource());
    let first = vmis.get("memhold-vm").await.unwrap().metadata.uid.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = pods
        .list(&ListParams::default().labels("vm.kubevirt.io/name=memhold-vm"))
        .await
        .unwrap()
        .items
        .remove(0);
    let pod_name = pod.metadata.name.clone().unwrap();
    let uid = pod.metadata.uid.unwrap().replace('-', "_");
    sim.advance(Duration::from_secs(400));
    let failed = vmis.get("memhold-vm").await.unwrap();
    assert_eq!(failed.data["status"]["phase"], "Failed");
    let log = sim.kernel_log("harvester-node-1");
    assert!(
        log.iter()
            .any(|l| l.contains("/KVM invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.contains(&format!("oom_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-"))));
    assert!(log.iter().any(
        |l| l.contains("Memory cgroup out of memory: Killed process")
            && l.contains("(qemu-system-x86)")
    ));
    let root = sim.write_host_tree("harvester-node-1").unwrap();
    let slice = root.join(format!("sys/fs/cgroup/memory/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice"));
    // As on a real node (cgroup v1): the kill was counted in compute's memcg, which went with
    // the container; the pod's memcg never counts it. The pod status and the log tell.
    let left: Vec<String> = std::fs::read_dir(&slice)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("memory.oom_control")).ok())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "pause's and guest-console-log's memcgs are left"
    );
    assert!(left.iter().all(|t| t.ends_with("oom_kill 0\n")), "{left:?}");
    assert!(std::fs::read_to_string(slice.join("memory.oom_control"))
        .unwrap()
        .ends_with("oom_kill 0\n"));
    let gone = pods.get(&pod_name).await.unwrap();
    let compute = &gone.status.unwrap().container_statuses.unwrap()[0];
    let ended = compute.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(ended.reason.as_deref(), Some("OOMKilled"));
    assert!(std::fs::read_to_string(root.join("var/log/kern.log"))
        .unwrap()
        .contains("invoked oom-killer"));
    // After the back-off the VM runs again with a new VMI.
    sim.advance(Duration::from_secs(11));
    // The domain starts in the new pod.
    sim.advance(Duration::from_secs(1));
    let again = vmis.get("memhold-vm").await.unwrap();
    assert_ne!(again.metadata.uid.clone().unwrap(), first);
    assert_eq!(again.data["status"]["phase"], "Running");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_forgotten_version_is_gone() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::all_with(client, &vm_resource());
    let mut stream = vms
        .watch(&kube::api::WatchParams::default().timeout(5), "1")
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {
        Some(Ok(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_kubevirt_flavour_defaults_vmis_and_deletes_cascade() {
    let scenario = Scenario::from_yaml(
        "kubevirtVersion: v1.1.1\nnodes: [{name: n1}]\nquotas: [{namespace: limited, limitsMemory: 100Gi}]\nvms:\n- {name: seed, memory: 2Gi, guest: 1948Mi, request: 1365Mi, cpus: 2}\n- {name: bare, memory: 1Gi}\n- {name: unlimited, namespace: limited, memory: 1Gi, noLimit: true}\n",
    )
    .unwrap();
    let sim = Sim::start(scenario, SimOptions::default()).await.unwrap();
    let client = sim.client().await.unwrap();
    let err = client
        .list_api_group_resources("harvesterhci.io/v1beta1")
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&err).unwrap().0,
        404,
        "no Harvester API on plain KubeVirt"
    );
    let vmis: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &vmi_resource());
    let bare = vmis.get("bare").await.unwrap();
    assert_eq!(
        bare.data["spec"]["domain"]["resources"]["requests"]["memory"], "1Gi",
        "request defaulted from the limit"
    );
    assert_eq!(bare.data["spec"]["domain"]["memory"]["guest"], "1Gi");
    // The seed's VM on KubeVirt v1.1.1: compute limit 2,412,423,169 (facts: check 2).
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let seed = pods
        .list(&ListParams::default().labels("vm.kubevirt.io/name=seed"))
        .await
        .unwrap()
        .items
        .remove(0);
    let limits = seed.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(limits["memory"].0, "2412423169");
    // No VM limit, but a quota on limits.memory: KubeVirt v1.1+ sets limit = 2 x (request + O).
    let limited: Api<Pod> = Api::namespaced(client.clone(), "limited");
    let pod = limited
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let res = pod.spec.unwrap().containers[0].resources.clone().unwrap();
    let request: i64 = res.requests.unwrap()["memory"].0.parse().unwrap();
    let limit: i64 = res.limits.unwrap()["memory"].0.parse().unwrap();
    assert_eq!(limit, 2 * request);
    let vms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &vm_resource());
    vms.delete("seed", &Default::default()).await.unwrap();
    assert!(vmis.get_opt("seed").await.unwrap().is_none());
    assert!(pods
        .list(&ListParams::default().labels("vm.kubevirt.io/name=seed"))
        .await
        .unwrap()
        .items
        .is_empty());
    let nowhere: Api<Pod> = Api::namespaced(client, "missing");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .unwrap();
    let err = nowhere
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&err).unwrap().2,
        "namespaces \"missing\" not found"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_writes_are_rejected_not_fatal() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &vm_resource());
    for bad in [
        json!({"spec": {"template": {"spec": {"domain": {"memory": "2Gi"}}}}}),
        json!({"metadata": {"annotations": {"harvesterhci.io/reservedMemory": 5}}}),
        json!({"spec": []}),
    ] {
        let err = vms
            .patch("web-01", &PatchParams::default(), &Patch::Merge(&bad))
            .await
            .unwrap_err();
        assert_eq!(api_code(&err).unwrap().0, 422, "{bad}");
    }
    let err = vms
        .patch(
            "web-01",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "replace", "path": "", "value": 5}])).unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(api_code(&err).unwrap().0, 400 | 422), "{err}");
    let req = http::Request::put("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/web-01")
        .header("content-type", "application/json")
        .body(b"[1, 2]".to_vec())
        .unwrap();
    assert_eq!(
        api_code(&client.request_text(req).await.unwrap_err())
            .unwrap()
            .0,
        400
    );
    let req =
        http::Request::patch("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/web-01")
            .header("content-type", "application/merge-patch+json")
            .body(b"{not json".to_vec())
            .unwrap();
    assert_eq!(
        api_code(&client.request_text(req).await.unwrap_err())
            .unwrap()
            .0,
        400
    );
    // The server is still fine.
    assert_eq!(
        vms.list(&ListParams::default()).await.unwrap().items.len(),
        7
    );
    sim.shutdown().await;
}

/// The API is HTTPS only, under a secret path, and every request needs a bearer token this
/// simulator issued (its exec runs commands on this machine): plain HTTP, no token, a token of the
/// old predictable shape, or another simulator's token get nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_tls_the_secret_path_and_the_token_from_the_kubeconfig() {
    use tokio::io::AsyncWriteExt;
    let sim = demo().await;
    let other = demo().await;
    let addr = sim.addr();
    // Plain HTTP gets no HTTP answer at all (the server speaks TLS only).
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out)).await;
    assert!(
        !out.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );

    let get = |cfg: kube::Config, path: &'static str| async move {
        let client = kube::Client::try_from(cfg).unwrap();
        let req = http::Request::get(path).body(Vec::new()).unwrap();
        match client.request_text(req).await {
            Ok(_) => 200,
            Err(e) => api_code(&e).map_or(0, |c| c.0),
        }
    };
    let admin = || sim.kube_config_as("admin");
    assert_eq!(get(admin().await.unwrap(), "/api/v1/pods").await, 200);
    let mut no_token = admin().await.unwrap();
    no_token.auth_info.token = None;
    assert_eq!(get(no_token, "/api/v1/pods").await, 401);
    for token in ["sim-token-admin".to_string(), other.token_for("admin")] {
        let mut cfg = admin().await.unwrap();
        cfg.auth_info.token = Some(token.into());
        assert_eq!(get(cfg, "/api/v1/pods").await, 401);
    }
    // Impersonation needs a valid token too.
    let mut impersonating = admin().await.unwrap();
    impersonating.auth_info.token = None;
    impersonating.auth_info.impersonate = Some("admin".into());
    assert_eq!(get(impersonating, "/api/v1/pods").await, 401);
    // The right token without the secret path: no API.
    let mut no_prefix = admin().await.unwrap();
    no_prefix.cluster_url = format!("https://{addr}").parse().unwrap();
    assert_eq!(get(no_prefix, "/api/v1/pods").await, 404);
    let secret = sim.url().rsplit('/').next().unwrap().to_string();
    assert!(secret.len() >= 32);

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    sim.write_kubeconfig(&kc).unwrap();
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(&sim.url()));
    assert!(text.contains(&sim.token_for("admin")));
    assert!(text.contains(&sim.ca_data()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    other.shutdown().await;
}

/// Found by `tests/both_servers.rs`: a real kube-apiserver answers a group it does not serve with
/// a plain-text "404 page not found", not a `Status`; the simulator now does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_groups_are_a_plain_404_like_a_real_server() {
    let scenario =
        vmmem_sim::Scenario::from_yaml("flavour: kubevirt\nnodes: [{name: n1}]\nvms: []\n")
            .unwrap();
    let sim = vmmem_sim::Sim::start(scenario, vmmem_sim::SimOptions::default())
        .await
        .unwrap();
    let client = sim.client().await.unwrap();
    for gv in ["harvesterhci.io/v1beta1", "nothing.example.com/v1"] {
        match client.list_api_group_resources(gv).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 404, "{gv}: {s:?}");
                assert_ne!(
                    s.reason, "NotFound",
                    "{gv}: no Status body, so no reason: {s:?}"
                );
            }
            other => panic!("{gv}: expected 404, got {other:?}"),
        }
    }
    // Served groups still answer.
    assert!(client
        .list_api_group_resources("kubevirt.io/v1")
        .await
        .is_ok());
}
