//! The fix keys through the `fix` module: read the VM as the server has it, plan (pure), show
//! the plan, and on confirmation send exactly that plan's patch (it carries the resourceVersion,
//! so a VM changed in between is a conflict), then restart and wait when asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::fix::{ApplyOutcome, FixBackend, FixKind, FixRequest, PlanLine, PlanView, Progress};
use crate::fix::fields::{shown, ALL_FIELDS};
use crate::fix::{self as fixmod, ApplyError, Choice, Plan};
use crate::model::evidence::VmKey;
use crate::model::phase::VmPhase;
use crate::model::report::Flag;
use crate::model::report::{ReportOptions, VmRow};
use crate::units::human;

/// Where the cluster source leaves its client once connected.
pub type ClientSlot = Arc<Mutex<Option<kube::Client>>>;

/// How long a restart may take before the dialog says so.
const RESTART_TIMEOUT: Duration = Duration::from_secs(300);

/// The plan last shown per VM (namespace, name), with the request it answered.
type Shown = Arc<Mutex<HashMap<(String, String), (FixRequest, Plan)>>>;

pub struct ClusterFix {
    client: ClientSlot,
    opts: ReportOptions,
    shown: Shown,
}

impl ClusterFix {
    pub fn new(client: ClientSlot, opts: ReportOptions) -> ClusterFix {
        ClusterFix {
            client,
            opts,
            shown: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn client(&self) -> Result<kube::Client, String> {
        self.client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| "not connected to the cluster yet".to_string())
    }
}

fn choice(kind: FixKind) -> Choice {
    match kind {
        FixKind::Reserve(s) => Choice {
            action: fixmod::Action::Reserve(None),
            strategy: Some(s),
        },
        FixKind::RemoveLimit => Choice {
            action: fixmod::Action::RemoveLimit,
            strategy: None,
        },
        FixKind::Undo => Choice {
            action: fixmod::Action::Undo,
            strategy: None,
        },
    }
}

fn size(b: Option<i64>) -> String {
    b.map(human).unwrap_or_else(|| "none".into())
}

/// The plan as the dialog shows it: every field that changes, then what KubeVirt makes of it.
pub fn view(p: &Plan) -> PlanView {
    let mut lines: Vec<PlanLine> = ALL_FIELDS
        .into_iter()
        .filter(|f| p.before.fields.get(*f) != p.after.fields.get(*f))
        .map(|f| PlanLine {
            label: f.label().to_string(),
            before: shown(p.before.fields.get(f)),
            after: shown(p.after.fields.get(f)),
        })
        .collect();
    for (label, before, after) in [
        ("guest", p.before.guest_bytes, p.after.guest_bytes),
        (
            "reserved (limit − guest)",
            p.before.reserved_bytes,
            p.after.reserved_bytes,
        ),
        (
            "pod limit",
            p.current_pod_limit_bytes
                .or(p.before.expected_pod_limit_bytes),
            p.after.expected_pod_limit_bytes,
        ),
        (
            "overhead budget",
            p.before.overhead_budget_bytes,
            p.after.overhead_budget_bytes,
        ),
    ] {
        lines.push(PlanLine {
            label: label.into(),
            before: size(before),
            after: size(after),
        });
    }
    // The planner already says when a restart is needed; the dialog's restart line says
    // whether it happens now.
    let warnings = p.warnings.clone();
    PlanView {
        lines,
        patch: match &p.patch {
            Some(patch) => serde_json::to_string(patch).unwrap_or_else(|e| e.to_string()),
            None => "(nothing to change)".into(),
        },
        reason: p.reason.clone(),
        warnings,
    }
}

fn outcome(e: &ApplyError) -> ApplyOutcome {
    match e {
        ApplyError::Conflict(m) => ApplyOutcome::Conflict(m.clone()),
        ApplyError::Forbidden(m) => ApplyOutcome::Forbidden(m.clone()),
        other => ApplyOutcome::Failed(other.to_string()),
    }
}

impl FixBackend for ClusterFix {
    fn plan(&self, row: VmRow, req: FixRequest) -> BoxFuture<'static, Result<PlanView, String>> {
        let client = self.client();
        // The evidence the dashboard holds for this VM (its readings, peaks and OOM kills), so
        // the plan recommends what the row shows.
        let mut opts = self.opts.clone();
        opts.evidence.insert(
            VmKey::new(&row.namespace, &row.name),
            row.recommendation.evidence.clone(),
        );
        let shown = self.shown.clone();
        Box::pin(async move {
            let client = client?;
            let target = fixmod::read_target(&client, &row.namespace, &row.name, &opts)
                .await
                .map_err(|e| e.to_string())?;
            let plan = fixmod::plan(&target, &choice(req.kind)).map_err(|r| r.to_string())?;
            let v = view(&plan);
            if let Ok(mut m) = shown.lock() {
                m.insert((req.namespace.clone(), req.name.clone()), (req, plan));
            }
            Ok(v)
        })
    }

    fn apply(
        &self,
        row: VmRow,
        req: FixRequest,
        mut progress: Progress,
    ) -> BoxFuture<'static, ApplyOutcome> {
        let client = self.client();
        let plan = self.shown.lock().ok().and_then(|m| {
            m.get(&(req.namespace.clone(), req.name.clone()))
                .filter(|(r, _)| r.kind == req.kind)
                .map(|(_, p)| p.clone())
        });
        Box::pin(async move {
            let client = match client {
                Ok(c) => c,
                Err(e) => return ApplyOutcome::Failed(e),
            };
            let Some(plan) = plan else {
                return ApplyOutcome::Failed("no plan was shown for this change".into());
            };
            let mut said = Vec::new();
            if plan.has_changes() {
                match fixmod::apply(&client, &plan, fixmod::Options::default()).await {
                    Ok(applied) => {
                        said.push(format!("virtualmachine.kubevirt.io/{} patched", plan.name));
                        said.extend(applied.differences);
                    }
                    Err(e) => return outcome(&e),
                }
            } else {
                said.push("nothing to change".into());
            }
            let restart = req.restart && (plan.has_changes() || row.has_flag(Flag::RestartPending));
            if restart && row.phase != VmPhase::Stopped {
                progress(&format!("patched; restarting {}", plan.vm_ref()));
                let mut step = |line: &str| progress(line);
                match fixmod::restart_and_wait(&client, &plan, RESTART_TIMEOUT, &mut step).await {
                    Ok(r) if r.matches_plan => said.push(format!(
                        "restarted: pod {} has the planned memory limit {}",
                        r.pod,
                        size(r.pod_limit_bytes)
                    )),
                    Ok(r) => said.push(format!(
                        "restarted, but pod {}'s memory limit is {}, not the planned {}",
                        r.pod,
                        size(r.pod_limit_bytes),
                        size(plan.after.expected_pod_limit_bytes)
                    )),
                    Err(e) => {
                        return ApplyOutcome::Failed(format!(
                            "{}; restarting: {e}",
                            said.join("; ")
                        ))
                    }
                }
            } else if plan.restart_needed {
                said.push("it takes effect at the next restart".into());
            }
            ApplyOutcome::Applied(said.join("; "))
        })
    }
}
