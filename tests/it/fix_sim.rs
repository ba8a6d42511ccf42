//! `fix` through the real kube-rs client against the simulator, Harvester and plain KubeVirt:
//! apply, undo byte for byte, 409 on a concurrent edit, 403, server dry run, restart.

use crate::common;

use std::time::Duration;

use crate::fix_checks::*;
use vmmem::fix::{self, fields::Fields, Action, Choice};
use vmmem::model::recommend::Strategy;
use vmmem_sim::{Scenario, SimHandle};

pub const PLAIN: &str = r#"
flavour: kubevirt
kubevirtVersion: v1.3.0
nodes:
  - {name: node-1, memory: 64Gi, cpus: 16}
namespaces: [default, prod]
vms:
  - {name: plain-01, namespace: default, memory: 4Gi, cpus: 2}
  - {name: guest-01, namespace: default, memory: 8Gi, guest: 7Gi, cpus: 2}
  - {name: req-01, namespace: default, memory: 4Gi, request: 4Gi, cpus: 2}
  - {name: nolimit-01, namespace: prod, memory: 2Gi, cpus: 1, noLimit: true}
  - {name: stopped-01, namespace: prod, memory: 2Gi, cpus: 1, runStrategy: Halted}
"#;

async fn start(scenario: Scenario) -> (SimHandle, tempfile::TempDir, kube::Client) {
    let sim = common::start(scenario).await;
    let (dir, kc) = common::admin_kubeconfig(&sim);
    let c = client(&kc).await;
    (sim, dir, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvester_fix_undo_conflict_forbidden_dry_run() {
    let (sim, dir, admin) = start(Scenario::demo().unwrap()).await;
    let p = fix_and_undo(&admin, "default", "memhold-vm", reserve(None)).await;
    assert_eq!(
        p.after.fields.reserved_memory,
        Some(serde_json::json!("320Mi"))
    );
    assert_eq!(p.after.fields.guest, Some(serde_json::json!("1728Mi")));
    // An explicit size on a VM that already has an annotation; remove-limit; a stopped VM.
    fix_and_undo(&admin, "default", "web-01", reserve(Some(768 << 20))).await;
    fix_and_undo(
        &admin,
        "prod",
        "cache-01",
        Choice {
            action: Action::RemoveLimit,
            strategy: None,
        },
    )
    .await;
    fix_and_undo(&admin, "default", "dev-01", reserve(None)).await;
    conflict(&admin, "default", "ci-runner").await;
    server_dry_run(&admin, "default", "win-01").await;
    let kc = dir.path().join("viewer.kubeconfig");
    sim.write_kubeconfig_as(&kc, "viewer").unwrap();
    sim.forbid_namespace("viewer", "prod");
    forbidden(&admin, &client(&kc).await, "prod", "db-02").await;
    // Reading as that user fails with the server's reason, as one sentence.
    let err = fix::read_target(&client(&kc).await, "prod", "db-02", &Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("reading VirtualMachine prod/db-02: forbidden: "),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_kubevirt_fix_undo_and_refusals() {
    let (sim, _dir, admin) = start(Scenario::from_yaml(PLAIN).unwrap()).await;
    let p = fix_and_undo(&admin, "default", "plain-01", reserve(None)).await;
    assert_eq!(p.strategy, Some(vmmem::model::recommend::Strategy::Guest));
    assert_eq!(p.after.fields.guest, Some(serde_json::json!("3712Mi")));
    assert_eq!(p.after.fields.reserved_memory, None);
    // Already 1Gi between guest and limit: asking for 1Gi plans nothing, 1536Mi shrinks it.
    let same = plan_now(&admin, "default", "guest-01", reserve(Some(1 << 30))).await;
    assert!(!same.has_changes());
    fix_and_undo(&admin, "default", "guest-01", reserve(Some(1536 << 20))).await;
    conflict(&admin, "default", "guest-01").await;
    server_dry_run(&admin, "default", "plain-01").await;
    // No limit: nothing to reserve against; an explicit size is refused.
    let t = fix::read_target(&admin, "prod", "nolimit-01", &Default::default())
        .await
        .unwrap();
    assert!(!fix::plan(&t, &reserve(None)).unwrap().has_changes());
    assert!(fix::plan(&t, &reserve(Some(1 << 30))).is_err());
    // A missing VM is NotFound with the server's message.
    let err = fix::read_target(&admin, "default", "nope", &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_brings_up_a_pod_with_the_planned_limit() {
    for scenario in [
        Scenario::demo().unwrap(),
        Scenario::from_yaml(PLAIN).unwrap(),
    ] {
        let harvester = scenario.flavour == vmmem_sim::scenario::Flavour::Harvester;
        let (sim, _dir, admin) = start(scenario).await;
        let (ns, name) = if harvester {
            ("default", "memhold-vm")
        } else {
            // An explicit request: the VMI's request does not depend on KubeVirt's defaulting.
            ("default", "req-01")
        };
        let choice = Choice {
            action: Action::Reserve(Some(512 << 20)),
            strategy: if harvester {
                None
            } else {
                Some(Strategy::Guest)
            },
        };
        let plan = plan_now(&admin, ns, name, choice).await;
        fix::apply(&admin, &plan, fix::Options::default())
            .await
            .unwrap();
        let mut lines = Vec::new();
        let r = fix::restart_and_wait(&admin, &plan, Duration::from_secs(30), &mut |l: &str| {
            lines.push(l.to_string())
        })
        .await
        .unwrap();
        assert!(r.matches_plan, "{r:?} vs {:?}", plan.after);
        assert_eq!(r.pod_limit_bytes, plan.after.expected_pod_limit_bytes);
        assert!(lines[0].starts_with("restart of"), "{lines:?}");
        assert!(lines.last().unwrap().starts_with("new VMI running in pod"));
        // The new VMI runs the planned guest.
        let t = fix::read_target(&admin, ns, name, &Default::default())
            .await
            .unwrap();
        assert_eq!(t.row.guest_bytes, plan.after.guest_bytes);
        assert_eq!(Fields::read(&t.raw), plan.after.fields);
        sim.shutdown().await;
    }
}
