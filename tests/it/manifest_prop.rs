//! Manifests of any shape never panic the reader, the report or its renderers: random object
//! trees with Kubernetes and KubeVirt field names (as YAML and as JSON), strange quantities in the
//! memory fields, and the real fixtures cut at any point. Errors are one line naming the file.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vmmem::model::inventory::{Inventory, Readings};
use vmmem::model::report::{build, ReportOptions};
use vmmem::output::report::{table, write_json};
use vmmem::parse::manifest::{add_to_inventory, kind_from_file_name, parse};

const KEYS: [&str; 40] = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "uid",
    "annotations",
    "labels",
    "spec",
    "status",
    "template",
    "domain",
    "memory",
    "guest",
    "resources",
    "limits",
    "requests",
    "items",
    "containers",
    "nodeName",
    "running",
    "runStrategy",
    "phase",
    "configuration",
    "developerConfiguration",
    "memoryOvercommit",
    "value",
    "default",
    "hard",
    "cpu",
    "cores",
    "sockets",
    "threads",
    "devices",
    "hugepages",
    "pageSize",
    "volumes",
    "nodeInfo",
    "conditions",
    "harvesterhci.io/reservedMemory",
];

const KINDS: [&str; 11] = [
    "VirtualMachine",
    "VirtualMachineInstance",
    "Pod",
    "Node",
    "KubeVirt",
    "Setting",
    "ResourceQuota",
    "List",
    "VirtualMachineList",
    "PodList",
    "ConfigMap",
];

fn quantity_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,4}(Mi|Gi|Ki|M|G|m|)",
        "-?[0-9]{1,25}(\\.[0-9]{0,4})?(Ei|E|Pi|e9|e-3|)",
        Just("9223372036854775807".to_string()),
        Just("1e30".to_string()),
        "\\PC{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => quantity_text().prop_map(Value::from),
        2 => proptest::sample::select(KINDS.to_vec()).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => (-1e20f64..1e20).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 120, 6, |inner| {
        prop_oneof![
            3 => proptest::collection::vec(
                (proptest::sample::select(KEYS.to_vec()), inner.clone()), 0..6)
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
            1 => proptest::collection::vec(inner, 0..4).prop_map(Value::Array),
        ]
    })
}

/// A plausible object: a kind and metadata, with a random spec and status.
fn object() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(KINDS.to_vec()),
        tree(),
        tree(),
        tree(),
    )
        .prop_map(|(kind, spec, status, extra)| {
            let mut o = json!({"apiVersion": "kubevirt.io/v1", "kind": kind,
                "metadata": {"name": "x", "namespace": "ns", "uid": "u"},
                "spec": spec, "status": status});
            if kind.ends_with("List") {
                o["items"] = json!([extra.clone(), {"metadata": {"name": "y"}, "spec": extra}]);
            }
            o
        })
}

/// Parse, build the report and render it: none of it may panic.
fn everything(text: &str, origin: &str) {
    match parse(text, origin, kind_from_file_name(origin)) {
        Ok(objects) => {
            let mut inv = Inventory::default();
            add_to_inventory(objects, &mut inv);
            let report = build(&inv, &Readings::new(), &ReportOptions::default());
            let mut out = Vec::new();
            write_json(&report, &mut out).expect("JSON encoding never fails");
            let _ = table(&report, true).render(false);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(origin), "{msg}");
            assert!(!msg.contains('\n'), "more than one line: {msg}");
        }
    }
}

fn fixtures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "json") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut out,
    );
    out.sort();
    assert!(out.len() >= 15, "fixtures missing: {out:?}");
    out
}

#[test]
fn every_fixture_cut_at_every_line_never_panics() {
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut cut = 0;
        for line in text.split_inclusive('\n') {
            cut += line.len();
            everything(&text[..cut], &name);
            // Mid-line too: half of the next line's bytes (on a char boundary).
            let mut mid = cut + (text.len() - cut).min(7);
            while !text.is_char_boundary(mid) {
                mid -= 1;
            }
            everything(&text[..mid], &name);
        }
    }
}

fn opt_quantity() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        4 => quantity_text().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
    ]
}

/// A VM, its VMI and its virt-launcher pod, every memory number drawn from odd quantities.
fn vm_vmi_pod() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(opt_quantity(), 9),
        any::<bool>(),
        proptest::sample::select(vec!["Running", "Scheduling", "Failed", ""]),
    )
        .prop_map(|(q, hugepages, phase)| {
            let domain = json!({"memory": {"guest": q[0]}, "cpu": {"cores": 2},
                "resources": {"limits": {"memory": q[1], "cpu": "2"}, "requests": {"memory": q[2]}}});
            let mut vmi_domain = domain.clone();
            if hugepages {
                vmi_domain["memory"]["hugepages"] = json!({"pageSize": q[8]});
            }
            let docs = [
                json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                    "metadata": {"name": "vm", "namespace": "ns", "uid": "vm-uid",
                        "annotations": {"harvesterhci.io/reservedMemory": q[3]}},
                    "spec": {"running": true, "template": {"spec": {"domain": domain}}}}),
                json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                    "metadata": {"name": "vm", "namespace": "ns", "uid": "vmi-uid"},
                    "spec": {"domain": vmi_domain},
                    "status": {"phase": phase, "nodeName": "n1",
                        "memory": {"guestAtBoot": q[4], "guestCurrent": q[5], "guestRequested": q[0]}}}),
                json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "virt-launcher-vm-abcde", "namespace": "ns", "uid": "pod-uid",
                        "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": "vmi-uid"},
                        "ownerReferences": [{"kind": "VirtualMachineInstance", "name": "vm", "uid": "vmi-uid"}]},
                    "spec": {"nodeName": "n1", "containers": [{"name": "compute",
                        "image": "registry.suse.com/suse/sles/15.5/virt-launcher:1.1.1",
                        "resources": {"limits": {"memory": q[6]}, "requests": {"memory": q[7]}}}]},
                    "status": {"phase": "Running"}}),
                json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "n1"}, "status": {"capacity": {"memory": q[8]},
                        "allocatable": {"memory": q[1]}}}),
                json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                    "metadata": {"name": "kubevirt", "namespace": "harvester-system"},
                    "spec": {"configuration": {"developerConfiguration": {"memoryOvercommit": q[4]}}},
                    "status": {"observedKubeVirtVersion": "v1.1.1"}}),
            ];
            docs.iter().map(|d| vmmem::output::yaml::to_string(d).unwrap()).collect::<Vec<_>>().join("---\n")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn odd_memory_numbers_never_panic_the_report(text in vm_vmi_pod()) {
        everything(&text, "vm.yaml");
    }

    #[test]
    fn random_objects_as_yaml_and_json(objs in proptest::collection::vec(object(), 1..4)) {
        let yaml: Vec<String> = objs.iter().map(|o| vmmem::output::yaml::to_string(o).unwrap()).collect();
        everything(&yaml.join("---\n"), "random.yaml");
        let json: Vec<String> = objs.iter().map(|o| o.to_string()).collect();
        everything(&json.join("\n"), "random.json");
        everything(&Value::Array(objs).to_string(), "pods.json");
    }

    #[test]
    fn random_trees_never_panic(v in tree()) {
        everything(&vmmem::output::yaml::to_string(&v).unwrap(), "virtualmachines.yaml");
        everything(&v.to_string(), "tree.json");
    }

    #[test]
    fn fixtures_cut_and_spliced(which in any::<proptest::sample::Index>(), at in any::<usize>(),
                                junk in "\\PC{0,20}") {
        let all = fixtures();
        let path = which.get(&all);
        let text = std::fs::read_to_string(path).unwrap();
        let mut i = at % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        everything(&format!("{}{junk}{}", &text[..i], &text[i..]), "spliced.yaml");
    }
}
