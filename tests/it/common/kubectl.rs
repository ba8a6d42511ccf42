//! The real `kubectl` (`KUBECTL`, else `kubectl` on PATH) against a kubeconfig in a test's
//! directory. Tests that need it fail loudly when it cannot run.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

fn bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

/// Fail, saying why, unless kubectl runs here.
pub fn require_kubectl() {
    let bin = bin();
    match std::process::Command::new(&bin).args(["version", "--client"]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{bin} version --client` failed ({}): this test needs a working kubectl (set KUBECTL=/path/to/kubectl)",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run `{bin}` ({e}): this test needs the real kubectl on PATH (or KUBECTL=/path/to/kubectl)"
        ),
    }
}

/// `kubectl args` with `dir/kubeconfig`, its cache and HOME in `dir`.
pub async fn kubectl(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(bin())
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(args)
        // kubectl before 1.30 execs over SPDY unless told to use WebSockets; the simulator
        // speaks WebSockets only (v4/v5.channel.k8s.io).
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "true")
        .env("HOME", dir)
        .output()
        .await
        .expect("running kubectl")
}

/// The JSON a command printed, failing with `what` and its stderr when it failed.
pub fn ok_json(o: &Output, what: &str) -> Value {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Fail unless kubectl runs here; then the demo cluster in a simulator, its admin kubeconfig at
/// `kubeconfig` in the directory returned.
pub async fn demo_for_kubectl() -> (tempfile::TempDir, SimHandle) {
    require_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(Scenario::demo().unwrap(), SimOptions::default())
        .await
        .unwrap();
    sim.write_kubeconfig(&dir.path().join("kubeconfig"))
        .unwrap();
    (dir, sim)
}
