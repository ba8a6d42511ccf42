//! The seam between the dashboard's fix keys and the `fix` module: the dashboard asks a
//! [`FixBackend`] for a plan, shows it, and on confirmation asks it to apply. Both run in the
//! background; their answers come back as actions. Without a backend (`--from` files cannot be
//! changed) the keys say so instead of pretending.

use futures::future::BoxFuture;

use crate::model::recommend::Strategy;
use crate::model::report::VmRow;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixKind {
    /// `f`: apply the recommended reservation with this strategy.
    Reserve(Strategy),
    /// `L`: remove the memory limit (the seed's Solution 2).
    RemoveLimit,
    /// `u`: undo the last change this tool made on the VM.
    Undo,
}

impl FixKind {
    pub fn title(self) -> &'static str {
        match self {
            FixKind::Reserve(_) => "Apply the recommended reservation",
            FixKind::RemoveLimit => "Remove the memory limit",
            FixKind::Undo => "Undo the last change by kubectl vmmem",
        }
    }
}

/// The strategies `f` offers, in the order the strategy key cycles through them.
pub const RESERVE_STRATEGIES: [Strategy; 3] = [
    Strategy::Annotation,
    Strategy::Guest,
    Strategy::AddedOverhead,
];

/// One request to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixRequest {
    pub namespace: String,
    pub name: String,
    pub kind: FixKind,
    /// Restart the VM right after patching (else the change waits for the next restart).
    pub restart: bool,
}

/// One line of the before/after table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLine {
    /// `guest`, `reservedMemory annotation`, `pod limit`, `overhead budget`, …
    pub label: String,
    pub before: String,
    pub after: String,
}

/// A plan as the dialog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanView {
    pub lines: Vec<PlanLine>,
    /// The patch as it will be sent (e.g. a JSON merge patch), verbatim.
    pub patch: String,
    /// Why this change (the recommendation's reason).
    pub reason: String,
    /// Warnings the user must read before confirming.
    pub warnings: Vec<String>,
}

/// The server's answer to an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Applied; the message says what happened (patched, restarted).
    Applied(String),
    /// 409: the VM changed since it was read.
    Conflict(String),
    /// 403, with the server's message.
    Forbidden(String),
    /// Anything else, with the server's message.
    Failed(String),
}

/// Receives one line per step of an apply (e.g. "new VMI running in pod …").
pub type Progress = Box<dyn FnMut(&str) + Send>;

/// Plans and applies fixes ([`super::cluster_fix`] does it with the `fix` module).
pub trait FixBackend: Send + Sync {
    /// Plan a fix for a row (reads the VM as the server has it now). `Err` is a sentence saying
    /// why it cannot be done.
    fn plan(&self, row: VmRow, req: FixRequest) -> BoxFuture<'static, Result<PlanView, String>>;
    /// Apply the plan last shown for this request and report the server's answer; steps of a
    /// restart are reported through `progress` as they happen.
    fn apply(
        &self,
        row: VmRow,
        req: FixRequest,
        progress: Progress,
    ) -> BoxFuture<'static, ApplyOutcome>;
}

/// Shown when a fix key is pressed and there is nothing to fix through (files).
pub const NOT_IN_THIS_BUILD: &str =
    "fixing needs a cluster: --from reads files, which cannot be changed; run the dashboard against the cluster (or --demo)";
