fn main() -> std::process::ExitCode {
    vmmem::cli::run()
}
