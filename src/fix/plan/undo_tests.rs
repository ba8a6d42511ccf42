//! Undo: a fix (or several) then `--undo` gives back the VM byte for byte.

use serde_json::{json, Value};

use super::tests::{applied, bare_vm, harvester_inv, kubevirt_inv, reserve, target, vm, UNDO};
use super::*;
use crate::fix::fields::Fields;
use crate::model::inventory::Inventory;

/// fix, then undo: the VM is what it was, byte for byte (the resourceVersion aside).
fn round_trip(raw: &Value, inv: &Inventory, choices: &[Choice]) {
    let mut cur = raw.clone();
    for c in choices {
        let p = plan(&target(&cur, inv), c).unwrap();
        cur = applied(&cur, &p);
        assert_ne!(&cur, raw, "{c:?} changed nothing");
        assert!(cur["metadata"]["annotations"][keys::UNDO_ANNOTATION].is_string());
    }
    let u = plan(&target(&cur, inv), &UNDO).unwrap();
    assert_eq!(u.action, "undo");
    let back = applied(&cur, &u);
    assert_eq!(&back, raw, "undo patch was {}", u.patch.unwrap());
    // Undo on the original: nothing to do.
    let again = plan(&target(&back, inv), &UNDO).unwrap();
    assert!(!again.has_changes());
    assert!(again.reason.contains("nothing to undo"));
}

#[test]
fn undo_restores_exactly() {
    let hv = harvester_inv();
    let kv = kubevirt_inv("v1.8.0");
    let rl = Choice {
        action: Action::RemoveLimit,
        strategy: None,
    };
    // No annotations at all, no memory object, numbers as JSON numbers.
    round_trip(
        &bare_vm(json!({"resources": {"limits": {"memory": 4294967296u64}}})),
        &kv,
        &[reserve(None, None)],
    );
    round_trip(
        &bare_vm(json!({"resources": {"limits": {"memory": "4Gi"}}})),
        &kv,
        &[reserve(None, Some(Strategy::AddedOverhead))],
    );
    // A second fix keeps the first record; undo goes back to before the first.
    round_trip(
        &vm(
            json!({"other": "x"}),
            json!({"memory": {"guest": "2Gi"}, "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "1365Mi"}}}),
        ),
        &hv,
        &[reserve(None, None), reserve(Some(512 * MI), None), rl],
    );
    round_trip(
        &bare_vm(json!({"resources": {"limits": {"memory": "2G"}, "requests": {"memory": "1G"}}})),
        &kv,
        &[rl],
    );
}

#[test]
fn bad_undo_record_is_refused() {
    let raw = vm(
        json!({keys::UNDO_ANNOTATION: "not json"}),
        json!({"resources": {"limits": {"memory": "4Gi"}}}),
    );
    let e = plan(&target(&raw, &kubevirt_inv("v1.3.0")), &UNDO).unwrap_err();
    assert!(
        e.to_string().contains("is not a record this tool wrote"),
        "{e}"
    );
}

/// Anyone with edit on a VM can write the annotation. A record whose written values the VM does
/// not hold is refused, naming the field; one that matches (planted to look like the tool's)
/// restores, but the plan warns that the limit goes up.
#[test]
fn undo_restores_only_what_the_tool_wrote_and_warns_when_it_raises_a_limit() {
    let kv = kubevirt_inv("v1.3.0");
    let planted = |written_limit: &str| {
        let record = json!({"version": 2, "fields": {"limitsMemory": "64Gi"},
            "written": {"limitsMemory": written_limit}});
        vm(
            json!({keys::UNDO_ANNOTATION: record.to_string()}),
            json!({"resources": {"limits": {"memory": "4Gi"}}}),
        )
    };
    let e = plan(&target(&planted("5Gi"), &kv), &UNDO).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("undo refused")
            && text.contains("resources.limits.memory is 4Gi now, not the 5Gi kubectl vmmem wrote"),
        "{text}"
    );
    let p = plan(&target(&planted("4Gi"), &kv), &UNDO).unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w == "undo raises the memory limit from 4Gi to 64Gi"),
        "{:?}",
        p.warnings
    );

    // A real fix, then someone edits the limit: undo is refused; the tool's own record after
    // a fix holds what it wrote.
    let raw = bare_vm(json!({"resources": {"limits": {"memory": "4Gi"}}}));
    let fixed = applied(
        &raw,
        &plan(&target(&raw, &kv), &reserve(None, None)).unwrap(),
    );
    let record = UndoRecord::stored(&fixed).unwrap().unwrap();
    assert_eq!(record.version, 2);
    assert_eq!(record.written, Some(Fields::read(&fixed)));
    let mut edited = fixed.clone();
    edited["spec"]["template"]["spec"]["domain"]["resources"]["limits"]["memory"] = json!("6Gi");
    let e = plan(&target(&edited, &kv), &UNDO).unwrap_err().to_string();
    assert!(e.contains("is 6Gi now"), "{e}");
    // Untouched, the same record undoes.
    assert_eq!(
        applied(&fixed, &plan(&target(&fixed, &kv), &UNDO).unwrap()),
        raw
    );
}
