use super::*;
use crate::model::overhead::{ProcessConstants, MI};
use crate::model::readings::{CgroupLevel, MemoryStat};
use crate::model::version::Version;

fn counters(
    level: CgroupLevel,
    id: Option<&str>,
    limit: Option<u64>,
    usage: u64,
    inactive_file: u64,
) -> CgroupCounters {
    CgroupCounters {
        level,
        path: String::new(),
        container_id: id.map(std::sync::Arc::from),
        limit_bytes: limit,
        usage_bytes: usage,
        working_set_bytes: usage - inactive_file,
        peak_bytes: None,
        failcnt: None,
        oom_kills: 0,
        oom_group_kills: None,
        swap_bytes: None,
        swap_limit_bytes: None,
        stat: MemoryStat {
            inactive_file: Some(inactive_file),
            ..Default::default()
        },
    }
}

fn proc_(comm: &str, anon_mi: u64, id: &str) -> ProcessReading {
    ProcessReading {
        pid: 1,
        comm: comm.into(),
        rss_anon_bytes: anon_mi * MI as u64,
        rss_file_bytes: 0,
        rss_shmem_bytes: 0,
        container_id: Some(id.into()),
    }
}

fn budgets() -> Budgets {
    Budgets {
        constants: Some(ProcessConstants::for_version(Version::new(1, 1, 1))),
        page_tables: 2_795_521,
        qemu_extra: 40 * MI,
    }
}

/// The seed's Harvester v1.1 VM: 2Gi limit, guest 1948Mi, pod slice 2,472,419,328 bytes,
/// usage 341,094,400, inactive file 1,978,368, max usage 341,999,616.
fn seed_reading(guest_resident: Option<u64>) -> PodReading {
    let mut pod = counters(
        CgroupLevel::Pod,
        None,
        Some(2_472_419_328),
        341_094_400,
        1_978_368,
    );
    pod.peak_bytes = Some(341_999_616);
    let compute = counters(
        CgroupLevel::Container,
        Some("fd57"),
        Some(2_412_421_120),
        330_000_000,
        1_900_000,
    );
    PodReading {
        uid: "99ee3a64-645b-4699-9384-5a3875d78b41".into(),
        cgroup: pod,
        guest_resident_bytes: guest_resident,
        guest_resident_taken_at: None,
        guest_hugetlb_bytes: None,
        usage_after_smaps_bytes: None,
        guest_grown_since_bytes: None,
        containers: vec![compute],
        processes: vec![
            proc_("virt-launcher-m", 20, "fd57"),
            proc_("virt-launcher", 60, "fd57"),
            proc_("virtqemud", 30, "fd57"),
            proc_("virtlogd", 15, "fd57"),
            proc_("qemu-system-x86", 180, "fd57"),
        ],
    }
}

#[test]
fn seed_vm_numbers_follow_the_formulas() {
    let guest = 1948 * MI;
    let r = seed_reading(Some(150 * MI as u64));
    let m = evaluate(guest, &r, Some("fd57"), &budgets());
    // Both levels: the compute container has the smaller headroom here.
    let pod_used = (341_094_400 - 1_978_368) - 150 * MI;
    let ct_used = (330_000_000 - 1_900_000) - 150 * MI;
    let pod_headroom = 2_472_419_328 - (guest + pod_used);
    let ct_headroom = 2_412_421_120 - (guest + ct_used);
    assert!(ct_headroom < pod_headroom);
    assert_eq!(m.counters.level, CgroupLevel::Container);
    assert_eq!(m.overhead_used, ct_used);
    assert_eq!(m.budget, Some(2_412_421_120 - guest));
    assert_eq!(m.projected_peak, guest + ct_used);
    assert_eq!(m.headroom, Some(ct_headroom));
    assert!(m.guest_resident_exact);
    // The breakdown adds up to the chosen cgroup's usage.
    assert_eq!(
        m.breakdown.iter().map(|c| c.bytes).sum::<i64>(),
        330_000_000
    );
    let qemu = m
        .breakdown
        .iter()
        .find(|c| c.name.as_str() == "qemu")
        .unwrap();
    assert_eq!(qemu.bytes, 30 * MI);
    assert_eq!(qemu.budget_bytes, Some(70 * MI));
    let vq = m
        .breakdown
        .iter()
        .find(|c| c.name.as_str() == "virtqemud")
        .unwrap();
    assert_eq!(vq.budget_bytes, Some(35 * MI));
}

#[test]
fn without_smaps_guest_resident_is_estimated_from_qemu() {
    let r = seed_reading(None);
    let m = evaluate(1948 * MI, &r, None, &budgets());
    assert!(!m.guest_resident_exact);
    assert_eq!(m.guest_resident, 180 * MI);
    // compute container found through the qemu process.
    assert_eq!(m.counters.container_id.as_deref(), Some("fd57"));
}

#[test]
fn no_limit_means_no_budget_or_headroom() {
    let mut r = seed_reading(Some(0));
    r.cgroup.limit_bytes = None;
    r.containers[0].limit_bytes = None;
    let m = evaluate(1948 * MI, &r, None, &budgets());
    assert_eq!(m.budget, None);
    assert_eq!(m.headroom, None);
    assert_eq!(m.counters.level, CgroupLevel::Pod);
}

#[test]
fn oom_kills_count_descendants_and_peak_overhead() {
    let mut r = seed_reading(Some(100 * MI as u64));
    r.containers[0].oom_kills = 1;
    r.containers[0].peak_bytes = Some(400 * MI as u64);
    let m = evaluate(1948 * MI, &r, Some("fd57"), &budgets());
    assert_eq!(m.oom_kills, 1);
    assert_eq!(m.peak_overhead, Some(300 * MI));
}

#[test]
fn overshooting_parts_are_taken_back_from_file_and_kernel() {
    let mut r = seed_reading(Some(0));
    r.containers.clear();
    r.cgroup.usage_bytes = 100 * MI as u64;
    r.cgroup.stat.file = Some(50 * MI as u64);
    let m = evaluate(GI_TEST, &r, None, &budgets());
    assert_eq!(m.breakdown.iter().map(|c| c.bytes).sum::<i64>(), 100 * MI);
    assert!(m.breakdown.iter().all(|c| c.bytes >= 0));
}

const GI_TEST: i64 = 1024 * MI;

/// What the kubelet's summary gives for the seed's VM: counters with anon (RSS) and working set,
/// no processes, no smaps.
fn kubelet_reading(compute_rss: u64) -> PodReading {
    let mut r = seed_reading(None);
    r.processes.clear();
    r.cgroup.stat.anon = Some(compute_rss + 4 * MI as u64);
    r.containers[0].stat.anon = Some(compute_rss);
    r
}

#[test]
fn without_processes_guest_is_estimated_from_the_compute_containers_rss() {
    let guest = 1948 * MI;
    let m = evaluate(
        guest,
        &kubelet_reading(305 * MI as u64),
        Some("fd57"),
        &budgets(),
    );
    assert!(!m.guest_resident_exact);
    assert_eq!(m.guest_resident, 305 * MI, "min(compute RSS, guest)");
    assert_eq!(m.counters.container_id.as_deref(), Some("fd57"));
    // Compute RSS above the guest size: capped at the guest.
    let m = evaluate(
        200 * MI,
        &kubelet_reading(305 * MI as u64),
        None,
        &budgets(),
    );
    assert_eq!(m.guest_resident, 200 * MI);
}

#[test]
fn without_processes_the_breakdown_names_only_what_is_known_and_adds_up() {
    let m = evaluate(
        1948 * MI,
        &kubelet_reading(305 * MI as u64),
        Some("fd57"),
        &budgets(),
    );
    let names: Vec<&str> = m.breakdown.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["guest", "other", "file"], "no per-process parts");
    let get = |n: &str| {
        m.breakdown
            .iter()
            .find(|c| c.name.as_str() == n)
            .unwrap()
            .bytes
    };
    assert_eq!(get("guest"), 305 * MI);
    assert_eq!(get("file"), 1_900_000, "usage − working set");
    assert_eq!(get("other"), 330_000_000 - 1_900_000 - 305 * MI);
    assert_eq!(
        m.breakdown.iter().map(|c| c.bytes).sum::<i64>(),
        330_000_000
    );
    assert!(m.breakdown.iter().all(|c| c.bytes >= 0));
    // A guest estimate above what is not page cache is cut so the parts still add up.
    let mut r = kubelet_reading(329 * MI as u64);
    r.containers[0].usage_bytes = 300 * MI as u64;
    r.containers[0].working_set_bytes = 290 * MI as u64;
    let m = evaluate(1948 * MI, &r, Some("fd57"), &budgets());
    assert_eq!(m.breakdown.iter().map(|c| c.bytes).sum::<i64>(), 300 * MI);
    assert!(
        m.breakdown.iter().all(|c| c.bytes >= 0),
        "{:?}",
        m.breakdown
    );
}

#[test]
fn a_carried_exact_guest_resident_says_when_it_was_measured() {
    let mut r = seed_reading(Some(150 * MI as u64));
    r.guest_resident_taken_at = Some(1_700_000_000);
    let m = evaluate(1948 * MI, &r, Some("fd57"), &budgets());
    assert!(m.guest_resident_exact);
    assert_eq!(m.guest_resident, 150 * MI);
    assert_eq!(m.guest_resident_taken_at, Some(1_700_000_000));
}

/// LimitedSwap (cgroup v2): a Burstable compute container with 256Mi of swap allowed, 100Mi of
/// it in use; the pod slice has no swap limit of its own. The container is killed only when its
/// memory and its swap are full: its headroom counts the 156Mi of swap left, and the pod slice's
/// too (its pages are the containers').
#[test]
fn headroom_counts_the_swap_left_where_swap_is_allowed() {
    let guest = 1948 * MI;
    let plain = evaluate(
        guest,
        &seed_reading(Some(150 * MI as u64)),
        Some("fd57"),
        &budgets(),
    );
    let mut r = seed_reading(Some(150 * MI as u64));
    r.containers[0].swap_bytes = Some(100 * MI as u64);
    r.containers[0].swap_limit_bytes = Some(256 * MI as u64);
    r.cgroup.swap_bytes = Some(100 * MI as u64);
    let m = evaluate(guest, &r, Some("fd57"), &budgets());
    assert_eq!(m.swap_room, 156 * MI);
    assert_eq!(m.counters.level, CgroupLevel::Container);
    assert_eq!(m.headroom, plain.headroom.map(|h| h + 156 * MI));
    // No swap allowed (NoSwap, Guaranteed pods: swap.max 0): no room, whatever is in use.
    r.containers[0].swap_limit_bytes = Some(0);
    let m = evaluate(guest, &r, Some("fd57"), &budgets());
    assert_eq!((m.swap_room, m.headroom), (0, plain.headroom));
    // Unlimited swap (no limit read): the node's swap is not known, no room is counted.
    r.containers[0].swap_limit_bytes = None;
    assert_eq!(
        evaluate(guest, &r, Some("fd57"), &budgets()).headroom,
        plain.headroom
    );
}

/// A guest figure carried from an earlier round while the guest grew by 600Mi since: a headroom
/// below 0 by less than that growth may be nothing but the growth; below it by more, it is a
/// real overrun.
#[test]
fn a_negative_headroom_within_the_guests_growth_is_not_an_overrun_on_its_own() {
    let guest = 1948 * MI;
    let mut r = seed_reading(Some(150 * MI as u64));
    r.guest_resident_taken_at = Some(1_700_000_000);
    r.guest_grown_since_bytes = Some(600 * MI as u64);
    // Usage 400Mi up: the headroom goes negative by about 9Mi.
    r.containers[0].usage_bytes += 400 * MI as u64;
    r.cgroup.usage_bytes += 400 * MI as u64;
    let m = evaluate(guest, &r, Some("fd57"), &budgets());
    assert!(m.headroom.unwrap() < 0, "{:?}", m.headroom);
    assert!(m.guest_skew.filling());
    assert!(m.overrun_is_guest_growth());
    // Grown by only 10Mi: not filling, the overrun stands.
    r.guest_grown_since_bytes = Some(10 * MI as u64);
    let m = evaluate(guest, &r, Some("fd57"), &budgets());
    assert!(!m.guest_skew.filling() && !m.overrun_is_guest_growth());
    // Grown by 64Mi but the overrun is 1Gi past that: a persistent overrun, not the growth.
    r.guest_grown_since_bytes = Some(64 * MI as u64);
    r.containers[0].usage_bytes += 1024 * MI as u64;
    let m = evaluate(guest, &r, Some("fd57"), &budgets());
    assert!(m.guest_skew.filling() && !m.overrun_is_guest_growth());
}

/// The probe's usage after the smaps scan: the guest grew into the guest figure after the
/// counters were read, so the overhead is low by up to that much, never falsely high.
#[test]
fn growth_during_the_smaps_scan_is_measured_from_the_usage_read_after_it() {
    let mut r = seed_reading(Some(150 * MI as u64));
    r.usage_after_smaps_bytes = Some(341_094_400 + 200 * MI as u64);
    let s = GuestSkew::of(&r);
    assert_eq!((s.grown_since, s.grew_during_read), (0, 200 * MI));
    assert!(s.filling());
    let m = evaluate(1948 * MI, &r, Some("fd57"), &budgets());
    assert!(
        !m.overrun_is_guest_growth(),
        "an under-estimate never excuses an overrun"
    );
}
