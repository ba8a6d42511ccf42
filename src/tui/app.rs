//! The dashboard's one state. Views render from `&App`; only `update` (update.rs) changes it.

use std::time::{Duration, SystemTime};

use super::columns::Sort;
use super::history::{History, VmKey};
use crate::model::report::{Risk, Table, TableRow, VmRow};
use crate::session::dashboard::fix::{ApplyOutcome, FixKind, PlanView};
use crate::session::dashboard::snapshot::{ContextInfo, Health, Scope};

/// Header lines above the table.
pub const HEADER_ROWS: u16 = 3;
/// Rows that are not table rows: header, banner, column headers, status bar.
pub const CHROME_ROWS: u16 = HEADER_ROWS + 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Table,
    Detail(VmKey),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
}

/// Where a fix dialog is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for the plan.
    Planning,
    /// Plan shown; `y` applies.
    Review,
    /// Sent; waiting for the server.
    Applying,
    /// The server's answer.
    Done(ApplyOutcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixDialog {
    pub key: VmKey,
    pub kind: FixKind,
    pub restart: bool,
    /// The plan waits for the VM's full row (asked for when the dialog opened).
    pub waiting_for_row: bool,
    pub plan: Option<Result<PlanView, String>>,
    pub stage: Stage,
    /// The last step reported while applying.
    pub progress: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// A message that needs acknowledging (title, text).
    Notice(Notice),
    Fix(Box<FixDialog>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub text: String,
}

/// Counts by risk for the header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskCounts {
    pub critical: usize,
    pub warn: usize,
    pub unknown: usize,
    pub ok: usize,
}

#[derive(Debug, Clone)]
pub struct App {
    /// The last table that arrived (kept when later fetches fail, then drawn as stale).
    pub table: Option<Table>,
    /// Full rows of the VMs in focus (the detail view, the fix dialog, the selection): only
    /// these, as the table keeps of every VM only what it shows.
    pub details: Vec<VmRow>,
    /// The VM whose full row was asked for and could not be built (until the next snapshot).
    pub detail_missing: Option<VmKey>,
    /// When `report` was taken.
    pub taken_at: Option<SystemTime>,
    pub context: ContextInfo,
    pub live: String,
    /// While the first history load runs: what the detail view says where the history will be.
    pub history_loading: Option<String>,
    /// How the last fetch went.
    pub health: Health,
    /// The clock, as a value (ticks move it), so rendering is deterministic.
    pub now: SystemTime,
    pub refresh: Duration,
    pub readonly: bool,
    /// Draw colours (off with `NO_COLOR`); everything stays readable without them.
    pub colour: bool,
    /// Whether a fix backend is plugged in.
    pub fix_enabled: bool,
    /// Where `-v` writes its log (named in the help).
    pub log_file: Option<std::path::PathBuf>,
    pub scope: Scope,
    /// A fetch was asked for and has not answered yet.
    pub fetching: bool,
    pub sort: Sort,
    pub filter: String,
    pub input: Option<Input>,
    /// Indices into `report.vms` after scope, filter and sort.
    pub visible: Vec<usize>,
    /// Index into `visible`.
    pub selected: usize,
    /// First visible row of the table.
    pub offset: usize,
    pub view: View,
    pub detail_scroll: u16,
    pub overlay: Option<Overlay>,
    pub history: History,
    /// One-line message in the status bar.
    pub flash: Option<String>,
    pub counts: RiskCounts,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    pub quit: bool,
}

impl App {
    pub fn new(scope: Scope, refresh: Duration, readonly: bool, now: SystemTime) -> App {
        App {
            table: None,
            details: Vec::new(),
            detail_missing: None,
            taken_at: None,
            context: ContextInfo::default(),
            live: String::new(),
            history_loading: None,
            health: Health::Ok,
            now,
            refresh,
            readonly,
            colour: true,
            fix_enabled: false,
            log_file: None,
            scope,
            fetching: true,
            sort: Sort::default(),
            filter: String::new(),
            input: None,
            visible: Vec::new(),
            selected: 0,
            offset: 0,
            view: View::Table,
            detail_scroll: 0,
            overlay: None,
            history: History::default(),
            flash: None,
            counts: RiskCounts::default(),
            size: (80, 24),
            quit: false,
        }
    }

    pub fn rows(&self) -> &[TableRow] {
        self.table
            .as_ref()
            .map(|r| r.rows.as_slice())
            .unwrap_or(&[])
    }

    /// The row at a position of the visible list.
    pub fn visible_row(&self, i: usize) -> Option<&TableRow> {
        self.visible.get(i).and_then(|&idx| self.rows().get(idx))
    }

    pub fn selected_row(&self) -> Option<&TableRow> {
        self.visible_row(self.selected)
    }

    pub fn row(&self, key: &VmKey) -> Option<&TableRow> {
        self.rows().iter().find(|r| key.matches(*r))
    }

    /// The full row of a VM, when it has arrived.
    pub fn detail(&self, key: &VmKey) -> Option<&VmRow> {
        self.details.iter().find(|r| key.matches(*r))
    }

    /// The VM whose full row the dashboard needs: the fix dialog's, the detail view's, else
    /// the selected one.
    pub fn focus(&self) -> Option<VmKey> {
        match (&self.overlay, &self.view) {
            (Some(Overlay::Fix(d)), _) => Some(d.key.clone()),
            (_, View::Detail(k)) => Some(k.clone()),
            _ => self.selected_row().map(VmKey::of),
        }
    }

    /// Age of the data on screen.
    pub fn data_age(&self) -> Option<Duration> {
        self.taken_at
            .map(|t| self.now.duration_since(t).unwrap_or(Duration::ZERO))
    }

    /// The whole picture is stale: the last fetch failed, or nothing arrived for three refreshes.
    pub fn data_stale(&self) -> bool {
        let limit = (self.refresh * 3).max(Duration::from_secs(5));
        !self.health.is_ok() || self.data_age().is_some_and(|a| a > limit)
    }

    /// Whether one row is marked stale.
    pub fn row_stale(&self, row_stale: bool) -> bool {
        row_stale || (self.table.is_some() && self.data_stale())
    }

    /// Rows per page of the table, from the terminal height.
    pub fn page(&self) -> usize {
        usize::from(self.size.1.saturating_sub(CHROME_ROWS)).max(1)
    }

    pub fn all_namespaces(&self) -> bool {
        self.scope.namespace.is_none()
    }

    pub(super) fn recount(&mut self) {
        let mut c = RiskCounts::default();
        for &i in &self.visible {
            if let Some(r) = self.rows().get(i) {
                match r.risk {
                    Risk::Critical => c.critical += 1,
                    Risk::Warn => c.warn += 1,
                    Risk::Unknown => c.unknown += 1,
                    Risk::Ok => c.ok += 1,
                }
            }
        }
        self.counts = c;
    }

    /// Recompute `visible` after a change of rows, scope, filter or sort, keeping the selected
    /// VM selected when it is still there.
    pub(super) fn relist(&mut self) {
        let keep = self.selected_row().map(VmKey::of);
        let needle = self.filter.to_lowercase();
        let ns = self.scope.namespace.clone();
        let rows = self.rows();
        let mut idx: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| ns.as_ref().is_none_or(|n| &r.namespace == n))
            .filter(|(_, r)| needle.is_empty() || matches_filter(r, &needle))
            .map(|(i, _)| i)
            .collect();
        let sort = self.sort;
        idx.sort_by(|&a, &b| sort.compare(&rows[a], &rows[b]));
        self.visible = idx;
        self.selected = keep
            .and_then(|k| {
                self.visible
                    .iter()
                    .position(|&i| self.rows().get(i).is_some_and(|r| k.matches(r)))
            })
            .unwrap_or(self.selected)
            .min(self.visible.len().saturating_sub(1));
        self.recount();
        self.scroll_to_selected();
    }

    pub(super) fn scroll_to_selected(&mut self) {
        let page = self.page();
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        let max_offset = self.visible.len().saturating_sub(page);
        self.offset = self.offset.min(max_offset);
    }
}

/// Case-insensitive substring match on the fields a user would type.
fn matches_filter(r: &TableRow, needle: &str) -> bool {
    let hay = |s: &str| s.to_lowercase().contains(needle);
    hay(&r.name)
        || hay(&r.namespace)
        || r.node.as_deref().is_some_and(hay)
        || hay(r.risk.as_str())
        || r.flags.iter().any(|f| hay(f.as_str()))
}
