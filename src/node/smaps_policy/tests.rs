use super::*;
use crate::model::readings::{
    CgroupCounters, CgroupLevel, CgroupVersion, LiveSource, ProcessReading,
};

const MIB: u64 = 1 << 20;
const G: u64 = 2048 * MIB;

fn pod(uid: &str, qemu_pid: u32, qemu_rss: u64, guest_resident: Option<u64>) -> PodReading {
    PodReading {
        uid: uid.into(),
        cgroup: CgroupCounters::empty(CgroupLevel::Pod),
        guest_resident_bytes: guest_resident,
        guest_hugetlb_bytes: None,
        usage_after_smaps_bytes: None,
        guest_grown_since_bytes: None,
        guest_resident_taken_at: None,
        containers: Vec::new(),
        processes: vec![
            ProcessReading {
                pid: 10,
                comm: "virt-launcher".into(),
                rss_anon_bytes: 60 * MIB,
                rss_file_bytes: 0,
                rss_shmem_bytes: 0,
                container_id: None,
            },
            ProcessReading {
                pid: qemu_pid,
                comm: "qemu-system-x86".into(),
                rss_anon_bytes: qemu_rss,
                rss_file_bytes: 0,
                rss_shmem_bytes: 0,
                container_id: None,
            },
        ],
    }
}

fn node(taken_at: i64, pods: Vec<PodReading>) -> NodeReadings {
    NodeReadings {
        node: "n1".into(),
        cgroup_version: CgroupVersion::V1,
        kernel: "6.1".into(),
        source: LiveSource::Agent,
        taken_at,
        pods,
        missing_pods: Vec::new(),
    }
}

fn asked(uid: &str) -> HashMap<String, Vec<u64>> {
    HashMap::from([(uid.to_string(), vec![G])])
}

const POLICY: SmapsPolicy = SmapsPolicy {
    every: 3,
    rss_moved: 64 * MIB,
};

#[test]
fn first_round_is_exact_then_every_nth() {
    let mut m = GuestMemory::default();
    assert!(m.wants_smaps(&POLICY, "a", &[G], 0), "first round");
    let mut r = node(100, vec![pod("a", 7, 900 * MIB, Some(700 * MIB))]);
    m.absorb(&mut r, &asked("a"), 0);
    assert_eq!(r.pods[0].guest_resident_taken_at, None, "measured now");
    for round in 1..3 {
        assert!(!m.wants_smaps(&POLICY, "a", &[G], round), "round {round}");
        let mut r = node(100 + 2 * round as i64, vec![pod("a", 7, 910 * MIB, None)]);
        m.absorb(&mut r, &HashMap::new(), round);
        let p = &r.pods[0];
        assert_eq!(p.guest_resident_bytes, Some(700 * MIB), "carried");
        assert_eq!(p.guest_resident_taken_at, Some(100), "marked as carried");
    }
    assert!(m.wants_smaps(&POLICY, "a", &[G], 3), "every 3rd round");
}

#[test]
fn qemu_rss_moving_past_the_threshold_reads_again() {
    let mut m = GuestMemory::default();
    let mut r = node(100, vec![pod("a", 7, 900 * MIB, Some(700 * MIB))]);
    m.absorb(&mut r, &asked("a"), 0);
    let mut r = node(102, vec![pod("a", 7, 900 * MIB + 64 * MIB, None)]);
    m.absorb(&mut r, &HashMap::new(), 1);
    assert!(
        !m.wants_smaps(&POLICY, "a", &[G], 2),
        "moved exactly the threshold"
    );
    let mut r = node(104, vec![pod("a", 7, 900 * MIB + 65 * MIB, None)]);
    m.absorb(&mut r, &HashMap::new(), 2);
    assert!(m.wants_smaps(&POLICY, "a", &[G], 2), "moved past it");
    // Shrinking counts as moving too.
    let mut m = GuestMemory::default();
    let mut r = node(100, vec![pod("a", 7, 900 * MIB, Some(700 * MIB))]);
    m.absorb(&mut r, &asked("a"), 0);
    let mut r = node(102, vec![pod("a", 7, 800 * MIB, None)]);
    m.absorb(&mut r, &HashMap::new(), 1);
    assert!(m.wants_smaps(&POLICY, "a", &[G], 2));
}

#[test]
fn a_new_qemu_or_new_sizes_are_never_carried_over() {
    let mut m = GuestMemory::default();
    let mut r = node(100, vec![pod("a", 7, 900 * MIB, Some(700 * MIB))]);
    m.absorb(&mut r, &asked("a"), 0);
    assert!(m.wants_smaps(&POLICY, "a", &[G, 512 * MIB], 1), "hotplug");
    // qemu restarted (new PID) in a round that skipped smaps: nothing carried, next round exact.
    let mut r = node(102, vec![pod("a", 8, 100 * MIB, None)]);
    m.absorb(&mut r, &HashMap::new(), 1);
    assert_eq!(r.pods[0].guest_resident_bytes, None);
    assert!(m.wants_smaps(&POLICY, "a", &[G], 2));
}

#[test]
fn no_sizes_no_smaps_and_an_unmeasured_pod_is_asked_again() {
    let mut m = GuestMemory::default();
    assert!(
        !m.wants_smaps(&POLICY, "a", &[], 0),
        "hugepages: nothing to scan"
    );
    // smaps read but no guest mapping found: ask again next round.
    let mut r = node(100, vec![pod("a", 7, 900 * MIB, None)]);
    m.absorb(&mut r, &asked("a"), 0);
    assert!(m.wants_smaps(&POLICY, "a", &[G], 1));
}

#[test]
fn gone_pods_are_forgotten_and_every_one_reads_each_round() {
    let mut m = GuestMemory::default();
    let mut r = node(
        100,
        vec![
            pod("a", 7, 900 * MIB, Some(700 * MIB)),
            pod("b", 9, 900 * MIB, Some(600 * MIB)),
        ],
    );
    let mut both = asked("a");
    both.extend(asked("b"));
    m.absorb(&mut r, &both, 0);
    m.retain(["a"]);
    assert!(!m.wants_smaps(&POLICY, "a", &[G], 1));
    assert!(m.wants_smaps(&POLICY, "b", &[G], 1), "forgotten");
    let every_round = SmapsPolicy { every: 1, ..POLICY };
    assert!(m.wants_smaps(&every_round, "a", &[G], 1));
}

/// A carried guest figure may be short by what qemu grew since, never more: a leak in another
/// process of the pod beside a guest that fills fast is not excused as the guest's growth, and
/// qemu's growth past the guest's unfilled part is qemu's own.
#[test]
fn the_guest_may_have_grown_only_by_what_qemu_grew() {
    let mut m = GuestMemory::default();
    let mut r = node(100, vec![pod("a", 7, 1000 * MIB, Some(900 * MIB))]);
    m.absorb(&mut r, &asked("a"), 0);
    // The guest filled 300MiB a second between the first two exact readings.
    let mut r = node(102, vec![pod("a", 7, 1600 * MIB, Some(1500 * MIB))]);
    m.absorb(&mut r, &asked("a"), 1);
    // Ten seconds on, qemu grew 40MiB: that is all the carried figure can be short by.
    let mut r = node(112, vec![pod("a", 7, 1640 * MIB, None)]);
    m.absorb(&mut r, &HashMap::new(), 2);
    assert_eq!(r.pods[0].guest_grown_since_bytes, Some(40 * MIB));
    // qemu grew by more than the guest had left to fill (548MiB of 2GiB): capped there.
    let mut r = node(114, vec![pod("a", 7, 2400 * MIB, None)]);
    m.absorb(&mut r, &HashMap::new(), 3);
    assert_eq!(r.pods[0].guest_grown_since_bytes, Some(G - 1500 * MIB));
}
