//! `kubectl vmmem oom`: read kernel logs, find OOM-kill reports and explain each one.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::args::{OomArgs, OomOutput};
use crate::cluster::kernel_log::{read_ooms, StreamedOoms};
use crate::escape::Shown;
use crate::model::inventory::Inventory;
use crate::model::oom_event::OomEvent;
use crate::model::oom_verdict::explain_remembering;
use crate::model::peaks::RememberedPods;
use crate::model::version::Version;
use crate::parse::oom::{parse_kernel_log, parse_node_kernel_log};
use crate::session::Options;

pub fn run(opts: &Options, args: &OomArgs) -> anyhow::Result<ExitCode> {
    let flag = opts.report.kubevirt_version;
    let from = opts.from_files();
    if !args.nodes.is_empty() {
        if args.file.is_some() || from.is_some() {
            bail!("--node reads the kernel log through the cluster: it cannot be combined with -f or --from");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let (inventory, events, remembered) = rt.block_on(node_logs(opts, &args.nodes))?;
        let out = render(&events, Some(&inventory), &remembered, flag, args.output)?;
        if events.is_empty() {
            eprintln!(
                "no OOM kill reports found in the kernel log of {}",
                Shown(&args.nodes.join(", "))
            );
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing the report")?;
        return Ok(ExitCode::SUCCESS);
    }
    if opts.objects == crate::session::Objects::Demo {
        bail!("oom does not read the demo cluster's node logs in this build yet; pass -f FILE or --from PATH");
    }
    // --from: the files' objects map pod UIDs to VMs; their kernel logs are read unless -f is given.
    let loaded = match from {
        Some(path) => Some(crate::cluster::files::load_with(path, &opts.file_limits)?),
        None => None,
    };
    let (source, events) = match (args.file.as_deref(), &loaded) {
        (Some(file), _) => {
            let (source, streamed) = read_source(file)?;
            warn_cut(&source, &streamed);
            (source, streamed.ooms.events)
        }
        (None, Some(l)) => {
            let path = from.map(|p| p.display().to_string()).unwrap_or_default();
            if l.kernel_logs.is_empty() {
                bail!(
                    "{path}: found no kernel logs (expected nodes/<node>/logs/kernel.log in a support bundle, or kernel.log / dmesg files); pass -f FILE"
                );
            }
            let source = format!("the kernel logs of {path}");
            let mut events = Vec::new();
            for log in &l.kernel_logs {
                events.extend(match &log.node {
                    Some(node) => parse_node_kernel_log(&log.text, node),
                    None => parse_kernel_log(&log.text),
                });
            }
            (source, events)
        }
        (None, None) => {
            bail!("no kernel log given: pass -f FILE (or -f - for standard input), or --from PATH")
        }
    };
    let inventory = loaded.as_ref().map(|l| &l.inventory);
    let out = render(
        &events,
        inventory,
        &RememberedPods::new(),
        flag,
        args.output,
    )?;
    if events.is_empty() {
        eprintln!("no OOM kill reports found in {}", Shown(&source));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the report")?;
    Ok(ExitCode::SUCCESS)
}

/// The kernel logs of `nodes`, read through agent pods (deleted again on every exit path), the
/// live inventory to map pods to VMs, and the launcher pods this machine's peak store remembers
/// for the cluster's VMs (a kill in a pod KubeVirt has deleted since names only its UID).
async fn node_logs(
    opts: &Options,
    nodes: &[String],
) -> anyhow::Result<(Inventory, Vec<OomEvent>, RememberedPods)> {
    use crate::node::readers::{LiveReadings, Mode};
    use crate::session::{readings::unix_now, signals::interrupted};
    let live = crate::session::source::open(opts).await?;
    let inventory = live.source.snapshot();
    let (remembered, store_warnings) =
        crate::session::peaks::remembered_pods(opts, &live.conn.server);
    for w in store_warnings {
        eprintln!("warning: {}", Shown(&w));
    }
    let mut read_opts = opts.read_options();
    if read_opts.mode == Mode::Off {
        read_opts.mode = Mode::Agent;
    }
    let readers = LiveReadings::start(
        live.conn.client.clone(),
        &inventory,
        &opts.agent,
        read_opts,
        unix_now(),
    )
    .await;
    let readers = match readers {
        Ok(r) => r,
        Err(e) => {
            live.close().await;
            return Err(e.into());
        }
    };
    let read = async {
        let mut events = Vec::new();
        for node in nodes {
            events.extend(readers.kernel_log_events(node).await?);
        }
        anyhow::Ok(events)
    };
    let result = tokio::select! {
        r = read => r,
        why = interrupted() => Err(anyhow::anyhow!("{why}; the agent pods were deleted")),
    };
    readers.close().await;
    live.close().await;
    let events = result?;
    let inventory = inventory_of_every_pod(opts, inventory, &events).await;
    Ok((inventory, events, remembered))
}

/// A node's kernel log holds the kills of every namespace's pods: when a kill's pod is not in
/// the namespace in scope, the objects of every namespace the user may list map it to its VM
/// (by the pod's UID); when some could not be read, one sentence says how to name those VMs.
async fn inventory_of_every_pod(
    opts: &Options,
    mut inventory: Inventory,
    events: &[OomEvent],
) -> Inventory {
    if opts.namespaces == crate::session::Namespaces::All {
        return inventory;
    }
    let knows = |inv: &Inventory, uid: &str| {
        inv.pods.iter().any(|p| p.metadata.uid == uid)
            || inv
                .vmis
                .iter()
                .any(|v| v.status.active_pods.contains_key(uid))
    };
    let outside = events
        .iter()
        .filter_map(|e| e.pod_uid.as_deref())
        .filter(|uid| !knows(&inventory, uid))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if outside == 0 {
        return inventory;
    }
    let refused = match crate::session::source::open_once(&opts.with_namespace(None)).await {
        Ok(live) => {
            let every = live.source.snapshot();
            live.close().await;
            let refused = every.warnings.first().cloned();
            add_objects_of(&mut inventory, every);
            refused
        }
        Err(e) => Some(format!("{e:#}")),
    };
    if let Some(why) = refused {
        eprintln!(
            "{outside} of the killed pods are not in the namespace in scope and not every namespace could be read ({}): pass -n with their namespace, or -A, to name their VMs",
            Shown(&why)
        );
    }
    inventory
}

/// The VMs, VMIs and launcher pods of `other` that `inventory` lacks (by UID).
fn add_objects_of(inventory: &mut Inventory, other: Inventory) {
    fn add<T>(to: &mut Vec<std::sync::Arc<T>>, from: Vec<std::sync::Arc<T>>, uid: fn(&T) -> &str) {
        for o in from {
            if !to.iter().any(|t| uid(t) == uid(&o)) {
                to.push(o);
            }
        }
    }
    add(&mut inventory.vms, other.vms, |v| &v.metadata.uid);
    add(&mut inventory.vmis, other.vmis, |v| &v.metadata.uid);
    add(&mut inventory.pods, other.pods, |p| &p.metadata.uid);
}

/// The report for parsed events (tables print nothing when there are none).
pub fn render(
    events: &[OomEvent],
    inventory: Option<&Inventory>,
    remembered: &RememberedPods,
    flag: Option<Version>,
    output: OomOutput,
) -> anyhow::Result<String> {
    let explained = explain_remembering(events, inventory, flag, remembered);
    Ok(match output {
        OomOutput::Json => crate::output::oom::to_json(&explained).context("encoding JSON")?,
        OomOutput::Table if explained.is_empty() => String::new(),
        OomOutput::Table => crate::output::oom::to_table(&explained),
    })
}

/// Read a file, or standard input for `-`, as a stream (memory follows the reports kept, not
/// the input); invalid UTF-8 (kernel logs carry some) is replaced.
fn read_source(file: &Path) -> anyhow::Result<(String, StreamedOoms)> {
    if file.as_os_str() == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("reading the kernel log from standard input (end with Ctrl-D)");
        }
        let streamed = read_ooms(stdin.lock()).context("reading standard input")?;
        return Ok(("standard input".to_string(), streamed));
    }
    let shown = file.display().to_string();
    let f = std::fs::File::open(file).with_context(|| format!("reading {shown}"))?;
    let kind = f
        .metadata()
        .with_context(|| format!("reading {shown}"))?
        .file_type();
    // A pipe is a log being written (`-f <(journalctl -k)`); a device such as /dev/zero never ends.
    if !(kind.is_file() || kind.is_fifo()) {
        bail!("{shown} is not a kernel log file (not a regular file or a pipe)");
    }
    let streamed = read_ooms(std::io::BufReader::with_capacity(1 << 16, f))
        .with_context(|| format!("reading {shown}"))?;
    Ok((shown, streamed))
}

/// Say what a bounded read left out.
fn warn_cut(source: &str, streamed: &StreamedOoms) {
    let dropped = streamed.ooms.dropped_reports;
    if dropped > 0 {
        eprintln!(
            "{} holds {} OOM reports: the last {} are shown, the {dropped} before them are left out",
            crate::escape::Shown(source),
            dropped + streamed.ooms.events.len() as u64,
            streamed.ooms.events.len()
        );
    }
    if streamed.lines_cut > 0 {
        eprintln!(
            "{}: {} lines longer than {} bytes were cut (kernel messages are shorter: they are not kernel log lines)",
            crate::escape::Shown(source),
            streamed.lines_cut,
            crate::cluster::kernel_log::MAX_LINE_BYTES
        );
    }
}
