//! An interrupted `kubectl vmmem fix … --restart --yes` never leaves a VM half changed: the
//! real binary is killed (SIGKILL and SIGINT) at different moments — while its patch is in
//! flight (held by a proxy, then dropped or delivered late), right after the patch while the
//! restart request is in flight, while it waits for the restarted pod, and at fixed delays after
//! start — against the simulator with a slow pod start. Each time the
//! VM is exactly the old one or exactly the planned one (every field of the plan, the undo
//! annotation present iff changed), and running `fix` again (or `fix --undo`) finishes the job.

use crate::common;
use crate::fix_process;

use std::time::Duration;

use crate::fix_checks::{client, comparable, get_vm, plan_now, reserve};
use crate::fix_process::gate::Gate;
use vmmem::fix::{self, fields::Fields};
use vmmem::model::objects::keys;
use vmmem::model::report::Flag;
use vmmem::model::report::ReportOptions;
use vmmem_sim::{Scenario, Sim, SimOptions};

const T: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Moment {
    /// As soon as the plan is on stdout (the patch is about to be sent, or in flight).
    PlanShown,
    /// While the patch is in flight (held by the proxy); after the kill the proxy delivers it
    /// (`true`) or drops it (`false`).
    PatchInFlight(bool),
    /// Right after the patch landed, with the restart request in flight (then dropped).
    RestartInFlight,
    /// Right after the patch was reported, before or while the restart is asked for.
    Patched,
    /// While waiting for the restarted VM's new pod.
    RestartRequested,
    /// A fixed time after the start.
    After(Duration),
}

fn scenario(n: usize) -> Scenario {
    let mut y = String::from(
        "flavour: kubevirt\nkubevirtVersion: v1.3.0\nnodes:\n  - {name: node-1, memory: 256Gi, cpus: 64}\nnamespaces: [default]\nvms:\n",
    );
    for i in 0..n {
        y.push_str(&format!(
            "  - {{name: vm-{i:02}, namespace: default, memory: 4Gi, request: 4Gi, cpus: 2}}\n"
        ));
    }
    Scenario::from_yaml(&y).unwrap()
}

/// Kill one fix at `moment` with `sig`; check the VM is old or new, never between; recover.
/// Returns whether the kill left the VM changed.
async fn interrupt(
    admin: &kube::Client,
    gate: &Gate,
    kc: &str,
    name: &str,
    moment: Moment,
    sig: libc::c_int,
    recover_by_undo: bool,
) -> bool {
    let ns = "default";
    let before = get_vm(admin, ns, name).await;
    let plan = plan_now(admin, ns, name, reserve(Some(512 << 20))).await;
    assert!(plan.has_changes() && plan.restart_needed, "{plan:?}");
    let patch = plan.patch.clone().unwrap();
    let planned = comparable(fix::merge::apply(&before, &patch));
    let old = comparable(before.clone());
    let vm_ref = format!("{ns}/{name}");
    let args = [
        "fix",
        &vm_ref,
        "--reserve",
        "512Mi",
        "--restart",
        "--yes",
        "--kubeconfig",
        kc,
    ];
    match moment {
        Moment::PatchInFlight(_) => gate.hold("PATCH "),
        Moment::RestartInFlight => gate.hold("/restart "),
        _ => {}
    }
    let mut p = fix_process::spawn(&args);
    match moment {
        Moment::PlanShown => tokio::task::block_in_place(|| p.wait_for("memory.guest", T)),
        Moment::PatchInFlight(_) | Moment::RestartInFlight => gate.wait_held(T).await,
        Moment::Patched => tokio::task::block_in_place(|| {
            p.wait_for(&format!("virtualmachine.kubevirt.io/{name} patched"), T)
        }),
        Moment::RestartRequested => tokio::task::block_in_place(|| {
            p.wait_for(&format!("restart: restart of {vm_ref} requested"), T)
        }),
        Moment::After(d) => tokio::time::sleep(d).await,
    }
    p.signal(sig);
    let status = tokio::task::block_in_place(|| p.wait(T));
    let (out, err) = (p.stdout(), p.stderr());
    match moment {
        Moment::PatchInFlight(forward) => {
            gate.release(forward);
            // A request that arrives after its client died is still one whole patch.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Moment::RestartInFlight => gate.release(false),
        _ => {}
    }
    assert!(
        !err.contains("panicked"),
        "{moment:?}/{sig}: stdout:\n{out}\nstderr:\n{err}"
    );
    let vm = get_vm(admin, ns, name).await;
    let now = comparable(vm.clone());
    let changed = if now == old {
        assert!(vm["metadata"]["annotations"][keys::UNDO_ANNOTATION].is_null());
        assert_eq!(Fields::read(&vm), plan.before.fields);
        false
    } else {
        assert_eq!(
            now, planned,
            "{moment:?}/{sig} ({status:?}) left {vm_ref} neither old nor planned\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert_eq!(Fields::read(&vm), plan.after.fields);
        assert!(vm["metadata"]["annotations"][keys::UNDO_ANNOTATION].is_string());
        true
    };
    if recover_by_undo && changed {
        let undo = [
            "fix",
            &vm_ref,
            "--undo",
            "--restart",
            "--yes",
            "--kubeconfig",
            kc,
        ];
        let (s, out, err) = tokio::task::block_in_place(|| fix_process::run(&undo, T));
        assert!(s.success(), "undo: stdout:\n{out}\nstderr:\n{err}");
        assert_eq!(comparable(get_vm(admin, ns, name).await), old);
        wait_for_pod_limit(admin, name, plan.before.expected_pod_limit_bytes).await;
        return changed;
    }
    // Running the same fix again completes it: the planned spec, and a pod with the planned limit.
    let (s, out2, err2) = tokio::task::block_in_place(|| fix_process::run(&args, T));
    assert!(
        s.success(),
        "{moment:?}/{sig} rerun: stdout:\n{out2}\nstderr:\n{err2}"
    );
    if matches!(moment, Moment::RestartInFlight) {
        // The restart never reached the server: the rerun sees the pending change and restarts.
        assert!(
            out2.contains("restarted: pod "),
            "rerun did not restart:\n{out2}\n{err2}"
        );
    }
    assert_eq!(comparable(get_vm(admin, ns, name).await), planned);
    wait_for_pod_limit(admin, name, plan.after.expected_pod_limit_bytes).await;
    changed
}

/// Wait until the VM's running pod has `want` as its memory limit (the restart finished).
async fn wait_for_pod_limit(admin: &kube::Client, name: &str, want: Option<i64>) {
    let until = std::time::Instant::now() + T;
    loop {
        let t = fix::read_target(admin, "default", name, &ReportOptions::default())
            .await
            .unwrap();
        if t.row.pod_limit_bytes == want && !t.row.has_flag(Flag::RestartPending) {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{name}: pod limit {:?}, want {want:?}; flags {:?}",
            t.row.pod_limit_bytes,
            t.row.flags
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the VM's first pod runs.
async fn wait_running(admin: &kube::Client, name: &str) {
    let until = std::time::Instant::now() + T;
    while fix::read_target(admin, "default", name, &ReportOptions::default())
        .await
        .unwrap()
        .row
        .pod_limit_bytes
        .is_none()
    {
        assert!(std::time::Instant::now() < until, "{name} never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_fix_restart_is_all_or_nothing() {
    let moments = [
        (Moment::PatchInFlight(false), libc::SIGKILL, false),
        (Moment::PatchInFlight(false), libc::SIGINT, false),
        (Moment::PatchInFlight(true), libc::SIGKILL, false),
        (Moment::RestartInFlight, libc::SIGKILL, false),
        (Moment::RestartInFlight, libc::SIGINT, true),
        (Moment::PlanShown, libc::SIGKILL, false),
        (Moment::PlanShown, libc::SIGINT, false),
        (Moment::Patched, libc::SIGKILL, false),
        (Moment::Patched, libc::SIGINT, true),
        (Moment::RestartRequested, libc::SIGKILL, false),
        (Moment::RestartRequested, libc::SIGINT, true),
        (Moment::After(Duration::ZERO), libc::SIGKILL, false),
        (
            Moment::After(Duration::from_millis(100)),
            libc::SIGKILL,
            false,
        ),
        (
            Moment::After(Duration::from_millis(300)),
            libc::SIGINT,
            false,
        ),
        (
            Moment::After(Duration::from_millis(600)),
            libc::SIGKILL,
            false,
        ),
        (
            Moment::After(Duration::from_millis(1200)),
            libc::SIGKILL,
            true,
        ),
    ];
    let sim = Sim::start(
        scenario(moments.len()),
        SimOptions {
            // A slow restart: the fix is still waiting for the new pod when it is killed.
            pod_start_delay: Duration::from_millis(1500),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let (dir, kc) = common::admin_kubeconfig(&sim);
    let admin = client(&kc).await;
    // The plugin talks to the simulator through the proxy that can hold its requests.
    let gate = Gate::start(sim.addr(), sim.server_tls_config(), sim.ca_pem()).await;
    let proxied = dir.path().join("proxied.kubeconfig");
    std::fs::write(
        &proxied,
        sim.kubeconfig_yaml("admin")
            .replace(&sim.addr().to_string(), &gate.addr.to_string()),
    )
    .unwrap();
    let kc = proxied.to_str().unwrap().to_string();
    let mut outcomes: Vec<(String, bool)> = Vec::new();
    for (i, (moment, sig, undo)) in moments.into_iter().enumerate() {
        let name = format!("vm-{i:02}");
        wait_running(&admin, &name).await;
        let changed = interrupt(&admin, &gate, &kc, &name, moment, sig, undo).await;
        outcomes.push((format!("{moment:?}/{sig}"), changed));
    }
    // A dropped patch changed nothing; a delivered one, or a kill after it, changed everything.
    for (label, changed) in &outcomes {
        let want = if label.starts_with("PatchInFlight(false)") {
            Some(false)
        } else if label.starts_with("PatchInFlight(true)")
            || label.starts_with("RestartInFlight")
            || label.starts_with("Patched")
            || label.starts_with("RestartRequested")
        {
            Some(true)
        } else {
            None
        };
        if let Some(w) = want {
            assert_eq!(*changed, w, "{label}: {outcomes:?}");
        }
    }
    eprintln!("kill moments and outcomes (changed?): {outcomes:?}");
    sim.shutdown().await;
}
