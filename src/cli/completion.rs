//! `kubectl vmmem completion`: prints the `kubectl_complete-vmmem` script. kubectl ≥ 1.26 runs
//! that file from PATH to complete `kubectl vmmem …`; krew cannot install it, so users save it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// The script: POSIX sh handing the words to the plugin's hidden `__complete` command. Without
/// the plugin on PATH it answers "no candidates" instead of letting the shell list files.
pub const SCRIPT: &str = r#"#!/bin/sh
# kubectl_complete-vmmem: shell completion for `kubectl vmmem` (kubectl 1.26 or later).
# kubectl runs this file from PATH with the words after `vmmem`; it must be executable and sit
# on PATH, e.g. next to kubectl-vmmem. Written by `kubectl vmmem completion`.
if command -v kubectl-vmmem >/dev/null 2>&1; then
  exec kubectl-vmmem __complete "$@"
fi
echo ":4"
"#;

pub fn run() -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(SCRIPT.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("writing the completion script"),
    }
}
