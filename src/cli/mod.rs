//! Command line: kubectl-style flags and subcommands.

pub mod args;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Parse the command line, run the command, and turn errors into one clear sentence and exit 1.
pub fn run() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(args::with_display_name(&argv)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::FAILURE,
            };
        }
    };
    let result = match &cli.command {
        Some(Command::List(list)) => crate::cli::list::run(&cli.global, list),
        Some(Command::Sim(sim)) => crate::cli::sim::run(sim),
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

/// An error and its causes as one sentence: "reading x: parsing y: bad z".
pub fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

pub mod list;
pub mod sim;
