//! Proves the real-kube-apiserver harness (tests/apiserver/, tests/common/apiserver.rs): a real
//! kube-apiserver v1.20.2 starts, serves the structural KubeVirt CRDs and behaves as the tool expects
//! (403 for the unprivileged user, 409 for a stale resourceVersion, pod status through pods/status),
//! and everything it started is gone after it stops, also when the test that started it panics.
//!
//! These tests FAIL (never skip) when kube-apiserver cannot be built or started on this machine.

use crate::common;

use std::time::Duration;

use crate::common::apiserver::{live_pids, RealApiServer};
use crate::common::vm_resource;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::Client;
use serde_json::json;

const NS: &str = "vmmem-smoke";

fn start() -> RealApiServer {
    match RealApiServer::start() {
        Ok(server) => server,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    }
}

fn api_status(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_apiserver_serves_what_the_tool_uses_and_stops_cleanly() {
    let mut server = start();
    let pids = server.pids().to_vec();
    assert!(
        pids.len() >= 2,
        "etcd and apiserver pids recorded: {pids:?}"
    );
    assert_eq!(live_pids(&pids), pids, "all started processes run");

    let admin = Client::try_from(server.admin_config().await.unwrap()).unwrap();
    let user = Client::try_from(server.user_config().await.unwrap()).unwrap();

    // the real thing, not the simulator
    let version = admin.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "20")
    );

    // namespace
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    // a VirtualMachine CR, created and listed back
    let ar = vm_resource();
    let vms: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NS, &ar);
    let vm: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "vm1", "namespace": NS},
        "spec": {"running": true, "template": {"spec": {"domain": {
            "memory": {"guest": "1Gi"},
            "resources": {"limits": {"memory": "1536Mi"}}}}}}
    }))
    .unwrap();
    let created = vms.create(&PostParams::default(), &vm).await.unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    let listed = vms.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    assert_eq!(names, ["vm1"]);
    assert_eq!(
        listed.items[0].data["spec"]["template"]["spec"]["domain"]["memory"]["guest"], "1Gi",
        "preserve-unknown-fields keeps the spec"
    );

    // a watch from the list's resourceVersion sees the next change
    let list_rv = listed.metadata.resource_version.clone().unwrap();
    let mut events = vms
        .watch(&WatchParams::default().timeout(20), &list_rv)
        .await
        .unwrap()
        .boxed();

    // the unprivileged user is authenticated but may not list VMs: 403 naming user and resource
    let user_vms: Api<DynamicObject> = Api::namespaced_with(user.clone(), NS, &ar);
    let status = api_status(user_vms.list(&ListParams::default()).await);
    assert_eq!(status.code, 403, "{status:?}");
    assert!(status.is_forbidden());
    assert!(
        status.message.contains("vmmem-user") && status.message.contains("virtualmachines"),
        "{}",
        status.message
    );

    // a merge patch that carries the current resourceVersion applies ...
    let patched = vms
        .patch(
            "vm1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv1, "annotations": {"a": "1"}}})),
        )
        .await
        .unwrap();
    assert_ne!(
        patched.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    // ... and the watch sees it
    let event = tokio::time::timeout(Duration::from_secs(20), events.try_next())
        .await
        .expect("watch event within 20 s")
        .unwrap()
        .expect("watch stream open");
    match event {
        WatchEvent::Modified(o) => assert_eq!(o.metadata.annotations.unwrap()["a"], "1"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    // ... a stale one gets 409 Conflict
    let status = api_status(
        vms.patch(
            "vm1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv1, "annotations": {"a": "2"}}})),
        )
        .await,
    );
    assert_eq!(status.code, 409, "{status:?}");
    assert!(status.is_conflict());

    // a pod bound to a node by nodeName (nothing runs it) can be made Running through pods/status
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "agent", "labels": {"app.kubernetes.io/managed-by": "kubectl-vmmem"}},
        "spec": {
            "nodeName": "node-1", "hostPID": true, "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "agent", "image": "busybox:1.37.0",
                "command": ["sleep", "3600"], "securityContext": {"privileged": true}}]
        }
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    pods.patch_status(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let got = pods.get("agent").await.unwrap();
    assert_eq!(got.status.unwrap().phase.as_deref(), Some("Running"));

    // deleting a pod bound to a node only marks it (no kubelet confirms); grace period 0 removes it
    pods.delete("agent", &DeleteParams::default())
        .await
        .unwrap();
    let marked = pods.get("agent").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    pods.delete("agent", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let status = api_status(pods.get("agent").await);
    assert_eq!(status.code, 404, "{status:?}");

    drop(events);
    server.stop().unwrap();
    assert_eq!(
        live_pids(&pids),
        Vec::<u32>::new(),
        "nothing started remains"
    );
}

#[test]
fn real_apiserver_is_stopped_when_the_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let server = start();
        tx.send(server.pids().to_vec()).unwrap();
        panic!("deliberate failure while the server runs");
    })
    .join();
    let payload = outcome.expect_err("the thread panicked");
    let Ok(pids) = rx.try_recv() else {
        let reason = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()));
        panic!("the server did not start: {}", reason.unwrap_or_default());
    };
    assert!(pids.len() >= 2, "{pids:?}");
    assert_eq!(
        live_pids(&pids),
        Vec::<u32>::new(),
        "dropped on panic: nothing remains"
    );
}

/// KubeVirt's `restart` is not a CRD subresource: virt-api serves it as the aggregated API
/// `subresources.kubevirt.io`. Through the harness, the real apiserver authenticates and authorizes
/// the request (RBAC on `virtualmachines/restart`) and proxies it to a stand-in backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_apiserver_authorizes_and_proxies_kubevirt_restart() {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, put};
    use common::apiserver::subresources_discovery;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;
    async fn restart(
        State(seen): State<Seen>,
        Path((ns, name)): Path<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let user = headers
            .get("x-remote-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        seen.lock()
            .unwrap()
            .push((user, format!("{ns}/{name}"), body));
        StatusCode::ACCEPTED
    }

    let mut server = start();
    let seen: Seen = Arc::default();
    let router = axum::Router::new()
        .route(
            "/apis/subresources.kubevirt.io/v1",
            get(|| async { axum::Json(subresources_discovery()) }),
        )
        .route(
            "/apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/restart",
            put(restart),
        )
        .with_state(seen.clone());
    let backend = server.serve_kubevirt_subresources(router).await.unwrap();

    let admin = Client::try_from(server.admin_config().await.unwrap()).unwrap();
    let user = Client::try_from(server.user_config().await.unwrap()).unwrap();
    let restart_request = || {
        http::Request::put(
            "/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachines/vm1/restart",
        )
        .header("Content-Type", "application/json")
        .body(br#"{"gracePeriodSeconds":0}"#.to_vec())
        .unwrap()
    };

    admin.request_text(restart_request()).await.unwrap();
    let status = api_status(user.request_text(restart_request()).await);
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains("virtualmachines/restart") && status.message.contains("vmmem-user"),
        "{}",
        status.message
    );

    // grant exactly what KubeVirt's docs ask for restart
    let roles: Api<Role> = Api::namespaced(admin.clone(), "default");
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "vm-restarter"},
        "rules": [{"apiGroups": ["subresources.kubevirt.io"],
                   "resources": ["virtualmachines/restart"], "verbs": ["update"]}]
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "default");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "vm-restarter"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "vm-restarter"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": server.user_name()}]
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mut result = user.request_text(restart_request()).await;
    for _ in 0..50 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // RBAC caches catch up
        result = user.request_text(restart_request()).await;
    }
    result.expect("the user may restart once bound to the role");

    let seen = seen.lock().unwrap().clone();
    let body = r#"{"gracePeriodSeconds":0}"#.to_string();
    assert_eq!(
        seen,
        [
            (
                "vmmem-admin".to_string(),
                "default/vm1".to_string(),
                body.clone()
            ),
            ("vmmem-user".to_string(), "default/vm1".to_string(), body),
        ],
        "the backend got exactly the authorized requests, with the caller's name"
    );

    drop(backend);
    let pids = server.pids().to_vec();
    server.stop().unwrap();
    assert_eq!(live_pids(&pids), Vec::<u32>::new());
}
