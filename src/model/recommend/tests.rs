//! The one rule as a table over evidence combinations.

use super::*;
use crate::model::evidence::{At, Bound, Evidence, EvidenceKind, Level};
use crate::model::overhead::GI;

/// KubeVirt v1.1.1's O for a 2Gi VM with 2 vCPUs (1365Mi request).
const O_2GI: i64 = 264_939_521;
/// The `guest-console-log` container's limit.
const CONSOLE: i64 = 60_000_000;

fn sizing() -> Sizing {
    Sizing {
        configured: 2 * GI,
        table_applies: true,
        overhead_applied: O_2GI,
        ratio_room: 0,
        sidecars: CONSOLE,
        strategy: Strategy::Annotation,
        has_limit: true,
    }
}

fn ev(kind: EvidenceKind, bytes: i64, bound: Bound, level: Level) -> Evidence {
    Evidence {
        kind,
        bytes,
        at: None,
        source: "test".into(),
        bound,
        level,
    }
}

fn now(bytes: i64) -> Evidence {
    ev(EvidenceKind::Now, bytes, Bound::Measured, Level::Pod)
}

fn kill(bytes: i64, at: &str) -> Evidence {
    let mut e = ev(EvidenceKind::OomKill, bytes, Bound::Lower, Level::Pod);
    e.at = Some(At::Printed(at.into()));
    e
}

#[test]
fn no_evidence_is_the_size_table_alone() {
    let r = recommend(&sizing(), vec![]);
    assert_eq!(r.reserve_bytes, 384 * MI);
    assert_eq!(r.decided_by, DecidedBy::SizeTable);
    assert_eq!(
        r.reason,
        "the size table's 384Mi for VMs of 2Gi to 5Gi alone: no measurement of this VM yet"
    );
    let mut s = sizing();
    s.configured = GI;
    assert_eq!(recommend(&s, vec![]).reserve_bytes, 256 * MI);
    s.configured = 16 * GI;
    assert_eq!(recommend(&s, vec![]).reserve_bytes, 1024 * MI);
}

#[test]
fn small_evidence_leaves_the_table_in_charge_and_says_what_it_needed() {
    let r = recommend(&sizing(), vec![now(45 * MI)]);
    assert_eq!(r.reserve_bytes, 384 * MI);
    assert_eq!(r.decided_by, DecidedBy::SizeTable);
    assert!(
        r.reason.starts_with("the size table's 384Mi for VMs of 2Gi to 5Gi; the worst evidence, the reading now with 45MiB outside guest RAM, needs 0"),
        "{}",
        r.reason
    );
    assert_eq!(r.evidence.len(), 1);
}

#[test]
fn the_oom_kill_decides_when_it_needed_more_than_the_table() {
    // The memhold VM: 710.8MiB outside guest RAM at the kill, measured at the pod slice.
    let bytes = 745_325_363; // 710.8MiB
    let r = recommend(&sizing(), vec![now(45 * MI), kill(bytes, "10166.5")]);
    let need = (bytes * 5 + 3) / 4 - O_2GI - CONSOLE;
    assert_eq!(r.reserve_bytes, round_up(need, STEP));
    assert_eq!(r.reserve_bytes, 640 * MI);
    assert_eq!(r.decided_by, DecidedBy::Evidence(EvidenceKind::OomKill));
    assert!(
        r.reason.starts_with(
            "the OOM kill at 10166 s after boot had 710.8MiB outside guest RAM: x1.25, minus KubeVirt's 252.7MiB and the 57.2MiB of the containers beside compute, needs "
        ),
        "{}",
        r.reason
    );
    assert!(r
        .reason
        .ends_with("above the size table's 384Mi for VMs of 2Gi to 5Gi"));
    // The recommendation exceeds what the kill needed.
    assert!(r.reserve_bytes + O_2GI + CONSOLE > bytes);
}

#[test]
fn the_largest_need_decides_not_the_largest_bytes() {
    // 700Mi at the container level needs more than 720Mi at the pod level (the console log's
    // 60M is room only where it shares the limit).
    let container = ev(
        EvidenceKind::SessionPeak,
        700 * MI,
        Bound::Measured,
        Level::Container,
    );
    let pod = ev(EvidenceKind::History, 720 * MI, Bound::Measured, Level::Pod);
    let r = recommend(&sizing(), vec![pod, container]);
    assert_eq!(r.decided_by, DecidedBy::Evidence(EvidenceKind::SessionPeak));
    assert_eq!(r.reserve_bytes, round_up(700 * MI * 5 / 4 - O_2GI, STEP));
}

#[test]
fn an_upper_bound_is_listed_but_never_decides() {
    let peak = ev(EvidenceKind::CgroupPeak, 3 * GI, Bound::Upper, Level::Pod);
    let r = recommend(&sizing(), vec![peak]);
    assert_eq!(r.reserve_bytes, 384 * MI);
    assert_eq!(r.decided_by, DecidedBy::SizeTable);
    assert_eq!(r.evidence.len(), 1);
    assert!(r.reason.contains("alone"), "{}", r.reason);
}

#[test]
fn the_overhead_ratio_counts_as_room_against_the_table() {
    // Harvester v1.4+, ratio 1.5: O before the ratio 250Mi → applied 375Mi, room 125Mi.
    let mut s = sizing();
    s.overhead_applied = 375 * MI;
    s.ratio_room = 125 * MI;
    let r = recommend(&s, vec![]);
    assert_eq!(r.reserve_bytes, 320 * MI); // 384 − 125 = 259Mi → 320Mi
    assert!(
        r.reason.starts_with(
            "the size table's 384Mi for VMs of 2Gi to 5Gi less the 125MiB the overhead ratio already adds (259Mi)"
        ),
        "{}",
        r.reason
    );
    // A ratio that adds more than the table leaves nothing to reserve without evidence.
    s.ratio_room = 500 * MI;
    assert_eq!(recommend(&s, vec![]).reserve_bytes, 0);
    // Evidence is compared with O as applied (the ratio already inside it).
    let r = recommend(&s, vec![now(600 * MI)]);
    assert_eq!(
        r.reserve_bytes,
        round_up(750 * MI - 375 * MI - CONSOLE, STEP)
    );
}

#[test]
fn hugepage_guests_get_no_table_value() {
    let mut s = sizing();
    s.table_applies = false;
    s.sidecars = 0;
    s.overhead_applied = 200 * MI;
    let r = recommend(&s, vec![]);
    assert_eq!(r.reserve_bytes, 0);
    let r = recommend(&s, vec![now(300 * MI)]);
    assert_eq!(r.reserve_bytes, 192 * MI); // 375 − 200 = 175Mi → 192Mi
}

#[test]
fn never_below_zero_and_never_overflows() {
    let mut s = sizing();
    s.configured = 0;
    s.overhead_applied = 10 * GI;
    s.ratio_room = 10 * GI;
    let r = recommend(&s, vec![now(MI)]);
    assert_eq!(r.reserve_bytes, 0);
    let r = recommend(&sizing(), vec![now(i64::MAX)]);
    assert!(r.reserve_bytes > 0);
    assert_eq!(r.reserve_bytes % STEP, 0);
}

#[test]
fn no_limit_says_so_first() {
    let mut s = sizing();
    s.has_limit = false;
    let r = recommend(&s, vec![]);
    assert!(
        r.reason.starts_with(
            "no memory limit, so no cgroup OOM kill; if a limit is set: the size table's"
        ),
        "{}",
        r.reason
    );
}

#[test]
fn json_names_the_evidence_and_what_decided() {
    let r = recommend(&sizing(), vec![kill(800 * MI, "10166.5")]);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["decidedBy"], "oom-kill");
    assert_eq!(v["evidence"][0]["kind"], "oom-kill");
    assert_eq!(v["evidence"][0]["bytes"], 800 * MI);
    assert_eq!(v["evidence"][0]["at"], "10166.5");
    let r = recommend(&sizing(), vec![]);
    assert_eq!(serde_json::to_value(&r).unwrap()["decidedBy"], "size-table");
}

#[test]
fn rounding() {
    assert_eq!(round_up(0, STEP), 0);
    assert_eq!(round_up(1, STEP), 64 * MI);
    assert_eq!(round_up(64 * MI, STEP), 64 * MI);
    assert_eq!(round_up(-5, STEP), 0);
    assert_eq!(Strategy::auto(true), Strategy::Annotation);
    assert_eq!(Strategy::auto(false), Strategy::Guest);
}
