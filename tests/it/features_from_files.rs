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
