use super::*;

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        samples: samples.to_vec(),
    }
}

#[test]
fn the_contracts_shapes_parse() {
    let q = parse(
        "max by (namespace, pod) (max_over_time(container_memory_working_set_bytes{container=\"compute\",pod=~\"virt-launcher-.*\", namespace!=\"x\",image!~\"\"}[5m]))",
    )
    .unwrap();
    assert_eq!(q.by, ["namespace", "pod"]);
    assert_eq!(q.func, Some((Func::MaxOverTime, 300)));
    assert_eq!(q.metric, "container_memory_working_set_bytes");
    let ops: Vec<MatchOp> = q.matchers.iter().map(|m| m.op).collect();
    assert_eq!(
        ops,
        [
            MatchOp::Equal,
            MatchOp::Regex,
            MatchOp::NotEqual,
            MatchOp::NotRegex
        ]
    );
    let q = parse("max by(namespace,name)(kubevirt_vmi_memory_domain_bytes)").unwrap();
    assert_eq!((q.func, q.matchers.len()), (None, 0));
    let q = parse("max by (pod) (increase(container_oom_events_total{}[1h30m]))").unwrap();
    assert_eq!(q.func, Some((Func::Increase, 5400)));
    let q = parse("max by () (min_over_time(x{a=\"b\\\"c\"}[300s]))").unwrap();
    assert_eq!(q.matchers[0].value, "b\"c");
}

#[test]
fn anything_else_is_unsupported_and_says_what() {
    for q in [
        "sum by (pod) (x)",
        "max(x)",
        "max by (pod) (rate(x[5m]))",
        "max by (pod) (x) + 1",
        "max by (pod) (x{a=~\"(\"})",
        "max by (pod) (max_over_time(x[5q]))",
        "max by (pod) (x{a=\"b\"",
        "",
    ] {
        let e = parse(q).unwrap_err();
        assert!(e.0.starts_with("unsupported query: "), "{q}: {e:?}");
    }
}

#[test]
fn regular_expressions_are_anchored() {
    let q = parse("max by (pod) (x{pod=~\"virt|web\"})").unwrap();
    let m = &q.matchers[0];
    assert!(m.matches("virt") && m.matches("web"));
    assert!(!m.matches("virt-launcher") && !m.matches("aweb"));
}

#[test]
fn max_by_groups_keeps_only_named_nonempty_labels_and_ranges_include_both_ends() {
    let a = series(
        &[("__name__", "x"), ("pod", "p"), ("container", "compute")],
        &[(0, 1.0), (60, 5.0), (120, 2.0)],
    );
    let b = series(
        &[("__name__", "x"), ("pod", "p"), ("container", "")],
        &[(0, 3.0), (60, 4.0), (120, 9.0)],
    );
    let q = parse("max by (pod, container) (max_over_time(x[1m]))").unwrap();
    let rows = q.evaluate(&[a.clone(), b.clone()], 60, 120, 60);
    assert_eq!(rows.len(), 2);
    let pod_level = rows
        .iter()
        .find(|r| !r.labels.contains_key("container"))
        .unwrap();
    assert_eq!(pod_level.points, [(60, 4.0), (120, 9.0)]);
    let compute = rows
        .iter()
        .find(|r| r.labels.contains_key("container"))
        .unwrap();
    assert_eq!(compute.points, [(60, 5.0), (120, 5.0)]);
    let q = parse("max by (pod) (x)").unwrap();
    let rows = q.evaluate(&[a, b], 0, 600, 300);
    // the newest sample within 5 minutes: none left at 600
    assert_eq!(rows[0].points, [(0, 3.0), (300, 9.0)]);
}

#[test]
fn increase_extrapolates_like_prometheus() {
    // A counter going 1 → 2 at 1800 s in an hour of 60 s samples from 60 s on: 59 intervals
    // sampled, extrapolated to the range's start (60 s away: within 1.1 intervals) = 3600/3540.
    let samples: Vec<(i64, f64)> = (0..60)
        .map(|i| (i * 60 + 60, if i * 60 + 60 >= 1800 { 2.0 } else { 1.0 }))
        .collect();
    let q = parse("max by (pod) (increase(c[1h]))").unwrap();
    let rows = q.evaluate(&[series(&[("pod", "p")], &samples)], 3600, 3600, 60);
    let v = rows[0].points[0].1;
    assert!((v - 3600.0 / 3540.0).abs() < 1e-9, "{v}");
    // A reset counts from zero.
    let reset = [(0, 5.0), (60, 6.0), (120, 1.0), (180, 2.0)];
    let rows = q.evaluate(&[series(&[("pod", "p")], &reset)], 180, 180, 60);
    assert!(rows[0].points[0].1 > 3.0);
}

#[test]
fn values_are_written_like_go() {
    assert_eq!(format_value(3_500_000_000.0), "3500000000");
    assert_eq!(format_value(0.5), "0.5");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("5m"), Some(300));
    assert_eq!(parse_duration("1h30m"), Some(5400));
    assert_eq!(parse_duration("7d"), Some(604_800));
    assert_eq!(parse_duration("0s"), None);
    assert_eq!(parse_duration("5"), None);
}
