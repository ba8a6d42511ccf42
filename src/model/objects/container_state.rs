//! How a container ended (`state`/`lastState` of a pod's container status): kept only for the
//! `terminated` reason, time and exit code, which tell an OOM kill of the VM when no kernel log
//! was read.

use serde::{Deserialize, Serialize};

/// A container's state, kept only when it terminated (its reason says whether it was OOM-killed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
}

impl ContainerState {
    pub fn is_empty(&self) -> bool {
        self.terminated.is_none()
    }
}

/// `state.terminated`: only what tells an OOM kill and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Terminated {
    /// `OOMKilled`, `Error`, `Completed`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339, as the kubelet writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}
