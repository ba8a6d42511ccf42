//! `list --from`: the report built from fixture manifests, checked field by field against
//! numbers worked out by hand from KubeVirt's renderresources.go and Harvester's VM webhook
//! (pkg/webhook/resources/virtualmachine/mutator.go) at their release tags.

use std::path::{Path, PathBuf};

use vmmem::cluster::files::load_inventory;
use vmmem::model::inventory::Readings;
use vmmem::model::report::Flag;
use vmmem::model::report::{build, Report, ReportOptions, Risk, VmRow};

const MI: i64 = 1 << 20;
const GI: i64 = 1 << 30;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn report(rel: &str) -> Report {
    let loaded = load_inventory(&fixture(rel)).unwrap();
    build(
        &loaded.inventory,
        &Readings::new(),
        &ReportOptions::default(),
    )
}

fn vm<'a>(r: &'a Report, name: &str) -> &'a VmRow {
    r.vms
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn seed_vm2_harvester_v13() {
    let r = report("seed/harvester-v1.3.yaml");
    assert!(r.kubevirt.harvester);
    assert_eq!(r.kubevirt.version.to_string(), "v1.1.1");
    assert_eq!(r.kubevirt.version_source, "kubevirtCR");
    let v = vm(&r, "vm2");
    assert_eq!(v.guest_bytes, Some(1948 * MI));
    assert_eq!(v.vm_limit_bytes, Some(2 * GI));
    assert_eq!(v.vm_request_bytes, Some(1365 * MI));
    assert_eq!(v.reserved_bytes, Some(100 * MI));
    assert_eq!(v.reserved_source, "harvester-default");
    assert_eq!(v.expected_overhead_bytes, 264_939_521);
    assert_eq!(v.expected_pod_limit_bytes, Some(2_412_423_169));
    assert_eq!(v.pod_limit_bytes, Some(2_412_423_169));
    assert_eq!(v.pod_request_bytes, Some(1_696_245_761));
    assert_eq!(v.overhead_budget_bytes, Some(2_412_423_169 - 1948 * MI));
    assert_eq!(v.risk, Risk::Unknown);
    assert!(v.cgroup.is_none());
    // The seed's table: a 2Gi VM gets 384Mi; it has 100Mi, so it is under-reserved.
    assert_eq!(v.recommendation.reserve_bytes, 384 * MI);
    assert_eq!(v.recommendation.strategy.as_str(), "annotation");
    assert!(v.has_flag(Flag::UnderReserved), "{:?}", v.flags);
    assert!(v.notes.is_empty(), "{:?}", v.notes);
}

#[test]
fn seed_examples_1_and_2_kubevirt_v054() {
    let r = report("seed/harvester-v1.2.yaml");
    assert_eq!(r.kubevirt.version.to_string(), "v0.54.0");
    let v16 = vm(&r, "vm-16g");
    assert_eq!(v16.expected_overhead_bytes, 253_054_977);
    assert_eq!(v16.expected_pod_limit_bytes, Some(17_432_924_161));
    assert_eq!(v16.pod_limit_bytes, Some(17_432_924_161));
    assert_eq!(v16.recommendation.reserve_bytes, 1024 * MI);
    let v64 = vm(&r, "vm-64g");
    assert_eq!(v64.namespace, "prod");
    assert_eq!(v64.expected_pod_limit_bytes, Some(69_201_821_696));
    assert!(v64.has_flag(Flag::GuestEqualsLimit));
    assert_eq!(v64.reserved_bytes, Some(0));
    assert_eq!(v64.reserved_source, "none");
}

#[test]
fn harvester_v12_annotation_and_default() {
    let r = report("shapes/harvester-v1.2.yaml");
    let a = vm(&r, "annotated");
    assert_eq!(a.reserved_source, "annotation");
    assert_eq!(a.reserved_bytes, Some(256 * MI));
    assert_eq!(a.phase, "Stopped");
    // Stopped: spec-only numbers from the defaulted VMI; request 2730Mi, 2 vCPUs, v0.54.
    let pt = (2730 * MI + 999) / 1000 * 1000 / 512;
    assert_eq!(
        a.expected_overhead_bytes,
        pt + (25 + 75 + 17 + 33 + 30 + 16 + 8 + 16) * MI
    );
    assert_eq!(
        a.expected_pod_limit_bytes,
        Some(4 * GI + a.expected_overhead_bytes)
    );
    assert!(a.has_flag(Flag::UnderReserved)); // 256Mi < 384Mi for a 4Gi VM
    let d = vm(&r, "default-reserve");
    assert_eq!(d.reserved_source, "harvester-default");
    assert_eq!(d.reserved_bytes, Some(100 * MI));
}

#[test]
fn harvester_v14_ratio_set_and_unset() {
    let r = report("shapes/harvester-v1.4-ratio.yaml");
    assert_eq!(r.kubevirt.overhead_ratio.as_deref(), Some("1.5"));
    let v = vm(&r, "ratio-vm");
    assert!(v.has_flag(Flag::GuestEqualsLimit));
    assert_eq!(v.reserved_source, "none");
    let base = (2730 * MI + 999) / 1000 * 1000 / 512 + (210 + 16 + 8 + 16) * MI;
    let with_ratio = base + 1000 * (((base + 999) / 1000) as f64 * 0.5) as i64;
    assert_eq!(v.expected_overhead_bytes, with_ratio);
    assert!(v.has_flag(Flag::UnderReserved));
    let a = vm(&r, "ratio-annotated");
    assert_eq!(
        (a.reserved_source, a.reserved_bytes),
        ("annotation", Some(512 * MI))
    );
    assert!(!a.has_flag(Flag::UnderReserved));

    let r = report("shapes/harvester-v1.4-noratio.yaml");
    assert_eq!(r.kubevirt.overhead_ratio, None);
    let v = vm(&r, "noratio-vm");
    assert_eq!(
        (v.reserved_source, v.reserved_bytes),
        ("harvester-default", Some(100 * MI))
    );
}

#[test]
fn plain_kubevirt_shapes() {
    let r = report("shapes/kubevirt-v1.3.yaml");
    assert!(!r.kubevirt.harvester);
    let base_1g = 2_097_152 + (210 + 8 + 8 + 16) * MI; // v1.3, 1Gi request, 1 vCPU
    let req = vm(&r, "requests-only");
    assert!(req.has_flag(Flag::NoLimit));
    assert_eq!(req.vm_limit_bytes, None);
    assert_eq!(req.expected_pod_limit_bytes, None);
    assert_eq!(req.overhead_budget_bytes, None);
    assert!(!req.has_flag(Flag::UnderReserved));
    assert!(req.recommendation.reason.starts_with("no memory limit"));
    assert_eq!(req.recommendation.strategy.as_str(), "guest");

    let hp = vm(&r, "hugepages");
    assert!(hp.has_flag(Flag::Hugepages));
    let o_hp = (4 * GI + 999) / 1000 * 1000 / 512 + (210 + 8 + 8 + 16) * MI;
    assert_eq!(hp.expected_overhead_bytes, o_hp);
    // The memory cgroup holds only the overhead: max(0, limit − guest) + O.
    assert_eq!(hp.expected_pod_limit_bytes, Some(o_hp));
    assert_eq!(hp.overhead_budget_bytes, Some(o_hp));
    // guest = limit is no missing reservation here, and the size table (guest RAM inside the
    // memory cgroup) does not apply.
    assert!(!hp.has_flag(Flag::GuestEqualsLimit), "{:?}", hp.flags);
    assert!(!hp.has_flag(Flag::UnderReserved), "{:?}", hp.flags);
    assert_eq!(hp.recommendation.reserve_bytes, 0);

    let ded = vm(&r, "dedicated");
    let o_ded = (2 * GI + 999) / 1000 * 1000 / 512 + (210 + 16 + 8 + 16) * MI + 100 * MI;
    assert_eq!(ded.expected_overhead_bytes, o_ded);
    assert_eq!(ded.expected_pod_limit_bytes, Some(2 * GI + o_ded));

    assert_eq!(vm(&r, "gpu").expected_overhead_bytes, base_1g + GI);
    assert_eq!(vm(&r, "probes").expected_overhead_bytes, base_1g + 120 * MI);
    assert_eq!(vm(&r, "tpm").expected_overhead_bytes, base_1g + 53 * MI);
    assert_eq!(vm(&r, "arm").expected_overhead_bytes, base_1g + 128 * MI);

    let st = vm(&r, "stopped");
    assert_eq!(st.phase, "Stopped");
    assert_eq!(st.node, None);
    // v1.3 webhook: request = limit (1Gi) when absent.
    assert_eq!(st.expected_overhead_bytes, base_1g);
    assert_eq!(st.risk, Risk::Unknown);

    let mig = vm(&r, "migrating");
    assert!(mig.has_flag(Flag::Migrating));
    assert_eq!(mig.node.as_deref(), Some("n1"));
    assert_eq!(mig.pod_uid.as_deref(), Some("pod-src"));
    assert_eq!(mig.pod_limit_bytes, Some(GI + base_1g));
    assert!(mig.notes.is_empty(), "{:?}", mig.notes);
    // A pod limit matching the formula, and the sidecar from v1.1 counted at pod level.
    assert_eq!(mig.sidecar_bytes, 60_000_000);
}

#[test]
fn malformed_quantity_is_a_note_not_a_failure() {
    let r = report("malformed/bad-quantity.yaml");
    let v = vm(&r, "bad-quantity");
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("memory.guest: \"lots\" is not a Kubernetes quantity")),
        "{:?}",
        v.notes
    );
    assert_eq!(v.vm_limit_bytes, Some(2 * GI));
}

#[test]
fn broken_files_and_empty_folders_are_clear_errors() {
    let e = load_inventory(&fixture("malformed/broken-syntax.yaml")).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("broken-syntax.yaml: cannot read document 1 as YAML/JSON"),
        "{msg}"
    );
    let e = load_inventory(&fixture("malformed/no-vms.yaml")).unwrap_err();
    assert!(format!("{e:#}").contains("found no VirtualMachine or VirtualMachineInstance objects"));
    let e = load_inventory(&fixture("does-not-exist")).unwrap_err();
    assert!(format!("{e:#}").starts_with("cannot read"), "{e:#}");
}

#[test]
fn the_seed_folder_reads_both_clusters() {
    let r = report("seed");
    assert_eq!(r.vms.len(), 4);
    // Each VM's constants follow its launcher image, whatever the first CR says.
    assert_eq!(vm(&r, "vm-16g").kubevirt_version.to_string(), "v0.54.0");
    assert_eq!(vm(&r, "vm2").kubevirt_version.to_string(), "v1.1.1");
    assert_eq!(vm(&r, "vm-16g").expected_overhead_bytes, 253_054_977);
    assert_eq!(vm(&r, "vm2").expected_overhead_bytes, 264_939_521);
}

/// `list -o json|yaml` writes rows as it builds them: byte for byte what the whole report
/// serializes to, with and without warnings, and with no VMs at all.
#[test]
fn streamed_report_serializes_like_the_whole_report() {
    use vmmem::model::inventory::Inventory;
    use vmmem::model::report::streamed;
    let mut inventories: Vec<Inventory> = [
        "seed/harvester-v1.3.yaml",
        "seed/harvester-v1.2.yaml",
        "shapes/kubevirt-v1.3.yaml",
        "bundle",
    ]
    .iter()
    .map(|rel| load_inventory(&fixture(rel)).unwrap().inventory)
    .collect();
    inventories.push(Inventory::default());
    let mut with_warnings = 0;
    for inv in &inventories {
        for opts in [
            ReportOptions::default(),
            ReportOptions {
                stale_nodes: [("harvester-node-1".to_string(), "exec timed out".to_string())]
                    .into_iter()
                    .collect(),
                ..ReportOptions::default()
            },
        ] {
            let whole = build(inv, &Readings::new(), &opts);
            with_warnings += usize::from(!whole.warnings.is_empty());
            let json = serde_json::to_string_pretty(&whole).unwrap();
            let yaml = vmmem::output::yaml::to_string(&whole).unwrap();
            let none = Readings::new();
            let s = streamed(inv, &none, &opts);
            assert_eq!(serde_json::to_string_pretty(&s).unwrap(), json);
            let s = streamed(inv, &none, &opts);
            assert_eq!(vmmem::output::yaml::to_string(&s).unwrap(), yaml);
        }
    }
    assert!(with_warnings > 0);
}

/// A pod the node's probe found no cgroup for (it ended between the object list and the probe)
/// is said in the row's notes, not left as a row that silently lacks live data.
#[test]
fn a_pod_missing_on_its_read_node_is_said() {
    use std::sync::Arc;
    use vmmem::model::readings::{CgroupVersion, LiveSource, NodeReadings};
    let loaded = load_inventory(&fixture("seed/harvester-v1.3.yaml")).unwrap();
    let pod = loaded
        .inventory
        .pods
        .iter()
        .find(|p| p.spec.node_name.is_some())
        .expect("a scheduled launcher pod in the fixture");
    let node = pod.spec.node_name.clone().unwrap();
    let uid = pod.metadata.uid.clone();
    let mut readings = Readings::new();
    readings.insert(
        node.clone(),
        Arc::new(NodeReadings {
            node: node.clone(),
            cgroup_version: CgroupVersion::V2,
            kernel: "6.4.0".into(),
            source: LiveSource::Agent,
            taken_at: 0,
            pods: vec![],
            missing_pods: vec![uid.clone()],
        }),
    );
    let r = build(&loaded.inventory, &readings, &ReportOptions::default());
    let row = r
        .vms
        .iter()
        .find(|v| v.pod_uid.as_deref() == Some(uid.as_str()))
        .unwrap();
    let want = format!(
        "node {node} has no cgroup for pod {uid}: the pod ended or moved after it was listed"
    );
    assert!(row.notes.contains(&want), "{:?}", row.notes);
    // Without any reading of the node, nothing is claimed.
    let r = build(
        &loaded.inventory,
        &Readings::new(),
        &ReportOptions::default(),
    );
    let row = r
        .vms
        .iter()
        .find(|v| v.pod_uid.as_deref() == Some(uid.as_str()))
        .unwrap();
    assert!(
        !row.notes.iter().any(|n| n.contains("has no")),
        "{:?}",
        row.notes
    );
}
