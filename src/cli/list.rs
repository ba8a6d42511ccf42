//! `kubectl vmmem list`: the report as a table, wide table, JSON or YAML.

use std::process::ExitCode;

use anyhow::bail;

use super::args::{GlobalArgs, ListArgs};

pub fn run(_global: &GlobalArgs, _args: &ListArgs) -> anyhow::Result<ExitCode> {
    bail!("reading a live cluster is not available in this build yet; use --from PATH")
}
