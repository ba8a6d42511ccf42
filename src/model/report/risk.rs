//! How close a VM is to a cgroup OOM kill, in one word.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Critical,
    Warn,
    Unknown,
    Ok,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Critical => "critical",
            Risk::Warn => "warn",
            Risk::Unknown => "unknown",
            Risk::Ok => "ok",
        }
    }
}
