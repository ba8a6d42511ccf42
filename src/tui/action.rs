//! Everything that can happen to the dashboard, and which key means what in which mode.

use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Overlay};
use super::columns::Column;
use crate::session::dashboard::fix::{ApplyOutcome, FixRequest, PlanView};
use crate::session::dashboard::snapshot::{Detail, Snapshot};

#[derive(Debug, Clone)]
pub enum Action {
    Quit,
    Refresh,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// `enter`: open the selected VM.
    Open,
    /// `esc`: close the top overlay, clear the filter, or go back to the table.
    Back,
    SortBy(Column),
    Help,
    /// `/`: start typing a filter.
    StartFilter,
    /// `:`: start typing a command (`ns NAME`, `ns`, `q`).
    StartCommand,
    /// `n`: the command prompt with `ns ` typed.
    StartNamespace,
    /// `0`: all namespaces.
    AllNamespaces,
    InputChar(char),
    InputBackspace,
    InputSubmit,
    /// `f`, `L`, `u`.
    Fix,
    RemoveLimit,
    Undo,
    /// In the fix dialog: next strategy, toggle restart now/later, confirm.
    CycleStrategy,
    ToggleRestart,
    Confirm,
    /// From the background.
    Snapshot(Box<Snapshot>),
    /// The full row of a VM in focus, built on demand.
    Detail(Box<Detail>),
    Planned(FixRequest, Result<PlanView, String>),
    Applied(FixRequest, ApplyOutcome),
    /// A step of an apply in progress (restart).
    FixProgress(FixRequest, String),
    /// Clock tick (redraws the data's age).
    Tick(SystemTime),
    Resize(u16, u16),
}

/// Translate a key press into an action for the current mode; `None` ignores it.
pub fn from_key(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        return Some(Action::Quit);
    }
    // Typing a filter or command: every printable key is text.
    if app.input.is_some() {
        return match key.code {
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Enter => Some(Action::InputSubmit),
            KeyCode::Backspace => Some(Action::InputBackspace),
            KeyCode::Char(c) if !ctrl => Some(Action::InputChar(c)),
            _ => None,
        };
    }
    match &app.overlay {
        Some(Overlay::Help) => {
            return match key.code {
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => {
                    Some(Action::Back)
                }
                _ => None,
            }
        }
        Some(Overlay::Notice(_)) => {
            return match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char(' ') => {
                    Some(Action::Back)
                }
                _ => None,
            }
        }
        Some(Overlay::Fix(_)) => {
            return match key.code {
                KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => Some(Action::Back),
                KeyCode::Char('s') | KeyCode::Tab => Some(Action::CycleStrategy),
                KeyCode::Char('r') => Some(Action::ToggleRestart),
                KeyCode::Char('y') | KeyCode::Enter => Some(Action::Confirm),
                _ => None,
            }
        }
        None => {}
    }
    if ctrl {
        return match key.code {
            KeyCode::Char('r') => Some(Action::Refresh),
            KeyCode::Char('d') | KeyCode::Char('f') => Some(Action::PageDown),
            KeyCode::Char('u') | KeyCode::Char('b') => Some(Action::PageUp),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(':') => Action::StartCommand,
        KeyCode::Char('n') => Action::StartNamespace,
        KeyCode::Char('0') => Action::AllNamespaces,
        KeyCode::Char('f') => Action::Fix,
        KeyCode::Char('L') => Action::RemoveLimit,
        KeyCode::Char('u') => Action::Undo,
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Enter => Action::Open,
        KeyCode::Esc => Action::Back,
        KeyCode::Char(c) if c.is_ascii_uppercase() => Action::SortBy(Column::from_sort_key(c)?),
        _ => return None,
    })
}

/// Every key, for the help screen: (keys, what it does).
pub const KEYS: &[(&str, &str)] = &[
    ("?", "this help"),
    ("q, ctrl-c", "quit"),
    ("ctrl-r", "refresh now"),
    ("j/k, up/down", "move"),
    ("g/G, pgup/pgdn", "top / bottom, page up / down"),
    ("enter", "details of the selected VM"),
    ("esc", "back; clear the filter"),
    ("/", "filter by name, namespace, node, risk or flag"),
    (
        ":ns NAME, n, 0",
        "switch namespace; :ns all or 0 for all (-A)",
    ),
    ("shift-letter", "sort by the column (again: reverse)"),
    ("f", "apply the recommended reservation (asks first)"),
    ("L", "remove the memory limit (asks first)"),
    ("u", "undo the last change made by this tool (asks first)"),
    (
        "s, r, y",
        "in a fix dialog: strategy, restart now/later, confirm",
    ),
];
