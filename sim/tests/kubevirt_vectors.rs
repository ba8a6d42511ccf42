//! The simulator's launcher sizing (`vmmem_sim::sizing`) against the overhead KubeVirt's own Go
//! code returned for sample VMIs (`fixtures/kubevirt-vectors/`, one file per KubeVirt release,
//! see the README there): every VMI the table models must come out to the byte.

use std::path::Path;

use serde_json::Value;
use vmmem_sim::sizing::{overhead, Cluster};
use vmmem_sim::version::Version;

/// The release a vectors file was built from (`main` is newer than every tag: the newest row).
fn release_of(file_stem: &str) -> Version {
    match file_stem {
        "main" => Version::new(1, 10, 0),
        tag => Version::parse(tag).unwrap_or_else(|| panic!("{tag} names no release")),
    }
}

struct Outcome {
    checked: usize,
    unmodelled: usize,
    wrong: Vec<String>,
}

fn run_file(path: &Path) -> Outcome {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let release = release_of(stem);
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Outcome {
        checked: 0,
        unmodelled: 0,
        wrong: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let vector: Value = serde_json::from_str(line).unwrap();
        let cluster = Cluster {
            release: Some(release),
            ratio: vector["additionalGuestMemoryOverheadRatio"]
                .as_str()
                .map(str::to_string),
            arch: vector["clusterArch"].as_str().unwrap().to_string(),
        };
        let want = vector["overheadBytes"].as_i64().unwrap();
        let name = vector["vmi"]["metadata"]["name"].as_str().unwrap_or("?");
        match overhead(&vector["vmi"]["spec"], &cluster) {
            Ok(got) if got == want => out.checked += 1,
            Ok(got) => out.wrong.push(format!(
                "{stem} {name}: simulator {got}, KubeVirt {want} (off by {})",
                got - want
            )),
            Err(_) => out.unmodelled += 1,
        }
    }
    out
}

#[test]
fn the_simulators_table_matches_kubevirt_for_every_vmi_it_models() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubevirt-vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 14,
        "vector files missing in {}",
        dir.display()
    );
    let mut wrong = Vec::new();
    for file in &files {
        let outcome = run_file(file);
        assert!(
            outcome.checked >= 15,
            "{}: only {} VMIs checked ({} not modelled): the sample no longer tests the table",
            file.display(),
            outcome.checked,
            outcome.unmodelled
        );
        wrong.extend(outcome.wrong);
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn vmis_with_unmodelled_features_are_refused_not_guessed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubevirt-vectors");
    let refused = run_file(&dir.join("v1.3.1.jsonl")).unmodelled;
    assert!(
        refused > 0,
        "the v1.3.1 sample has VMIs with binding plugins"
    );
}
