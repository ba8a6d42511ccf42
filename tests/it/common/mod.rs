//! Helpers shared by the integration tests (`mod common;` in each test crate): the
//! simulator's, and the real kube-apiserver harness in `apiserver`.

pub mod apiserver;
pub mod exec;
pub mod kubectl;
pub mod live;
pub mod node;
pub mod node_vm;
pub mod prom_history;
pub mod prom_http;
pub mod prometheus;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::api::{ApiResource, GroupVersionKind};
use vmmem::cluster::connect::{connect_with_env, ConnectFlags, Connection, Env};
use vmmem::model::inventory::Inventory;
use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

pub fn vm_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    )
}

pub fn vmi_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance"),
        "virtualmachineinstances",
    )
}

/// The demo cluster without its Prometheus: tests of everything but history see the cluster's
/// live state and remembered peaks only, as on a cluster without monitoring. (`--demo`, and the
/// tests of history, `common::start(Scenario::demo())`, have rancher-monitoring's Prometheus.)
pub async fn demo() -> SimHandle {
    let mut scenario = Scenario::demo().unwrap();
    scenario.monitoring = false;
    start(scenario).await
}

/// `scenario` in a simulator whose pods start in 100 ms.
pub async fn start(scenario: Scenario) -> SimHandle {
    let opts = SimOptions {
        pod_start_delay: Duration::from_millis(100),
        domain_start_delay: Duration::from_millis(100),
        ..SimOptions::default()
    };
    Sim::start(scenario, opts).await.unwrap()
}

/// A temporary directory holding `admin.kubeconfig` for `sim`, and that file's path.
pub fn admin_kubeconfig(sim: &SimHandle) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("admin.kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    (dir, kc)
}

/// The tool's connection as `user` through `dir/{user}.kubeconfig`, with `timeout` per request.
pub async fn connect_as(
    sim: &SimHandle,
    dir: &Path,
    user: &str,
    timeout: Option<Duration>,
) -> Connection {
    let path = dir.join(format!("{user}.kubeconfig"));
    sim.write_kubeconfig_as(&path, user).unwrap();
    let flags = ConnectFlags {
        kubeconfig: Some(path),
        request_timeout: timeout,
        ..ConnectFlags::default()
    };
    connect_with_env(&flags, &Env::default()).await.unwrap()
}

/// The resourceVersion of the VM `name` in `inv` (empty when it is not there). A change to the
/// VM shows as a new version (the inventory keeps only the annotations the tool reads, so a
/// test's marker annotation does not show).
pub fn version_of(inv: &Inventory, name: &str) -> String {
    inv.vms
        .iter()
        .find(|v| v.metadata.name == name)
        .map(|v| v.metadata.resource_version.clone())
        .unwrap_or_default()
}

/// Poll `f` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

pub fn api_code(e: &kube::Error) -> Option<(u16, String, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.reason.clone(), s.message.clone())),
        _ => None,
    }
}

/// A state directory for the binaries the tests start (`XDG_STATE_HOME`), one per test
/// process, so the peaks they remember never reach the user's own `~/.local/state`.
pub fn state_home() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("vmmem-test-state-")
            .tempdir()
            .expect("a temporary state directory")
    })
    .path()
}

/// The real binary's JSON output for `args` against `kubeconfig`, with `home` as its HOME and
/// state directory and no in-cluster configuration, after checking that it succeeded.
pub async fn plugin_json(args: &[&str], kubeconfig: &Path, home: &Path) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run the real binary with `args` to the end, off the runtime's threads (which serve the
/// simulator), with the test process's state directory.
pub async fn run_plugin(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
            .env("XDG_STATE_HOME", state_home())
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
