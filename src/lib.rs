//! kubectl-vmmem: why KubeVirt VMs get OOM-killed, and how much memory to reserve.
//!
//! Data flows one way: `cluster`/`node` → `parse` → `model` → `session` → `output`/`tui`/`fix`,
//! with `cli` on top. `units`, `parse` and `model` are pure (no I/O) and take the clock as a
//! value. `session` is the service layer: the one place the command line and the dashboard get
//! their data from. Which folder may use which is checked by `layering` (a test).

pub mod allocator;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod diag;
pub mod escape;
pub mod fix;
pub mod history;
pub mod model;
pub mod node;
pub mod output;
pub mod parse;
pub mod session;
pub mod tui;
pub mod units;

#[cfg(test)]
mod layering;
