//! Rendering reports for people (tables) and programs (JSON/YAML).

pub mod oom;
pub mod probe;
pub mod report;
pub mod table;
pub mod yaml;
