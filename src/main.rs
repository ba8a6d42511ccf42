// On Linux the allocator is jemalloc with the options of `vmmem::allocator` (one arena, freed
// pages back to the system within a second): glibc's per-thread arenas returned only their
// tops, and the static musl release would otherwise use musl's allocator.
vmmem::jemalloc!();

/// The command line runs every command; the dashboard is handed to it here, so that `cli/` and
/// `tui/` do not know each other.
fn main() -> std::process::ExitCode {
    vmmem::cli::run(vmmem::tui::run)
}
