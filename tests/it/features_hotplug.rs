//! Memory hotplug and instance types read by the real binary from manifests (`list --from`):
//! the numbers in tests/fixtures/features/hotplug-and-instancetypes.yaml are worked out there
//! from KubeVirt's rules.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const GI: i64 = 1 << 30;
const FIXTURE: &str = "tests/fixtures/features/hotplug-and-instancetypes.yaml";

fn list(format: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["list", "--from", &path.display().to_string(), "-o", format])
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn rows() -> Vec<Value> {
    let r: Value = serde_json::from_str(&list("json")).expect("JSON");
    r["vms"].as_array().expect("vms").clone()
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

fn flags(v: &Value) -> Vec<String> {
    v["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn notes(v: &Value) -> Vec<String> {
    v["notes"]
        .as_array()
        .map(|n| n.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn the_hotplug_migrations_source_pod_is_judged_with_its_own_numbers() {
    let rows = rows();
    let grow = row(&rows, "grow");
    let f = flags(grow);
    assert!(f.contains(&"hotplug-in-progress".into()), "{f:?}");
    assert!(f.contains(&"migrating".into()), "{f:?}");
    assert!(!f.contains(&"limit-below-guest".into()), "{f:?}");
    assert!(!f.contains(&"restart-pending".into()), "{f:?}");
    // Configured 4Gi, the running qemu 2Gi, the source pod's own limit.
    assert_eq!(grow["guestBytes"], 4 * GI);
    assert_eq!(grow["guestRunningBytes"], 2 * GI);
    assert_eq!(grow["podLimitBytes"], 2_952_790_017_i64);
    assert_ne!(grow["risk"], "critical");
    let n = notes(grow);
    assert!(
        n.iter()
            .any(|s| s.starts_with("memory hotplug in progress")),
        "{n:?}"
    );
    assert!(!n.iter().any(|s| s.contains("check the version")), "{n:?}");
    // After the migration and the plug: qemu has the new guest in a pod sized for it.
    let grown = row(&rows, "grown");
    assert_eq!(grown["guestRunningBytes"], 4 * GI);
    assert_eq!(grown["podLimitBytes"], 5_104_467_969_i64);
    assert_eq!(grown["expectedPodLimitBytes"], 5_104_467_969_i64);
    assert!(flags(grown).is_empty(), "{grown}");
    assert!(grown.get("notes").is_none(), "{grown}");
}

/// KubeVirt raised the request to the new guest and left the limit: the running pod's limit is
/// truly below its guest (said), and nothing waits for a restart.
#[test]
fn a_hotplug_that_left_the_limit_behind_is_limit_below_guest_not_restart_pending() {
    let rows = rows();
    let v = row(&rows, "squeezed");
    let f = flags(v);
    assert!(f.contains(&"limit-below-guest".into()), "{f:?}");
    assert!(!f.contains(&"restart-pending".into()), "{f:?}");
    assert!(!f.contains(&"hotplug-in-progress".into()), "{f:?}");
    assert_eq!(v["guestRunningBytes"], 4 * GI);
    assert_eq!(v["podLimitBytes"], 2_956_984_321_i64);
}

#[test]
fn values_kubevirt_filled_in_are_no_pending_restart() {
    let rows = rows();
    for name in [
        "grow",
        "grown",
        "squeezed",
        "defaulted",
        "typed-run",
        "typed-gone",
    ] {
        let f = flags(row(&rows, name));
        assert!(!f.contains(&"restart-pending".into()), "{name}: {f:?}");
    }
    // A VM without the features keeps its JSON: no guestRunningBytes.
    assert!(row(&rows, "defaulted").get("guestRunningBytes").is_none());
}

#[test]
fn instance_types_give_the_guest_and_the_float32_request() {
    let rows = rows();
    let typed = row(&rows, "typed");
    assert_eq!(typed["phase"], "Stopped");
    assert!(flags(typed).contains(&"instancetype".into()), "{typed}");
    assert_eq!(typed["guestBytes"], 4 * GI);
    // int64(float32(4Gi) × (1 − float32(15)/100)).
    assert_eq!(typed["vmRequestBytes"], 3_650_722_304_i64);
    let run = row(&rows, "typed-run");
    assert!(flags(run).contains(&"instancetype".into()));
    assert_eq!(run["vmRequestBytes"], 3_650_722_304_i64);
    // A missing instance type: said, and the VMI's values still count.
    let gone = row(&rows, "typed-gone");
    assert_eq!(gone["guestBytes"], GI);
    let n = notes(gone);
    assert!(
        n.iter()
            .any(|s| s.starts_with("VirtualMachineInstancetype gone.small was not found")),
        "{n:?}"
    );
}

#[test]
fn every_output_shows_the_flags_and_the_running_guest() {
    let yaml = list("yaml");
    assert!(yaml.contains("guestRunningBytes: 2147483648"), "{yaml}");
    assert!(yaml.contains("- hotplug-in-progress"), "{yaml}");
    assert!(yaml.contains("- instancetype"), "{yaml}");
    for format in ["table", "wide"] {
        let text = list(format);
        let line = |name: &str| {
            let pat = format!(" {name} ");
            text.lines()
                .find(|l| l.contains(&pat))
                .unwrap_or_else(|| panic!("{format}: no line for {name}"))
                .to_string()
        };
        // What qemu has → what the VMI asks for.
        let grow = line("grow");
        assert!(grow.contains(" 2GiB→4GiB "), "{format}: {grow}");
        assert!(line("grown").contains(" 4GiB "), "{format}");
        if format == "wide" {
            assert!(grow.contains("hotplug-in-progress,migrating"), "{grow}");
            assert!(line("typed").contains("instancetype"));
        }
    }
}
