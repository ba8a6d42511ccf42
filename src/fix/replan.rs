//! Apply, and on a 409 read the VM again and plan again, so the CLI can show what the VM is now
//! (and exit 1). The user decides on a new plan; the one retry is when the new plan is the very
//! change the user approved, with the same warnings (the VM changed only where no plan reads it:
//! KubeVirt updates a VM's status, and with it its resourceVersion, while the VM starts).

use super::apply::{apply, Applied, ApplyError, Options};
use super::plan::{plan, Choice, Plan};
use super::read::{read_target_with, Evidence};

#[derive(Debug, Clone)]
pub enum Outcome {
    Applied(Applied),
    /// The VM changed since the plan was made; nothing was applied.
    Conflict {
        /// The server's message.
        message: String,
        /// The plan for the VM as it is now, or why there is none.
        fresh: Result<Box<Plan>, String>,
    },
}

pub async fn apply_or_replan(
    client: &kube::Client,
    planned: &Plan,
    choice: &Choice,
    opts: Options,
    evidence: &Evidence,
) -> Result<Outcome, ApplyError> {
    let message = match apply(client, planned, opts).await {
        Ok(a) => return Ok(Outcome::Applied(a)),
        Err(ApplyError::Conflict(message)) => message,
        Err(e) => return Err(e),
    };
    let fresh = match read_target_with(client, &planned.namespace, &planned.name, evidence).await {
        Ok(t) => plan(&t, choice).map(Box::new).map_err(|r| r.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Some(again) = fresh.as_ref().ok().filter(|p| same_change(planned, p)) {
        return match apply(client, again, opts).await {
            Ok(a) => Ok(Outcome::Applied(a)),
            // Changed again meanwhile: the user looks at it.
            Err(ApplyError::Conflict(message)) => Ok(Outcome::Conflict { message, fresh }),
            Err(e) => Err(e),
        };
    }
    Ok(Outcome::Conflict { message, fresh })
}

/// `fresh` (made from the VM as it is now) makes the same change as `planned`: the same
/// fields before and after, the same patch but for the resourceVersion it carries, and the same
/// warnings and need of a restart (a VM started or stopped meanwhile is not the same change: what
/// the user was told about when it takes effect no longer holds).
pub fn same_change(planned: &Plan, fresh: &Plan) -> bool {
    let without_version = |p: &Plan| {
        p.patch.clone().map(|mut patch| {
            if let Some(meta) = patch.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("resourceVersion");
            }
            patch
        })
    };
    planned.action == fresh.action
        && planned.strategy == fresh.strategy
        && planned.reserve_bytes == fresh.reserve_bytes
        && planned.before == fresh.before
        && planned.after == fresh.after
        && planned.warnings == fresh.warnings
        && planned.restart_needed == fresh.restart_needed
        && planned.patch.is_some()
        && without_version(planned) == without_version(fresh)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::fix::{Action, Target};
    use crate::model::inventory::{Inventory, Readings};
    use crate::model::report::ReportOptions;

    fn vm(rv: &str, guest: &str, phase: &str) -> Value {
        json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns1", "uid": "u1", "resourceVersion": rv},
            "spec": {"runStrategy": "Always", "template": {"spec": {"domain": {
                "memory": {"guest": guest},
                "resources": {"limits": {"memory": "4Gi"}, "requests": {"memory": "4Gi"}}}}}},
            "status": {"printableStatus": phase}})
    }

    fn planned(raw: Value) -> Plan {
        let t = Target::new(
            raw,
            &Inventory::default(),
            &Readings::new(),
            &ReportOptions::default(),
        )
        .unwrap();
        let choice = Choice {
            action: Action::Reserve(Some(768 << 20)),
            strategy: None,
        };
        plan(&t, &choice).unwrap()
    }

    #[test]
    fn a_status_update_leaves_the_same_change_another_edit_does_not() {
        let first = planned(vm("7", "3584Mi", "Starting"));
        assert!(first.patch.is_some());
        // KubeVirt updated the status (a new resourceVersion): the same change.
        let status_only = planned(vm("8", "3584Mi", "Running"));
        assert_ne!(
            first.patch, status_only.patch,
            "the patches carry their versions"
        );
        assert!(same_change(&first, &status_only));
        // Someone changed the guest meanwhile: a different change, for the user to review.
        let edited = planned(vm("9", "3Gi", "Running"));
        assert!(!same_change(&first, &edited));
        // The VM started or stopped meanwhile: other warnings (when the change takes effect).
        let mut started = status_only.clone();
        started.warnings.push("a restart is needed".into());
        assert!(!same_change(&first, &started));
        // A plan with nothing to do is never applied again.
        let mut nothing = first.clone();
        nothing.patch = None;
        assert!(!same_change(&nothing, &nothing.clone()));
    }
}
