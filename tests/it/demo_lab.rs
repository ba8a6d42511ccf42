//! The demo's `lab` VMs through the real binary (`list --demo -n lab -o json`): containers
//! beside compute, hugepages, a limit KubeVirt sets without a VM limit, each as the simulated
//! cluster built it from its own table.

use std::process::Command;

use serde_json::Value;

fn lab() -> Value {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["list", "--demo", "-n", "lab", "-o", "json"])
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn row<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r}"))
}

fn flags(v: &Value) -> Vec<&str> {
    v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn i(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn demo_lab_vms_show_what_is_beside_compute() {
    let r = lab();

    // Hugepages: the memory cgroup holds no guest RAM; the budget is the whole limit.
    let huge = row(&r, "huge-01");
    assert!(i(huge, "hugepagesBytes") > 0);
    let f = flags(huge);
    assert!(f.contains(&"hugepages"), "{f:?}");
    assert!(
        !f.contains(&"guest-equals-limit") && !f.contains(&"under-reserved"),
        "{f:?}"
    );
    assert_eq!(huge["recommendation"]["reserveBytes"], 0);
    let limit = huge["cgroup"]["limitBytes"].as_i64().unwrap();
    assert_eq!(i(huge, "overheadBudgetBytes"), limit);
    assert!(huge["cgroup"]["usageBytes"].as_i64().unwrap() < limit);
    assert_eq!(huge["risk"], "ok");

    // virtiofs: the pod's 80M container counts in the pod-level limit.
    let share = row(&r, "share-01");
    assert_eq!(
        share["sidecarBytes"],
        serde_json::json!({"guestConsoleLog": 60_000_000, "virtiofs": 80_000_000})
    );
    assert_eq!(
        i(share, "podLevelLimitBytes"),
        i(share, "podLimitBytes") + 140_000_000
    );

    // A hook sidecar without a limit: no pod-level limit; compute is judged on its own.
    let hooked = row(&r, "hooked-01");
    assert_eq!(hooked["podLevelLimitBytes"], Value::Null);
    assert_eq!(hooked["sidecarBytes"]["hookSidecar"], Value::Null);
    assert_eq!(hooked["cgroup"]["level"], "container");

    // Dedicated CPUs without a VM limit: the pod has one (= its request), as predicted.
    let pinned = row(&r, "pinned-01");
    assert_eq!(pinned["vmLimitBytes"], Value::Null);
    assert_eq!(
        i(pinned, "expectedPodLimitBytes"),
        i(pinned, "podLimitBytes")
    );
    assert_eq!(i(pinned, "podLimitBytes"), i(pinned, "podRequestBytes"));
    assert!(!flags(pinned).contains(&"no-limit"));

    // Console log off: nothing beside compute; the pod level is compute's limit.
    let quiet = row(&r, "quiet-01");
    assert_eq!(quiet["sidecarBytes"], serde_json::json!({}));
    assert_eq!(i(quiet, "podLevelLimitBytes"), i(quiet, "podLimitBytes"));
}
