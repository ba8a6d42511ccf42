//! Running the probe on this machine: `kubectl vmmem probe --local` (a node over ssh when the API
//! server is down), the real-kernel tests and the benchmark.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::readings::{LiveSource, NodeReadings};
use crate::node::probe::{exec_command, ProbeSettings, ProbeTarget};
use crate::parse::probe::{parse, ProbeError};

/// Why a local probe gave no readings.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot run sh: {0}")]
    Spawn(#[from] std::io::Error),
    #[error(transparent)]
    Probe(ProbeError),
    #[error("the probe exited with {status}: {detail}")]
    Failed { status: String, detail: String },
}

/// What one run of the script printed, and how long it took.
#[derive(Debug, Clone)]
pub struct LocalRun {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    pub status: String,
    pub wall: Duration,
}

/// Run `sh -c probe.sh` here for `targets` (none: every pod found) and return its raw output.
pub fn run_script(
    targets: &[ProbeTarget],
    settings: &ProbeSettings,
) -> Result<LocalRun, LocalError> {
    run_script_with(&["sh"], targets, settings)
}

/// The same with another shell, e.g. `["busybox", "sh"]` (tests run the script under both).
pub fn run_script_with(
    shell: &[&str],
    targets: &[ProbeTarget],
    settings: &ProbeSettings,
) -> Result<LocalRun, LocalError> {
    let argv = exec_command(targets, settings);
    let (program, shell_args) = shell.split_first().unwrap_or((&"sh", &[]));
    let start = Instant::now();
    let out = Command::new(program)
        .args(shell_args)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()?;
    Ok(LocalRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
        status: out.status.to_string(),
        wall: start.elapsed(),
    })
}

/// Probe this machine and parse the result into readings (source `local`).
pub fn probe(
    targets: &[ProbeTarget],
    settings: &ProbeSettings,
    node: &str,
    taken_at: i64,
) -> Result<NodeReadings, LocalError> {
    let run = run_script(targets, settings)?;
    readings(&run, node, taken_at)
}

/// The readings in a run's output; a failed run says why in one sentence.
pub fn readings(run: &LocalRun, node: &str, taken_at: i64) -> Result<NodeReadings, LocalError> {
    match parse(&run.stdout) {
        Ok(out) => Ok(out.into_readings(node, LiveSource::Local, taken_at)),
        Err(e @ ProbeError::Node(_)) => Err(LocalError::Probe(e)),
        Err(e) if run.success => Err(LocalError::Probe(e)),
        Err(e) => {
            let stderr = run.stderr.trim();
            Err(LocalError::Failed {
                status: run.status.clone(),
                detail: if stderr.is_empty() {
                    e.to_string()
                } else {
                    stderr.chars().take(500).collect()
                },
            })
        }
    }
}

/// This machine's host name (the node name when run on a node).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
