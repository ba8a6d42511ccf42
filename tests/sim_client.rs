//! The real kube-rs client against the simulated cluster: list, watch, patch conflicts,
//! forbidden namespaces, a server that goes away, exec, restart and the memhold OOM.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, AttachParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::json;
use tokio::io::AsyncReadExt;
use vmmem::sim::{Scenario, Sim, SimHandle, SimOptions};

fn vm_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    )
}

fn vmi_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance"),
        "virtualmachineinstances",
    )
}

async fn demo() -> SimHandle {
    let opts = SimOptions {
        pod_start_delay: Duration::from_millis(100),
        ..SimOptions::default()
    };
    Sim::start(Scenario::demo().unwrap(), opts).await.unwrap()
}

fn api_code(e: &kube::Error) -> Option<(u16, String, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.reason.clone(), s.message.clone())),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_vms_vmis_and_launcher_pods() {
    let sim = demo().await;
    let client = sim.client().await.unwrap();
    let vms: Api<DynamicObject> = Api::all_with(client.clone(), &vm_resource());
    let list = vms.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 14);
    let vmis: Api<DynamicObject> = Api::all_with(client.clone(), &vmi_resource());
    assert_eq!(
        vmis.list(&ListParams::default()).await.unwrap().items.len(),
        13,
        "dev-01 is stopped"
    );
    let pods: Api<Pod> = Api::all(client.clone());
    let launchers = pods
        .list(&ListParams::default().labels("kubevirt.io=virt-launcher"))
        .await
        .unwrap();
    assert_eq!(
        launchers.items.len(),
        14,
        "13 running VMs, one migrating with two pods"
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
        14
    );
    sim.shutdown().await;
}

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

async fn run_exec(
    pods: &Api<Pod>,
    name: &str,
    cmd: &[&str],
) -> (
    String,
    String,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
) {
    let mut p = pods
        .exec(
            name,
            cmd.to_vec(),
            &AttachParams::default().container("agent").stderr(true),
        )
        .await
        .unwrap();
    let (mut out, mut err) = (p.stdout().unwrap(), p.stderr().unwrap());
    let status = p.take_status().unwrap();
    let (mut o, mut e) = (String::new(), String::new());
    let (r1, r2) = tokio::join!(out.read_to_string(&mut o), err.read_to_string(&mut e));
    r1.unwrap();
    r2.unwrap();
    let st = status.await.unwrap();
    p.join().await.unwrap();
    (o, e, st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_in_an_agent_pod_reads_the_node_host_tree() {
    let sim = demo().await;
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
    let kills: u64 = std::fs::read_dir(&slice)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("memory.oom_control")).ok())
        .filter_map(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .map(|n| n.parse::<u64>().unwrap())
            })
        })
        .sum();
    assert_eq!(kills, 1);
    assert!(std::fs::read_to_string(root.join("var/log/kern.log"))
        .unwrap()
        .contains("invoked oom-killer"));
    // After the back-off the VM runs again with a new VMI.
    sim.advance(Duration::from_secs(11));
    let again = vmis.get("memhold-vm").await.unwrap();
    assert_ne!(again.metadata.uid.clone().unwrap(), first);
    assert_eq!(again.data["status"]["phase"], "Running");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_exec_sees_the_host_tree_change() {
    let sim = demo().await;
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
        "kubevirtVersion: v1.1.1\nnodes: [{name: n1}]\nvms:\n- {name: seed, memory: 2Gi, guest: 1948Mi, request: 1365Mi, cpus: 2}\n- {name: bare, memory: 1Gi}\n",
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
