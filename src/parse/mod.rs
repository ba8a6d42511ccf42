//! Pure text → typed values. No I/O here.

pub mod cgroup_path;
pub mod duration;
pub mod kernel_log;
pub mod kubelet_summary;
pub mod manifest;
pub mod oom;
pub mod probe;
pub mod prometheus;
pub mod yaml;
pub mod yaml_depth;
