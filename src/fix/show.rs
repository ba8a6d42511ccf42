//! A plan as text for people: what changes, the patch, and the warnings. Pure.

use std::fmt::Write;

use super::fields::{shown, ALL_FIELDS};
use super::plan::{Plan, Side};
use crate::escape::{escape, Shown};
use crate::model::evidence::Bound;
use crate::units::{human, to_quantity_string};

fn bytes(b: Option<i64>) -> String {
    match b {
        Some(b) => format!("{} ({b})", human(b)),
        None => "none".into(),
    }
}

/// The plan as an aligned before/after listing.
pub fn plan_text(p: &Plan) -> String {
    let mut out = String::new();
    heading(&mut out, p);
    before_after(&mut out, p);
    match &p.patch {
        Some(patch) => {
            let _ = writeln!(
                out,
                "\n  JSON merge patch of virtualmachine.kubevirt.io/{} -n {}:\n    {}",
                Shown(&p.name),
                Shown(&p.namespace),
                Shown(&serde_json::to_string(patch).unwrap_or_default())
            );
        }
        None => {
            let _ = writeln!(out, "\n  nothing to change");
        }
    }
    if !p.warnings.is_empty() {
        let _ = writeln!(out);
        for w in &p.warnings {
            let _ = writeln!(out, "  warning: {}", Shown(w));
        }
    }
    out
}

/// What the plan does to which VM, why, and the evidence behind a reservation.
fn heading(out: &mut String, p: &Plan) {
    let what = match (p.action, p.strategy, p.reserve_bytes) {
        ("reserve", Some(s), Some(b)) => {
            format!("reserve {} ({})", to_quantity_string(b), s.as_str())
        }
        (a, _, _) => a.to_string(),
    };
    let _ = writeln!(
        out,
        "VirtualMachine {} (resourceVersion {}): {}",
        Shown(&p.vm_ref()),
        Shown(&p.resource_version),
        Shown(&what)
    );
    let _ = writeln!(out, "  why: {}", Shown(&p.reason));
    if p.action != "reserve" {
        return;
    }
    for e in &p.evidence {
        let _ = writeln!(
            out,
            "    evidence: {} outside guest RAM, {} ({}{})",
            human(e.bytes),
            Shown(&e.words()),
            Shown(&e.source),
            match e.bound {
                Bound::Measured => "",
                Bound::Lower => "; at least this much was needed",
                Bound::Upper => "; an upper bound, not used to size",
            }
        );
    }
}

/// The fields and figures before and after, aligned, changed ones marked.
fn before_after(out: &mut String, p: &Plan) {
    let mut rows: Vec<(String, String, String)> = ALL_FIELDS
        .into_iter()
        .map(|f| {
            (
                f.label().to_string(),
                escape(&shown(p.before.fields.get(f))).into_owned(),
                escape(&shown(p.after.fields.get(f))).into_owned(),
            )
        })
        .collect();
    let num = |name: &str, f: fn(&Side) -> Option<i64>| {
        (name.to_string(), bytes(f(&p.before)), bytes(f(&p.after)))
    };
    rows.push(num("guest memory", |s| s.guest_bytes));
    rows.push(num("reserved (limit - guest)", |s| s.reserved_bytes));
    rows.push(num("KubeVirt overhead", |s| Some(s.overhead_bytes)));
    rows.push(num("expected pod limit", |s| s.expected_pod_limit_bytes));
    rows.push(num("overhead budget", |s| s.overhead_budget_bytes));
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(out, "\n    {:w0$}  {:w1$}  AFTER", "FIELD", "BEFORE");
    for (name, before, after) in &rows {
        let mark = if before != after { "*" } else { " " };
        let _ = writeln!(out, "  {mark} {name:w0$}  {before:w1$}  {after}");
    }
    let _ = writeln!(
        out,
        "    (the running pod's compute limit now: {})",
        bytes(p.current_pod_limit_bytes)
    );
}
