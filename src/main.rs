/// On Linux the allocator is jemalloc with one arena (the dashboard's threads take turns, and a
/// refresh's freed pages go back to the system within a second): glibc's per-thread arenas
/// returned only their tops, musl's allocator is slow with threads. Measured in
/// docs/performance.md.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (`_RJEM_MALLOC_CONF` in the environment overrides
/// them): one arena, dirty pages purged by a background thread after a second, none kept as
/// "muzzy".
#[cfg(target_os = "linux")]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &u8 =
    &b"narenas:1,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

/// The command line runs every command; the dashboard is handed to it here, so that `cli/` and
/// `tui/` do not know each other.
fn main() -> std::process::ExitCode {
    vmmem::cli::run(vmmem::tui::run)
}
