//! The roles of assets/rbac on a real kube-apiserver: every manifest is accepted as written (the
//! namespace, the Role in it, the ClusterRoles with their resourceNames), and a user bound to the
//! read-only role alone can run `list -A --live off` with nothing refused. FAILS (never skips)
//! when kube-apiserver cannot be built or started here.

use crate::common::apiserver::RealApiServer;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

fn manifest<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/rbac")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    vmmem::parse::yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_manifests_are_accepted_and_read_only_suffices_for_list() {
    let mut server = match RealApiServer::start() {
        Ok(s) => s,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    };
    let admin = Client::try_from(server.admin_config().await.unwrap()).unwrap();
    let pp = PostParams::default();
    Api::<Namespace>::all(admin.clone())
        .create(&pp, &manifest("agent-namespace.yaml"))
        .await
        .expect("agent-namespace.yaml");
    Api::<Role>::namespaced(admin.clone(), "vmmem-system")
        .create(&pp, &manifest("agent-role.yaml"))
        .await
        .expect("agent-role.yaml");
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    for file in [
        "readonly-clusterrole.yaml",
        "fix-role.yaml",
        "pod-exec-role.yaml",
        "kubelet-clusterrole.yaml",
    ] {
        roles
            .create(&pp, &manifest(file))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let kc = server.user_kubeconfig().to_path_buf();
    let list = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
            .env("XDG_STATE_HOME", crate::common::state_home())
            .args(["list", "-A", "--live", "off", "-o", "json", "--kubeconfig"])
            .arg(&kc)
            .output()
            .await
            .unwrap()
    };
    // Unbound, the user is refused (the check below can fail).
    let out = list().await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .to_ascii_lowercase();
    assert!(said.contains("forbidden"), "{said}");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "vmmem-readonly-user"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubectl-vmmem-readonly"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": server.user_name()}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&pp, &binding)
        .await
        .unwrap();
    // The authorizer's cache catches up with the binding within a moment.
    let until = Instant::now() + Duration::from_secs(20);
    let report = loop {
        let out = list().await;
        let report: Option<Value> = out
            .status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten();
        let clean = report.as_ref().is_some_and(|r| {
            !r["warnings"]
                .to_string()
                .to_ascii_lowercase()
                .contains("forbidden")
        });
        if clean {
            break report.unwrap();
        }
        assert!(
            Instant::now() < until,
            "the read-only user could not list: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report["kind"], "VmMemoryReport", "{report}");
    server.stop().unwrap();
}
