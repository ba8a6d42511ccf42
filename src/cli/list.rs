//! `kubectl vmmem list`: the report as a table, wide table, JSON or YAML.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::args::{GlobalArgs, ListArgs, ListOutput};
use crate::model::inventory::{Inventory, Readings};
use crate::model::oom_vm::LogsRead;
use crate::model::report::{self, ReportOptions};
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

/// The OOM reports in the files' kernel logs, explained against their inventory.
pub fn oom_history(
    loaded: &crate::cluster::files::Loaded,
    flag: Option<Version>,
) -> Vec<crate::model::oom_verdict::OomExplanation> {
    let mut events = Vec::new();
    for log in &loaded.kernel_logs {
        events.extend(match &log.node {
            Some(node) => crate::parse::oom::parse_node_kernel_log(&log.text, node),
            None => crate::parse::oom::parse_kernel_log(&log.text),
        });
    }
    crate::model::oom_verdict::explain(&events, Some(&loaded.inventory), flag)
}

/// Whose kernel logs the files hold: the nodes they name, or every node for a log of no node.
pub fn logs_read(loaded: &crate::cluster::files::Loaded) -> LogsRead {
    if loaded.kernel_logs.is_empty() {
        LogsRead::None
    } else if loaded.kernel_logs.iter().any(|l| l.node.is_none()) {
        LogsRead::All
    } else {
        LogsRead::Nodes(
            loaded
                .kernel_logs
                .iter()
                .filter_map(|l| l.node.clone())
                .collect(),
        )
    }
}

pub fn run(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let opts = report_options(global)?;
    let (inventory, readings, opts, extra_warnings) = if let Some(path) = &global.from {
        let mut loaded =
            crate::cluster::files::load_inventory_with(path, &super::source::file_limits(global)?)?;
        filter_namespace(&mut loaded.inventory, global);
        let mut opts = opts;
        opts.oom_history = oom_history(&loaded, opts.version_flag);
        opts.kernel_logs_read = logs_read(&loaded);
        (loaded.inventory, Readings::new(), opts, Vec::new())
    } else {
        // One thread: the work is waiting on the server and decoding its answers, and one
        // allocator arena keeps the peak memory of decoding thousands of objects low.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(async {
            // One snapshot is all `list` needs: list page by page, watch nothing, and hold
            // each object once.
            let live = super::source::open_once(global).await?;
            let (inventory, opened) = live.into_parts().await;
            let round =
                super::node_readings::one_round(global, opened.conn.client.clone(), &inventory)
                    .await;
            opened.close().await;
            let round = round?;
            let mut opts = opts;
            opts.stale_nodes = round.stale;
            anyhow::Ok((inventory, round.readings, opts, round.warnings))
        })?
    };
    print(&inventory, &readings, &opts, extra_warnings, args.output)?;
    Ok(ExitCode::SUCCESS)
}

/// Print the report of `inv` and `readings` in the chosen format, with `extra_warnings` after
/// its own; warnings go to stderr. JSON and YAML are written as their rows are built (the rows
/// of thousands of VMs are not held at once); a table needs them all for its column widths.
pub fn print(
    inv: &Inventory,
    readings: &Readings,
    opts: &ReportOptions,
    extra_warnings: Vec<String>,
    format: ListOutput,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match format {
        ListOutput::Json | ListOutput::Yaml => {
            let mut report = report::streamed(inv, readings, opts);
            report.head.warnings.extend(extra_warnings);
            if format == ListOutput::Json {
                output::report::write_json(&report, &mut out)
            } else {
                output::report::write_yaml(&report, &mut out)
            }
        }
        ListOutput::Table | ListOutput::Wide => {
            let mut report = report::build(inv, readings, opts);
            report.warnings.extend(extra_warnings);
            for w in &report.warnings {
                eprintln!("warning: {}", output::escape::Shown(w));
            }
            if report.vms.is_empty() {
                eprintln!("No VirtualMachines found.");
                return Ok(());
            }
            let table = output::report::table(&report, format == ListOutput::Wide);
            out.write_all(table.render(output::table::colour_for_stdout()).as_bytes())
        }
    };
    match result.and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // `| head` closing the pipe is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing the report"),
    }
}
