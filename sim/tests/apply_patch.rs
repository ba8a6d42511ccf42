//! Server-side apply bodies (`application/apply-patch+yaml`) sent by the real kube-rs client to
//! the simulator over HTTP: JSON (what kube-rs sends) and block-style YAML (what `kubectl apply
//! --server-side` and hand-written requests send) both read and merge.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use vmmem_sim::{Scenario, Sim, SimOptions};

const SCENARIO: &str = "nodes: [{name: n1}]\nnamespaces: [apply]\nvms: []\n";

#[tokio::test]
async fn apply_patches_in_json_and_in_yaml_are_merged() {
    let scenario = Scenario::from_yaml(SCENARIO).unwrap();
    let sim = Sim::start(scenario, SimOptions::default()).await.unwrap();
    let client = sim.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());

    let body = json!({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": "apply", "labels": {"team": "a"}}});
    let applied = namespaces
        .patch(
            "apply",
            &PatchParams::apply("vmmem-test"),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
    let labels = applied.metadata.labels.unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));

    // YAML 1.2: `yes` and `017` stay text; the earlier label is kept (a merge).
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apply\n  annotations:\n    owner: yes\n    code: 017\n";
    let request = http::Request::patch("/api/v1/namespaces/apply?fieldManager=vmmem-test")
        .header("content-type", "application/apply-patch+yaml")
        .body(yaml.as_bytes().to_vec())
        .unwrap();
    let text = client.request_text(request).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stored["metadata"]["annotations"],
        json!({"owner": "yes", "code": "017"})
    );
    assert_eq!(stored["metadata"]["labels"]["team"], "a");
    let again = namespaces.get("apply").await.unwrap();
    assert_eq!(
        again
            .metadata
            .annotations
            .unwrap()
            .get("owner")
            .map(String::as_str),
        Some("yes")
    );

    // A body that is not YAML is a 400 naming the decoding.
    let request = http::Request::patch("/api/v1/namespaces/apply?fieldManager=vmmem-test")
        .header("content-type", "application/apply-patch+yaml")
        .body(b"metadata: [".to_vec())
        .unwrap();
    match client.request_text(request).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 400);
            assert!(
                status.message.contains("error decoding YAML"),
                "{}",
                status.message
            );
        }
        other => panic!("a broken YAML body was accepted: {other:?}"),
    }
    sim.shutdown().await;
}
