use serde_json::json;

use super::*;
use crate::resources::{NODES, PODS};

fn store_with_pods(names: &[(&str, &str)]) -> Store {
    let mut s = Store::new();
    for (ns, name) in names {
        let labels = json!({"app": if name.ends_with('x') { "x" } else { "y" }});
        s.create(
            &PODS,
            json!({"metadata": {"namespace": ns, "name": name, "labels": labels}}),
            "t",
        )
        .unwrap();
    }
    s.compact();
    s
}

fn names(p: &Page) -> Vec<String> {
    p.items
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn all() -> (LabelSelector, FieldSelector) {
    (
        LabelSelector::parse("").unwrap(),
        FieldSelector::parse("").unwrap(),
    )
}

fn limit(n: usize) -> ListParams {
    ListParams {
        limit: n,
        ..ListParams::default()
    }
}

fn next(p: &Page, n: usize) -> ListParams {
    ListParams {
        limit: n,
        continue_token: p.continue_token.clone(),
        ..ListParams::default()
    }
}

#[test]
fn pages_follow_etcd_key_order_with_counts_and_tokens() {
    // etcd orders "a-b/…" before "a/…" ('-' < '/').
    let mut s = store_with_pods(&[
        ("a", "p1"),
        ("a", "p2"),
        ("a-b", "p3"),
        ("b", "p4"),
        ("b", "p5"),
    ]);
    let (l, f) = all();
    let p1 = list(&mut s, &PODS, None, &l, &f, &limit(2)).unwrap();
    assert_eq!(names(&p1), ["a-b/p3", "a/p1"]);
    assert_eq!(p1.remaining, Some(3));
    let token = p1.continue_token.clone().unwrap();
    let decoded: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
    assert_eq!(
        decoded,
        json!({"v": "meta.k8s.io/v1", "rv": p1.resource_version, "start": "a/p1\u{0}"})
    );
    let p2 = list(&mut s, &PODS, None, &l, &f, &next(&p1, 2)).unwrap();
    assert_eq!(names(&p2), ["a/p2", "b/p4"]);
    assert_eq!(p2.remaining, Some(1));
    assert_eq!(p2.resource_version, p1.resource_version);
    let p3 = list(&mut s, &PODS, None, &l, &f, &next(&p2, 2)).unwrap();
    assert_eq!(names(&p3), ["b/p5"]);
    assert_eq!((p3.continue_token.as_deref(), p3.remaining), (None, None));
    // Exactly the limit: no token.
    let whole = list(&mut s, &PODS, None, &l, &f, &limit(5)).unwrap();
    assert_eq!(
        (whole.items.len(), whole.continue_token.as_deref()),
        (5, None)
    );
}

#[test]
fn namespaced_lists_use_keys_relative_to_the_namespace() {
    let mut s = store_with_pods(&[("a", "p1"), ("a", "p2"), ("a", "p3"), ("ab", "q")]);
    let (l, f) = all();
    let p1 = list(&mut s, &PODS, Some("a"), &l, &f, &limit(2)).unwrap();
    assert_eq!(names(&p1), ["a/p1", "a/p2"]);
    assert_eq!(p1.remaining, Some(1));
    let t: Token = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(p1.continue_token.as_deref().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(t.start, "p2\u{0}");
    let p2 = list(&mut s, &PODS, Some("a"), &l, &f, &next(&p1, 2)).unwrap();
    assert_eq!(names(&p2), ["a/p3"]);
    assert!(p2.continue_token.is_none());
}

#[test]
fn later_pages_show_the_list_as_of_the_first_page() {
    let mut s = store_with_pods(&[("a", "p1"), ("a", "p2"), ("a", "p3")]);
    let (l, f) = all();
    let p1 = list(&mut s, &PODS, None, &l, &f, &limit(1)).unwrap();
    // Changes after the first page: one deleted, one added, one modified.
    s.delete(&PODS, "a", "p2");
    s.create(
        &PODS,
        json!({"metadata": {"namespace": "a", "name": "p25"}}),
        "t",
    )
    .unwrap();
    assert!(s.set_field(&PODS, "a", "p3", "status", json!({"phase": "Running"})));
    let mut seen = names(&p1);
    let mut p = p1.clone();
    while p.continue_token.is_some() {
        p = list(&mut s, &PODS, None, &l, &f, &next(&p, 1)).unwrap();
        assert_eq!(p.resource_version, p1.resource_version);
        seen.extend(names(&p));
        if p.continue_token.is_none() {
            assert!(p.items[0]["status"].is_null(), "p3 as it was");
        }
    }
    assert_eq!(seen, ["a/p1", "a/p2", "a/p3"]);
    // A new list sees the changes.
    let now = list(&mut s, &PODS, None, &l, &f, &limit(10)).unwrap();
    assert_eq!(names(&now), ["a/p1", "a/p25", "a/p3"]);
    assert!(now.resource_version > p1.resource_version);
}

#[test]
fn a_compacted_token_gets_410_with_a_token_at_the_newest_version() {
    let mut s = store_with_pods(&[("a", "p1"), ("a", "p2"), ("a", "p3")]);
    let (l, f) = all();
    let p1 = list(&mut s, &PODS, None, &l, &f, &limit(1)).unwrap();
    s.create(
        &PODS,
        json!({"metadata": {"namespace": "a", "name": "p0"}}),
        "t",
    )
    .unwrap();
    s.compact();
    let Err(ListError::ContinueExpired { continue_token }) =
        list(&mut s, &PODS, None, &l, &f, &next(&p1, 1))
    else {
        panic!("expected 410")
    };
    let (start, rv) = decode_token(&continue_token).unwrap();
    assert_eq!((start.as_str(), rv), ("a/p1\u{0}", -1));
    // The fresh token continues at the newest version (p0 sorts before p1: not seen).
    let rest = list(
        &mut s,
        &PODS,
        None,
        &l,
        &f,
        &ListParams {
            limit: 10,
            continue_token: Some(continue_token),
            ..ListParams::default()
        },
    )
    .unwrap();
    assert_eq!(names(&rest), ["a/p2", "a/p3"]);
    assert_eq!(rest.resource_version, s.resource_version());
}

#[test]
fn unchanged_types_continue_without_a_snapshot() {
    // A token whose snapshot was dropped still works while the type has not changed since.
    let mut s = store_with_pods(&[("a", "p1"), ("a", "p2")]);
    let (l, f) = all();
    let p1 = list(&mut s, &PODS, None, &l, &f, &limit(1)).unwrap();
    s.create(&NODES, json!({"metadata": {"name": "n1"}}), "t")
        .unwrap();
    for _ in 0..SNAPSHOT_CHURN {
        s.create(
            &NODES,
            json!({"metadata": {"name": format!("n{}", rand::random::<u64>())}}),
            "t",
        )
        .unwrap();
        let _ = s.snapshot(&NODES);
    }
    let p2 = list(&mut s, &PODS, None, &l, &f, &next(&p1, 1)).unwrap();
    assert_eq!(names(&p2), ["a/p2"]);
}

const SNAPSHOT_CHURN: usize = 40;

#[test]
fn selectors_drop_the_remaining_count_and_may_end_with_an_empty_page() {
    let mut s = store_with_pods(&[("a", "p1x"), ("a", "p2"), ("a", "p3x"), ("a", "p4")]);
    let l = LabelSelector::parse("app=x").unwrap();
    let f = FieldSelector::parse("").unwrap();
    let p1 = list(&mut s, &PODS, None, &l, &f, &limit(1)).unwrap();
    assert_eq!(names(&p1), ["a/p1x"]);
    assert_eq!(p1.remaining, None);
    let p2 = list(&mut s, &PODS, None, &l, &f, &next(&p1, 1)).unwrap();
    assert_eq!(names(&p2), ["a/p3x"]);
    assert!(p2.continue_token.is_some(), "p4 was not looked at yet");
    let p3 = list(&mut s, &PODS, None, &l, &f, &next(&p2, 1)).unwrap();
    assert!(p3.items.is_empty() && p3.continue_token.is_none());
}

#[test]
fn resource_versions_and_bad_tokens() {
    let mut s = store_with_pods(&[("a", "p1"), ("a", "p2"), ("a", "p3")]);
    let (l, f) = all();
    let rv = s.resource_version();
    let err = |r: Result<Page, ListError>| match r {
        Err(ListError::Api(e)) => (e.code, e.reason, e.message),
        other => panic!("expected an API error, got {other:?}"),
    };
    // resourceVersion=0 is the watch cache: the limit is ignored.
    let cached = ListParams {
        limit: 1,
        resource_version: "0".into(),
        ..ListParams::default()
    };
    let p = list(&mut s, &PODS, None, &l, &f, &cached).unwrap();
    assert_eq!((p.items.len(), p.continue_token.as_deref()), (3, None));
    // Continue plus a resourceVersion.
    let p1 = list(&mut s, &PODS, None, &l, &f, &limit(1)).unwrap();
    let mut both = next(&p1, 1);
    both.resource_version = rv.to_string();
    let (code, _, msg) = err(list(&mut s, &PODS, None, &l, &f, &both));
    assert_eq!(code, 400);
    assert!(msg.contains("specifying resource version is not allowed when using continue"));
    // Garbage and path tricks.
    for bad in [
        "!!!".to_string(),
        encode_token(0, "a/p1\u{0}"),
        encode_token(5, ""),
        encode_token(5, "../secrets/x"),
    ] {
        let p = ListParams {
            limit: 1,
            continue_token: Some(bad.clone()),
            ..ListParams::default()
        };
        let (code, _, msg) = err(list(&mut s, &PODS, None, &l, &f, &p));
        assert_eq!(code, 400, "{bad}");
        assert!(msg.contains("continue key is not valid"), "{msg}");
    }
    // An exact version in the future, and one compacted away.
    let future = ListParams {
        limit: 1,
        resource_version: (rv + 10).to_string(),
        ..ListParams::default()
    };
    assert_eq!(err(list(&mut s, &PODS, None, &l, &f, &future)).0, 504);
    s.create(
        &PODS,
        json!({"metadata": {"namespace": "a", "name": "p0"}}),
        "t",
    )
    .unwrap();
    s.compact();
    let old = ListParams {
        limit: 1,
        resource_version: rv.to_string(),
        ..ListParams::default()
    };
    assert_eq!(err(list(&mut s, &PODS, None, &l, &f, &old)).0, 410);
    // Not older than: the newest.
    let nolder = ListParams {
        resource_version: rv.to_string(),
        version_match: "NotOlderThan".into(),
        ..ListParams::default()
    };
    let p = list(&mut s, &PODS, None, &l, &f, &nolder).unwrap();
    assert_eq!(
        (p.items.len(), p.resource_version),
        (4, s.resource_version())
    );
}
