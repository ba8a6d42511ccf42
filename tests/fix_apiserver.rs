//! The fix checks of `tests/fix_checks` against a real kube-apiserver (v1.20.2 with structural
//! KubeVirt CRDs): merge patch with resourceVersion (409 on a concurrent edit), 403 for a user
//! without rights, `dryRun=All` leaves the object unchanged, undo restores byte for byte.
//! Fails (never skips) when the real server cannot be started here.

mod common;
mod fix_checks;

use common::apiserver::RealApiServer;
use fix_checks::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use vmmem::fix::{self, Action, Choice, StrategyChoice};

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
        strategy: StrategyChoice::Auto,
    };
    fix_and_undo(&admin, NS, "plain", rl).await;
    let ao = Choice {
        action: Action::Reserve(Some(512 << 20)),
        strategy: StrategyChoice::AddedOverhead,
    };
    fix_and_undo(&admin, NS, "annotated", ao).await;
    conflict(&admin, NS, "plain").await;
    forbidden(&admin, &user, NS, "annotated").await;
    server_dry_run(&admin, NS, "numbers").await;
    drop(server);
}
