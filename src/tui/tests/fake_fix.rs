//! A test double of the fix backend: plans from the row's own numbers and answers applies with
//! a chosen outcome, recording what it was asked.

use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::model::report::VmRow;
use crate::session::dashboard::fix::{
    ApplyOutcome, FixBackend, FixKind, FixRequest, PlanLine, PlanView, Progress,
};
use crate::units::to_quantity_string;

pub struct FakeFix {
    pub answer: ApplyOutcome,
    pub applied: Mutex<Vec<FixRequest>>,
}

impl FakeFix {
    pub fn new(answer: ApplyOutcome) -> FakeFix {
        FakeFix {
            answer,
            applied: Mutex::new(Vec::new()),
        }
    }
}

fn q(b: Option<i64>) -> String {
    b.map(to_quantity_string).unwrap_or_else(|| "none".into())
}

fn h(b: Option<i64>) -> String {
    b.map(crate::units::human).unwrap_or_else(|| "none".into())
}

impl FakeFix {
    fn plan_now(&self, row: &VmRow, req: &FixRequest) -> Result<PlanView, String> {
        match req.kind {
            FixKind::Reserve(s) => {
                let reserve = row.recommendation.reserve_bytes;
                let limit = row.vm_limit_bytes.ok_or("the VM has no memory limit")?;
                let guest_after = limit - reserve;
                let budget_after = row
                    .pod_limit_bytes
                    .map(|p| p - guest_after);
                Ok(PlanView {
                    lines: vec![
                        PlanLine {
                            label: "guest".into(),
                            before: q(row.guest_bytes),
                            after: to_quantity_string(guest_after),
                        },
                        PlanLine {
                            label: "reservedMemory".into(),
                            before: q(row.reserved_bytes),
                            after: to_quantity_string(reserve),
                        },
                        PlanLine {
                            label: "pod limit".into(),
                            before: h(row.pod_limit_bytes),
                            after: h(row.pod_limit_bytes),
                        },
                        PlanLine {
                            label: "overhead budget".into(),
                            before: h(row.overhead_budget_bytes),
                            after: h(budget_after),
                        },
                    ],
                    patch: format!(
                        "{{\"metadata\":{{\"annotations\":{{\"harvesterhci.io/reservedMemory\":\"{}\"}}}}}}\n(strategy {})",
                        to_quantity_string(reserve),
                        s.as_str()
                    ),
                    reason: row.recommendation.reason.clone(),
                    warnings: vec![],
                })
            }
            FixKind::RemoveLimit => Ok(PlanView {
                lines: vec![PlanLine {
                    label: "VM limit".into(),
                    before: q(row.vm_limit_bytes),
                    after: "none".into(),
                }],
                patch: "[{\"op\":\"remove\",\"path\":\"/spec/template/spec/domain/resources/limits/memory\"}]".into(),
                reason: "as asked".into(),
                warnings: vec![],
            }),
            FixKind::Undo => Err(format!(
                "kubectl vmmem has not changed {}/{} (no record of a previous change)",
                row.namespace, row.name
            )),
        }
    }
}

impl FixBackend for FakeFix {
    fn plan(&self, row: VmRow, req: FixRequest) -> BoxFuture<'static, Result<PlanView, String>> {
        let plan = self.plan_now(&row, &req);
        Box::pin(async move { plan })
    }

    fn apply(
        &self,
        _row: VmRow,
        req: FixRequest,
        mut progress: Progress,
    ) -> BoxFuture<'static, ApplyOutcome> {
        progress("patch sent");
        if let Ok(mut a) = self.applied.lock() {
            a.push(req);
        }
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}
