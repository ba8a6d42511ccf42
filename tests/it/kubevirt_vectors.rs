//! KubeVirt's own overhead, vector by vector: every VMI in `tests/fixtures/kubevirt-vectors/`
//! goes through the tool's manifest parser and report (as `list --from` would read it, with a
//! KubeVirt CR naming the ref's version, the ratio and the binding plugins, and a Node of the
//! cluster's architecture), and the row's `expectedOverheadBytes` must equal, to the byte, what
//! KubeVirt's Go function returned for it at that ref. Each vector runs a second time with the
//! lists it leaves out written as explicit `null`s.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vmmem::model::inventory::{Inventory, Readings, SourceKind};
use vmmem::model::report::{build, ReportOptions};
use vmmem::parse::manifest;

/// The refs the vectors were built at (one file each); a missing file fails the test.
const REFS: &[&str] = &[
    "v0.54.0",
    "v0.59.2",
    "v1.0.1",
    "v1.1.1",
    "v1.2.2",
    "v1.3.1",
    "v1.4.1",
    "v1.5.0",
    "v1.5.3",
    "v1.6.6",
    "v1.7.4",
    "v1.8.4",
    "v1.9.0-rc.2",
    "main",
];

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubevirt-vectors")
}

/// What a KubeVirt built from the ref reports as `observedKubeVirtVersion`. Main of late 2026
/// is past the v1.9 branch: its builds call themselves v1.10.0 pre-releases.
fn observed_version(reference: &str) -> &str {
    match reference {
        "main" => "v1.10.0-alpha.0.412+d923fdb8",
        v => v,
    }
}

/// One vector: the objects `list --from` would read, and KubeVirt's answer.
struct Vector {
    name: String,
    manifest: String,
    expected: i64,
}

/// The same VMI with every list it leaves out written as an explicit `null`, as Go clients
/// may store it: KubeVirt reads both the same, and so must the tool.
fn with_null_lists(vmi: &Value) -> Value {
    let mut vmi = vmi.clone();
    let spec = &mut vmi["spec"];
    for key in ["volumes", "networks"] {
        if spec.get(key).is_none() {
            spec[key] = Value::Null;
        }
    }
    let devices = &mut spec["domain"]["devices"];
    if !devices.is_object() {
        *devices = json!({});
    }
    for key in ["gpus", "hostDevices", "interfaces", "disks", "filesystems"] {
        if devices.get(key).is_none() {
            devices[key] = Value::Null;
        }
    }
    vmi
}

fn vector(reference: &str, line: &str, null_lists: bool) -> Vector {
    let v: Value = serde_json::from_str(line).expect("a vector line is JSON");
    let vmi = &if null_lists {
        with_null_lists(&v["vmi"])
    } else {
        v["vmi"].clone()
    };
    let name = format!(
        "{}/{}",
        vmi["metadata"]["namespace"].as_str().unwrap_or(""),
        vmi["metadata"]["name"].as_str().unwrap_or("")
    );
    let kubevirt = json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
        "spec": {"configuration": {
            "additionalGuestMemoryOverheadRatio": v["additionalGuestMemoryOverheadRatio"],
            "network": {"binding": v["networkBindingPlugins"]},
        }},
        "status": {"observedKubeVirtVersion": observed_version(reference), "phase": "Deployed"},
    });
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "status": {"nodeInfo": {"architecture": v["clusterArch"]}},
    });
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [kubevirt, node, vmi]});
    Vector {
        name,
        manifest: list.to_string(),
        expected: v["overheadBytes"]
            .as_i64()
            .expect("overheadBytes is an integer"),
    }
}

/// The tool's O for one vector, or why it has none.
fn tool_overhead(v: &Vector) -> Result<i64, String> {
    let objects =
        manifest::parse(&v.manifest, "vector.json", None).map_err(|e| format!("parse: {e}"))?;
    let mut inv = Inventory {
        source: SourceKind::Files,
        ..Default::default()
    };
    manifest::add_to_inventory(objects, &mut inv);
    let report = build(&inv, &Readings::new(), &ReportOptions::default());
    match report.vms.as_slice() {
        [row] => Ok(row.expected_overhead_bytes),
        rows => Err(format!("{} rows instead of 1", rows.len())),
    }
}

#[derive(Default)]
struct RefResult {
    checked: usize,
    misses: Vec<String>,
}

fn run_ref(reference: &str) -> RefResult {
    let path = vectors_dir().join(format!("{reference}.jsonl.gz"));
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("the vectors of {reference} are missing ({e})"));
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut out = RefResult::default();
    for line in reader.lines() {
        let line = line.expect("the vectors decompress");
        if line.trim().is_empty() {
            continue;
        }
        out.checked += 1;
        for null_lists in [false, true] {
            let v = vector(reference, &line, null_lists);
            let how = if null_lists { " (lists null)" } else { "" };
            match tool_overhead(&v) {
                Ok(got) if got == v.expected => {}
                Ok(got) => out.misses.push(format!(
                    "{}{how}: KubeVirt {} bytes, tool {} bytes ({:+})",
                    v.name,
                    v.expected,
                    got,
                    got - v.expected
                )),
                Err(e) => out.misses.push(format!("{}{how}: {e}", v.name)),
            }
        }
    }
    out
}

#[test]
fn every_vector_matches_kubevirt_to_the_byte() {
    let results: BTreeMap<&str, RefResult> = REFS.iter().map(|r| (*r, run_ref(r))).collect();
    let mut summary = String::new();
    let mut total = 0;
    let mut missed = 0;
    for (reference, r) in &results {
        assert!(r.checked > 1000, "{reference}: only {} vectors", r.checked);
        total += r.checked;
        missed += r.misses.len();
        summary.push_str(&format!(
            "{reference}: {} of {} differ\n",
            r.misses.len(),
            r.checked
        ));
        for m in r.misses.iter().take(8) {
            summary.push_str(&format!("    {m}\n"));
        }
    }
    assert_eq!(
        missed, 0,
        "{missed} of {total} vectors differ from KubeVirt:\n{summary}"
    );
    // Every vector file in the folder is one of the refs above (none is left unread).
    let files = std::fs::read_dir(vectors_dir())
        .expect("the vectors folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl.gz"))
        .count();
    assert_eq!(files, REFS.len(), "vector files not in REFS");
}
