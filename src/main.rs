/// The command line runs every command; the dashboard is handed to it here, so that `cli/` and
/// `tui/` do not know each other.
fn main() -> std::process::ExitCode {
    vmmem::cli::run(vmmem::tui::run)
}
