//! A VM's kernel-log OOM history as `list -o json` shows it, and the note for kills in its
//! sidecars (which leave the VM running: kubevirt#15501).

use serde::{Serialize, Serializer};

use crate::model::oom_event::OomScope;
use crate::model::oom_verdict::OomExplanation;
use crate::model::oom_vm::KillContainer;

/// One kill of a VM's OOM history.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OomHistoryItem<'a> {
    time: Option<&'a str>,
    node: Option<&'a str>,
    pod_uid: Option<&'a str>,
    /// The container of the virt-launcher pod the kill was in, when known.
    container: Option<&'a KillContainer>,
    /// The kill counts against the VM (compute container, or container not known).
    kills_vm: bool,
    /// The processes killed (several with `memory.oom.group`).
    killed: Vec<&'a str>,
    scope: Option<OomScope>,
}

pub(super) fn oom_history_json<S: Serializer>(
    history: &[OomExplanation],
    ser: S,
) -> Result<S::Ok, S::Error> {
    let items: Vec<OomHistoryItem> = history
        .iter()
        .map(|e| OomHistoryItem {
            time: e.event.time.as_deref(),
            node: e.event.node.as_deref(),
            pod_uid: e.event.pod_uid.as_deref(),
            container: e.container.as_ref(),
            kills_vm: e.kills_vm(),
            killed: e.event.victims().map(|v| v.comm.as_str()).collect(),
            scope: e.event.scope,
        })
        .collect();
    items.serialize(ser)
}

/// "the guest-console-log sidecar was OOM-killed 2 times; the VM kept running …", or nothing.
pub(super) fn sidecar_kills_note(history: &[OomExplanation]) -> Option<String> {
    let mut by_container: Vec<(&str, u64)> = Vec::new();
    for c in history
        .iter()
        .filter(|e| e.in_sidecar())
        .filter_map(|e| e.container.as_ref())
    {
        match by_container.iter_mut().find(|(n, _)| *n == c.name) {
            Some((_, k)) => *k += 1,
            None => by_container.push((&c.name, 1)),
        }
    }
    sidecar_note(&by_container, "")
}

/// "the NAME sidecar was OOM-killed N times{whence}; the VM kept running …" for each (container,
/// kills), or nothing when there are none.
pub(super) fn sidecar_note(by_container: &[(&str, u64)], whence: &str) -> Option<String> {
    if by_container.is_empty() {
        return None;
    }
    let parts: Vec<String> = by_container
        .iter()
        .map(|(name, n)| match n {
            1 => format!("the {name} sidecar was OOM-killed once"),
            n => format!("the {name} sidecar was OOM-killed {n} times"),
        })
        .collect();
    Some(format!(
        "{}{whence}; the VM kept running (only a kill in the compute container ends it), so these are not counted in its OOM kills",
        parts.join(", ")
    ))
}
