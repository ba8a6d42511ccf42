//! The service layer between the command line / dashboard and the cluster: typed [`Options`]
//! built once from the flags, the one pipeline that produces a report's inputs (objects, node
//! readings, the kernel logs' OOM history) for `list` ([`inputs::report_once`]), the
//! dashboard's repeated rounds ([`dashboard`]) and `fix` ([`fix::fix_target`]), the node-reading
//! hub and agent lifecycle behind them, and the signals that end a session.
//!
//! `cli/` parses flags into [`Options`] and prints; `tui/` holds state, draws and turns keys into
//! effects; everything that talks to the cluster on their behalf is here.

pub mod dashboard;
pub mod fix;
pub mod inputs;
pub mod options;
pub mod peaks;
pub mod prometheus;
pub mod readings;
pub mod signals;
pub mod source;

pub use inputs::{report_once, ReportInputs};
pub use options::{Namespaces, Objects, Options, ReportSettings};

/// An error and its causes as one sentence: "reading x: parsing y: bad z". Each cause gives its
/// first line only (some libraries append source snippets), so the error is always one line.
pub fn error_chain(e: &anyhow::Error) -> String {
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
