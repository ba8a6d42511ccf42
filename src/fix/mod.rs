//! `kubectl vmmem fix`: plan a memory reservation (pure), then apply it through the cluster.
//!
//! The dashboard and the CLI share one path: [`read_target`] (or [`Target::new`] from an inventory
//! it already holds) → [`plan()`] → [`apply()`] → [`restart_and_wait`]; the CLI applies through
//! [`apply_or_replan`] (a 409 comes back with the plan for the VM as it is now, or the same
//! change applied again), the dashboard shows a 409 as a conflict. A plan
//! shows before and after of every field it touches and the JSON merge patch of the
//! VirtualMachine (never the VMI or the pod); the patch carries the resourceVersion it was
//! planned from, so a concurrent edit is a conflict, not a lost update. The replaced values go
//! into the tool's own annotation, so `--undo` restores them exactly.

pub mod apply;
pub mod fields;
pub mod merge;
pub mod plan;
pub mod read;
pub mod replan;
pub mod show;
pub mod target;

pub use apply::{apply, restart_and_wait, Applied, ApplyError, Options, Restarted};
pub use plan::{plan, Action, Choice, Plan, Side};
pub use read::{read_objects, read_target, read_target_with, Evidence, ReadError, VmObjects};
pub use replan::{apply_or_replan, Outcome};
pub use target::{FixContext, Refusal, Target};
