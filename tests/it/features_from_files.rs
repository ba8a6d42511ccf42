//! KubeVirt and Harvester features real clusters run, read by the real binary from manifests
//! (`list --from <fixture> -o json`), each checked against numbers worked out by hand from
//! KubeVirt's and Harvester's rules (the fixtures' comments show the sums).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/features")
        .join(rel)
        .display()
        .to_string()
}

/// `list --from <fixture> -o json`, parsed; the command must succeed.
fn list_json(rel: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["list", "--from", &fixture(rel), "-o", "json"])
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("list -o json prints JSON")
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["vms"]
        .as_array()
        .expect("vms is a list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

fn warnings(report: &Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn version_by_digest_is_inferred_from_the_pods() {
    let r = list_json("version-by-digest.yaml");
    let kv = &r["kubevirt"];
    assert_eq!(kv["versionSource"], "inferredFromPod", "{kv}");
    assert_eq!(kv["version"], "v0.57.0");
    assert_eq!(
        kv["inferredVersions"],
        serde_json::json!(["v0.57.0–v0.58.0"])
    );
    let db = row(&r, "db");
    assert_eq!(db["kubevirtVersion"], "v0.57.0");
    assert_eq!(db["expectedOverheadBytes"], 268_435_457);
    assert_eq!(db["expectedPodLimitBytes"], 4_563_402_753_i64);
    // The pod's limit is what that version sets: no "check the version" note.
    assert!(db.get("notes").is_none(), "{db}");
    assert_eq!(row(&r, "web")["expectedOverheadBytes"], 253_755_392);
    let w = warnings(&r);
    assert!(
        w.iter().any(|s| s.contains("inferred")
            || (s.contains("v0.57.0–v0.58.0") && s.contains("not stated"))),
        "{w:?}"
    );
    assert!(!w.iter().any(|s| s.contains("assumed")), "{w:?}");
}

#[test]
fn pods_no_single_version_explains_keep_the_version_assumed() {
    let r = list_json("version-mixed.yaml");
    let kv = &r["kubevirt"];
    assert_eq!(kv["versionSource"], "assumed", "{kv}");
    assert!(kv.get("inferredVersions").is_none(), "{kv}");
    // Each row shows what its own pod applied, not the assumed version's formula.
    assert_eq!(row(&r, "db")["expectedOverheadBytes"], 268_435_457);
    assert_eq!(row(&r, "web")["expectedOverheadBytes"], 283_115_520);
    assert!(warnings(&r).iter().any(|s| s.contains("assumed")));
}

/// A launcher pod whose compute container ended `OOMKilled` is an OOM kill of its VM without
/// any kernel log: counted, flagged, and evidence (the compute limit less the guest was outside
/// guest RAM at the kill).
#[test]
fn pod_status_oom_killed_is_a_kill_of_the_vm() {
    let report = list_json("pod-status-oomkilled.yaml");
    let vm = row(&report, "vm4");
    assert_eq!(vm["oomKills"], 1);
    let flags = vm["flags"].as_array().unwrap();
    assert!(flags.iter().any(|f| f == "oom-killed-before"), "{flags:?}");
    let rec = &vm["recommendation"];
    let kills: Vec<&Value> = rec["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "oom-kill")
        .collect();
    assert_eq!(kills.len(), 1, "{rec}");
    let k = kills[0];
    // 2,412,423,169 (the compute limit) − 1948Mi (the guest).
    assert_eq!(k["bytes"], 2_412_423_169i64 - 1948 * 1024 * 1024);
    assert_eq!(k["at"], "2024-05-21T09:14:03Z");
    assert_eq!(
        k["source"],
        "pod status (OOMKilled at 2024-05-21T09:14:03Z)"
    );
    assert_eq!(k["bound"], "lower");
    // 1.25 × 352.7MiB − KubeVirt's 252.7MiB needs 189Mi: the size table's 384Mi decides.
    assert_eq!(rec["reserveBytes"], 384 * 1024 * 1024);
    assert_eq!(rec["decidedBy"], "size-table");
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("the OOM kill at 2024-05-21 09:14 UTC"),
        "{rec}"
    );
}

fn flags(vm: &Value) -> Vec<&str> {
    vm["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The containers beside compute (KubeVirt v1.6.0): predicted for stopped VMs, read from the
/// pod for running ones; the pod-level limit sums them all, or is null when one has no limit.
#[test]
fn containers_beside_compute_as_kubevirt_adds_them() {
    let r = list_json("sidecars.yaml");
    let off = row(&r, "console-off");
    assert_eq!(off["sidecarBytes"], serde_json::json!({}));
    assert_eq!(off["podLevelLimitBytes"], off["expectedPodLimitBytes"]);

    let share = row(&r, "share");
    assert_eq!(share["podLimitBytes"], 1_356_857_344_i64);
    assert_eq!(
        share["sidecarBytes"],
        serde_json::json!({"guestConsoleLog": 60_000_000, "virtiofs": 80_000_000})
    );
    assert_eq!(share["podLevelLimitBytes"], 1_496_857_344_i64);
    assert!(share.get("notes").is_none(), "{share}");

    let hooked = row(&r, "hooked");
    assert_eq!(
        hooked["sidecarBytes"],
        serde_json::json!({"guestConsoleLog": 60_000_000, "hookSidecar": null})
    );
    assert_eq!(hooked["podLevelLimitBytes"], Value::Null);
    assert!(hooked["expectedPodLimitBytes"].is_i64(), "{hooked}");
    let notes = hooked["notes"].to_string();
    assert!(
        notes.contains("hook-sidecar-0") && notes.contains("no pod-level memory limit"),
        "{notes}"
    );

    // Dedicated CPUs, no VM limit: limit = request = R + O; the hook sidecar gets 64M.
    let pinned = row(&r, "hooked-pinned");
    let o = pinned["expectedOverheadBytes"].as_i64().unwrap();
    assert_eq!(pinned["expectedPodLimitBytes"], (1 << 30) + o);
    assert_eq!(
        pinned["sidecarBytes"],
        serde_json::json!({"guestConsoleLog": 60_000_000, "hookSidecar": 64_000_000})
    );
    assert_eq!(
        pinned["podLevelLimitBytes"],
        (1 << 30) + o + 60_000_000 + 64_000_000
    );
    assert!(!flags(pinned).contains(&"no-limit"), "{pinned}");
    let reason = pinned["recommendation"]["reason"].as_str().unwrap();
    assert!(!reason.contains("no cgroup OOM kill"), "{reason}");
}

/// A namespace quota on limits.memory: KubeVirt v1.5+ limits a VM without one to
/// int64(float64(R + O) × the namespace's ratio label); a namespace without a quota keeps no
/// limit.
#[test]
fn quota_limits_by_the_namespace_ratio() {
    let r = list_json("quota.yaml");
    let vm = row(&r, "quota-vm");
    let o = vm["expectedOverheadBytes"].as_i64().unwrap();
    assert_eq!(o, 268_435_456);
    // (2Gi + 256Mi) × 1.5 = 2,415,919,104 × 1.5.
    assert_eq!(vm["expectedPodLimitBytes"], 3_623_878_656_i64);
    assert_eq!(vm["podLevelLimitBytes"], 3_623_878_656_i64 + 60_000_000);
    assert!(!flags(vm).contains(&"no-limit"), "{vm}");
    assert!(!vm["recommendation"]["reason"]
        .as_str()
        .unwrap()
        .contains("no cgroup OOM kill"));
    let free = row(&r, "free-vm");
    assert_eq!(free["expectedPodLimitBytes"], Value::Null);
    assert!(flags(free).contains(&"no-limit"), "{free}");
    assert!(warnings(&r).is_empty(), "{:?}", warnings(&r));

    // Without the Namespace objects the label is unknown: KubeVirt's default 2, and a warning.
    let r = list_json("quota-no-namespaces.yaml");
    assert_eq!(
        row(&r, "quota-vm")["expectedPodLimitBytes"],
        2 * 2_415_919_104_i64
    );
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|s| s.contains("namespace lab")
                && s.contains("assuming KubeVirt's default ratio 2")),
        "{w:?}"
    );
}

/// Hugepage-backed guest RAM is outside the memory cgroup: the budget is the whole limit, and
/// neither guest-equals-limit nor under-reserved nor a size-table reservation applies.
#[test]
fn hugepages_guest_is_outside_the_memory_cgroup() {
    let r = list_json("hugepages.yaml");
    let vm = row(&r, "huge");
    assert_eq!(vm["hugepagesBytes"], 4_i64 << 30);
    let o = vm["expectedOverheadBytes"].as_i64().unwrap();
    assert_eq!(vm["expectedPodLimitBytes"], o, "(4Gi − 4Gi) + O");
    assert_eq!(vm["overheadBudgetBytes"], o, "the whole limit");
    assert_eq!(flags(vm), ["hugepages"]);
    assert_eq!(vm["recommendation"]["reserveBytes"], 0);
    assert!(vm["recommendation"]["reason"]
        .as_str()
        .unwrap()
        .contains("hugepage-backed"));
    // A VM without hugepages says null.
    let r = list_json("quota.yaml");
    assert_eq!(row(&r, "quota-vm")["hugepagesBytes"], Value::Null);
}

/// Harvester v1.4+: `value: ""` is the default ratio 1.5 (no 100Mi default reservation), the
/// ratio's room counts against the size table, and the hotplug annotation is read whatever its
/// case.
#[test]
fn harvester_v14_empty_ratio_value_is_the_default() {
    let r = list_json("harvester-v1.4-empty-ratio.yaml");
    let gap = row(&r, "gap-vm");
    assert_eq!(gap["reservedBytes"], 100 << 20);
    assert_eq!(gap["reservedSource"], "guest-gap", "{gap}");
    let plain = row(&r, "plain-vm");
    assert_eq!(plain["reservedSource"], "none");
    let reason = plain["recommendation"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("less the") && reason.contains("the overhead ratio already adds"),
        "{reason}"
    );
    // O as applied carries the ratio: (O − room) × 1.5 = O, so room = O / 3 (to rounding).
    let o = plain["expectedOverheadBytes"].as_i64().unwrap();
    let reserve = plain["recommendation"]["reserveBytes"].as_i64().unwrap();
    let table = 384_i64 << 20;
    let step = 64_i64 << 20;
    let expected = (table - o / 3 + step - 1) / step * step;
    assert!((reserve - expected).abs() < step, "{reserve} vs {expected}");
    let hot = row(&r, "hotplug-vm");
    assert!(
        hot["notes"]
            .to_string()
            .contains("no effect on a hotplug VM"),
        "{hot}"
    );
}
