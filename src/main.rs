/// On Linux the allocator is jemalloc with the options of `vmmem::allocator` (one arena, freed
/// pages back to the system within a second): glibc's per-thread arenas returned only their
/// tops, and the static musl release would otherwise use musl's allocator.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol before `main`.
#[cfg(target_os = "linux")]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &u8 = &vmmem::allocator::JEMALLOC_OPTIONS[0];

/// The command line runs every command; the dashboard is handed to it here, so that `cli/` and
/// `tui/` do not know each other.
fn main() -> std::process::ExitCode {
    vmmem::cli::run(vmmem::tui::run)
}
