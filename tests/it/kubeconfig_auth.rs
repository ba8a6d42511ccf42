//! Real kubeconfigs: a user whose credentials come from an exec credential plugin
//! (client.authentication.k8s.io/v1), as kubelogin or `aws eks get-token` provide them, against
//! the simulated cluster, which accepts only its own bearer tokens.

use std::path::Path;
use std::process::Output;

use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

/// A credential plugin: records that it ran (and what kubectl-style exec info it got), then
/// prints an ExecCredential with `token`.
fn write_plugin(dir: &Path, token: &str) -> std::path::PathBuf {
    let marker = dir.join("plugin-ran");
    let script = dir.join("credential-plugin.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"ran $*\" >> '{marker}'\ncat <<'JSON'\n{{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", \"status\": {{\"token\": \"{token}\"}}}}\nJSON\n",
            marker = marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn write_kubeconfig(dir: &Path, sim: &SimHandle, plugin: &Path) -> std::path::PathBuf {
    let kc = dir.join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: {server}
    certificate-authority-data: {ca}
contexts:
- name: sim
  context:
    cluster: sim
    user: exec-user
current-context: sim
users:
- name: exec-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {plugin}
      args: [get-token, --cluster, sim]
      interactiveMode: Never
      provideClusterInfo: false
",
            server = sim.url(),
            ca = sim.ca_data(),
            plugin = plugin.display()
        ),
    )
    .unwrap();
    kc
}

async fn vmmem(kubeconfig: &Path, home: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_credential_plugin_supplies_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(Scenario::demo().unwrap(), SimOptions::default())
        .await
        .unwrap();
    let plugin = write_plugin(dir.path(), &sim.token_for("alice"));
    let kc = write_kubeconfig(dir.path(), &sim, &plugin);

    let o = vmmem(
        &kc,
        dir.path(),
        &["list", "-A", "-o", "json", "--live", "off"],
    )
    .await;
    assert!(
        o.status.success(),
        "list through the exec plugin failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The same VMs as with the sim's own admin kubeconfig.
    let admin = dir.path().join("admin.kubeconfig");
    sim.write_kubeconfig(&admin).unwrap();
    let o = vmmem(
        &admin,
        dir.path(),
        &["list", "-A", "-o", "json", "--live", "off"],
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names = |r: &serde_json::Value| {
        let mut v: Vec<String> = r["vms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{}/{}", x["namespace"], x["name"]))
            .collect();
        v.sort();
        v
    };
    assert!(names(&expected).len() >= 5, "{:?}", names(&expected));
    assert_eq!(names(&report), names(&expected));
    assert_eq!(report["source"], "live");
    let ran = std::fs::read_to_string(dir.path().join("plugin-ran"))
        .expect("the credential plugin never ran");
    assert!(ran.contains("ran get-token --cluster sim"), "{ran}");

    // The sim rejects a token it did not issue: the plugin's token really is the one used.
    let bad_dir = dir.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    // The old predictable shape, without this simulator's secret.
    let bad = write_plugin(&bad_dir, "sim-token-alice");
    let kc_bad = write_kubeconfig(&bad_dir, &sim, &bad);
    let o = vmmem(
        &kc_bad,
        dir.path(),
        &["list", "-A", "--live", "off", "--request-timeout", "5s"],
    )
    .await;
    assert!(!o.status.success(), "a wrong token was accepted");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_credential_plugin_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(Scenario::demo().unwrap(), SimOptions::default())
        .await
        .unwrap();
    let script = dir.path().join("broken-plugin.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'login required: run kubelogin' >&2\nexit 3\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kc = write_kubeconfig(dir.path(), &sim, &script);
    let o = vmmem(
        &kc,
        dir.path(),
        &["list", "-A", "--live", "off", "--request-timeout", "5s"],
    )
    .await;
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    sim.shutdown().await;
}
