//! `kubectl vmmem probe --local`: run the node probe on this machine and print its readings.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::args::{ProbeArgs, ProbeOutput};
use crate::node::local;
use crate::node::probe::{ProbeSettings, ProbeTarget};
use crate::output;

pub fn run(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    if !args.local {
        bail!(
            "probing nodes through the API server is not available in this build yet; run \
             `kubectl vmmem probe --local` on the node itself (e.g. over ssh)"
        );
    }
    let targets = args
        .pods
        .iter()
        .map(|p| Ok(ProbeTarget::parse(p)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = ProbeSettings {
        cgroup_root: Some(args.cgroup_root.to_string_lossy().into_owned()),
        proc_root: Some(args.proc_root.to_string_lossy().into_owned()),
        kubepods: None,
        own_pod: None,
    };
    let taken_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let readings = local::probe(&targets, &settings, &local::hostname(), taken_at)
        .context("probing this machine")?;

    let text = match args.output {
        ProbeOutput::Json => {
            let mut s = serde_json::to_string_pretty(&readings).context("writing JSON")?;
            s.push('\n');
            s
        }
        ProbeOutput::Table => {
            if readings.pods.is_empty() && readings.missing_pods.is_empty() {
                eprintln!("No pods found under kubepods.");
            }
            output::probe::tables(&readings, output::table::colour_for_stdout())
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing the readings"),
    }
    if readings.missing_pods.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for uid in &readings.missing_pods {
            eprintln!(
                "error: pod {} has no memory cgroup on this machine",
                crate::escape::Shown(uid)
            );
        }
        Ok(ExitCode::FAILURE)
    }
}
