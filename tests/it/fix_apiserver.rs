//! The fix checks of `tests/fix_checks` against a real kube-apiserver (v1.20.2 with structural
//! KubeVirt CRDs): merge patch with resourceVersion (409 on a concurrent edit), 403 for a user
//! without rights, `dryRun=All` leaves the object unchanged, undo restores byte for byte.
//! Fails (never skips) when the real server cannot be started here.

use crate::common;

use crate::common::apiserver::RealApiServer;
use crate::fix_checks::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use vmmem::fix::{self, Action, Choice};
use vmmem::model::recommend::Strategy;

const NS: &str = "vmmem-fix";

async fn create_vm(
    client: &kube::Client,
    name: &str,
    annotations: serde_json::Value,
    domain: serde_json::Value,
) {
    let mut vm = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"runStrategy": "Always", "template": {"metadata": {"labels": {"kubevirt.io/domain": name}},
            "spec": {"domain": domain}}}});
    if !annotations.is_null() {
        vm["metadata"]["annotations"] = annotations;
    }
    let obj: DynamicObject = serde_json::from_value(vm).unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), NS, &fix::apply::vm_resource())
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_checks_against_a_real_apiserver() {
    let server = match RealApiServer::start() {
        Ok(s) => s,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    };
    let admin = client(server.admin_kubeconfig()).await;
    let user = client(server.user_kubeconfig()).await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    create_vm(
        &admin,
        "plain",
        serde_json::Value::Null,
        json!({"cpu": {"cores": 2}, "resources": {"limits": {"memory": "4Gi", "cpu": "2"}, "requests": {"memory": "4Gi"}}}),
    )
    .await;
    create_vm(
        &admin,
        "annotated",
        json!({"harvesterhci.io/reservedMemory": "256Mi", "team": "db"}),
        json!({"memory": {"guest": "7936Mi"}, "resources": {"limits": {"memory": "8Gi"}, "requests": {"memory": "5461Mi"}}}),
    )
    .await;
    create_vm(
        &admin,
        "numbers",
        serde_json::Value::Null,
        json!({"resources": {"limits": {"memory": 2147483648u64}}}),
    )
    .await;

    let p = fix_and_undo(&admin, NS, "plain", reserve(None)).await;
    assert_eq!(p.after.fields.guest, Some(json!("3712Mi")));
    fix_and_undo(&admin, NS, "annotated", reserve(Some(1 << 30))).await;
    fix_and_undo(&admin, NS, "numbers", reserve(None)).await;
    let rl = Choice {
        action: Action::RemoveLimit,
        strategy: None,
    };
    fix_and_undo(&admin, NS, "plain", rl).await;
    let ao = Choice {
        action: Action::Reserve(Some(512 << 20)),
        strategy: Some(Strategy::AddedOverhead),
    };
    fix_and_undo(&admin, NS, "annotated", ao).await;
    conflict(&admin, NS, "plain").await;
    forbidden(&admin, &user, NS, "annotated").await;
    server_dry_run(&admin, NS, "numbers").await;
    drop(server);
}

/// The compute limit KubeVirt v1.3.0 sets for `plain` (4Gi limit and request, 2 vCPUs), by hand
/// from KubeVirt v1.3.0's renderresources.go: O = 4,294,968,000/512 (page tables) + 210Mi (processes)
/// + 2 × 8Mi (vCPUs) + 8Mi (IOThread) + 16Mi (video) = 270,532,609; limit = 4Gi + O.
const PLAIN_POD_LIMIT_V1_3: i64 = 4_294_967_296 + 270_532_609;

/// A stand-in for virt-api + virt-controller: `restart` replaces the VMI (new UID, Running) and
/// creates its launcher pod with the limit KubeVirt v1.3.0 would set; for `stuck` it accepts the
/// request and does nothing.
async fn stand_in_restart(
    axum::extract::State(admin): axum::extract::State<kube::Client>,
    axum::extract::Path((ns, name)): axum::extract::Path<(String, String)>,
) -> axum::http::StatusCode {
    use kube::api::{DeleteParams, Patch, PatchParams};
    if name == "stuck" {
        return axum::http::StatusCode::ACCEPTED;
    }
    let vms: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &ns, &fix::apply::vm_resource());
    let vmis: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &ns, &fix::apply::vmi_resource());
    let pods: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &ns, &fix::apply::pod_resource());
    let Ok(vm) = vms.get(&name).await else {
        return axum::http::StatusCode::NOT_FOUND;
    };
    let _ = vmis.delete(&name, &DeleteParams::default()).await;
    let vmi: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": ns},
        "spec": vm.data["spec"]["template"]["spec"].clone()}))
    .unwrap();
    let created = vmis.create(&PostParams::default(), &vmi).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    vmis.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    let pod: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("virt-launcher-{name}-{}", &uid[..5]), "namespace": ns,
            "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": uid}},
        "spec": {"containers": [{"name": "compute", "image": "virt-launcher:v1.3.0",
            "resources": {"limits": {"memory": PLAIN_POD_LIMIT_V1_3.to_string()}}}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    axum::http::StatusCode::ACCEPTED
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_through_the_real_apiserver_waits_for_the_planned_pod() {
    use axum::routing::{get, put};
    let server = match RealApiServer::start() {
        Ok(s) => s,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    };
    let admin = client(server.admin_kubeconfig()).await;
    let router = axum::Router::new()
        .route(
            "/apis/subresources.kubevirt.io/v1",
            get(|| async { axum::Json(common::apiserver::subresources_discovery()) }),
        )
        .route(
            "/apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/restart",
            put(stand_in_restart),
        )
        .with_state(admin.clone());
    let _backend = server.serve_kubevirt_subresources(router).await.unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    // The cluster runs KubeVirt v1.3.0.
    let kv_resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kubevirt.io", "v1", "KubeVirt"),
        "kubevirts",
    );
    let kvs: Api<DynamicObject> = Api::namespaced_with(admin.clone(), "kubevirt", &kv_resource);
    let kv: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt", "namespace": "kubevirt"}}),
    )
    .unwrap();
    kvs.create(&PostParams::default(), &kv).await.unwrap();
    kvs.patch_status(
        "kubevirt",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"status": {"observedKubeVirtVersion": "v1.3.0"}})),
    )
    .await
    .unwrap();
    for name in ["plain", "stuck"] {
        create_vm(
            &admin,
            name,
            serde_json::Value::Null,
            json!({"cpu": {"cores": 2}, "resources": {"limits": {"memory": "4Gi", "cpu": "2"}, "requests": {"memory": "4Gi"}}}),
        )
        .await;
    }
    let plan = plan_now(&admin, NS, "plain", reserve(None)).await;
    assert!(
        plan.warnings.iter().all(|w| !w.contains("assumed")),
        "{:?}",
        plan.warnings
    );
    assert_eq!(
        plan.after.expected_pod_limit_bytes,
        Some(PLAIN_POD_LIMIT_V1_3)
    );
    fix::apply(&admin, &plan, fix::Options::default())
        .await
        .unwrap();
    let mut lines = Vec::new();
    let r = fix::restart_and_wait(
        &admin,
        &plan,
        std::time::Duration::from_secs(30),
        &mut |l: &str| lines.push(l.to_string()),
    )
    .await
    .unwrap();
    assert!(r.matches_plan, "{r:?}");
    assert!(r.pod.starts_with("virt-launcher-plain-"));
    assert_eq!(
        lines.first().map(String::as_str),
        Some("restart of vmmem-fix/plain requested")
    );
    // A restart that never brings the VM back ends with a clear message, not a hang, and says
    // the restart was requested (it was: the wait failed, not the restart).
    let stuck = plan_now(&admin, NS, "stuck", reserve(None)).await;
    let started = std::time::Instant::now();
    let err = fix::restart_and_wait(
        &admin,
        &stuck,
        std::time::Duration::from_secs(2),
        &mut |_: &str| {},
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        err.to_string(),
        "the restart of vmmem-fix/stuck was requested (the server accepted it), but waiting for it failed: it did not run again within 2s (waiting for a new VMI); watch it with `kubectl get vmi stuck -n vmmem-fix -w`"
    );
    drop(server);
}
