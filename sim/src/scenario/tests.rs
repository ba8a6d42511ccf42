use super::*;

#[test]
fn parses_minimal_yaml_with_defaults() {
    let s = Scenario::from_yaml(
        "flavour: harvester\noverheadRatio: \"1.5\"\nnodes: [{name: n1}]\nvms:\n- {name: a, memory: 4Gi}\n- {name: b, namespace: prod, noLimit: true, runStrategy: Halted}\n",
    )
    .unwrap();
    assert_eq!(s.flavour, Flavour::Harvester);
    assert_eq!(s.vms[0].namespace, "default");
    assert_eq!(s.vms[0].memory.bytes().unwrap(), 4 << 30);
    assert!(s.vms[1].no_limit);
    assert_eq!(s.all_namespaces(), vec!["default", "prod"]);
}

#[test]
fn rejects_bad_scenarios() {
    assert!(Scenario::from_yaml("vms: [{name: a}]").is_err(), "no nodes");
    assert!(Scenario::from_yaml("nodes: [{name: n}]\nvms: [{name: a, memory: lots}]").is_err());
    assert!(Scenario::from_yaml("nodes: [{name: n}]\nvms: [{name: a, node: m}]").is_err());
    assert!(Scenario::from_yaml("nodes: [{name: n}]\nvms: [{name: a}, {name: a}]").is_err());
    assert!(Scenario::from_yaml("bogus: 1").is_err());
    assert!(Scenario::from_yaml("kubevirtVersion: latest").is_err());
}

#[test]
fn generated_scenarios_have_the_requested_size() {
    let s = Scenario::generated(100, 7);
    assert_eq!(s.vms.len(), 100);
    assert_eq!(s.nodes.len(), 7);
    assert!(s.vms.iter().any(|v| v.no_limit));
    assert!(s.vms.iter().any(|v| v.run_strategy == "Halted"));
    assert_eq!(
        s.vms
            .iter()
            .filter(|v| v.workload.memhold.is_some())
            .count(),
        1
    );
    s.validate().unwrap();
}

/// `demo.yaml` reads to the values it says: counts, one VM's sizes, numbers written bare
/// (`overcommitMemory: 150`, `afterSeconds: 20`) and a ratio written as a string.
#[test]
fn demo_yaml_reads_to_its_values() {
    let s = Scenario::demo().unwrap();
    assert_eq!((s.vms.len(), s.nodes.len()), (23, 4));
    assert_eq!(s.namespaces, vec!["default", "prod", "lab"]);
    assert_eq!(s.overcommit_memory, 150);
    assert_eq!(s.overhead_ratio.as_deref(), Some("1.5"));
    let vm = |name: &str| s.vms.iter().find(|v| v.name == name).unwrap();
    let memhold = vm("memhold-vm");
    assert_eq!(memhold.memory.as_str(), "2Gi");
    assert_eq!(memhold.memory.bytes().unwrap(), 2 << 30);
    assert_eq!(memhold.cpus, 2);
    assert_eq!(memhold.workload.guest_fill_start, 0.3);
    assert_eq!(memhold.workload.guest_fill_rate.as_str(), "64Mi");
    let hold = memhold.workload.memhold.as_ref().unwrap();
    assert_eq!((hold.after_seconds, hold.rate.as_str()), (20.0, "2Mi"));
    let db = vm("db-01");
    assert_eq!(
        (db.namespace.as_str(), db.memory.as_str()),
        ("prod", "64Gi")
    );
    assert_eq!(db.reserved_memory.as_ref().unwrap().as_str(), "1Gi");
    assert_eq!(vm("app-02").migrate_to.as_deref(), Some("harvester-node-3"));
    assert!(vm("batch-01").no_limit);
    assert_eq!(vm("dev-01").run_strategy, "Halted");
    assert_eq!(s.nodes[0].memory.as_str(), "256Gi");
    // Live cgroup reading: a cgroup v2 node with swap, a sidecar's OOM kill, a swapping VM.
    let lab = s.nodes.iter().find(|n| n.name == "lab-node-1").unwrap();
    assert!(lab.cgroup_v2 && lab.swap);
    assert_eq!(
        vm("console-oom-vm").workload.console_log_oom_after,
        Some(20.0)
    );
    let swap = &vm("swap-vm").workload;
    assert_eq!(
        (
            swap.swap_limit.as_ref().unwrap().as_str(),
            swap.swap_used.as_str()
        ),
        ("512Mi", "200Mi")
    );
}

/// A quantity reads as `serde_yaml` 0.9.34 read it before (recorded from it): strings as
/// written, bare numbers as the text of the number it made of them.
#[test]
fn quantities_read_as_before() {
    let read = |q: &str| {
        Scenario::from_yaml(&format!(
            "nodes: [{{name: n}}]\nvms: [{{name: a, memory: {q}}}]"
        ))
        .map(|s| s.vms[0].memory.as_str().to_string())
    };
    for (written, kept) in [
        ("1Gi", "1Gi"),
        ("512Mi", "512Mi"),
        ("'2Gi'", "2Gi"),
        ("1.5", "1.5"),
        ("\"0.0\"", "0.0"),
        ("0.0", "0.0"),
        ("1.0", "1.0"),
        ("100.10", "100.1"),
        ("1073741824", "1073741824"),
        ("1e3", "1000.0"),
        ("1.5e3", "1500.0"),
        ("12e-1", "1.2"),
        ("1e20", "1e20"),
        (".5", "0.5"),
        ("5.", "5.0"),
        ("+5", "5"),
        ("-0", "0"),
        ("0x10", "16"),
        ("0o17", "15"),
        ("017", "017"),
        ("!!str 5", "5"),
        ("!!int '5'", "5"),
    ] {
        assert_eq!(read(written).unwrap(), kept, "memory: {written}");
    }
    // Text that is no quantity is refused by the check; what is no string or number, by the reader.
    for text in ["yes", "on", "1_000", ".inf"] {
        assert!(
            matches!(read(text), Err(ScenarioError::Invalid(_))),
            "{text}"
        );
    }
    for other in ["true", "~", "[1]", "{a: 1}"] {
        assert!(
            matches!(read(other), Err(ScenarioError::Yaml(_))),
            "{other}"
        );
    }
}

#[test]
fn demo_scenario_meets_the_brief() {
    let s = Scenario::demo().unwrap();
    assert!(s.vms.len() >= 12);
    // Three Harvester nodes and the cgroup v2 lab node.
    assert_eq!(s.nodes.len(), 4);
    assert_eq!(s.flavour, Flavour::Harvester);
    assert_eq!(s.overhead_ratio.as_deref(), Some("1.5"));
    assert!(s.kubevirt_version.starts_with("v1.3"));
    let sizes: Vec<i64> = s.vms.iter().map(|v| v.memory.bytes().unwrap()).collect();
    assert!(sizes.iter().all(|&b| (1 << 30..=64 << 30).contains(&b)));
    assert!(sizes.contains(&(1 << 30)) && sizes.contains(&(64 << 30)));
    assert!(s.vms.iter().any(|v| v.workload.memhold.is_some()));
    assert!(s.vms.iter().any(|v| v.no_limit));
    assert!(s.vms.iter().any(|v| v.run_strategy == "Halted"));
    assert!(s.vms.iter().any(|v| v.migrate_to.is_some()));
    assert!(s.all_namespaces().len() >= 2);
}
