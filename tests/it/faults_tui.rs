//! Faults in the real terminal (tmux): the real binary's dashboard against the simulator in
//! this process. The API server goes away (the banner says so, rows are marked stale) and comes
//! back (the banner goes, rows are live again); a user who may not patch presses the fix key and
//! sees the server's refusal in the dialog. Fails loudly without tmux.

use crate::common;

use std::path::Path;
use std::time::Duration;

use crate::common::tmux::{row, Tmux};

/// `top` with `args` against the kubeconfig `kc`, in a detached 200x40 tmux session.
fn start(name: &str, kc: &Path, args: &str) -> Tmux {
    let socket = format!("vmmem-faults-{name}-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_kubectl-vmmem");
    let script = format!(
        "{bin} top --kubeconfig {} {args}; echo \"EXITED rc=$?\"; sleep 60",
        kc.display()
    );
    let timing = (Duration::from_secs(60), Duration::from_millis(200));
    let state = crate::common::state_home().to_string_lossy();
    let env = [("NO_COLOR", "1"), ("XDG_STATE_HOME", &*state)];
    Tmux::start(socket, &script, (200, 40), &env, timing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_goes_away_and_comes_back_in_the_terminal() {
    let mut sim = common::demo().await;
    let (_dir, kc) = common::admin_kubeconfig(&sim);
    let t = start(
        "gone",
        &kc,
        "-A --refresh 1s --request-timeout 3s --live agent",
    );
    let live = |s: &str| row(s, "web-01").is_some_and(|l| l.contains("agent"));
    t.wait_for("web-01 with live numbers", live);

    sim.stop_server().await;
    let s = t.wait_for("the unreachable banner", |s| {
        s.contains("UNREACHABLE (showing the last data, marked stale): watching https://127.0.0.1:")
    });
    assert!(s.contains("(showing the last data, marked stale)"), "{s}");
    assert!(
        row(&s, "web-01").is_some_and(|l| l.contains("stale")),
        "the rows stay, marked stale:\n{s}"
    );

    sim.restart_server().await.unwrap();
    let s = t.wait_for("recovery", |s| !s.contains("UNREACHABLE") && live(s));
    assert!(!row(&s, "web-01").unwrap().contains("stale"), "{s}");
    t.keys(&["q"]);
    t.wait_for("exit", |s| s.contains("EXITED rc=0"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fix_and_refused_live_data_are_shown_as_state() {
    let sim = common::demo().await;
    let dir = tempfile::tempdir().unwrap();
    sim.forbid_verb("reader", "create", "pods");
    sim.forbid_verb("reader", "create", "pods/exec");
    sim.forbid_verb("reader", "get", "pods/exec");
    sim.forbid_verb("reader", "get", "nodes/proxy");
    sim.forbid_verb("reader", "patch", "virtualmachines");
    let kc = dir.path().join("reader.kubeconfig");
    sim.write_kubeconfig_as(&kc, "reader").unwrap();
    let t = start("rbac", &kc, "-A --refresh 2s");
    let s = t.wait_for("the rows and the refusal of live data", |s| {
        row(s, "memhold-vm").is_some() && s.contains("warning: live data for node")
    });
    assert!(
        s.contains("not allowed to create agent pods in namespace vmmem-system"),
        "{s}"
    );
    t.filter_to_one("memhold");
    t.open_details("default/memhold-vm");
    t.keys(&["f"]);
    t.wait_for("the plan", |s| s.contains("Apply this change?"));
    t.keys(&["y"]);
    let s = t.wait_for("the server's answer", |s| s.contains("FORBIDDEN: "));
    assert!(
        s.contains(
            "FORBIDDEN: virtualmachines.kubevirt.io \"memhold-vm\" is forbidden: User \"reader\""
        ) && s.contains("patch resource \"virtualmachines\" in API group \"kubevirt.io\""),
        "the refusal is shown: {s}"
    );
    t.keys(&["Enter", "Escape", "q"]);
    t.wait_for("exit", |s| s.contains("EXITED rc=0"));
    sim.shutdown().await;
}
