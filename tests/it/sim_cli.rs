//! `kubectl vmmem sim` as a process: a big generated cluster starts, serves the kube-rs client
//! through the kubeconfig it writes, and stops cleanly on SIGINT.

use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_subcommand_serves_5000_vms_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .env("XDG_STATE_HOME", crate::common::state_home())
        .args([
            "sim",
            "--vms",
            "5000",
            "--nodes",
            "200",
            "--write-kubeconfig",
        ])
        .arg(&kc)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    while !kc.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no kubeconfig after 60s"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sim exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("kubectl vmmem sim --vms 5000 --nodes 200: kubeconfig after {:?} (debug build, shared machine)", started.elapsed());
    let text = std::fs::read_to_string(&kc).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&text).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let vm = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    );
    let vms = Api::<DynamicObject>::all_with(client, &vm)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(vms.items.len(), 5000);
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("sim stops on SIGINT")
        .unwrap();
    assert!(out.status.success(), "{}", out.status);
    // The API's path is its secret: in the kubeconfig, never on stderr.
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap();
    let secret = server.rsplit('/').next().unwrap();
    assert!(secret.len() >= 32, "{server}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("serving at https://127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains(secret), "{stderr}");
    // Nor its bearer token.
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap();
    assert!(!stderr.contains(token), "{stderr}");
}
