//! Rendering reports for people (tables) and programs (JSON/YAML).

pub mod oom;
pub mod probe;
pub mod report;
pub mod report_history;
pub mod table;
pub mod yaml;
