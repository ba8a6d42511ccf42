//! `kubectl vmmem fix` racing another writer, through the real binary: the plan is shown and
//! the question asked; while the user reads it, someone else edits the same VM (a real merge
//! patch through the API). The answer "y" then meets a 409: nothing is applied, the other
//! writer's edit is intact, the new plan is shown and the error is one line. Running the fix
//! again applies on top of the other edit, and its undo returns to the other edit, not to the
//! state before the race. Against the simulator and a real kube-apiserver.

use crate::common;
use crate::fix_process;

use std::path::Path;
use std::time::Duration;

use crate::common::apiserver::RealApiServer;
use crate::fix_checks::{client, get_vm};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use vmmem::fix::{self, fields::Fields};
use vmmem::model::objects::keys;
use vmmem_sim::{Scenario, Sim, SimOptions};

const T: Duration = Duration::from_secs(60);

const SCENARIO: &str = r#"
flavour: kubevirt
kubevirtVersion: v1.3.0
nodes:
  - {name: node-1, memory: 64Gi, cpus: 16}
namespaces: [default]
vms:
  - {name: raced, namespace: default, memory: 4Gi, cpus: 2}
"#;

fn guest(vm: &Value) -> Value {
    vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"].clone()
}

/// The whole race on `ns/name` (a 4Gi VM without a guest), reachable through `kubeconfig`.
async fn race(kubeconfig: &Path, admin: &kube::Client, ns: &str, name: &str) {
    let kc = kubeconfig.to_str().unwrap().to_string();
    let vm_ref = format!("{ns}/{name}");
    let fix_args = ["fix", &vm_ref, "--reserve", "512Mi", "--kubeconfig", &kc];
    let before = get_vm(admin, ns, name).await;
    let mut p = fix_process::spawn(&fix_args);
    let question = format!("Apply this change to {vm_ref}? [y/N]");
    tokio::task::block_in_place(|| p.wait_for(&question, T));
    assert!(
        p.stdout().contains("memory.guest"),
        "the plan is shown first:\n{}",
        p.stdout()
    );
    // Someone else edits the VM while the question is open: a label, and the guest itself.
    let other = json!({"metadata": {"labels": {"edited-by": "someone-else"}},
        "spec": {"template": {"spec": {"domain": {"memory": {"guest": "3840Mi"}}}}}});
    Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &fix::apply::vm_resource())
        .patch(name, &PatchParams::default(), &Patch::Merge(&other))
        .await
        .unwrap();
    p.type_line("y");
    let status = tokio::task::block_in_place(|| p.wait(T));
    let (out, err) = (p.stdout(), p.stderr());
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    // The question has no newline of its own; after it comes exactly one line, the error.
    let after_question = err.split_once(&question).map(|x| x.1).unwrap_or(&err);
    let lines: Vec<&str> = after_question
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(
        lines[0]
            .trim_start()
            .starts_with(&format!("error: {vm_ref} changed since it was read ("))
            && lines[0].ends_with("nothing was applied: review the new plan and run again"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        out.contains("The VM as it is now:"),
        "new plan shown:\n{out}"
    );
    // The other writer's edit is intact and nothing of the fix landed.
    let now = get_vm(admin, ns, name).await;
    assert_eq!(now["metadata"]["labels"]["edited-by"], "someone-else");
    assert_eq!(guest(&now), json!("3840Mi"));
    assert!(now["metadata"]["annotations"][keys::UNDO_ANNOTATION].is_null());
    assert_eq!(
        Fields::read(&now),
        Fields::read(&fix::merge::apply(&before, &other))
    );

    // Run again: it plans from the VM as it is now and applies on top of the other edit.
    let mut yes: Vec<&str> = fix_args.to_vec();
    yes.push("--yes");
    let (status, out, err) = tokio::task::block_in_place(|| fix_process::run(&yes, T));
    assert!(status.success(), "stdout:\n{out}\nstderr:\n{err}");
    let fixed = get_vm(admin, ns, name).await;
    assert_eq!(fixed["metadata"]["labels"]["edited-by"], "someone-else");
    assert_eq!(guest(&fixed), json!("3584Mi"));
    assert!(fixed["metadata"]["annotations"][keys::UNDO_ANNOTATION].is_string());
    // Undo returns to the other writer's guest, keeping its label.
    let undo = ["fix", &vm_ref, "--undo", "--yes", "--kubeconfig", &kc];
    let (status, out, err) = tokio::task::block_in_place(|| fix_process::run(&undo, T));
    assert!(status.success(), "stdout:\n{out}\nstderr:\n{err}");
    let undone = get_vm(admin, ns, name).await;
    assert_eq!(undone["metadata"]["labels"]["edited-by"], "someone-else");
    assert_eq!(guest(&undone), json!("3840Mi"));
    assert_eq!(Fields::read(&undone), Fields::read(&now));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_racing_another_writer_through_the_simulator() {
    let sim = Sim::start(
        Scenario::from_yaml(SCENARIO).unwrap(),
        SimOptions::default(),
    )
    .await
    .unwrap();
    let (_dir, kc) = common::admin_kubeconfig(&sim);
    let admin = client(&kc).await;
    race(&kc, &admin, "default", "raced").await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_racing_another_writer_through_a_real_apiserver() {
    let server = match RealApiServer::start() {
        Ok(s) => s,
        Err(e) => panic!("REAL KUBE-APISERVER UNAVAILABLE, failing on purpose: {e:#}"),
    };
    let admin = client(server.admin_kubeconfig()).await;
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "vmmem-race"}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let vm: DynamicObject = serde_json::from_value(json!({"apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine", "metadata": {"name": "raced", "namespace": "vmmem-race"},
        "spec": {"runStrategy": "Always", "template": {"spec": {"domain": {"cpu": {"cores": 2},
            "resources": {"limits": {"memory": "4Gi", "cpu": "2"}, "requests": {"memory": "4Gi"}}}}}}}))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(admin.clone(), "vmmem-race", &fix::apply::vm_resource())
        .create(&PostParams::default(), &vm)
        .await
        .unwrap();
    race(server.admin_kubeconfig(), &admin, "vmmem-race", "raced").await;
    drop(server);
}
