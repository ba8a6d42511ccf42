//! Command line: kubectl-style flags and subcommands.

pub mod args;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Parse the command line, run the command, and turn errors into one clear sentence and exit 1.
pub fn run() -> ExitCode {
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
    if let Err(e) = crate::tui::parse_refresh(&cli.global.refresh) {
        eprintln!("error: {}", chain(&e));
        return ExitCode::FAILURE;
    }
    // The dashboard owns the terminal: its log goes to a file.
    let dashboard = match &cli.command {
        Some(Command::Top(_)) => true,
        None => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        Some(_) => false,
    };
    let sink = if dashboard {
        crate::diag::Sink::File
    } else {
        crate::diag::Sink::Stderr
    };
    if let Err(e) = crate::diag::init(cli.global.verbosity, sink) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Some(Command::List(list)) => crate::cli::list::run(&cli.global, list),
        Some(Command::Oom(oom)) => crate::cli::oom::run(&cli.global, oom),
        Some(Command::Sim(sim)) => crate::cli::sim::run(sim),
        Some(Command::Fix(fix)) => crate::cli::fix::run(&cli.global, fix),
        Some(Command::Probe(probe)) => crate::cli::probe::run(probe),
        Some(Command::Completion) => crate::cli::completion::run(),
        Some(Command::Top(top)) => crate::tui::run(&cli.global, top),
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            crate::tui::run(&cli.global, &args::TopArgs::default())
        }
        Some(Command::Agent(agent)) => crate::cli::agent::run(&cli.global, agent),
        None => crate::cli::list::run(&cli.global, &args::ListArgs::default()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
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

/// An error and its causes as one sentence: "reading x: parsing y: bad z". Each cause gives its
/// first line only (some libraries append source snippets), so the error is always one line.
pub fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        let s = s.lines().next().unwrap_or_default().trim().to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

pub mod agent;
pub mod complete;
pub mod complete_cluster;
pub mod completion;
pub mod fix;
pub mod list;
pub mod node_readings;
pub mod oom;
pub mod probe;
pub mod sim;
pub mod source;
