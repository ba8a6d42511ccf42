//! Node data: the probe script, the command line that runs it, running it on this machine, and
//! running it on every node through agent pods.
//!
//! `agent_spec` (what an agent pod is, pure) → `agents` (their lifecycle) → `exec` (one command in
//! one container) → `readers` (a round of readings over all nodes, for `list` and the dashboard).
//! Fallbacks: `kubelet` (the kubelet's stats summary through the node proxy). `smaps_policy`
//! (pure) decides in which rounds qemu's smaps is read. `error`: why a node, an agent or a
//! kernel log gave nothing, as types.

pub mod agent_ns;
pub mod agent_spec;
pub mod agents;
pub mod error;
pub mod exec;
pub mod kubelet;
pub mod local;
pub mod owners;
pub mod probe;
pub mod readers;
pub mod smaps_policy;
pub mod targets;
