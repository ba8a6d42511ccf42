//! The agent pod the tool creates, against a real kube-apiserver (v1.20.2, tests/apiserver/;
//! nothing runs pods there) and the simulator with a node whose kubelet is gone, with the same
//! assertions: the server accepts the pod as built (the fields that matter survive a
//! server-side dry run), it stays Pending, the tool's wait times out with a sentence naming the
//! pod and its phase, and the tool deletes it (gone afterwards).
//!
//! The real-server half FAILS (never skips) when kube-apiserver cannot be built or started here.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::apiserver::RealApiServer;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use vmmem::cluster::connect::{connect_with_env, ConnectFlags, Env};
use vmmem::node::agent_spec::{managed_selector, AgentConfig, Session, DEFAULT_IMAGE};
use vmmem::node::agents::Agents;
use vmmem_sim::{Scenario, Sim, SimOptions};

const NS: &str = "vmmem-agents";
const NODE: &str = "node-1";

async fn client(kubeconfig: PathBuf) -> kube::Client {
    let flags = ConnectFlags {
        kubeconfig: Some(kubeconfig),
        request_timeout: Some(Duration::from_secs(20)),
        ..ConnectFlags::default()
    };
    connect_with_env(&flags, &Env::default())
        .await
        .unwrap()
        .client
}

fn config() -> AgentConfig {
    AgentConfig {
        namespace: NS.into(),
        image: DEFAULT_IMAGE.into(),
        pull_secret: None,
        pull_policy: Some("IfNotPresent".into()),
        deadline_secs: 3600,
        session: Session::new(1_700_000_000),
    }
}

async fn suite(who: &str, client: kube::Client, user: kube::Client, user_name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("{who}: create namespace: {e}"));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);

    // Accepted as built: a server-side dry run stores nothing and returns what would be stored.
    let built = config().pod(NODE);
    let stored = pods
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &built,
        )
        .await
        .unwrap_or_else(|e| panic!("{who}: the server refused the agent pod: {e}"));
    let v = serde_json::to_value(&stored).unwrap();
    let spec = &v["spec"];
    assert_eq!(spec["nodeName"], NODE, "{who}");
    assert_eq!(spec["hostPID"], true, "{who}");
    assert_eq!(spec["restartPolicy"], "Never", "{who}");
    assert_eq!(spec["activeDeadlineSeconds"], 3600, "{who}");
    assert_eq!(spec["terminationGracePeriodSeconds"], 0, "{who}");
    assert_eq!(
        spec["tolerations"],
        json!([{"operator": "Exists"}]),
        "{who}"
    );
    let c = &spec["containers"][0];
    // Not privileged: the real server keeps the reduced securityContext as built.
    assert_eq!(c["securityContext"]["privileged"], false, "{who}");
    assert_eq!(
        c["securityContext"]["capabilities"],
        json!({"drop": ["ALL"], "add": ["SYS_PTRACE", "SYSLOG"]}),
        "{who}"
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "{who}"
    );
    assert_eq!(
        c["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{who}"
    );
    assert_eq!(c["image"], DEFAULT_IMAGE, "{who}");
    assert_eq!(
        c["volumeMounts"][0]["mountPath"], "/host/sys/fs/cgroup",
        "{who}"
    );
    assert_eq!(c["volumeMounts"][0]["readOnly"], true, "{who}");
    assert_eq!(
        spec["volumes"][0]["hostPath"]["path"], "/sys/fs/cgroup",
        "{who}"
    );
    assert_eq!(v["status"]["phase"], "Pending", "{who}");
    assert_eq!(v["status"]["qosClass"], "Burstable", "{who}");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "{who}: the dry run stored nothing"
    );

    // The tool's own start: stays Pending, times out, says so, deletes it.
    let agents = Agents::new(client.clone(), config(), Duration::from_secs(3));
    let t = Instant::now();
    let err = agents
        .ensure(NODE)
        .await
        .expect_err("nothing runs pods: the agent cannot start")
        .to_string();
    assert!(
        t.elapsed() >= Duration::from_secs(3),
        "{who}: {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "{who}: {:?}",
        t.elapsed()
    );
    let prefix = format!("the agent pod {NS}/vmmem-agent-{NODE}-");
    assert!(err.starts_with(&prefix), "{who}: {err}");
    assert!(
        err.ends_with(&format!(
            " on node {NODE} was not Running after 3s (still Pending, no node has picked it up); it was deleted"
        )),
        "{who}: {err}"
    );
    let name = err
        .strip_prefix(&format!("the agent pod {NS}/"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let left = pods
        .list(&ListParams::default().labels(&managed_selector()))
        .await
        .unwrap()
        .items;
    assert!(
        left.is_empty(),
        "{who}: {name} must be gone, found {:?}",
        left.iter()
            .map(|p| (
                p.metadata.name.clone(),
                p.metadata.deletion_timestamp.clone()
            ))
            .collect::<Vec<_>>()
    );
    match pods.get(&name).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404, "{who}"),
        other => panic!("{who}: {name} still there: {other:?}"),
    }
    // A user without rights on the namespace: the server's 403 names the object, the verb and
    // the resource, for a get and for an exec (a WebSocket GET: authorized as `get` before
    // Kubernetes 1.30).
    let theirs: Api<Pod> = Api::namespaced(user, NS);
    match theirs.get("agent-x").await {
        Err(kube::Error::Api(s)) => assert_eq!(
            (s.code, s.message.as_str()),
            (403, format!("pods \"agent-x\" is forbidden: User \"{user_name}\" cannot get resource \"pods\" in API group \"\" in the namespace \"{NS}\"").as_str()),
            "{who}"
        ),
        other => panic!("{who}: {other:?}"),
    }
    let exec = vmmem::node::exec::run(
        &theirs.clone().into_client(),
        NS,
        "agent-x",
        "agent",
        vec!["true".into()],
        Duration::from_secs(10),
    )
    .await
    .expect_err("forbidden");
    assert_eq!(
        exec.to_string(),
        format!("exec into pod {NS}/agent-x failed: pods \"agent-x\" is forbidden: User \"{user_name}\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"{NS}\""),
        "{who}"
    );

    // Failed nodes are not retried at once: the same sentence again, no new pod.
    let again = agents.ensure(NODE).await.expect_err("remembered");
    assert_eq!(again.to_string(), err, "{who}");
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pending_on_the_simulator_without_a_kubelet() {
    let scenario = Scenario::from_yaml(
        "flavour: kubevirt\nkubevirtVersion: v1.3.0\nnodes: [{name: node-1}]\nvms: []\n",
    )
    .unwrap();
    let sim = Sim::start(scenario, SimOptions::default()).await.unwrap();
    sim.set_kubelet_down(NODE, true);
    let (dir, kc) = common::admin_kubeconfig(&sim);
    sim.forbid_namespace("vmmem-user", NS);
    let user = dir.path().join("user.kubeconfig");
    sim.write_kubeconfig_as(&user, "vmmem-user").unwrap();
    suite(
        "simulator",
        client(kc).await,
        client(user).await,
        "vmmem-user",
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pending_on_a_real_kube_apiserver() {
    let real = tokio::task::spawn_blocking(|| match RealApiServer::start() {
        Ok(s) => s,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    })
    .await
    .unwrap();
    suite(
        "real kube-apiserver",
        client(real.admin_kubeconfig().to_path_buf()).await,
        client(real.user_kubeconfig().to_path_buf()).await,
        real.user_name(),
    )
    .await;
    drop(real);
}
