//! The real binary: `kubectl-vmmem list --from …` output formats, filters, exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
}

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).env_remove("KUBECONFIG").output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn table_is_plain_and_aligned_when_not_a_tty() {
    let o = run(&["list", "--from", &fixture("seed")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "no colour into a pipe");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAMESPACE   NAME     NODE"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 5);
    // Columns line up: RISK starts at the same offset on every line.
    let at = lines[0].find("RISK").unwrap();
    for l in &lines[1..] {
        let risk = &l[at..at + 7];
        assert!(risk.starts_with("unknown"), "{l}");
    }
}

#[test]
fn json_follows_the_contract_field_for_field() {
    let o = run(&[
        "list",
        "--from",
        &fixture("seed/harvester-v1.3.yaml"),
        "-o",
        "json",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "VmMemoryReport");
    assert_eq!(v["source"], "files");
    for k in ["version", "versionSource", "overheadRatio", "harvester"] {
        assert!(v["kubevirt"].get(k).is_some(), "kubevirt.{k}");
    }
    let vm = &v["vms"][0];
    for k in [
        "namespace",
        "name",
        "node",
        "phase",
        "kubevirtVersion",
        "guestBytes",
        "vmLimitBytes",
        "vmRequestBytes",
        "reservedBytes",
        "reservedSource",
        "expectedOverheadBytes",
        "expectedPodLimitBytes",
        "podLimitBytes",
        "podRequestBytes",
        "cgroup",
        "guestResidentBytes",
        "guestResidentExact",
        "overheadUsedBytes",
        "overheadBudgetBytes",
        "projectedPeakBytes",
        "headroomBytes",
        "risk",
        "flags",
        "breakdown",
        "recommendation",
    ] {
        assert!(vm.get(k).is_some(), "vms[].{k} missing");
    }
    for k in ["reserveBytes", "strategy", "reason"] {
        assert!(vm["recommendation"].get(k).is_some(), "recommendation.{k}");
    }
    assert_eq!(vm["guestBytes"], 2_042_626_048i64);
    assert_eq!(vm["cgroup"], serde_json::Value::Null);
    assert_eq!(vm["risk"], "unknown");
}

#[test]
fn yaml_and_wide_and_namespace_filter() {
    let o = run(&[
        "list",
        "--from",
        &fixture("seed"),
        "-o",
        "yaml",
        "-n",
        "prod",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = vmmem::parse::yaml::from_slice(&o.stdout).unwrap();
    let vms = v["vms"].as_array().unwrap();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0]["name"].as_str(), Some("vm-64g"));
    let o = run(&["list", "--from", &fixture("seed"), "-o", "wide"]);
    let out = stdout(&o);
    for h in ["KUBEVIRT O", "GUEST RES", "QEMU", "FLAGS", "SOURCE"] {
        assert!(out.lines().next().unwrap().contains(h), "{h}");
    }
    assert!(out.contains("under-reserved"));
}

#[test]
fn bad_input_is_one_clear_line_and_exit_1() {
    for (args, want) in [
        (
            vec!["list", "--from", "/nonexistent/x.yaml"],
            "error: cannot read /nonexistent/x.yaml",
        ),
        (
            vec!["list", "--from", &fixture("malformed/broken-syntax.yaml")],
            "cannot read document 1 as YAML/JSON",
        ),
        (
            vec!["list", "--from", &fixture("malformed/no-vms.yaml")],
            "found no VirtualMachine",
        ),
        (
            vec![
                "list",
                "--from",
                &fixture("seed"),
                "--kubevirt-version",
                "banana",
            ],
            "--kubevirt-version \"banana\"",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
    }
    let o = run(&["list", "-o", "xml", "--from", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Usage: kubectl vmmem"));
}

#[test]
fn help_and_version_speak_as_a_kubectl_plugin() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("Usage: kubectl vmmem"), "{out}");
    for f in [
        "--kubeconfig",
        "--context",
        "--namespace",
        "--all-namespaces",
        "--as",
        "--request-timeout",
        "--demo",
        "--from",
    ] {
        assert!(out.contains(f), "{f}");
    }
    let o = run(&["--version"]);
    let out = stdout(&o);
    assert!(out.starts_with("kubectl vmmem 0.1.0 ("), "{out}");
}
