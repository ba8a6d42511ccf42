//! The pure core: objects, the overhead formula, the memory model, risk and recommendations.

pub mod inventory;
pub mod objects;
pub mod oom_event;
pub mod overhead;
pub mod readings;
pub mod version;
