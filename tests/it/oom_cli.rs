//! `kubectl-vmmem oom` as a user runs it: files, standard input, exit codes, table and JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oom")
        .join(name)
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn json_from_a_file_follows_the_contract() {
    let f = fixture_path("seed-example2-dmesg-T.log");
    let out = run(&["oom", "-f", f.to_str().unwrap(), "-o", "json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["time"], "Thu May  9 14:52:38 2024");
    assert_eq!(e["node"], serde_json::Value::Null);
    assert_eq!(e["trigger"], "CPU 11/KVM");
    assert_eq!(e["triggerPid"], 70888);
    assert_eq!(e["victim"]["pid"], 70870);
    assert_eq!(e["victim"]["comm"], "qemu-system-x86");
    assert_eq!(e["victim"]["anonRssBytes"], 66_852_088u64 * 1024);
    assert_eq!(e["victim"]["fileRssBytes"], 21_948u64 * 1024);
    assert_eq!(e["victim"]["totalVmBytes"], 73_209_856u64 * 1024);
    assert_eq!(e["constraint"], "CONSTRAINT_MEMCG");
    assert_eq!(e["scope"], "pod");
    assert_eq!(e["podUid"], "ef91e487-dec5-4613-800b-eb23e1a1617d");
    assert_eq!(
        e["containerId"],
        "100093783c22a3ae1a42e21dd887b7c26eef52d56ba44c7273ef54507b6efe7c"
    );
    assert_eq!(e["containerRuntime"], "containerd");
    assert!(e["verdict"]
        .as_str()
        .unwrap()
        .contains("libvirtd (not virtqemud) in the task table means KubeVirt before v0.59"));
    assert_eq!(e["limitBytes"], 69_201_821_696u64);
    assert_eq!(e["usageBytes"], 69_201_821_696u64);
    assert_eq!(e["failcnt"], 67391);
    assert_eq!(e["memswLimitHit"], false);
    assert_eq!(e["kubevirt"], true);
    assert_eq!(e["vm"], serde_json::Value::Null);
    assert_eq!(e["partial"], false);
    let tasks = e["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6);
    assert_eq!(tasks[1]["name"], "virt-launcher-m");
    assert_eq!(tasks[1]["rssBytes"], 5467u64 * 4096);
    assert_eq!(tasks[1]["budgetBytes"], 25u64 << 20);
    assert_eq!(tasks[0]["budgetBytes"], serde_json::Value::Null, "pause");
    assert!(e["verdict"].as_str().unwrap().contains("CPU 11/KVM"));
    for key in [
        "oomMemcg",
        "taskMemcg",
        "time",
        "node",
        "trigger",
        "triggerPid",
        "victim",
        "constraint",
        "scope",
        "podUid",
        "containerId",
        "limitBytes",
        "usageBytes",
        "failcnt",
        "memswLimitHit",
        "kubevirt",
        "vm",
        "tasks",
        "verdict",
    ] {
        assert!(e.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn stdin_and_table() {
    let log = std::fs::read(fixture_path("variant-multi-kernel-log.log")).unwrap();
    let out = run(&["oom", "-f", "-"], Some(&log));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("#"), "{stdout}");
    assert!(lines[0].contains("TRIGGER") && lines[0].contains("RESERVE"));
    assert!(
        lines[1].starts_with("1*") && lines[1].contains("virt-launcher"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("2 ") && lines[2].contains("CPU 1/KVM"),
        "{stdout}"
    );
    assert!(lines[2].contains("harvester-node-2") && lines[2].contains("container+swap"));
    assert!(stdout.contains("* report cut short"));
    assert!(stdout.contains("\n1. The VM of virt-launcher pod 968a06fb"));
    assert!(stdout.contains("\n2. The VM of virt-launcher pod bc31d215"));
    assert!(text(&out.stderr).is_empty());
}

#[test]
fn no_reports_is_success_with_a_note() {
    let out = run(&["oom", "-f", "-"], Some(b"[    0.0] Linux version 6.1\n"));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr).trim(),
        "no OOM kill reports found in standard input"
    );
    let out = run(&["oom", "-f", "-", "-o", "json"], Some(b"nothing\n"));
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"], serde_json::json!([]));
}

#[test]
fn invalid_utf8_is_read_not_refused() {
    let mut log = b"\xff\xfe garbage\n".to_vec();
    log.extend(std::fs::read(fixture_path("seed-example3-dmesg.log")).unwrap());
    let out = run(&["oom", "-f", "-", "-o", "json"], Some(&log));
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"][0]["limitBytes"], 2_412_421_120u64);
}

#[test]
fn errors_are_one_sentence_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.log");
    let out = run(&["oom", "-f", missing.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: reading "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = run(&["oom", "--node", "n1", "-f", "kernel.log"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot be combined with -f"));

    let out = run(&["oom"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("pass -f FILE"));

    let f = fixture_path("seed-example3-dmesg.log");
    let out = run(
        &[
            "oom",
            "-f",
            f.to_str().unwrap(),
            "--kubevirt-version",
            "latest",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--kubevirt-version"));
}

#[test]
fn kubevirt_version_flag_changes_the_budgets() {
    let f = fixture_path("seed-example1-journal.log");
    let out = run(
        &[
            "oom",
            "-f",
            f.to_str().unwrap(),
            "-o",
            "json",
            "--kubevirt-version",
            "v0.54.0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["events"][0];
    assert_eq!(e["kubevirtVersion"], "v0.54.0");
    assert_eq!(e["tasks"][2]["name"], "virt-launcher");
    assert_eq!(e["tasks"][2]["budgetBytes"], 75u64 << 20);
    assert_eq!(e["partial"], true);
    assert_eq!(e["limitBytes"], 17_432_924_160u64);
}

#[test]
fn support_bundle_logs_map_to_the_bundles_vms() {
    let bundle = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundle");
    let b = bundle.to_str().unwrap();
    let o = run(&["oom", "--from", b, "-o", "json"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ev = &v["events"][0];
    assert_eq!(ev["node"], "harvester-node-2", "node from the bundle path");
    assert_eq!(ev["vm"]["namespace"], "prod");
    assert_eq!(ev["vm"]["name"], "vm-64g");
    assert_eq!(ev["limitBytes"], 69_201_821_696i64);
    assert_eq!(ev["kubevirtVersion"], "v0.54.0");
    // -f with --from: the file's reports, the bundle's VMs.
    let f = fixture_path("seed-example2-dmesg-T.log");
    let o = run(
        &["oom", "--from", b, "-f", f.to_str().unwrap(), "-o", "json"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["events"][0]["vm"]["name"], "vm-64g");
    // A folder without kernel logs says so.
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    let o = run(&["oom", "--from", seed.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("found no kernel logs"),
        "{}",
        text(&o.stderr)
    );
}
