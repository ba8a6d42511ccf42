//! `kubectl vmmem list`: the report as a table, wide table, JSON or YAML.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::args::{ListArgs, ListOutput};
use crate::model::inventory::{Inventory, Readings};
use crate::model::report::{self, ReportOptions, VmRow};
use crate::output;
use crate::session::{report_once, Options, ReportInputs};

pub fn run(opts: &Options, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let ReportInputs {
        inventory,
        readings,
        options,
        warnings,
        peaks,
        history_notes,
    } = report_once(opts)?;
    for n in &history_notes {
        eprintln!("note: {}", crate::escape::Shown(n));
    }
    let mut peaks = peaks;
    let now = crate::session::peaks::unix_now();
    let mut observe = |r: &VmRow| {
        if let Some(k) = peaks.as_mut() {
            k.observe([r], now);
        }
    };
    print(
        &inventory,
        &readings,
        &options,
        warnings,
        args.output,
        &mut observe,
    )?;
    // What this round saw is remembered for the next run (a store that cannot be written only
    // costs the memory: a warning).
    if let Some(k) = &mut peaks {
        for w in k.save(crate::session::peaks::unix_now()) {
            eprintln!("warning: {}", crate::escape::Shown(&w));
        }
    }
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
    observe: &mut dyn FnMut(&VmRow),
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match format {
        ListOutput::Json | ListOutput::Yaml => {
            let mut report = report::streamed(inv, readings, opts).observed(|r| observe(r));
            report.head.warnings.extend(extra_warnings);
            if format == ListOutput::Json {
                output::report::write_json(&report, &mut out)
            } else {
                output::report::write_yaml(&report, &mut out)
            }
        }
        ListOutput::Table | ListOutput::Wide => {
            let mut report = report::build(inv, readings, opts);
            report.vms.iter().for_each(&mut *observe);
            report.warnings.extend(extra_warnings);
            for w in &report.warnings {
                eprintln!("warning: {}", crate::escape::Shown(w));
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
