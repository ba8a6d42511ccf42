//! `kubectl vmmem list`: the report as a table, wide table, JSON or YAML.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::args::{GlobalArgs, ListArgs, ListOutput};
use crate::model::inventory::{Inventory, Readings};
use crate::model::report::{self, Report, ReportOptions};
use crate::model::version::Version;
use crate::output;

/// Report options from the global flags.
pub fn report_options(global: &GlobalArgs) -> anyhow::Result<ReportOptions> {
    let version_flag =
        match &global.kubevirt_version {
            Some(v) => Some(Version::parse(v).with_context(|| {
                format!("--kubevirt-version {v:?} is not a version like v1.3.0")
            })?),
            None => None,
        };
    Ok(ReportOptions {
        version_flag,
        ..Default::default()
    })
}

/// Keep only the namespace asked for (`-n`); `-A` or nothing keeps all (files are a snapshot).
pub fn filter_namespace(inv: &mut Inventory, global: &GlobalArgs) {
    if global.all_namespaces {
        return;
    }
    if let Some(ns) = &global.namespace {
        inv.vms.retain(|v| &v.metadata.namespace == ns);
        inv.vmis.retain(|v| &v.metadata.namespace == ns);
        inv.pods.retain(|p| &p.metadata.namespace == ns);
    }
}

pub fn run(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let opts = report_options(global)?;
    let report = if let Some(path) = &global.from {
        let mut loaded = crate::cluster::files::load_inventory(path)?;
        filter_namespace(&mut loaded.inventory, global);
        report::build(&loaded.inventory, &Readings::new(), &opts)
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(async {
            let live = super::source::open(global).await?;
            let inventory = live.source.snapshot();
            live.close().await;
            // Node readings (agent, probe) are not read yet: specs and the API's objects only.
            anyhow::Ok(report::build(&inventory, &Readings::new(), &opts))
        })?
    };
    print(&report, args.output)?;
    Ok(ExitCode::SUCCESS)
}

/// Print a report in the chosen format; warnings go to stderr.
pub fn print(report: &Report, format: ListOutput) -> anyhow::Result<()> {
    let text = match format {
        ListOutput::Json => output::report::json(report),
        ListOutput::Yaml => output::report::yaml(report),
        ListOutput::Table | ListOutput::Wide => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            if report.vms.is_empty() {
                eprintln!("No VirtualMachines found.");
                return Ok(());
            }
            output::report::table(report, format == ListOutput::Wide)
                .render(output::table::colour_for_stdout())
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // `| head` closing the pipe is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing the report"),
    }
}
