//! History from Prometheus for a session (issue 20): find the Prometheus (`--prometheus`, else a
//! well-known monitoring service through the API server's proxy), ask one query per metric for
//! every VM in scope (coarser when the server refuses the points), and turn the answers into
//! each VM's history and evidence for the report. Never required: without a Prometheus the
//! report is what it was, and what was found or missing is said in sentences.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::connect::Connection;
use crate::cluster::prometheus::{discover, PromClient, PromError};
use crate::history::HistoryMode;
use crate::model::evidence::VmKey;
use crate::model::inventory::Inventory;
use crate::model::prom_history::{histories, Answers, KnownVm, VmHistory};
use crate::model::prom_query::{promql, Exporter, Metric, Window};
use crate::model::report::ReportOptions;

use super::options::{Namespaces, Objects, Options};

/// What a load found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub histories: HashMap<VmKey, Arc<VmHistory>>,
    /// Where the history came from, for a note (`history: 7 d from …`); `None` when none.
    pub status: Option<String>,
    /// What went wrong or is missing, as sentences.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// Put the histories and their evidence into the report's options.
    pub fn apply(&self, opts: &mut ReportOptions) {
        for (key, h) in &self.histories {
            if let Some(e) = h.evidence() {
                opts.evidence.entry(key.clone()).or_default().push(e);
            }
        }
        opts.prometheus = self.histories.clone();
    }
}

/// The tries of one query: the first step and up to this many coarser ones.
const COARSER_TRIES: usize = 3;

/// The VMs of the inventory, as the history needs them.
pub fn known_vms(inv: &Inventory) -> Vec<KnownVm> {
    let mut out: HashMap<VmKey, KnownVm> = HashMap::new();
    for vm in &inv.vms {
        let key = VmKey::new(&vm.metadata.namespace, &vm.metadata.name);
        out.insert(
            key.clone(),
            KnownVm {
                key,
                guest_bytes: None,
                created: vm
                    .metadata
                    .creation_timestamp
                    .as_deref()
                    .and_then(crate::model::evidence::parse_rfc3339),
            },
        );
    }
    for vmi in &inv.vmis {
        let key = VmKey::new(&vmi.metadata.namespace, &vmi.metadata.name);
        let created = vmi
            .metadata
            .creation_timestamp
            .as_deref()
            .and_then(crate::model::evidence::parse_rfc3339);
        let entry = out.entry(key.clone()).or_insert(KnownVm {
            key,
            guest_bytes: None,
            created,
        });
        // The VMI's own start counts: a restarted VM's older pods are in the window anyway.
        entry.created = created.or(entry.created);
        entry.guest_bytes = crate::model::spec::memory_numbers(&vmi.spec).guest;
    }
    let mut v: Vec<KnownVm> = out.into_values().collect();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

/// The namespace the queries are limited to (`None`: every namespace).
fn scope_namespace<'a>(opts: &'a Options, conn: &'a Connection) -> Option<&'a str> {
    match (&opts.namespaces, &opts.objects) {
        (Namespaces::One(ns), _) => Some(ns),
        (Namespaces::All, _) | (Namespaces::Default, Objects::Demo) => None,
        (Namespaces::Default, _) => Some(&conn.default_namespace),
    }
}

/// The client for the Prometheus the options name, else the first well-known one found; `Err`
/// with the sentence when none (a cluster with no monitoring at all gives `Ok(None)`: nothing
/// to say).
async fn client(opts: &Options, conn: &Connection) -> Result<Option<PromClient>, String> {
    if let Some(url) = &opts.prometheus.url {
        return PromClient::direct(&opts.prometheus, url, Some(conn))
            .map(Some)
            .map_err(|e| format!("no history from Prometheus: {e}"));
    }
    match discover(conn).await {
        Ok(svc) => Ok(Some(PromClient::through_proxy(conn, svc))),
        Err(sentence) if sentence.contains("could not be looked up") => Err(sentence),
        Err(_) => Ok(None),
    }
}

/// What a session says while its first load runs (`history: loading the last 7 d from
/// Prometheus at …`); `None` when the options load nothing (history off, files).
pub fn loading_words(opts: &Options) -> Option<String> {
    let HistoryMode::Window { window_seconds } = opts.history else {
        return None;
    };
    if matches!(opts.objects, Objects::Files(_)) {
        return None;
    }
    let window = crate::model::prom_history::ago_words(window_seconds);
    Some(match &opts.prometheus.url {
        Some(url) => format!(
            "history: loading the last {window} from Prometheus at {}…",
            url.trim_end_matches('/')
        ),
        None => format!(
            "history: looking for a Prometheus through the API server to load the last {window}…"
        ),
    })
}

/// Each VM's history over the options' window from Prometheus, or nothing (history off, files,
/// no Prometheus).
pub async fn load(opts: &Options, conn: &Connection, inv: &Inventory, now: i64) -> Loaded {
    load_for(opts, conn, &known_vms(inv), now).await
}

/// [`load`] for the VMs `vms` (what a load in the background owns instead of the inventory).
pub async fn load_for(opts: &Options, conn: &Connection, vms: &[KnownVm], now: i64) -> Loaded {
    let HistoryMode::Window { window_seconds } = opts.history else {
        return Loaded::default();
    };
    if matches!(opts.objects, Objects::Files(_)) {
        return Loaded::default();
    }
    let client = match client(opts, conn).await {
        Ok(Some(c)) => c,
        Ok(None) => return Loaded::default(),
        Err(sentence) => {
            return Loaded {
                warnings: vec![sentence],
                ..Loaded::default()
            }
        }
    };
    let namespace = scope_namespace(opts, conn);
    let end = opts.prometheus.until.map_or(now, |t| t.min(now));
    let mut window = Window::new(end, window_seconds, vms.len());
    let mut loaded = Loaded::default();
    let mut answers = Answers::new();
    for metric in Metric::ALL {
        match ask(
            &client,
            metric,
            namespace,
            &mut window,
            &mut loaded.warnings,
        )
        .await
        {
            Ok(series) => {
                answers.insert(metric, Some(series));
            }
            // The server or the credentials failed: the other queries would fail alike.
            Err(e) if stops_all(&e) => {
                loaded
                    .warnings
                    .push(format!("no history from Prometheus: {e}"));
                return loaded;
            }
            Err(e) => {
                loaded
                    .warnings
                    .push(format!("no {} from Prometheus: {e}", metric.name()));
                answers.insert(metric, None);
            }
        }
    }
    loaded
        .warnings
        .extend(missing_exporters(&answers, vms, &client.source));
    let found = histories(vms, answers, &window, &client.source, now);
    let with_data = found.values().filter(|h| h.note.is_none()).count();
    let span = match end < now {
        true => format!(
            "the {} to {}",
            crate::model::prom_history::ago_words(window.seconds()),
            crate::model::evidence::rfc3339(end)
        ),
        false => format!(
            "the last {}",
            crate::model::prom_history::ago_words(window.seconds())
        ),
    };
    loaded.status = Some(format!(
        "history: {span} from Prometheus at {} (one point per {}), for {with_data} of {} VMs",
        client.source,
        crate::model::prom_history::ago_words(window.step),
        vms.len()
    ));
    loaded.histories = found.into_iter().map(|(k, h)| (k, Arc::new(h))).collect();
    loaded
}

/// Whether a failure is the server's or the credentials' rather than one query's.
fn stops_all(e: &PromError) -> bool {
    matches!(
        e,
        PromError::Unreachable { .. }
            | PromError::Timeout { .. }
            | PromError::Unauthorized { .. }
            | PromError::Forbidden(_)
            | PromError::BadUrl(_)
            | PromError::PlainHttpToken(_)
            | PromError::Client { .. }
    )
}

/// One metric's query; refused for too many points, asked again with a coarser step (and the
/// window keeps that step for the queries after it, so all points line up).
async fn ask(
    client: &PromClient,
    metric: Metric,
    namespace: Option<&str>,
    window: &mut Window,
    warnings: &mut Vec<String>,
) -> Result<Vec<crate::model::prom_query::Series>, PromError> {
    let mut tries = 0;
    loop {
        let q = promql(metric, namespace, window.step);
        match client.query_range(&q, window).await {
            Err(e) if e.too_many_points() && tries < COARSER_TRIES => {
                let coarser = window.coarser();
                warnings.push(format!(
                    "Prometheus at {} refused {} points per series for {} ({e}); asked again with one point per {}",
                    client.source,
                    window.seconds() / window.step,
                    metric.name(),
                    crate::model::prom_history::ago_words(coarser.step)
                ));
                *window = coarser;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Which exporter is absent, said once each: cAdvisor's metrics missing for every VM (no
/// peaks), KubeVirt's domain size missing (the guest size is the spec's then).
fn missing_exporters(answers: &Answers, vms: &[KnownVm], source: &str) -> Vec<String> {
    if vms.is_empty() {
        return Vec::new();
    }
    let empty = |m: Metric| matches!(answers.get(&m), Some(Some(s)) if s.is_empty());
    let mut out = Vec::new();
    if empty(Metric::WorkingSet) && empty(Metric::Usage) {
        out.push(format!(
            "Prometheus at {source} has no {} of any launcher pod: {} absent, so there are no peaks",
            Metric::WorkingSet.name(),
            Exporter::Cadvisor.words()
        ));
    } else if empty(Metric::Rss) {
        out.push(format!(
            "Prometheus at {source} has no {}: {} incomplete, so there is no peak outside guest RAM",
            Metric::Rss.name(),
            Exporter::Cadvisor.words()
        ));
    }
    if empty(Metric::GuestSize) {
        out.push(format!(
            "Prometheus at {source} has no {} ({}; KubeVirt before v1.1 named it differently): the guest size is the spec's",
            Metric::GuestSize.name(),
            Exporter::KubeVirt.words()
        ));
    }
    out
}
