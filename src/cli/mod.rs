//! Command line: kubectl-style flags and subcommands.

pub mod args;

use std::process::ExitCode;

use clap::Parser;

use crate::session::Options;
use args::{Cli, Command};

/// How the dashboard is run (`tui::run`, handed in by the binary).
pub type Dashboard = fn(&Options) -> anyhow::Result<ExitCode>;

/// Parse the command line, run the command (`top` through `dashboard`), and turn errors into one
/// clear sentence and exit 1.
pub fn run(dashboard: Dashboard) -> ExitCode {
    one_line_panics();
    let argv: Vec<String> = std::env::args().collect();
    // kubectl_complete-vmmem calls `kubectl-vmmem __complete WORDS…`: raw words, not flags to parse.
    if argv.get(1).map(String::as_str) == Some("__complete") {
        return complete_cluster::run(&argv[2..]);
    }
    let cli = match Cli::try_parse_from(args::with_display_name(&argv)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("\n{}", usage_for(&argv));
                    ExitCode::FAILURE
                }
            };
        }
    };
    // `--refresh` is global: a bad value is an error for every command, not only `top`.
    if let Err(e) = options::parse_refresh(&cli.global.refresh) {
        eprintln!("error: {}", crate::escape::Shown(&chain(&e)));
        return ExitCode::FAILURE;
    }
    // The dashboard owns the terminal: its log goes to a file.
    let on_screen = match &cli.command {
        Some(Command::Top(_)) => true,
        None => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        Some(_) => false,
    };
    let sink = if on_screen {
        crate::diag::Sink::File
    } else {
        crate::diag::Sink::Stderr
    };
    if let Err(e) = crate::diag::init(cli.global.verbosity, sink) {
        eprintln!("error: {}", crate::escape::Shown(&e.to_string()));
        return ExitCode::FAILURE;
    }
    match run_command(&cli, dashboard) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::escape::Shown(&chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Run the command; the ones that read a cluster or files get the session's options, built once
/// from the global flags.
fn run_command(cli: &Cli, dashboard: Dashboard) -> anyhow::Result<ExitCode> {
    let opts = || options::options(&cli.global);
    match &cli.command {
        Some(Command::List(list)) => list::run(&opts()?, list),
        Some(Command::Oom(oom)) => oom::run(&opts()?, oom),
        Some(Command::Sim(sim)) => sim::run(sim),
        Some(Command::Fix(fix)) => fix::run(&opts()?, fix),
        Some(Command::Probe(probe)) => probe::run(probe),
        Some(Command::Completion) => completion::run(),
        // The dashboard (`top` has no flags of its own).
        Some(Command::Top(_)) => dashboard(&opts()?),
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => dashboard(&opts()?),
        Some(Command::Agent(agent)) => agent::run(&opts()?, agent),
        None => list::run(&opts()?, &args::ListArgs::default()),
    }
}

/// A bug that panics still ends in one line on stderr (with `RUST_BACKTRACE` set, Rust's own
/// report with the backtrace, for whoever debugs it). Cleanup guards run as the stack unwinds.
fn one_line_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            return default(info);
        }
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let msg = msg.lines().next().unwrap_or_default().to_string();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = crate::escape::Shown(&msg);
        eprintln!("error: internal error in kubectl-vmmem, please report it: {msg}{at}");
    }));
}

/// The usage line of the subcommand named on the command line (or the top level).
fn usage_for(argv: &[String]) -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    let sub = argv.iter().skip(1).find_map(|a| {
        cmd.get_subcommands()
            .find(|s| s.get_name() == a)
            .map(|s| s.get_name().to_string())
    });
    match sub.and_then(|name| cmd.find_subcommand_mut(&name).cloned()) {
        Some(mut s) => s.render_usage().to_string(),
        None => cmd.render_usage().to_string(),
    }
}

/// An error and its causes as one sentence (see [`crate::session::error_chain`]).
pub use crate::session::error_chain as chain;

pub mod agent;
pub mod complete;
pub mod complete_cluster;
pub mod completion;
pub mod fix;
pub mod list;
pub mod oom;
pub mod options;
pub mod probe;
pub mod sim;
