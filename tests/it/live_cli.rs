//! The real binary against the simulated cluster in this process: `list` live, `--demo`,
//! KUBECONFIG merging, a forbidden namespace and a server that is gone.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

/// The demo cluster without its Prometheus (history has tests of its own).
async fn demo() -> SimHandle {
    let mut scenario = Scenario::demo().unwrap();
    scenario.monitoring = false;
    Sim::start(scenario, SimOptions::default()).await.unwrap()
}

async fn run(args: &[&str], kubeconfig_env: Option<&str>, home: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"));
    cmd.args(args)
        .env("HOME", home)
        .env_remove("KUBERNETES_SERVICE_HOST");
    match kubeconfig_env {
        Some(v) => cmd.env("KUBECONFIG", v),
        None => cmd.env_remove("KUBECONFIG"),
    };
    cmd.output().await.unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn vm_names(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            format!(
                "{}/{}",
                vm["namespace"].as_str().unwrap(),
                vm["name"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_a_merged_kubeconfig_list() {
    let sim = demo().await;
    let dir = tempfile::tempdir().unwrap();
    // The context in one file, cluster and user in the other: only their merge can connect.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(
        &a,
        "apiVersion: v1\nkind: Config\ncurrent-context: sim\ncontexts:\n- name: sim\n  context:\n    cluster: vmmem-sim\n    user: admin\n    namespace: default\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: elsewhere\nclusters:\n- name: vmmem-sim\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    token: {}\n",
            sim.url(),
            sim.ca_data(),
            sim.token_for("admin")
        ),
    )
    .unwrap();
    let list = std::env::join_paths([dir.path().join("missing"), a.clone(), b.clone()]).unwrap();
    let list = list.to_str().unwrap();

    let o = run(&["list", "-A", "-o", "json"], Some(list), dir.path()).await;
    let report = json(&o);
    assert_eq!(report["source"], "live");
    assert_eq!(vm_names(&report).len(), 23);
    assert_eq!(report["kubevirt"]["version"], "v1.3.0");
    assert_eq!(report["kubevirt"]["harvester"], true);

    // Only the first file: it has no cluster, so a clear sentence, exit 1.
    let o = run(&["list", "-A"], Some(a.to_str().unwrap()), dir.path()).await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: cluster \"vmmem-sim\" is not in the kubeconfig"),
        "{err}"
    );

    // The context's namespace scopes the list without -A.
    let o = run(&["list", "-o", "json"], Some(list), dir.path()).await;
    let names = vm_names(&json(&o));
    assert_eq!(names.len(), 7);
    assert!(names.iter().all(|n| n.starts_with("default/")), "{names:?}");
    let o = run(
        &["list", "-n", "prod", "-o", "json"],
        Some(list),
        dir.path(),
    )
    .await;
    assert!(vm_names(&json(&o)).iter().all(|n| n.starts_with("prod/")));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_simulated_cluster_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["list", "--demo", "-o", "json"], None, dir.path()).await;
    let report = json(&o);
    assert_eq!(report["source"], "demo");
    let names = vm_names(&report);
    assert_eq!(names.len(), 23);
    assert!(names.contains(&"default/memhold-vm".to_string()));
    let o = run(&["list", "--demo", "-n", "prod"], None, dir.path()).await;
    assert!(o.status.success());
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("db-01") && !table.contains("memhold-vm"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_namespace_is_one_warning_line() {
    let sim = demo().await;
    sim.forbid_namespace("bob", "prod");
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("bob");
    sim.write_kubeconfig_as(&kc, "bob").unwrap();
    let o = run(
        &["--kubeconfig", kc.to_str().unwrap(), "list", "-A"],
        None,
        dir.path(),
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("warning: forbidden: user \"bob\" may not list virtualmachines"),
        "{err}"
    );
    assert!(lines[0].contains("in namespace prod"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("web-01") && !out.contains("db-01"), "{out}");

    let o = run(
        &["--kubeconfig", kc.to_str().unwrap(), "list", "-n", "prod"],
        None,
        dir.path(),
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("User \"bob\" cannot list resource \"virtualmachines\""),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_server_is_a_clear_error_within_the_request_timeout() {
    let mut sim = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let url = sim.url();
    sim.stop_server().await;
    let started = Instant::now();
    let o = run(
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--request-timeout",
            "2s",
            "list",
            "-A",
        ],
        None,
        dir.path(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: cannot reach the Kubernetes API server at {url}: "
        )),
        "{err}"
    );

    let o = run(
        &["--request-timeout", "soon", "list", "--demo"],
        None,
        dir.path(),
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\"soon\" is not a duration"), "{err}");

    // No kubeconfig anywhere.
    let o = run(&["list"], None, dir.path()).await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: no kubeconfig found (looked at "),
        "{err}"
    );
}

/// The first stderr line of a run that must succeed.
fn warning_of(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_from_exec_plugin_impersonation_and_token_flags() {
    let sim = demo().await;
    for user in ["carol", "bob", "dave"] {
        sim.forbid_namespace(user, "prod");
    }
    let dir = tempfile::tempdir().unwrap();
    // An exec credential plugin (as cloud CLIs and OIDC helpers are) that hands out carol's token.
    let plugin = dir.path().join("cred-plugin");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            sim.token_for("carol")
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let kc = dir.path().join("exec.kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\nclusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: carol\nusers:\n- name: carol\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
            sim.url(),
            sim.ca_data(),
            plugin.display()
        ),
    )
    .unwrap();
    let o = run(
        &["--kubeconfig", kc.to_str().unwrap(), "list", "-A"],
        None,
        dir.path(),
    )
    .await;
    assert!(warning_of(&o).contains("user \"carol\""), "{o:?}");

    // --as impersonates on top of the kubeconfig's own user.
    let admin = dir.path().join("admin.kubeconfig");
    sim.write_kubeconfig(&admin).unwrap();
    let o = run(
        &[
            "--kubeconfig",
            admin.to_str().unwrap(),
            "--as",
            "bob",
            "list",
            "-A",
        ],
        None,
        dir.path(),
    )
    .await;
    assert!(warning_of(&o).contains("user \"bob\""), "{o:?}");

    // --server, --certificate-authority and --token alone, without any kubeconfig.
    let token = sim.token_for("dave");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, sim.ca_pem()).unwrap();
    let server_flags = ["--server", &sim.url(), "--token", &token];
    let mut args = server_flags.to_vec();
    args.extend([
        "--certificate-authority",
        ca.to_str().unwrap(),
        "list",
        "-A",
    ]);
    let o = run(&args, None, dir.path()).await;
    assert!(warning_of(&o).contains("user \"dave\""), "{o:?}");
    // Without the CA the simulator's certificate is not trusted, and the error says so.
    let mut args = server_flags.to_vec();
    args.extend(["list", "-A", "--request-timeout", "5s"]);
    let o = run(&args, None, dir.path()).await;
    assert!(!o.status.success(), "an unknown CA was trusted: {o:?}");
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("certificate"), "{err}");
    // A CA file that is not one.
    let mut args = server_flags.to_vec();
    args.extend(["--certificate-authority", "/dev/null", "list", "-A"]);
    let o = run(&args, None, dir.path()).await;
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--certificate-authority /dev/null: not a regular file"),
        "{o:?}"
    );
    sim.shutdown().await;
}

/// `-v=6`, as kubectl's: each API request on stderr with its method, URL, status and latency,
/// the report alone on stdout; `--v=8` adds the bodies; without `-v` nothing is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_each_request_with_status_and_latency_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["list", "--demo", "-v=6", "-o", "json"], None, dir.path()).await;
    assert_eq!(vm_names(&json(&o)).len(), 23, "stdout is the report alone");
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains(" GET http") && l.contains("/apis/kubevirt.io/v1/virtualmachines"))
        .unwrap_or_else(|| panic!("no VM list request logged:\n{err}"));
    assert!(line.contains("://127.0.0.1:"), "{line}");
    let (_, latency) = line
        .split_once(" 200 OK in ")
        .unwrap_or_else(|| panic!("no status: {line}"));
    let ms = latency
        .strip_suffix(" milliseconds")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(ms.parse::<u64>().is_ok(), "{line}");
    assert!(!err.contains("Body:"), "bodies only from 8:\n{err}");

    let o = run(&["list", "--demo", "--v=8", "-n", "prod"], None, dir.path()).await;
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Response Body: {"), "{err}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("Body:"));

    let o = run(&["list", "--demo"], None, dir.path()).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains(" GET ") && !err.contains("milliseconds"),
        "{err}"
    );
}
