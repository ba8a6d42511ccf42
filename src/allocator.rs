//! The allocator's options on Linux, where the binary allocates with jemalloc (`src/main.rs`;
//! the scale benchmark's headless dashboard uses the same, so that it measures what ships).
//!
//! One arena: the dashboard's threads take turns, and glibc's per-thread arenas returned only
//! their tops, so the RSS stayed at the highest refresh. Dirty pages go back to the system after
//! a second, by jemalloc's background thread; none are kept as "muzzy". `_RJEM_MALLOC_CONF` in
//! the environment overrides any of them. Measured in docs/performance.md.

/// jemalloc's `malloc_conf`, NUL-terminated.
pub const JEMALLOC_OPTIONS: &[u8] =
    b"narenas:1,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[cfg(target_os = "linux")]
pub use tikv_jemallocator::Jemalloc;

/// jemalloc as the global allocator, with [`JEMALLOC_OPTIONS`], on Linux: `vmmem::jemalloc!();`
/// in a binary's root (the plugin, the scale benchmark).
#[macro_export]
macro_rules! jemalloc {
    () => {
        #[cfg(target_os = "linux")]
        #[global_allocator]
        static ALLOCATOR: $crate::allocator::Jemalloc = $crate::allocator::Jemalloc;

        /// jemalloc reads its options from this symbol before `main`.
        #[cfg(target_os = "linux")]
        #[export_name = "_rjem_malloc_conf"]
        static JEMALLOC_CONF: &u8 = &$crate::allocator::JEMALLOC_OPTIONS[0];
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_options_are_one_c_string() {
        let o = super::JEMALLOC_OPTIONS;
        assert_eq!(o.iter().position(|&b| b == 0), Some(o.len() - 1));
    }
}
