//! The pure core: objects, the overhead formula, the memory model, risk and recommendations.

pub mod inventory;
pub mod objects;
pub mod oom_event;
pub mod oom_verdict;
pub mod oom_vm;
pub mod oom_words;
pub mod overhead;
pub mod readings;
pub mod version;
