//! Checks of `fix` against any API server given by kubeconfig: the simulator here, the real
//! kube-apiserver suite too. Each check leaves the VM as it found it.

use std::path::Path;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};
use vmmem::fix::{self, fields::Fields, Action, ApplyError, Choice, Plan};
use vmmem::model::report::ReportOptions;

pub async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn vms(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &fix::apply::vm_resource())
}

pub async fn get_vm(client: &kube::Client, ns: &str, name: &str) -> Value {
    serde_json::to_value(vms(client, ns).get(name).await.unwrap()).unwrap()
}

/// The VM without what the server changes on every write, and without the status the
/// controllers own (KubeVirt flags `RestartRequired` there).
pub fn comparable(mut vm: Value) -> Value {
    if let Some(o) = vm.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = vm["metadata"].as_object_mut() {
        for k in ["resourceVersion", "generation", "managedFields"] {
            m.remove(k);
        }
    }
    vm
}

pub async fn plan_now(client: &kube::Client, ns: &str, name: &str, choice: Choice) -> Plan {
    let target = fix::read_target(client, ns, name, &ReportOptions::default())
        .await
        .unwrap();
    fix::plan(&target, &choice).unwrap()
}

pub fn reserve(bytes: Option<i64>) -> Choice {
    Choice {
        action: Action::Reserve(bytes),
        strategy: None,
    }
}

pub const UNDO: Choice = Choice {
    action: Action::Undo,
    strategy: None,
};

/// Fix, check the stored fields are the plan's, undo, check the VM is what it was.
pub async fn fix_and_undo(client: &kube::Client, ns: &str, name: &str, choice: Choice) -> Plan {
    let original = get_vm(client, ns, name).await;
    let plan = plan_now(client, ns, name, choice).await;
    assert!(
        plan.has_changes(),
        "{choice:?} on {ns}/{name} plans nothing"
    );
    let applied = fix::apply(client, &plan, fix::Options::default())
        .await
        .unwrap();
    assert!(applied.differences.is_empty(), "{:?}", applied.differences);
    let stored = get_vm(client, ns, name).await;
    assert_eq!(Fields::read(&stored), plan.after.fields);
    assert_ne!(applied.resource_version, plan.resource_version);
    undo(client, ns, name).await;
    assert_eq!(
        comparable(get_vm(client, ns, name).await),
        comparable(original),
        "undo must restore {ns}/{name} exactly"
    );
    plan
}

pub async fn undo(client: &kube::Client, ns: &str, name: &str) {
    let u = plan_now(client, ns, name, UNDO).await;
    assert!(u.has_changes(), "nothing recorded to undo on {ns}/{name}");
    fix::apply(client, &u, fix::Options::default())
        .await
        .unwrap();
}

/// A write between reading and applying is a 409, never a lost update. A write where no plan
/// reads (a label; KubeVirt's status updates) leaves the same change, which the CLI's path
/// (`apply_or_replan`) applies with the new resourceVersion; a write of what the plan reads (someone else's fix)
/// comes back as a conflict with the plan for the VM as it is now, and nothing applied.
pub async fn conflict(client: &kube::Client, ns: &str, name: &str) {
    let choice = reserve(Some(512 << 20));
    let stale = plan_now(client, ns, name, choice).await;
    vms(client, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched-by": "someone-else"}}})),
        )
        .await
        .unwrap();
    let err = fix::apply(client, &stale, fix::Options::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::Conflict(_)), "{err:?}");
    let stored = get_vm(client, ns, name).await;
    assert_eq!(stored["metadata"]["labels"]["touched-by"], "someone-else");
    assert_eq!(
        Fields::read(&stored),
        stale.before.fields,
        "nothing applied"
    );
    let replanned = |stale: Plan| async move {
        fix::apply_or_replan(
            client,
            &stale,
            &choice,
            fix::Options::default(),
            &fix::Evidence::default(),
        )
        .await
        .unwrap()
    };
    // The label is nothing a plan reads: the plan made now is the same change, applied.
    let outcome = replanned(stale.clone()).await;
    let fix::Outcome::Applied(applied) = outcome else {
        panic!("expected the same change applied, got {outcome:?}")
    };
    let stored = get_vm(client, ns, name).await;
    assert_eq!(Fields::read(&stored), stale.after.fields);
    assert_eq!(
        applied.resource_version,
        stored["metadata"]["resourceVersion"].as_str().unwrap()
    );
    assert_eq!(stored["metadata"]["labels"]["touched-by"], "someone-else");
    undo(client, ns, name).await;
    // Someone else fixes the VM meanwhile: a conflict, with the plan for the VM as it is now.
    let stale = plan_now(client, ns, name, choice).await;
    let theirs = plan_now(client, ns, name, reserve(Some(768 << 20))).await;
    fix::apply(client, &theirs, fix::Options::default())
        .await
        .unwrap();
    let stored = get_vm(client, ns, name).await;
    let outcome = replanned(stale.clone()).await;
    let fix::Outcome::Conflict { message, fresh } = outcome else {
        panic!("expected a conflict, got {outcome:?}")
    };
    assert!(!message.is_empty());
    let fresh = fresh.unwrap();
    assert_eq!(
        fresh.resource_version,
        stored["metadata"]["resourceVersion"].as_str().unwrap()
    );
    assert_eq!(fresh.before.fields, theirs.after.fields);
    assert_eq!(
        Fields::read(&get_vm(client, ns, name).await),
        theirs.after.fields,
        "nothing applied over their change"
    );
    fix::apply(client, &fresh, fix::Options::default())
        .await
        .unwrap();
    assert_eq!(
        Fields::read(&get_vm(client, ns, name).await),
        fresh.after.fields
    );
    undo(client, ns, name).await;
    vms(client, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched-by": null}}})),
        )
        .await
        .unwrap();
}

/// A user without write access gets Forbidden with the server's message; nothing changes.
pub async fn forbidden(admin: &kube::Client, limited: &kube::Client, ns: &str, name: &str) {
    let before = get_vm(admin, ns, name).await;
    let plan = plan_now(admin, ns, name, reserve(Some(512 << 20))).await;
    let err = fix::apply(limited, &plan, fix::Options::default())
        .await
        .unwrap_err();
    let ApplyError::Forbidden(msg) = &err else {
        panic!("expected Forbidden, got {err:?}")
    };
    assert!(msg.contains("virtualmachines"), "{msg}");
    assert_eq!(get_vm(admin, ns, name).await, before);
}

/// `dryRun=All`: the server answers with what it would store, and stores nothing.
pub async fn server_dry_run(client: &kube::Client, ns: &str, name: &str) {
    let before = get_vm(client, ns, name).await;
    let plan = plan_now(client, ns, name, reserve(Some(512 << 20))).await;
    let applied = fix::apply(
        client,
        &plan,
        fix::Options {
            server_dry_run: true,
        },
    )
    .await
    .unwrap();
    assert!(applied.dry_run);
    assert_eq!(applied.fields, plan.after.fields);
    assert_eq!(
        get_vm(client, ns, name).await,
        before,
        "dry run stored something"
    );
}
