//! Node data: the probe script, the command line that runs it, and running it on this machine.
//!
//! The agent-pod path (exec through the API server) builds its command with
//! [`probe::exec_command`] and parses what comes back with [`crate::parse::probe::parse`].

pub mod local;
pub mod probe;
