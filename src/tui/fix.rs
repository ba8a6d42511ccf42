//! The seam between the dashboard's fix keys and the `fix` module: the dashboard asks a
//! [`FixBackend`] for a plan (pure), shows it, and on confirmation asks it to apply (network).
//! Without a backend the keys say so instead of pretending.

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

/// Plans and applies fixes; implemented by the `fix` module.
pub trait FixBackend: Send + Sync {
    /// Plan a fix for a row (pure: no I/O). `Err` is a sentence saying why it cannot be done.
    fn plan(&self, row: &VmRow, req: &FixRequest) -> Result<PlanView, String>;
    /// Apply it against the cluster and report the server's answer.
    fn apply(&self, row: VmRow, req: FixRequest) -> BoxFuture<'static, ApplyOutcome>;
}

/// Shown when a fix key is pressed and no backend is plugged in.
pub const NOT_IN_THIS_BUILD: &str =
    "fixing from the dashboard needs the fix module, not in this build; see `kubectl vmmem list` for the recommendation";
