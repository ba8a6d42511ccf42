//! The pure core: objects, the overhead formula, the memory model, risk and recommendations.

pub mod auto_limits;
pub mod evidence;
pub mod harvester;
pub mod hotplug;
pub mod instancetype;
pub mod inventory;
pub mod join;
pub mod memory;
pub mod objects;
pub mod oom_event;
pub mod oom_explanation;
pub mod oom_verdict;
pub mod oom_vm;
pub mod oom_words;
pub mod overhead;
pub mod peaks;
pub mod phase;
pub mod readings;
pub mod recommend;
pub mod report;
pub mod sidecars;
pub mod spec;
pub mod string_map;
pub mod trend;
pub mod version;
