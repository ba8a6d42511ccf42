//! `App::update`: the only place the dashboard's state changes. Pure: actions in, effects out.

use super::action::Action;
use super::app::{App, FixDialog, Input, InputKind, Notice, Overlay, Stage, View};
use super::columns::{Column, Sort};
use super::effect::Effect;
use super::history::VmKey;
use crate::model::recommend::Strategy;
use crate::session::dashboard::fix::{
    ApplyOutcome, FixKind, FixRequest, PlanView, NOT_IN_THIS_BUILD, RESERVE_STRATEGIES,
};
use crate::session::dashboard::snapshot::{Detail, Scope, Snapshot};

impl App {
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => self.quit = true,
            Action::Refresh => return self.fetch(),
            // Moving through the table or the detail view.
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::Open => self.open_selected(),
            Action::Back => self.back(),
            Action::SortBy(column) => self.sort_by(column),
            Action::Help => self.overlay = Some(Overlay::Help),
            // The filter and command line.
            Action::StartFilter => self.start_input(InputKind::Filter, self.filter.clone()),
            Action::StartCommand => self.start_input(InputKind::Command, String::new()),
            Action::StartNamespace => self.start_input(InputKind::Command, "ns ".into()),
            Action::AllNamespaces => return self.set_namespace(None),
            Action::InputChar(c) => self.edit_input(|text| text.push(c)),
            Action::InputBackspace => self.edit_input(|text| {
                text.pop();
            }),
            Action::InputSubmit => return self.submit_input(),
            // The fix dialog.
            Action::Fix => return self.start_fix(FixKind::Reserve(Strategy::Annotation)),
            Action::RemoveLimit => return self.start_fix(FixKind::RemoveLimit),
            Action::Undo => return self.start_fix(FixKind::Undo),
            Action::CycleStrategy => return self.cycle_strategy(),
            Action::ToggleRestart => return self.toggle_restart(),
            Action::Confirm => return self.confirm(),
            Action::Planned(req, plan) => self.planned(&req, plan),
            Action::Applied(req, outcome) => return self.applied(&req, outcome),
            Action::FixProgress(req, line) => self.fix_progress(&req, line),
            // Data and the terminal.
            Action::Snapshot(s) => return self.apply_snapshot(*s),
            Action::Detail(d) => return self.apply_detail(*d),
            Action::Tick(now) => self.now = now,
            Action::Resize(w, h) => {
                self.size = (w, h);
                self.scroll_to_selected();
            }
        }
        Vec::new()
    }

    /// Open the selected VM's detail view at its top.
    fn open_selected(&mut self) {
        if let Some(r) = self.selected_row() {
            self.view = View::Detail(VmKey::of(r));
            self.detail_scroll = 0;
        }
    }

    /// Sort by `column`; the same column again reverses the order.
    fn sort_by(&mut self, column: Column) {
        self.sort = if self.sort.column == column {
            Sort {
                column,
                reverse: !self.sort.reverse,
            }
        } else {
            Sort {
                column,
                reverse: false,
            }
        };
        self.relist();
    }

    /// Open the input line as `kind`, holding `text`.
    fn start_input(&mut self, kind: InputKind, text: String) {
        self.input = Some(Input { kind, text });
    }

    /// Change the input line's text; a filter applies as it is typed.
    fn edit_input(&mut self, edit: impl FnOnce(&mut String)) {
        if let Some(i) = &mut self.input {
            edit(&mut i.text);
            if i.kind == InputKind::Filter {
                self.filter = i.text.clone();
                self.relist();
            }
        }
    }

    /// Close the input line; a command runs (a filter already applies).
    fn submit_input(&mut self) -> Vec<Effect> {
        if let Some(i) = self.input.take() {
            if i.kind == InputKind::Command {
                return self.command(&i.text);
            }
        }
        Vec::new()
    }

    /// A fix plan arrived: the dialog waiting for it shows it for review.
    fn planned(&mut self, req: &FixRequest, plan: Result<PlanView, String>) {
        if let Some(d) = self.dialog_for(req) {
            if d.stage == Stage::Planning {
                d.plan = Some(plan);
                d.stage = Stage::Review;
            }
        }
    }

    /// A fix was applied (or not): its dialog shows the outcome, or the flash line when the
    /// dialog is closed; an applied change refreshes the data.
    fn applied(&mut self, req: &FixRequest, outcome: ApplyOutcome) -> Vec<Effect> {
        let refresh = matches!(outcome, ApplyOutcome::Applied(_));
        if let Some(d) = self.dialog_for(req) {
            d.stage = Stage::Done(outcome.clone());
        } else {
            self.flash = Some(outcome_line(req, &outcome));
        }
        if refresh {
            return self.fetch();
        }
        Vec::new()
    }

    /// A line of an applying fix's progress, for its dialog.
    fn fix_progress(&mut self, req: &FixRequest, line: String) {
        if let Some(d) = self.dialog_for(req) {
            if d.stage == Stage::Applying {
                d.progress = Some(line);
            }
        }
    }

    fn fetch(&mut self) -> Vec<Effect> {
        self.fetching = true;
        vec![Effect::Fetch(self.scope.clone())]
    }

    fn move_by(&mut self, delta: isize) {
        if let View::Detail(_) = self.view {
            let s = self.detail_scroll as isize + delta;
            self.detail_scroll = s.clamp(0, u16::MAX as isize) as u16;
            return;
        }
        let last = self.visible.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
        self.scroll_to_selected();
    }

    fn back(&mut self) {
        if self.input.take().is_some() {
            return;
        }
        if self.overlay.take().is_some() {
            return;
        }
        if let View::Detail(_) = self.view {
            self.view = View::Table;
            return;
        }
        if !self.filter.is_empty() {
            self.filter.clear();
            self.relist();
        }
    }

    /// `:ns NAME`, `:ns` / `:ns all` / `:ns -A`, `:q`.
    fn command(&mut self, text: &str) -> Vec<Effect> {
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some("q" | "quit" | "q!"), _) => self.quit = true,
            (Some("ns" | "namespace" | "namespaces"), None | Some("all" | "-A" | "*")) => {
                return self.set_namespace(None)
            }
            (Some("ns" | "namespace" | "namespaces"), Some(ns)) => {
                return self.set_namespace(Some(ns.to_string()))
            }
            (None, _) => {}
            (Some(other), _) => {
                self.flash = Some(format!(
                    "unknown command :{other} (try :ns NAME, :ns all, :q)"
                ))
            }
        }
        Vec::new()
    }

    fn set_namespace(&mut self, namespace: Option<String>) -> Vec<Effect> {
        self.scope = Scope { namespace };
        self.view = View::Table;
        self.selected = 0;
        self.offset = 0;
        self.relist();
        self.fetch()
    }

    pub(super) fn apply_snapshot(&mut self, s: Snapshot) -> Vec<Effect> {
        self.fetching = false;
        self.context = s.context;
        self.live = s.live;
        self.health = s.health;
        if let Some(table) = s.table {
            // A snapshot for an older scope would show the wrong namespace: keep waiting.
            if s.scope != self.scope {
                return Vec::new();
            }
            self.history.record(&table.rows);
            self.table = Some(table);
            self.details = s.details;
            self.detail_missing = None;
            self.history_loading = s.history_loading;
            self.taken_at = Some(s.taken_at);
            if self.taken_at > Some(self.now) {
                self.now = s.taken_at;
            }
            self.relist();
            return self.plan_if_row_arrived();
        }
        Vec::new()
    }

    /// A full row asked for: it replaces the one held for its VM; rows of other VMs no longer
    /// in focus go (the one that came stays: the focus may come back to it before the next
    /// refresh). No row means the source could not build it now (the VM just went, or the
    /// last refresh failed): the detail view and a waiting fix dialog say so.
    pub(super) fn apply_detail(&mut self, d: Detail) -> Vec<Effect> {
        if d.scope != self.scope {
            return Vec::new();
        }
        let focus = self.focus();
        self.details
            .retain(|r| !d.key.matches(r) && focus.as_ref().is_some_and(|f| f.matches(r)));
        match d.row {
            Some(row) => {
                self.detail_missing = None;
                self.details.push(row);
            }
            None => self.detail_missing = Some(d.key),
        }
        self.plan_if_row_arrived()
    }

    /// A fix dialog that waited for its VM's full row plans once the row is there (with the
    /// VM's own strategy, which it could not know before), or says why it cannot.
    fn plan_if_row_arrived(&mut self) -> Vec<Effect> {
        let Some(Overlay::Fix(d)) = &self.overlay else {
            return Vec::new();
        };
        if !d.waiting_for_row {
            return Vec::new();
        }
        let key = d.key.clone();
        if let Some(row) = self.detail(&key) {
            let strategy = row.recommendation.strategy;
            if let Some(d) = self.dialog() {
                if matches!(d.kind, FixKind::Reserve(_)) && RESERVE_STRATEGIES.contains(&strategy) {
                    d.kind = FixKind::Reserve(strategy);
                }
            }
            return self.plan();
        }
        if self.row(&key).is_none() {
            // Gone from the table: plan() says so.
            return self.plan();
        }
        if self.detail_missing.as_ref() == Some(&key) {
            if let Some(d) = self.dialog() {
                d.waiting_for_row = false;
                d.plan = Some(Err(format!(
                    "{key}'s figures could not be read just now; esc, and try again after the next refresh"
                )));
                d.stage = Stage::Review;
            }
        }
        Vec::new()
    }

    fn start_fix(&mut self, kind: FixKind) -> Vec<Effect> {
        let key = match &self.view {
            View::Detail(k) => Some(k.clone()),
            View::Table => self.selected_row().map(VmKey::of),
        };
        let Some(key) = key else {
            self.flash = Some("no VM selected".into());
            return Vec::new();
        };
        let letter = match kind {
            FixKind::Reserve(_) => "f",
            FixKind::RemoveLimit => "L",
            FixKind::Undo => "u",
        };
        if self.readonly {
            self.overlay = Some(Overlay::Notice(Notice {
                title: "Read-only".into(),
                text: format!(
                    "{letter} changes the VM, and this dashboard runs with --readonly: nothing was changed."
                ),
            }));
            return Vec::new();
        }
        if !self.fix_enabled {
            self.overlay = Some(Overlay::Notice(Notice {
                title: kind.title().into(),
                text: NOT_IN_THIS_BUILD.into(),
            }));
            return Vec::new();
        }
        let kind = match kind {
            FixKind::Reserve(_) => FixKind::Reserve(
                self.detail(&key)
                    .map(|r| r.recommendation.strategy)
                    .filter(|s| RESERVE_STRATEGIES.contains(s))
                    .unwrap_or(Strategy::auto(
                        self.table.as_ref().is_some_and(|r| r.kubevirt.harvester),
                    )),
            ),
            k => k,
        };
        self.overlay = Some(Overlay::Fix(Box::new(FixDialog {
            key,
            kind,
            restart: false,
            waiting_for_row: false,
            plan: None,
            stage: Stage::Planning,
            progress: None,
        })));
        self.plan()
    }

    fn dialog(&mut self) -> Option<&mut FixDialog> {
        match &mut self.overlay {
            Some(Overlay::Fix(d)) => Some(d),
            _ => None,
        }
    }

    fn dialog_for(&mut self, req: &FixRequest) -> Option<&mut FixDialog> {
        self.dialog()
            .filter(|d| d.key.namespace == req.namespace && d.key.name == req.name)
    }

    fn request(d: &FixDialog) -> FixRequest {
        FixRequest {
            namespace: d.key.namespace.clone(),
            name: d.key.name.clone(),
            kind: d.kind,
            restart: d.restart,
        }
    }

    /// Ask for a (new) plan for the open dialog.
    fn plan(&mut self) -> Vec<Effect> {
        let Some(d) = self.dialog() else {
            return Vec::new();
        };
        d.stage = Stage::Planning;
        d.plan = None;
        d.waiting_for_row = false;
        let req = Self::request(d);
        let key = d.key.clone();
        match self.detail(&key) {
            Some(row) => vec![Effect::Plan(Box::new(row.clone()), req)],
            // The VM is there but its full row is not yet: it comes, as the dialog is the focus.
            None if self.row(&key).is_some() => {
                if let Some(d) = self.dialog() {
                    d.waiting_for_row = true;
                }
                Vec::new()
            }
            None => {
                if let Some(d) = self.dialog() {
                    d.plan = Some(Err(format!("{key} is no longer in the list")));
                    d.stage = Stage::Review;
                }
                Vec::new()
            }
        }
    }

    fn cycle_strategy(&mut self) -> Vec<Effect> {
        let Some(d) = self.dialog() else {
            return Vec::new();
        };
        if d.stage != Stage::Review {
            return Vec::new();
        }
        let FixKind::Reserve(s) = d.kind else {
            return Vec::new();
        };
        let i = RESERVE_STRATEGIES.iter().position(|x| *x == s).unwrap_or(0);
        d.kind = FixKind::Reserve(RESERVE_STRATEGIES[(i + 1) % RESERVE_STRATEGIES.len()]);
        self.plan()
    }

    fn toggle_restart(&mut self) -> Vec<Effect> {
        let Some(d) = self.dialog() else {
            return Vec::new();
        };
        if d.stage != Stage::Review {
            return Vec::new();
        }
        d.restart = !d.restart;
        self.plan()
    }

    fn confirm(&mut self) -> Vec<Effect> {
        let Some(d) = self.dialog() else {
            return Vec::new();
        };
        match (&d.stage, &d.plan) {
            (Stage::Review, Some(Ok(_))) => {
                d.stage = Stage::Applying;
                let req = Self::request(d);
                let key = d.key.clone();
                match self.detail(&key) {
                    Some(row) => vec![Effect::Apply(Box::new(row.clone()), req)],
                    None => {
                        if let Some(d) = self.dialog() {
                            d.stage = Stage::Done(ApplyOutcome::Failed(format!(
                                "{key} is no longer in the list"
                            )));
                        }
                        Vec::new()
                    }
                }
            }
            (Stage::Done(_), _) | (Stage::Review, Some(Err(_))) => {
                self.overlay = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// The server's answer as one status line.
pub fn outcome_line(req: &FixRequest, o: &ApplyOutcome) -> String {
    let vm = format!("{}/{}", req.namespace, req.name);
    match o {
        ApplyOutcome::Applied(m) => format!("{vm}: {m}"),
        ApplyOutcome::Conflict(m) => format!("{vm}: conflict: {m}"),
        ApplyOutcome::Forbidden(m) => format!("{vm}: forbidden: {m}"),
        ApplyOutcome::Failed(m) => format!("{vm}: failed: {m}"),
    }
}
