//! Apply, and on a 409 read the VM again and plan again, so the caller (the CLI reports and
//! exits 1; the dashboard shows the new plan) can show what the VM is now. Never retries by
//! itself: the user decides on the new plan.

use super::apply::{apply, Applied, ApplyError, Options};
use super::plan::{plan, Choice, Plan};
use super::read::read_target;
use crate::model::report::ReportOptions;

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
    report_opts: &ReportOptions,
) -> Result<Outcome, ApplyError> {
    match apply(client, planned, opts).await {
        Ok(a) => Ok(Outcome::Applied(a)),
        Err(ApplyError::Conflict(message)) => {
            let fresh =
                match read_target(client, &planned.namespace, &planned.name, report_opts).await {
                    Ok(t) => plan(&t, choice).map(Box::new).map_err(|r| r.to_string()),
                    Err(e) => Err(e.to_string()),
                };
            Ok(Outcome::Conflict { message, fresh })
        }
        Err(e) => Err(e),
    }
}
