use proptest::prelude::*;

use super::*;

/// A Harvester node's Summary as the kubelet serves it (every section it has, including the ones
/// the parser ignores): a virt-launcher pod with a limit, a pod without one, a pod just starting.
const NODE: &str = include_str!("../../../tests/fixtures/kubelet/summary-harvester-node.json");
const LAUNCHER: &str = "6a0ff1f4-3c1e-4d9b-9a55-2f0f8c1d7e21";
const EXPORTER: &str = "0d51a2b3-8f4c-4a10-b6e7-6c2e4d8f9a01";
const STARTING: &str = "c3b4e2d1-1111-4a2b-8c3d-4e5f60718293";

fn wanted(uid: &str) -> Wanted {
    Wanted {
        uid: uid.into(),
        compute_id: Some("3f6d".into()),
    }
}

#[test]
fn a_real_shaped_summary_gives_pod_and_container_counters() {
    let pods = parse(NODE).unwrap();
    assert_eq!(pods.len(), 3);
    let r = readings(
        &pods,
        "harvester-node-1",
        &[wanted(LAUNCHER)],
        1_715_266_354,
    );
    assert_eq!(r.source, LiveSource::Kubelet);
    assert_eq!(r.cgroup_version, CgroupVersion::Unknown);
    // Read at 14:52:34, but the figures are cAdvisor's samples, the oldest of 14:52:23.
    assert_eq!(r.taken_at, 1_715_266_343);
    assert!(r.missing_pods.is_empty());
    let p = &r.pods[0];
    assert_eq!(p.uid, LAUNCHER);
    assert_eq!(p.cgroup.level, CgroupLevel::Pod);
    // limit = availableBytes + workingSetBytes: the pod slice's limit, page-rounded.
    assert_eq!(p.cgroup.limit_bytes, Some(4_636_721_152));
    assert_eq!(p.cgroup.usage_bytes, 4_407_836_672);
    assert_eq!(p.cgroup.working_set_bytes, 4_313_907_200);
    assert_eq!(p.cgroup.stat.anon, Some(4_257_329_152));
    assert_eq!(
        p.cgroup.stat.inactive_file,
        Some(4_407_836_672 - 4_313_907_200)
    );
    // What the kubelet does not report stays unknown.
    assert_eq!(
        (p.cgroup.peak_bytes, p.cgroup.failcnt, p.cgroup.stat.kernel),
        (None, None, None)
    );
    assert!(p.processes.is_empty());
    assert_eq!(p.guest_resident_bytes, None);
    let names: Vec<&str> = p.containers.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let compute = p
        .containers
        .iter()
        .find(|c| c.container_id.as_deref() == Some("3f6d"))
        .expect("the container named compute carries the compute id");
    assert!(compute.path.contains("container compute"));
    assert_eq!(compute.level, CgroupLevel::Container);
    assert_eq!(compute.limit_bytes, Some(4_576_722_944));
    assert_eq!(compute.usage_bytes, 4_398_141_440);
    assert_eq!(compute.working_set_bytes, 4_305_891_328);
    assert_eq!(compute.stat.anon, Some(4_251_004_928));
    let sidecar = p
        .containers
        .iter()
        .find(|c| c.path.contains("guest-console-log"))
        .unwrap();
    assert_eq!(sidecar.limit_bytes, Some(59_998_208));
    assert_eq!(sidecar.container_id, None);
    let disk = p
        .containers
        .iter()
        .find(|c| c.path.contains("volumecontainerdisk"))
        .unwrap();
    assert_eq!(
        (disk.limit_bytes, disk.usage_bytes),
        (None, 0),
        "no availableBytes: no limit"
    );
}

#[test]
fn pods_without_a_limit_or_without_memory() {
    let pods = parse(NODE).unwrap();
    let r = readings(
        &pods,
        "n",
        &[
            wanted(EXPORTER),
            wanted(STARTING),
            wanted("not-on-this-node"),
        ],
        0,
    );
    assert_eq!(r.pods.len(), 1);
    assert_eq!(r.pods[0].uid, EXPORTER);
    assert_eq!(r.pods[0].cgroup.limit_bytes, None);
    assert_eq!(r.pods[0].cgroup.usage_bytes, 31_100_928);
    assert_eq!(r.missing_pods, [STARTING, "not-on-this-node"]);
}

#[test]
fn missing_fields_stay_unknown_and_nothing_goes_below_zero() {
    let text = r#"{"pods": [
        {"podRef": {"name": "a", "namespace": "x", "uid": "u1"},
         "memory": {"usageBytes": 100, "workingSetBytes": 150, "availableBytes": 20}},
        {"podRef": {"name": "b", "namespace": "x", "uid": "u2"}, "memory": {"usageBytes": 7}},
        {"podRef": {"name": "c", "namespace": "x", "uid": "u3"}, "memory": {"workingSetBytes": 7}},
        {"podRef": {"name": "d", "namespace": "x"}, "memory": {"usageBytes": 7}}
    ]}"#;
    let pods = parse(text).unwrap();
    assert_eq!(pods.len(), 3, "a pod without a UID cannot be matched");
    let w: Vec<Wanted> = ["u1", "u2", "u3"]
        .iter()
        .map(|u| Wanted {
            uid: u.to_string(),
            compute_id: None,
        })
        .collect();
    let r = readings(&pods, "n", &w, 0);
    let a = &r.pods[0].cgroup;
    assert_eq!(
        (a.usage_bytes, a.working_set_bytes, a.stat.inactive_file),
        (100, 100, Some(0))
    );
    assert_eq!(a.limit_bytes, Some(120));
    let b = &r.pods[1].cgroup;
    assert_eq!(
        (b.working_set_bytes, b.stat.inactive_file, b.stat.anon),
        (7, None, None)
    );
    assert_eq!(r.missing_pods, ["u3"], "no usage figure: nothing to show");
}

#[test]
fn figures_past_any_memory_size_are_unknown() {
    let text = r#"{"pods": [
        {"podRef": {"name": "a", "namespace": "x", "uid": "u1"},
         "memory": {"usageBytes": 18446744073709551615, "workingSetBytes": 5}},
        {"podRef": {"name": "b", "namespace": "x", "uid": "u2"},
         "memory": {"usageBytes": 100, "workingSetBytes": 90, "rssBytes": 18446744073709551615,
                    "availableBytes": 9007199254740993}}
    ]}"#;
    let pods = parse(text).unwrap();
    let w: Vec<Wanted> = ["u1", "u2"]
        .iter()
        .map(|u| Wanted {
            uid: u.to_string(),
            compute_id: None,
        })
        .collect();
    let r = readings(&pods, "n", &w, 0);
    assert_eq!(r.missing_pods, ["u1"], "a usage of 2^64-1 is no reading");
    let b = &r.pods[0].cgroup;
    assert_eq!((b.usage_bytes, b.working_set_bytes), (100, 90));
    assert_eq!((b.stat.anon, b.limit_bytes), (None, None));
}

#[test]
fn not_a_summary_is_a_clear_error() {
    for bad in ["", "<html>502 Bad Gateway</html>", "{\"pods\": 3}", "[1,2]"] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("kubelet's stats summary"), "{e}");
    }
    assert_eq!(parse("{}").unwrap(), Vec::new());
}

#[test]
fn no_input_makes_it_panic() {
    // Cut the real summary at every point and flip bytes: errors, never panics.
    let bytes = NODE.as_bytes();
    for cut in (0..bytes.len()).step_by(97) {
        if let Ok(s) = std::str::from_utf8(&bytes[..cut]) {
            let _ = parse(s);
        }
    }
    let numbers = NODE.replace("4398141440", "18446744073709551615");
    let pods = parse(&numbers).unwrap();
    let _ = readings(&pods, "n", &[wanted(LAUNCHER)], 0);
    let negative = NODE.replace("4398141440", "-5");
    assert!(parse(&negative).is_err());
}

/// Any memory figures (absent, 0, huge, working set above usage) in any pod and container.
fn memory_json() -> impl Strategy<Value = serde_json::Value> {
    let figure = prop_oneof![
        Just(None),
        any::<u64>().prop_map(Some),
        (0u64..1 << 40).prop_map(Some)
    ];
    (figure.clone(), figure.clone(), figure.clone(), figure).prop_map(|(a, u, w, r)| {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("availableBytes", a),
            ("usageBytes", u),
            ("workingSetBytes", w),
            ("rssBytes", r),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        serde_json::Value::Object(m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn never_panics_on_anything(s in "\\PC*") {
        let _ = parse(&s);
    }

    #[test]
    fn any_figures_give_consistent_counters(
        pods in proptest::collection::vec((memory_json(), proptest::collection::vec(memory_json(), 0..3)), 0..4),
    ) {
        let summary = serde_json::json!({"pods": pods.iter().enumerate().map(|(i, (m, cs))| serde_json::json!({
            "podRef": {"name": format!("p{i}"), "namespace": "x", "uid": format!("u{i}")},
            "memory": m,
            "containers": cs.iter().enumerate().map(|(j, c)| serde_json::json!({"name": if j == 0 { "compute".to_string() } else { format!("c{j}") }, "memory": c})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()});
        let parsed = parse(&summary.to_string()).unwrap();
        let wanted: Vec<Wanted> = (0..pods.len()).map(|i| Wanted { uid: format!("u{i}"), compute_id: None }).collect();
        let r = readings(&parsed, "n", &wanted, 0);
        prop_assert_eq!(r.pods.len() + r.missing_pods.len(), pods.len());
        for c in r.pods.iter().flat_map(|p| std::iter::once(&p.cgroup).chain(&p.containers)) {
            prop_assert!(c.working_set_bytes <= c.usage_bytes);
            prop_assert!(c.stat.inactive_file.is_none_or(|f| f + c.working_set_bytes == c.usage_bytes));
            prop_assert!(c.limit_bytes.is_none_or(|l| l >= c.working_set_bytes));
        }
    }
}

/// A kubelet v1.20 on cgroup v1 (measured on the real node of tests/node) serves a new pod's own
/// figures as zeros until cAdvisor samples the pod cgroup again: the pod's figures are then its
/// containers' sum, with the limit its zeros still say.
#[test]
fn a_pods_unsampled_zeros_are_its_containers_sum() {
    let text = serde_json::json!({"pods": [{"podRef": {"name": "p", "namespace": "vms", "uid": "u1"},
        "memory": {"time": "2026-12-07T15:24:51Z", "availableBytes": 1390116864, "usageBytes": 0,
                   "workingSetBytes": 0, "rssBytes": 0, "pageFaults": 0, "majorPageFaults": 0},
        "containers": [
            {"name": "compute", "memory": {"time": "2026-12-07T15:24:51Z", "availableBytes": 1327865856,
             "usageBytes": 2252800, "workingSetBytes": 2252800, "rssBytes": 1650688}},
            {"name": "guest-console-log", "memory": {"time": "2026-12-07T15:24:50Z", "availableBytes": 57749504,
             "usageBytes": 2248704, "workingSetBytes": 2248704, "rssBytes": 1703936}}]}]})
    .to_string();
    let pods = parse(&text).unwrap();
    let r = readings(&pods, "n", &[wanted("u1")], 1_796_657_105);
    let pod = &r.pods[0].cgroup;
    assert_eq!(pod.usage_bytes, 2_252_800 + 2_248_704);
    assert_eq!(pod.limit_bytes, Some(1_390_116_864));
    assert_eq!(pod.stat.anon, Some(1_650_688 + 1_703_936));
    // 2026-12-07T15:24:50Z, the containers' oldest sample (the zeros' time is no reading's).
    assert_eq!(r.taken_at, 1_796_657_090);
}
