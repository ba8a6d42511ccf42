//! Pure text → typed values. No I/O here.

pub mod cgroup_path;
pub mod duration;
pub mod kernel_log;
pub mod manifest;
pub mod oom;
pub mod quantity;
