use super::*;
use crate::model::overhead::MI;

const GI: i64 = 1024 * MI;
const H: i64 = 3600;
const T0: i64 = 1_796_000_400; // aligned on the hour

fn series(labels: &[(&str, &str)], points: &[(i64, i64)]) -> Series {
    Series {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        points: points.iter().map(|&(t, v)| (t, v as f64)).collect(),
    }
}

fn pod(ns: &str, pod: &str, points: &[(i64, i64)]) -> Series {
    series(&[("namespace", ns), ("pod", pod)], points)
}

fn window() -> Window {
    Window {
        start: T0,
        end: T0 + 10 * H,
        step: H,
    }
}

fn known(ns: &str, name: &str, guest: i64) -> KnownVm {
    KnownVm {
        key: VmKey::new(ns, name),
        guest_bytes: Some(guest),
        created: Some(T0 - 86_400),
    }
}

#[test]
fn launcher_pods_join_their_vm_across_restarts_and_cut_names() {
    let long = "a-very-long-virtual-machine-name-that-goes-past-the-cut";
    let j = PodJoin::new(&[
        VmKey::new("ns", "db"),
        VmKey::new("ns", "db-2"),
        VmKey::new("ns", long),
    ]);
    assert_eq!(j.vm_of("ns", "virt-launcher-db-abcde").unwrap().name, "db");
    assert_eq!(
        j.vm_of("ns", "virt-launcher-db-2-xyz12").unwrap().name,
        "db-2"
    );
    assert!(j.vm_of("other", "virt-launcher-db-abcde").is_none());
    assert!(j.vm_of("ns", "virt-launcher-dbx-abcde").is_none());
    assert!(j.vm_of("ns", "db-abcde").is_none());
    // Kubernetes cuts generateName's base to 58 characters and adds 5.
    let base = format!("virt-launcher-{long}-");
    let pod_name = format!("{}q7x2z", &base[..58]);
    assert_eq!(pod_name.len(), 63);
    assert_eq!(j.vm_of("ns", &pod_name).unwrap().name, long);
}

#[test]
fn peaks_overhead_kills_and_limit_changes_over_two_pods() {
    let guest = 2 * GI;
    let a = "virt-launcher-db-aaaaa";
    let b = "virt-launcher-db-bbbbb";
    let mut answers = Answers::new();
    answers.insert(
        Metric::Usage,
        Some(vec![
            pod("ns", a, &[(T0 + H, 2200 * MI), (T0 + 2 * H, 2300 * MI)]),
            pod("ns", b, &[(T0 + 3 * H, 2100 * MI), (T0 + 4 * H, 2900 * MI)]),
        ]),
    );
    answers.insert(
        Metric::WorkingSet,
        Some(vec![pod("ns", b, &[(T0 + 4 * H, 2800 * MI)])]),
    );
    // The spike: 702Mi outside the guest at T0+4h in the second pod.
    answers.insert(
        Metric::Rss,
        Some(vec![
            pod(
                "ns",
                a,
                &[(T0 + H, guest + 100 * MI), (T0 + 2 * H, guest + 150 * MI)],
            ),
            pod(
                "ns",
                b,
                &[
                    (T0 + 3 * H, guest + 120 * MI),
                    (T0 + 4 * H, guest + 702 * MI),
                ],
            ),
        ]),
    );
    answers.insert(
        Metric::OomEvents,
        Some(vec![pod("ns", a, &[(T0 + H, 0), (T0 + 2 * H, 1)])]),
    );
    answers.insert(
        Metric::OomKilledReason,
        Some(vec![pod("ns", a, &[(T0 + 3 * H, 1)])]),
    );
    // The second pod's compute container was OOM-killed as it ended (its current state).
    answers.insert(
        Metric::OomKilledState,
        Some(vec![pod("ns", b, &[(T0 + 3 * H, 0), (T0 + 4 * H, 1)])]),
    );
    answers.insert(
        Metric::Limit,
        Some(vec![
            pod("ns", a, &[(T0 + H, 2400 * MI), (T0 + 2 * H, 2400 * MI)]),
            pod("ns", b, &[(T0 + 3 * H, 3000 * MI), (T0 + 4 * H, 3000 * MI)]),
        ]),
    );
    answers.insert(Metric::GuestSize, None);
    let vms = [known("ns", "db", guest), known("ns", "idle", guest)];
    let h = histories(&vms, answers.clone(), &window(), "test-prom", T0 + 10 * H);
    let db = &h[&VmKey::new("ns", "db")];
    assert_eq!(db.pods, vec![a.to_string(), b.to_string()]);
    assert_eq!(
        db.peak_usage,
        Some(PeakAt {
            bytes: 2900 * MI,
            at: T0 + 4 * H
        })
    );
    assert_eq!(db.peak_working_set.unwrap().bytes, 2800 * MI);
    let o = db.peak_overhead.unwrap();
    assert_eq!(
        (o.bytes, o.at, o.bound),
        (702 * MI, T0 + 4 * H, Bound::Lower)
    );
    // The counter's kill and the last-terminated reason's, one step apart, are one kill; the
    // second pod's, two steps later, another.
    assert_eq!(db.oom_kills, vec![T0 + 2 * H, T0 + 4 * H]);
    assert_eq!(
        db.limit_changes,
        vec![LimitChange {
            at: T0 + 3 * H,
            from_bytes: 2400 * MI,
            to_bytes: 3000 * MI
        }]
    );
    assert_eq!(db.chart.len(), 4);
    let e = db.evidence().unwrap();
    assert_eq!(
        (e.kind, e.bytes, e.bound),
        (EvidenceKind::Prometheus, 702 * MI, Bound::Lower)
    );
    assert_eq!(e.at, Some(At::Unix(T0 + 4 * H)));
    let idle = &h[&VmKey::new("ns", "idle")];
    assert!(idle.peak_overhead.is_none() && idle.evidence().is_none());
    assert_eq!(
        idle.note.as_deref(),
        Some("no history: Prometheus has no series of its launcher pods in the last 10 h")
    );
    let v = serde_json::to_value(db).unwrap();
    assert_eq!(v["peakOverhead"]["bound"], "lower");
    assert_eq!(v["peakOverhead"]["at"], rfc3339(T0 + 4 * H));
    assert_eq!(v["stepSeconds"], 3600);
    assert!(v.get("chart").is_none() && v.get("note").is_none());
}

#[test]
fn an_unfilled_guest_is_never_overhead_and_kubevirt_s_guest_size_wins() {
    let mut answers = Answers::new();
    let p = "virt-launcher-web-xxxxx";
    // The guest is 4Gi but only 1Gi of it is touched: RSS below the guest, no overhead figure.
    answers.insert(
        Metric::Rss,
        Some(vec![pod("ns", p, &[(T0 + H, GI), (T0 + 2 * H, 3 * GI)])]),
    );
    let vms = [known("ns", "web", 4 * GI)];
    let h = histories(&vms, answers.clone(), &window(), "p", T0 + 10 * H);
    assert!(h[&VmKey::new("ns", "web")].peak_overhead.is_none());
    // KubeVirt says the domain is 2Gi at T0+2h (hotplugged down): 1Gi outside it then.
    answers.insert(
        Metric::GuestSize,
        Some(vec![series(
            &[("namespace", "ns"), ("name", "web")],
            &[(T0 + 2 * H, 2 * GI)],
        )]),
    );
    let h = histories(&vms, answers.clone(), &window(), "p", T0 + 10 * H);
    assert_eq!(h[&VmKey::new("ns", "web")].peak_overhead.unwrap().bytes, GI);
}

#[test]
fn a_new_vm_says_how_long_ago_it_started() {
    let mut vm = known("ns", "new", GI);
    vm.created = Some(T0 + 8 * H);
    let h = histories(&[vm], Answers::new(), &window(), "p", T0 + 10 * H);
    assert_eq!(
        h[&VmKey::new("ns", "new")].note.as_deref(),
        Some("no history: started 2 h ago (Prometheus has no series of its launcher pod yet)")
    );
    assert_eq!(ago_words(40 * 60), "40 min");
    assert_eq!(ago_words(3 * 86_400), "3 d");
}

/// A week of a 4Gi guest whose compute container is limited to 4Gi + 300Mi (KubeVirt's overhead
/// on a small VM): usage, working set and RSS one point an hour, all below the limit.
fn four_gi_week(p: &str) -> Answers {
    let guest = 4 * GI;
    let limit = guest + 300 * MI;
    let hours: Vec<i64> = (1..=168).map(|i| T0 + i * H).collect();
    let at =
        |f: &dyn Fn(i64) -> i64| -> Vec<(i64, i64)> { hours.iter().map(|&t| (t, f(t))).collect() };
    let ripple = |t: i64| (t / H % 10) * MI;
    let mut answers = Answers::new();
    answers.insert(
        Metric::Usage,
        Some(vec![pod("ns", p, &at(&|t| guest + 220 * MI + ripple(t)))]),
    );
    answers.insert(
        Metric::WorkingSet,
        Some(vec![pod("ns", p, &at(&|t| guest + 180 * MI + ripple(t)))]),
    );
    answers.insert(
        Metric::Rss,
        Some(vec![pod("ns", p, &at(&|t| guest + 150 * MI + ripple(t)))]),
    );
    answers.insert(Metric::Limit, Some(vec![pod("ns", p, &at(&|_| limit))]));
    answers
}

/// Put `bytes` into `metric`'s series at `t` (a point of a broken scrape).
fn poke(answers: &mut Answers, metric: Metric, t: i64, bytes: i64) {
    let s = &mut answers.get_mut(&metric).unwrap().as_mut().unwrap()[0];
    match s.points.iter_mut().find(|(at, _)| *at == t) {
        Some(point) => point.1 = bytes as f64,
        None => s.points.push((t, bytes as f64)),
    }
}

fn week_window() -> Window {
    Window {
        start: T0,
        end: T0 + 168 * H,
        step: H,
    }
}

#[test]
fn a_peak_above_the_limit_then_is_set_aside_and_said_once() {
    let p = "virt-launcher-db-q7x2z";
    let mut answers = four_gi_week(p);
    // Tuesday 03:00 (T0 is Monday 01:00 UTC): a scrape said 791Gi in use, and the RSS with it.
    let tuesday = T0 + 26 * H;
    poke(&mut answers, Metric::Usage, tuesday, 791 * GI);
    poke(&mut answers, Metric::Rss, tuesday, 12 * GI);
    let vms = [known("ns", "db", 4 * GI)];
    let h = &histories(&vms, answers.clone(), &week_window(), "p", T0 + 168 * H)
        [&VmKey::new("ns", "db")];
    assert_eq!(
        h.set_aside.as_deref(),
        Some("Prometheus reports 791GiB in use on Tuesday 2026-12-01 03:00 UTC, above the 4.3GiB limit then: that point is not used (nor is 1 other such point)")
    );
    // The peaks are those the cgroup could have had: the ripple's top (9Mi).
    assert_eq!(h.peak_usage.unwrap().bytes, 4 * GI + 229 * MI);
    let o = h.peak_overhead.unwrap();
    assert_eq!(o.bytes, 159 * MI, "the 12Gi RSS is no overhead");
    assert_ne!(o.at, tuesday);
    assert_eq!(h.evidence().unwrap().bytes, 159 * MI);
    // Nor is it drawn: the chart has no point then (no usage, no overhead), every other hour.
    assert!(h.chart.iter().all(|c| c.at != tuesday));
    assert_eq!(h.chart.len(), 167);
}

#[test]
fn points_near_the_limit_an_unlimited_container_and_a_raised_limit_are_kept() {
    let p = "virt-launcher-db-q7x2z";
    let limit = 4 * GI + 300 * MI;
    let vms = [known("ns", "db", 4 * GI)];
    let peak_of = |answers: &Answers| {
        let h = histories(&vms, answers.clone(), &week_window(), "p", T0 + 168 * H);
        let h = &h[&VmKey::new("ns", "db")];
        (h.peak_usage.unwrap().bytes, h.set_aside.clone())
    };
    // Within a MiB of the limit: two scrapes a moment apart, kept.
    let mut answers = four_gi_week(p);
    poke(&mut answers, Metric::Usage, T0 + 30 * H, limit + 512 * 1024);
    assert_eq!(peak_of(&answers), (limit + 512 * 1024, None));
    // cAdvisor's 0 is "no limit": nothing to compare with.
    let mut answers = four_gi_week(p);
    answers.insert(Metric::Limit, Some(vec![pod("ns", p, &[(T0 + 30 * H, 0)])]));
    poke(&mut answers, Metric::Usage, T0 + 30 * H, 9 * GI);
    assert_eq!(peak_of(&answers), (9 * GI, None));
    // No limit series at all (kube-state-metrics' pod limit is not asked): kept.
    answers.remove(&Metric::Limit);
    assert_eq!(peak_of(&answers), (9 * GI, None));
    // The limit was raised to 6Gi at T0+100h (a restart with a reservation): 5Gi in use after
    // it is real, the same 5Gi before it was not.
    let mut answers = four_gi_week(p);
    for t in 100..=168 {
        poke(&mut answers, Metric::Limit, T0 + t * H, 6 * GI);
    }
    poke(&mut answers, Metric::Usage, T0 + 120 * H, 5 * GI);
    poke(&mut answers, Metric::WorkingSet, T0 + 50 * H, 5 * GI);
    let (peak, said) = peak_of(&answers);
    assert_eq!(peak, 5 * GI);
    assert_eq!(
        said.as_deref(),
        Some("Prometheus reports 5GiB in the working set on Wednesday 2026-12-02 03:00 UTC, above the 4.3GiB limit then: that point is not used")
    );
}
