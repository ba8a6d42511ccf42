//! Harvester support bundles, extracted and zipped (with the nested per-node zips), read by
//! `--from` into the same report, kernel logs included.

use std::io::Write;
use std::path::{Path, PathBuf};

use vmmem::cluster::files::{load, load_inventory};
use vmmem::model::inventory::Readings;
use vmmem::model::report::{build, ReportOptions};

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bundle/supportbundle_8a3f0c1e-2b4d-4c6e-9f10-3a5b7c9d1e2f_2024-05-09T14-55-00Z")
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Zip the extracted fixture the way support-bundle-kit does: node folders become
/// `nodes/<node>.zip` inside the outer zip.
fn zip_bundle(out: &Path) {
    let dir = bundle_dir();
    let top = dir.file_name().unwrap().to_str().unwrap().to_string();
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut outer = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let nodes = dir.join("nodes");
    for node in std::fs::read_dir(&nodes).unwrap() {
        let node = node.unwrap().path();
        let name = node.file_name().unwrap().to_str().unwrap().to_string();
        let mut inner = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for f in files_below(&node) {
            let rel = f
                .strip_prefix(&nodes)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            inner.start_file(rel, opts).unwrap();
            inner.write_all(&std::fs::read(&f).unwrap()).unwrap();
        }
        let bytes = inner.finish().unwrap().into_inner();
        outer
            .start_file(format!("{top}/nodes/{name}.zip"), opts)
            .unwrap();
        outer.write_all(&bytes).unwrap();
    }
    for f in files_below(&dir.join("yamls")) {
        let rel = f.strip_prefix(&dir).unwrap().to_str().unwrap().to_string();
        outer.start_file(format!("{top}/{rel}"), opts).unwrap();
        outer.write_all(&std::fs::read(&f).unwrap()).unwrap();
    }
    outer.finish().unwrap();
}

#[test]
fn extracted_and_zipped_bundles_give_the_same_report() {
    let tmp = tempfile::tempdir().unwrap();
    let zip_path = tmp.path().join("supportbundle.zip");
    zip_bundle(&zip_path);

    let opts = ReportOptions::default();
    let a = load_inventory(&bundle_dir()).unwrap();
    let b = load_inventory(&zip_path).unwrap();
    for loaded in [&a, &b] {
        let inv = &loaded.inventory;
        assert_eq!(inv.vms.len(), 2);
        assert_eq!(
            inv.vmis.len(),
            2,
            "kind-less list items are typed from the file name"
        );
        assert_eq!(inv.pods.len(), 2);
        assert_eq!(inv.kubevirts.len(), 1);
        assert!(inv.harvester_settings.is_some());
        assert_eq!(loaded.kernel_logs.len(), 1);
        let log = &loaded.kernel_logs[0];
        assert_eq!(log.node.as_deref(), Some("harvester-node-2"));
        assert!(log.text.contains("CPU 11/KVM invoked oom-killer"));
    }
    let ra = serde_json::to_value(build(&a.inventory, &Readings::new(), &opts)).unwrap();
    let rb = serde_json::to_value(build(&b.inventory, &Readings::new(), &opts)).unwrap();
    assert_eq!(ra, rb);
    assert_eq!(ra["kubevirt"]["version"], "v0.54.0");
    assert_eq!(ra["vms"][0]["expectedOverheadBytes"], 253_054_977);
}

#[test]
fn a_corrupt_zip_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bundle.zip");
    std::fs::write(&p, b"PK\x03\x04 this is not really a zip").unwrap();
    let e = load(&p).unwrap_err();
    assert!(
        format!("{e:#}").contains("not a readable zip archive"),
        "{e:#}"
    );
}

#[test]
fn kernel_log_kills_make_their_vm_critical() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["list", "-o", "json", "--from"])
        .arg(bundle_dir())
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vms = v["vms"].as_array().unwrap();
    let killed = vms.iter().find(|r| r["name"] == "vm-64g").unwrap();
    assert_eq!(killed["oomKills"], 1);
    assert_eq!(killed["risk"], "critical");
    assert!(killed["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "oom-killed"));
    // vm-16g runs on harvester-node-1, whose kernel log the bundle does not hold: its count is
    // unknown, not 0.
    let other = vms.iter().find(|r| r["name"] == "vm-16g").unwrap();
    assert!(other["oomKills"].is_null(), "{}", other["oomKills"]);
    assert_eq!(other["risk"], "unknown");
}
