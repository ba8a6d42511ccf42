//! Work the event loop does on the App's behalf; results come back as actions.

use crate::model::report::VmRow;
use crate::session::dashboard::fix::FixRequest;
use crate::session::dashboard::snapshot::Scope;

#[derive(Debug, Clone)]
pub enum Effect {
    /// Ask the data source for a snapshot now, for this scope.
    Fetch(Scope),
    /// Ask the fix backend for a plan (answer: `Action::Planned`).
    Plan(Box<VmRow>, FixRequest),
    /// Apply a confirmed fix (answer: `Action::Applied`).
    Apply(Box<VmRow>, FixRequest),
}
