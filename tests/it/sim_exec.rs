//! Exec over WebSocket through the real kube-rs client: agent pods on a node read its host
//! tree, exit codes, hung nodes and latency, deadlines, long-running execs, the kubelet summary.

use std::time::Duration;

use crate::common::exec::run_exec;
use crate::common::{api_code, demo};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams, PostParams};
use serde_json::json;

async fn agent_pod(client: &kube::Client, node: &str) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "harvester-system");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "vmmem-agent-", "labels": {"app.kubernetes.io/managed-by": "kubectl-vmmem"}},
        "spec": {"nodeName": node, "hostPID": true, "restartPolicy": "Never",
                 "activeDeadlineSeconds": 600,
                 "containers": [{"name": "agent", "image": "busybox:1.37.0", "command": ["sleep", "3600"]}]}
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    for _ in 0..100 {
        let p = pods.get(&name).await.unwrap();
        if p.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            return pods;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("agent pod never turned Running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_in_an_agent_pod_reads_the_node_host_tree() {
    let sim = demo().await;
    // Exec itself is tested here: exit codes, long runs, any command.
    sim.allow_any_exec(true);
    let client = sim.client().await.unwrap();
    let pods = agent_pod(&client, "harvester-node-2").await;
    let name = pods
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=kubectl-vmmem"))
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    // The web-02 launcher's compute scope limit, as the kernel stores it.
    let launchers: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = &launchers
        .list(&ListParams::default().labels("vm.kubevirt.io/name=web-02"))
        .await
        .unwrap()
        .items[0];
    let uid = web.metadata.uid.clone().unwrap().replace('-', "_");
    let spec_limit: i64 = web.spec.as_ref().unwrap().containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap()["memory"]
        .0
        .parse()
        .unwrap();
    let script = format!(
        "cat $VMMEM_CGROUP_ROOT/memory/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-*.scope/memory.limit_in_bytes; echo to-stderr >&2"
    );
    let (out, err, st) = run_exec(&pods, &name, &["sh", "-c", &script]).await;
    assert_eq!(st.status.as_deref(), Some("Success"));
    assert_eq!(err, "to-stderr\n");
    let limits: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert!(
        limits.contains(&(spec_limit / 4096 * 4096)),
        "{limits:?} vs {spec_limit}"
    );
    assert!(
        limits.contains(&9_223_372_036_854_771_712),
        "pause and console scopes have no limit"
    );
    let (_, _, st) = run_exec(&pods, &name, &["sh", "-c", "exit 3"]).await;
    assert_eq!(st.status.as_deref(), Some("Failure"));
    assert_eq!(
        st.details.unwrap().causes.unwrap()[0].message.as_deref(),
        Some("3")
    );
    // A hung node: the exec never answers.
    sim.hang_node_exec("harvester-node-2", true);
    let hung =
        tokio::time::timeout(Duration::from_secs(2), run_exec(&pods, &name, &["true"])).await;
    assert!(hung.is_err(), "exec on a hung node must not complete");
    sim.hang_node_exec("harvester-node-2", false);
    sim.set_exec_latency(Duration::from_millis(300));
    let t = std::time::Instant::now();
    run_exec(&pods, &name, &["true"]).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    // Past activeDeadlineSeconds the pod fails; exec is then refused.
    sim.advance(Duration::from_secs(601));
    let failed = pods.get(&name).await.unwrap().status.unwrap();
    assert_eq!(
        (failed.phase.as_deref(), failed.reason.as_deref()),
        (Some("Failed"), Some("DeadlineExceeded"))
    );
    let err = pods
        .exec(&name, ["true"], &AttachParams::default().container("agent"))
        .await
        .err()
        .expect("exec into a failed pod");
    assert!(
        format!("{err:?}").contains("400") || format!("{err}").contains("container not found"),
        "{err:?}"
    );
    // Cleanup by label, as `agent cleanup` would.
    pods.delete_collection(
        &Default::default(),
        &ListParams::default().labels("app.kubernetes.io/managed-by=kubectl-vmmem"),
    )
    .await
    .unwrap();
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_exec_sees_the_host_tree_change() {
    let sim = demo().await;
    // Exec itself is tested here: exit codes, long runs, any command.
    sim.allow_any_exec(true);
    let client = sim.client().await.unwrap();
    let pods = agent_pod(&client, "harvester-node-1").await;
    let name = pods.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let launchers: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mh = &launchers
        .list(&ListParams::default().labels("vm.kubevirt.io/name=memhold-vm"))
        .await
        .unwrap()
        .items[0];
    let uid = mh.metadata.uid.clone().unwrap().replace('-', "_");
    let f = format!("$VMMEM_CGROUP_ROOT/memory/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/memory.usage_in_bytes");
    let script = format!("cat {f}; sleep 2.5; cat {f}");
    let cmd = ["sh", "-c", script.as_str()];
    let exec = run_exec(&pods, &name, &cmd);
    let later = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sim.advance(Duration::from_secs(15));
    };
    let ((out, _, st), ()) = tokio::join!(exec, later);
    assert_eq!(st.status.as_deref(), Some("Success"));
    let v: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(v.len(), 2, "{out}");
    assert!(v[1] > v[0], "usage grows while the guest fills: {v:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_summary_reports_pod_and_container_memory() {
    let sim = demo().await;
    // Exec itself is tested here: exit codes, long runs, any command.
    sim.allow_any_exec(true);
    let client = sim.client().await.unwrap();
    let req = http::Request::get("/api/v1/nodes/harvester-node-1/proxy/stats/summary")
        .body(Vec::new())
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(summary["node"]["nodeName"], "harvester-node-1");
    let pods = summary["pods"].as_array().unwrap();
    let mh = pods
        .iter()
        .find(|p| {
            p["podRef"]["name"]
                .as_str()
                .unwrap()
                .starts_with("virt-launcher-memhold-vm-")
        })
        .unwrap();
    let compute = mh["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "compute")
        .unwrap();
    let usage = compute["memory"]["usageBytes"].as_i64().unwrap();
    let ws = compute["memory"]["workingSetBytes"].as_i64().unwrap();
    assert!(
        usage > 500 << 20 && ws <= usage && ws > usage - (64 << 20),
        "{compute}"
    );
    assert!(
        mh["memory"]["usageBytes"].as_i64().unwrap() > usage,
        "pod = containers + pause"
    );
    let req = http::Request::get("/api/v1/nodes/nope/proxy/stats/summary")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        api_code(&client.request_text(req).await.unwrap_err())
            .unwrap()
            .0,
        404
    );
    sim.shutdown().await;
}
