//! Rendering reports for people (tables) and programs (JSON/YAML).

pub mod oom;
