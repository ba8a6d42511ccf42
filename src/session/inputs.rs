//! The one pipeline that produces what a report is built from: the objects in scope, the node
//! readings and the OOM history of the kernel logs, with the warnings met on the way. `list`
//! takes it once; the dashboard's sources take it per refresh (dashboard/); `fix` for one VM.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;

use super::options::{Namespaces, Options};
use crate::cluster::files::Loaded;
use crate::model::inventory::{Inventory, Readings};
use crate::model::oom_event::OomEvent;
use crate::model::oom_verdict::{explain, explain_remembering, OomExplanation};
use crate::model::oom_vm::LogsRead;
use crate::model::peaks::RememberedPods;
use crate::model::report::ReportOptions;
use crate::model::version::Version;
use crate::node::readers::Round;

/// What a report is built from.
#[derive(Debug, Default)]
pub struct ReportInputs {
    pub inventory: Inventory,
    pub readings: Readings,
    /// With the history, the stale nodes and whose kernel logs were read filled in.
    pub options: ReportOptions,
    /// Remarks of the reading itself, printed after the report's own.
    pub warnings: Vec<String>,
    /// The peaks this run keeps (and the store they go back to).
    pub peaks: Option<crate::history::PeakKeeper>,
    /// What the history from Prometheus said: where it came from, what failed or is missing
    /// (to stderr; not in the report, whose JSON stays as it was).
    pub history_notes: Vec<String>,
}

/// Keep only the namespace asked for (`-n`); `-A` or nothing keeps all (files are a snapshot).
pub fn filter_namespace(inv: &mut Inventory, namespaces: &Namespaces) {
    if let Namespaces::One(ns) = namespaces {
        inv.vms.retain(|v| &v.metadata.namespace == ns);
        inv.vmis.retain(|v| &v.metadata.namespace == ns);
        inv.pods.retain(|p| &p.metadata.namespace == ns);
    }
}

/// The OOM reports in the files' kernel logs, explained against their inventory.
pub fn files_oom_history(loaded: &Loaded, flag: Option<Version>) -> Vec<OomExplanation> {
    let mut events = Vec::new();
    for log in &loaded.kernel_logs {
        events.extend(match &log.node {
            Some(node) => crate::parse::oom::parse_node_kernel_log(&log.text, node),
            None => crate::parse::oom::parse_kernel_log(&log.text),
        });
    }
    explain(&events, Some(&loaded.inventory), flag)
}

/// Whose kernel logs the files hold: the nodes they name, or every node for a log of no node.
pub fn files_logs_read(loaded: &Loaded) -> LogsRead {
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

/// The report inputs of files (blocking: file reads and parsing): their objects in scope and
/// the OOM kills of the kernel logs among them (support bundles carry the nodes' logs). Files
/// have no live data.
pub fn from_files(path: &Path, opts: &Options) -> anyhow::Result<ReportInputs> {
    let mut loaded = crate::cluster::files::load_inventory_with(path, &opts.file_limits)?;
    filter_namespace(&mut loaded.inventory, &opts.namespaces);
    let mut options = opts.report_options();
    options.oom_history = files_oom_history(&loaded, options.version_flag);
    options.kernel_logs_read = files_logs_read(&loaded);
    Ok(ReportInputs {
        inventory: loaded.inventory,
        readings: Readings::new(),
        options,
        warnings: Vec::new(),
        peaks: None,
        history_notes: Vec::new(),
    })
}

/// Take in one reading round: its readings, stale nodes and warnings, and the OOM kills of the
/// kernel logs it read (explained against `inv`). A log that could not be read is a warning:
/// the kills of earlier pods on that node are not counted.
pub fn absorb_round(
    round: Round,
    inv: &Inventory,
    options: &mut ReportOptions,
    remembered: &RememberedPods,
) -> (Readings, Vec<String>) {
    let Round {
        readings,
        stale,
        mut warnings,
        kernel_logs,
    } = round;
    options.stale_nodes = stale;
    let mut events: Vec<OomEvent> = Vec::new();
    let mut read = BTreeSet::new();
    for (node, result) in kernel_logs {
        match result {
            Ok(found) => {
                events.extend(found);
                read.insert(node);
            }
            Err(why) => warnings.push(format!(
                "OOM kills of earlier pods on node {node} are not counted: its kernel log could not be read: {why}"
            )),
        }
    }
    if !read.is_empty() {
        options.oom_history =
            explain_remembering(&events, Some(inv), options.version_flag, remembered);
        options.kernel_logs_read = LogsRead::Nodes(read);
    }
    (readings, warnings)
}

/// `list`'s one round (blocking): the objects once (files, the cluster or the demo), one round of
/// node readings with the nodes' kernel logs, and the agents deleted again.
pub fn report_once(opts: &Options) -> anyhow::Result<ReportInputs> {
    if let Some(path) = opts.from_files() {
        return from_files(path, opts);
    }
    // One thread: the work is waiting on the server and decoding its answers, and one
    // allocator arena keeps the peak memory of decoding thousands of objects low.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(live_once(opts))
}

/// One snapshot of a live source and one reading round.
async fn live_once(opts: &Options) -> anyhow::Result<ReportInputs> {
    // One snapshot is all a one-shot reader needs: list page by page, watch nothing, and hold
    // each object once.
    let live = super::source::open_once(opts).await?;
    let (inventory, opened) = live.into_parts().await;
    let opened_server = opened.conn.server.clone();
    let round = super::readings::one_round(opts, opened.conn.client.clone(), &inventory).await;
    let now = super::peaks::unix_now();
    let history = super::prometheus::load(opts, &opened.conn, &inventory, now).await;
    opened.close().await;
    let mut options = opts.report_options();
    history.apply(&mut options);
    let history_notes = history.status.into_iter().chain(history.warnings).collect();
    // The store first: the pods it remembers map the kernel logs' kills in pods now gone.
    let (mut keeper, store_warnings) = super::peaks::keeper_for(opts, &opened_server);
    let remembered = keeper.remembered_pods();
    let (readings, mut warnings) = absorb_round(round?, &inventory, &mut options, &remembered);
    warnings.extend(store_warnings);
    options.peaks = keeper.for_report(super::peaks::unix_now());
    Ok(ReportInputs {
        inventory,
        readings,
        options,
        warnings,
        peaks: Some(keeper),
        history_notes,
    })
}
