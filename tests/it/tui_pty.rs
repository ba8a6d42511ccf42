//! End to end: the real binary's dashboard in a real terminal (tmux), driven by keys.
//!
//! Reads `--from` a copy of the seed fixtures (the live client and the fix module are not in
//! this build): waits for rows, opens a VM, sees the fix keys answer honestly, changes the pod
//! limit in the files, refreshes with ctrl-r and sees the row change, then quits and checks the
//! terminal was restored. A second test ends the dashboard with SIGTERM; the last two run it
//! against the built-in simulated cluster (`--demo`): browse, and fix a VM with a restart
//! through the `fix` module, then see its row change.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::tmux::{row, Tmux};

/// The dashboard in a tmux session, with the directory its files and terminal records live in.
/// Field order matters: the session ends before the directory goes.
struct Dashboard {
    tmux: Tmux,
    dir: tempfile::TempDir,
}

impl Dashboard {
    /// Start `top` with `args` (`{files}` is a copy of the seed fixtures) in a detached 120x30
    /// tmux session.
    fn start(name: &str, args: &str) -> Dashboard {
        Dashboard::start_with(name, args, (120, 30), &[])
    }

    /// `start` with a terminal size and environment variables for the dashboard.
    fn start_with(name: &str, args: &str, size: (u16, u16), env: &[(&str, &str)]) -> Dashboard {
        let dir = tempfile::tempdir().unwrap();
        let seed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed/harvester-v1.3.yaml");
        std::fs::create_dir(dir.path().join("files")).unwrap();
        std::fs::copy(seed, dir.path().join("files/cluster.yaml")).unwrap();
        let socket = format!("vmmem-e2e-{name}-{}", std::process::id());
        let d = dir.path().display();
        let bin = env!("CARGO_BIN_EXE_kubectl-vmmem");
        let args = args.replace("{files}", &format!("{d}/files"));
        let script = format!(
            "stty -a > {d}/stty.before; sh -c 'echo $$ > {d}/pid; exec {bin} top {args}'; echo \"EXITED rc=$?\"; stty -a > {d}/stty.after; sleep 60"
        );
        let env: Vec<(&str, &str)> = [("NO_COLOR", "")]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        let timing = (Duration::from_secs(30), Duration::from_millis(100));
        let tmux = Tmux::start(socket, &script, size, &env, timing);
        Dashboard { tmux, dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Wait for the dashboard to exit with 0, then see raw mode off again and the alternate
    /// screen gone: the terminal settings are those it started with.
    fn exits_with_the_terminal_restored(&self) {
        self.wait_for("exit", |s| s.contains("EXITED rc=0"));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            std::fs::read_to_string(self.path("stty.before")).unwrap(),
            std::fs::read_to_string(self.path("stty.after")).unwrap()
        );
    }
}

impl Deref for Dashboard {
    type Target = Tmux;
    fn deref(&self) -> &Tmux {
        &self.tmux
    }
}

#[test]
fn dashboard_rows_detail_fix_keys_refresh_and_quit() {
    let t = Dashboard::start("main", "--from {files} -A --refresh 1h");
    let s = t.wait_for("rows", |s| {
        row(s, "vm2").is_some() && row(s, "vm4").is_some()
    });
    assert!(s.contains("KubeVirt: v1.1.1 (kubevirtCR)"), "{s}");
    assert!(s.contains("Harvester: yes"), "{s}");
    assert!(row(&s, "vm2").unwrap().contains("2.2GiB"), "{s}");
    // Open the first row (vm2: both are unknown without live data, then by name).
    t.keys(&["Enter"]);
    t.wait_for("the detail view", |s| {
        s.contains("default/vm2  node harv41") && s.contains("Memory model")
    });
    // Files cannot be changed: the fix key says so.
    t.keys(&["f"]);
    t.wait_for("the fix notice", |s| s.contains("fixing needs a cluster"));
    t.keys(&["Enter", "Escape"]);
    t.wait_for("the table again", |s| {
        s.contains("NAMESPACE") && s.contains("HEADROOM")
    });
    // Someone raises vm2's pod limit (its pod comes first in the file); ctrl-r shows it.
    let f = t.path("files/cluster.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replacen("\"2412423169\"", "\"3485122561\"", 1)).unwrap();
    t.keys(&["C-r"]);
    let s = t.wait_for("vm2's new pod limit", |s| {
        row(s, "vm2").is_some_and(|l| l.contains("3.2GiB"))
    });
    assert!(
        row(&s, "vm4").unwrap().contains("2.2GiB"),
        "vm4 unchanged:\n{s}"
    );
    t.keys(&["q"]);
    t.exits_with_the_terminal_restored();
}

#[test]
fn readonly_says_so_and_sigterm_restores_the_terminal() {
    let t = Dashboard::start("term", "--from {files} -A --readonly");
    t.wait_for("rows", |s| row(s, "vm2").is_some());
    t.keys(&["L"]);
    t.wait_for("the read-only notice", |s| {
        s.contains("Read-only") && s.contains("runs with --readonly")
    });
    let pid = std::fs::read_to_string(t.path("pid")).unwrap();
    let ok = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    t.exits_with_the_terminal_restored();
}

#[test]
fn demo_cluster_rows_filter_and_detail() {
    let t = Dashboard::start("demo", "--demo --refresh 1s");
    let s = t.wait_for("the demo's rows", |s| row(s, "memhold-vm").is_some());
    assert!(s.contains("ctx: demo"), "{s}");
    assert!(s.contains("Harvester: yes"), "{s}");
    t.filter("memhold");
    t.wait_for("the filtered table", |s| {
        s.contains("VMs: 1 ") && row(s, "memhold-vm").is_some()
    });
    t.keys(&["Enter"]);
    t.wait_for("memhold-vm's details", |s| {
        s.contains("default/memhold-vm  node") && s.contains("Memory model")
    });
    // Refreshes keep coming while the detail view is open.
    t.wait_for("a later refresh", |s| {
        s.contains("data: 0s old") || s.contains("data: 1s old")
    });
    t.keys(&["Escape", "q"]);
    t.wait_for("exit", |s| s.contains("EXITED rc=0"));
}

#[test]
fn demo_fix_with_restart_changes_the_row() {
    let t = Dashboard::start("fix", "--demo --refresh 1s");
    let s = t.wait_for("the demo's rows", |s| row(s, "memhold-vm").is_some());
    let before = row(&s, "memhold-vm").unwrap().to_string();
    assert!(
        before.contains("2GiB") && before.contains("/379.0MiB"),
        "{before}"
    );
    t.filter_to_one("memhold");
    // Open the VM, then fix it from its detail view.
    t.open_details("default/memhold-vm");
    t.keys(&["f"]);
    let plan = t.wait_for("the plan", |s| s.contains("Apply this change?"));
    assert!(
        plan.contains("harvesterhci.io/reservedMemory  -        → 320Mi"),
        "{plan}"
    );
    assert!(
        plan.contains("memory.guest                    2Gi      → 1728Mi"),
        "{plan}"
    );
    t.keys(&["r"]);
    t.wait_for("restart now", |s| {
        s.contains("restart  now:") && s.contains("Apply this change?")
    });
    t.keys(&["y"]);
    let done = t.wait_for("the server's answer", |s| {
        s.contains("done: ") || s.contains("FAILED")
    });
    assert!(done.contains("restarted: pod"), "{done}");
    assert!(
        done.contains("has the planned memory limit 2.4GiB"),
        "{done}"
    );
    t.keys(&["Enter", "Escape"]);
    // The row shows the new guest, budget and pod limit, and is no longer under-reserved.
    let s = t.wait_for("the fixed row", |s| {
        row(s, "memhold-vm").is_some_and(|l| l.contains("1.7GiB") && l.contains("/699.0MiB"))
    });
    let after = row(&s, "memhold-vm").unwrap();
    assert!(after.contains("2.4GiB"), "{after}");
    assert!(
        !after.contains("unknown*"),
        "no longer under-reserved: {after}"
    );
    t.keys(&["q"]);
    t.wait_for("exit", |s| s.contains("EXITED rc=0"));
}

/// The text of a row's cell in the column headed `header` (cells are left-aligned under it).
fn cell(screen: &str, name: &str, header: &str) -> Option<String> {
    let head = screen.lines().find(|l| l.contains("NAMESPACE"))?;
    let at = head.find(header)?;
    let line = row(screen, name)?;
    let rest: String = line.chars().skip(head[..at].chars().count()).collect();
    rest.split_whitespace().next().map(str::to_string)
}

#[test]
fn demo_oom_kill_is_counted_and_explained() {
    // The demo's clock runs 10x: memhold-vm's overhead passes its budget after ~15 s.
    let t = Dashboard::start_with(
        "oom",
        "--demo --refresh 1s",
        (160, 50),
        &[("VMMEM_DEMO_SPEED", "10")],
    );
    let s = t.wait_for("the demo's rows", |s| row(s, "memhold-vm").is_some());
    assert_eq!(cell(&s, "memhold-vm", "OOMS").as_deref(), Some("0"), "{s}");
    // The kill fails the pod; the dashboard reads harvester-node-1's kernel log and counts it.
    let s = t.wait_up_to(
        Duration::from_secs(120),
        "an OOM kill in memhold-vm's row",
        |s| {
            cell(s, "memhold-vm", "OOMS")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 1)
        },
    );
    assert_eq!(cell(&s, "web-01", "OOMS").as_deref(), Some("0"), "{s}");
    t.filter_to_one("memhold");
    t.keys(&["Enter"]);
    let d = t.wait_up_to(
        Duration::from_secs(60),
        "the kill's verdict in the detail view",
        |s| {
            s.contains("default/memhold-vm  node")
                && s.contains("VM default/memhold-vm was OOM-killed at")
        },
    );
    assert!(
        d.contains("in the nodes' kernel logs, oldest first:"),
        "{d}"
    );
    assert!(d.contains("node harvester-node-1  pod "), "{d}");
    assert!(d.contains("trigger CPU "), "{d}");
    assert!(d.contains("killed qemu-system-x86 (pid "), "{d}");
    t.keys(&["Escape", "q"]);
    t.wait_for("exit", |s| s.contains("EXITED rc=0"));
}

/// `-v` on the dashboard logs to a file, named in the `?` help, never onto the screen.
#[test]
fn verbose_dashboard_logs_to_the_file_its_help_names() {
    let t = Dashboard::start("verbose", "--demo --refresh 1s -v 6");
    let s = t.wait_for("the demo's rows", |s| row(s, "memhold-vm").is_some());
    t.wait_for("a later refresh", |s| s.contains("data: 0s old"));
    t.keys(&["?"]);
    let help = t.wait_for("the help naming the log", |s| s.contains("Log (-v): "));
    let path = help
        .lines()
        .find_map(|l| l.split("Log (-v): ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        log.lines().any(|l| l.contains(" GET http")
            && l.contains(" 200 OK in ")
            && l.ends_with(" milliseconds")),
        "{log}"
    );
    for screen in [&s, &help] {
        assert!(
            !screen.contains(" GET http") && !screen.contains("milliseconds"),
            "{screen}"
        );
    }
    t.keys(&["Escape", "q"]);
    let last = t.wait_for("exit", |s| s.contains("EXITED rc=0"));
    assert!(!last.contains("milliseconds"), "{last}");
    std::fs::remove_file(&path).unwrap();
}
