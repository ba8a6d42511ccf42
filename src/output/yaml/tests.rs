use serde_json::Value;

use super::to_string;

/// Every value of the corpus written by `serde_yaml` 0.9.34 (tests/fixtures/yaml) gives the same
/// bytes from this writer.
#[test]
fn writes_what_serde_yaml_wrote_for_the_whole_corpus() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/yaml/serde_yaml-0.9.34.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut checked = 0;
    let mut differ = Vec::new();
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let want = case["yaml"].as_str().unwrap();
        let got = to_string(&case["value"]).unwrap();
        if got != want {
            differ.push(format!(
                "{}\nserde_yaml:\n{want}ours:\n{got}",
                case["value"]
            ));
        }
        checked += 1;
    }
    assert!(checked > 1500, "only {checked} cases");
    assert!(
        differ.is_empty(),
        "{} of {checked} differ:\n{}",
        differ.len(),
        differ[..differ.len().min(5)].join("\n")
    );
}

#[derive(serde::Serialize)]
struct Doc {
    vms: Vec<Row>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    name: &'static str,
    guest_bytes: Option<u64>,
    ratio: f64,
    flags: Vec<&'static str>,
    notes: Vec<String>,
    risk: Risk,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Risk {
    Critical,
}

#[test]
fn structs_enums_and_options_as_serde_yaml_wrote_them() {
    let row = Row {
        name: "vm-1",
        guest_bytes: None,
        ratio: 1.5,
        flags: vec![],
        notes: vec!["exec timed out".into(), "007".into()],
        risk: Risk::Critical,
    };
    assert_eq!(
        to_string(&Doc { vms: vec![row] }).unwrap(),
        "vms:\n- name: vm-1\n  guestBytes: null\n  ratio: 1.5\n  flags: []\n  notes:\n  - exec timed out\n  - '007'\n  risk: critical\n"
    );
}

#[test]
fn data_carrying_enum_variants_are_refused_in_one_sentence() {
    #[derive(serde::Serialize)]
    enum E {
        V(u8),
    }
    let e = to_string(&E::V(1)).unwrap_err().to_string();
    assert!(e.contains("E::V") && !e.contains('\n'), "{e}");
}
