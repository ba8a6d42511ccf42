//! kubectl-vmmem: why KubeVirt VMs get OOM-killed, and how much memory to reserve.
//!
//! Data flows one way: `cluster`/`node` → `parse` → `model` → `output`/`tui`/`fix`.
//! `parse` and `model` are pure (no I/O) and take the clock as a value.

pub mod cli;
pub mod cluster;
pub mod diag;
pub mod fix;
pub mod model;
pub mod node;
pub mod output;
pub mod parse;
pub mod sim;
pub mod tui;
