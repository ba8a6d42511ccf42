//! The same requests and the same assertions against the simulator and a real kube-apiserver
//! (v1.20.2, tests/apiserver/): objects created through the API show up in the report, a watch
//! sees an edit, `fix`-style merge patches land exactly, a stale resourceVersion gets 409,
//! strategic merge on a custom resource is refused (415), and an unprivileged user gets 403 that
//! the tool turns into a sentence naming the verb and the resource.
//!
//! The real-server half FAILS (never skips) when kube-apiserver cannot be built or started here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::apiserver::RealApiServer;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{json, Value};
use vmmem::cluster::connect::{connect_with_env, ConnectFlags, Connection, Env};
use vmmem::cluster::live::{LiveError, LiveOptions, LiveSource, Scope};
use vmmem::model::inventory::{Readings, SourceKind};
use vmmem::model::report::{build, ReportOptions};
use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

const NS: &str = "vmmem-both";
const USER: &str = "vmmem-user";

/// A server the suite runs against, with an admin and an unprivileged kubeconfig.
struct Target {
    name: &'static str,
    admin: PathBuf,
    user: PathBuf,
    _sim: Option<SimHandle>,
    _real: Option<RealApiServer>,
    _dir: tempfile::TempDir,
}

async fn sim_target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_yaml(
        "flavour: kubevirt\nkubevirtVersion: v1.3.0\nnodes: [{name: node-1}]\nvms: []\n",
    )
    .unwrap();
    let sim = Sim::start(scenario, SimOptions::default()).await.unwrap();
    let admin = dir.path().join("admin.kubeconfig");
    let user = dir.path().join("user.kubeconfig");
    sim.write_kubeconfig(&admin).unwrap();
    sim.write_kubeconfig_as(&user, USER).unwrap();
    // The sim's RBAC: this user may read nothing in the test namespace.
    sim.forbid_namespace(USER, NS);
    Target {
        name: "simulator",
        admin,
        user,
        _sim: Some(sim),
        _real: None,
        _dir: dir,
    }
}

fn real_target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let real = match RealApiServer::start() {
        Ok(s) => s,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    };
    assert_eq!(real.user_name(), USER);
    Target {
        name: "real kube-apiserver",
        admin: real.admin_kubeconfig().to_path_buf(),
        user: real.user_kubeconfig().to_path_buf(),
        _sim: None,
        _real: Some(real),
        _dir: dir,
    }
}

async fn connect(kubeconfig: &std::path::Path) -> Connection {
    let flags = ConnectFlags {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        request_timeout: Some(Duration::from_secs(20)),
        ..ConnectFlags::default()
    };
    connect_with_env(&flags, &Env::default()).await.unwrap()
}

fn ar(group: &str, kind: &str, plural: &str) -> ApiResource {
    let (g, v) = if group.is_empty() {
        ("", "v1")
    } else {
        (group, "v1")
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural)
}

fn obj(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

fn vm_json() -> Value {
    json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": "vm2", "namespace": NS, "annotations": {"harvesterhci.io/reservedMemory": "100Mi"}},
        "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {
            "cpu": {"cores": 2, "sockets": 1, "threads": 1},
            "memory": {"guest": "1948Mi"},
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "125m", "memory": "1365Mi"}}}}}}
    })
}

async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut f: impl FnMut() -> F,
) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f().await
}

async fn suite(t: &Target) {
    let who = t.name;
    let client = connect(&t.admin).await.client.clone();
    let ns_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &ar("", "Namespace", "namespaces"));
    let ns = obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    ns_api
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("{who}: create namespace: {e}"));

    // Objects created through the API, a pod staged Running through pods/status.
    let vms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ar("kubevirt.io", "VirtualMachine", "virtualmachines"),
    );
    let vmis: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ar(
            "kubevirt.io",
            "VirtualMachineInstance",
            "virtualmachineinstances",
        ),
    );
    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar("", "Pod", "pods"));
    let vm = vms
        .create(&PostParams::default(), &obj(vm_json()))
        .await
        .unwrap_or_else(|e| panic!("{who}: create vm: {e}"));
    let vmi = vmis
        .create(
            &PostParams::default(),
            &obj(json!({
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                "metadata": {"name": "vm2", "namespace": NS},
                "spec": vm_json()["spec"]["template"]["spec"].clone()
            })),
        )
        .await
        .unwrap_or_else(|e| panic!("{who}: create vmi: {e}"));
    let vmi_uid = vmi.metadata.uid.clone().unwrap();
    vmis.patch_status(
        "vm2",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "nodeName": "node-1"}})),
    )
    .await
    .unwrap_or_else(|e| panic!("{who}: vmi status: {e}"));
    let pod = pods
        .create(&PostParams::default(), &obj(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "virt-launcher-vm2-abcde", "namespace": NS,
                         "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "compute", "image": "quay.io/kubevirt/virt-launcher:v1.1.1",
                "resources": {"limits": {"memory": "2412423169"}, "requests": {"memory": "1696245761"}}}]}
        })))
        .await
        .unwrap_or_else(|e| panic!("{who}: create pod: {e}"));
    pods.patch_status(
        &pod.metadata.name.clone().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap_or_else(|e| panic!("{who}: pod status: {e}"));

    // The tool's live client reads them; the report is the seed's vm2.
    let conn = connect(&t.admin).await;
    let live = LiveSource::start(
        &conn,
        LiveOptions {
            scope: Scope::Namespace(NS.into()),
            source: SourceKind::Live,
            initial_timeout: Some(Duration::from_secs(30)),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{who}: live source: {e}"));
    let ok = eventually(Duration::from_secs(10), || {
        let inv = live.snapshot();
        async move {
            inv.vms.len() == 1
                && inv.vmis.len() == 1
                && inv.pods.len() == 1
                && inv.pods[0]
                    .status
                    .phase
                    .as_ref()
                    .is_some_and(|p| *p == "Running")
        }
    })
    .await;
    assert!(ok, "{who}: snapshot has the VM, VMI and Running pod");
    let report = build(
        &live.snapshot(),
        &Readings::new(),
        &ReportOptions::default(),
    );
    let row = &report.vms[0];
    assert_eq!(
        (row.namespace.as_str(), row.name.as_str()),
        (NS, "vm2"),
        "{who}"
    );
    assert_eq!(row.node.as_deref(), Some("node-1"), "{who}");
    assert_eq!(
        row.kubevirt_version.to_string(),
        "v1.1.1",
        "{who}: version from the launcher image"
    );
    assert_eq!(row.expected_overhead_bytes, 264_939_521, "{who}");
    assert_eq!(row.pod_limit_bytes, Some(2_412_423_169), "{who}");
    assert_eq!(row.reserved_bytes, Some(100 << 20), "{who}");

    // A watch sees an edit: a fix-style merge patch carrying the resourceVersion it was planned from.
    let rv = vm.metadata.resource_version.clone().unwrap();
    let patch = json!({"metadata": {"resourceVersion": rv, "annotations": {"harvesterhci.io/reservedMemory": "384Mi"}},
        "spec": {"template": {"spec": {"domain": {"memory": {"guest": "1664Mi"}}}}}});
    let patched = vms
        .patch("vm2", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("{who}: patch: {e}"));
    let v = serde_json::to_value(&patched).unwrap();
    assert_eq!(
        v["metadata"]["annotations"]["harvesterhci.io/reservedMemory"], "384Mi",
        "{who}"
    );
    assert_eq!(
        v["spec"]["template"]["spec"]["domain"]["memory"]["guest"], "1664Mi",
        "{who}"
    );
    assert_eq!(
        v["spec"]["template"]["spec"]["domain"]["resources"]["requests"]["memory"], "1365Mi",
        "{who}: untouched fields stay"
    );
    let ok = eventually(Duration::from_secs(10), || {
        let inv = live.snapshot();
        async move {
            inv.vms[0]
                .metadata
                .annotations
                .get("harvesterhci.io/reservedMemory")
                .map(String::as_str)
                == Some("384Mi")
        }
    })
    .await;
    assert!(
        ok,
        "{who}: the watch delivered the edit to the next snapshot"
    );

    // The same patch again, planned from the old resourceVersion: 409, nothing lost.
    match vms
        .patch("vm2", &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409, "{who}: {s:?}");
            assert!(
                s.message.contains("the object has been modified"),
                "{who}: {}",
                s.message
            );
        }
        other => panic!("{who}: stale resourceVersion must give 409, got {other:?}"),
    }
    // Removing the limit with null (remove-limit) lands exactly.
    let cur = vms.get("vm2").await.unwrap();
    let rm = json!({"metadata": {"resourceVersion": cur.metadata.resource_version},
        "spec": {"template": {"spec": {"domain": {"resources": {"limits": {"memory": null}}}}}}});
    let v = serde_json::to_value(
        vms.patch("vm2", &PatchParams::default(), &Patch::Merge(&rm))
            .await
            .unwrap(),
    )
    .unwrap();
    let res = &v["spec"]["template"]["spec"]["domain"]["resources"];
    assert!(res["limits"].get("memory").is_none(), "{who}: {res}");
    assert_eq!(res["limits"]["cpu"], "2", "{who}: the rest of limits stays");
    // Strategic merge is refused for custom resources.
    match vms
        .patch(
            "vm2",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 415, "{who}: {s:?}"),
        other => panic!("{who}: strategic merge on a CR must give 415, got {other:?}"),
    }

    // The unprivileged user: 403, and the tool says which verb and which resource.
    let user = connect(&t.user).await;
    let err = LiveSource::start(
        &user,
        LiveOptions {
            scope: Scope::Namespace(NS.into()),
            source: SourceKind::Live,
            initial_timeout: Some(Duration::from_secs(20)),
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("{who}: the unprivileged user must not get a report"));
    let msg = err.to_string();
    assert!(matches!(err, LiveError::Forbidden(_)), "{who}: {msg}");
    assert!(
        msg.contains("cannot list resource \"virtualmachines\""),
        "{who}: {msg}"
    );
    assert!(msg.contains(USER), "{who}: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_simulator() {
    suite(&sim_target().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_real_kube_apiserver() {
    let t = tokio::task::spawn_blocking(real_target).await.unwrap();
    suite(&t).await;
}
