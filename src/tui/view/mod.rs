//! Drawing: everything is a function of `&App` and the frame's size.

pub mod bars;
pub mod detail;
pub mod detail_history;
pub mod detail_oom;
pub mod dialog;
pub mod header;
pub mod help;
pub mod style;
pub mod table;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, InputKind, View, HEADER_ROWS};
pub use style::{age, bad_style, centred, label_style, paint, risk_style};

/// Draw the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let [head, banner, body, status] = Layout::vertical([
        Constraint::Length(HEADER_ROWS),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::draw(frame, head, app);
    draw_banner(frame, banner, app);
    match &app.view {
        View::Table => table::draw(frame, body, app),
        View::Detail(key) => detail::draw(frame, body, app, key),
    }
    draw_status(frame, status, app);
    match &app.overlay {
        Some(super::app::Overlay::Help) => help::draw(frame, frame.area(), app),
        Some(super::app::Overlay::Notice(n)) => dialog::draw_notice(frame, frame.area(), app, n),
        Some(super::app::Overlay::Fix(d)) => dialog::draw_fix(frame, frame.area(), app, d),
        None => {}
    }
    blank_unsafe_cells(frame);
}

/// The last filter between cluster text and the terminal: ratatui leaves out C0 and C1
/// controls, but a cell may still hold a bidirectional override from a VM's name or a kernel
/// log (which reorders what the reader sees): such a cell shows U+FFFD instead.
fn blank_unsafe_cells(frame: &mut Frame<'_>) {
    for cell in frame.buffer_mut().content.iter_mut() {
        if crate::escape::has_unsafe(cell.symbol()) {
            cell.set_symbol("\u{fffd}");
        }
    }
}

/// The line under the header: the error of the last fetch, else warnings, else the filter.
fn draw_banner(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let line = if let Some((what, msg)) = app.health.describe() {
        // What the screen shows comes before the error, which may be long enough to be cut.
        let shown = if app.table.is_some() {
            " (showing the last data, marked stale)"
        } else {
            ""
        };
        Line::from(vec![
            Span::styled(format!("{}{shown}: ", what.to_uppercase()), bad_style(app)),
            Span::raw(msg.to_string()),
        ])
    } else if let Some(w) = app.table.as_ref().and_then(|r| r.warnings.first()) {
        let more = app.table.as_ref().map(|r| r.warnings.len()).unwrap_or(0);
        let more = if more > 1 {
            format!(" (+{} more)", more - 1)
        } else {
            String::new()
        };
        Line::from(vec![
            Span::styled("warning: ", paint(app, Style::default().fg(Color::Yellow))),
            Span::raw(format!("{w}{more}")),
        ])
    } else if !app.filter.is_empty() && app.input.is_none() {
        Line::from(vec![
            Span::styled("filter: ", label_style(app)),
            Span::raw(format!("{}  (esc clears)", app.filter)),
        ])
    } else {
        Line::default()
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The bottom line: the prompt while typing, else a message, else the main keys.
fn draw_status(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let line = if let Some(input) = &app.input {
        let prompt = match input.kind {
            InputKind::Filter => "/",
            InputKind::Command => ":",
        };
        Line::from(vec![
            Span::styled(prompt, label_style(app).add_modifier(Modifier::BOLD)),
            Span::raw(input.text.clone()),
            Span::styled("█", Style::default().add_modifier(Modifier::SLOW_BLINK)),
        ])
    } else if let Some(msg) = &app.flash {
        Line::from(Span::raw(msg.clone()))
    } else {
        let mut keys: Vec<(&str, &str)> = match app.view {
            View::Table => vec![("enter", "detail"), ("/", "filter"), ("n", "ns")],
            View::Detail(_) => vec![("esc", "back"), ("j/k", "scroll")],
        };
        if app.readonly {
            keys.push(("", "read-only"));
        } else {
            keys.extend([("f", "fix"), ("L", "unlimit"), ("u", "undo")]);
        }
        keys.extend([("?", "help"), ("q", "quit")]);
        let mut spans = Vec::new();
        for (k, what) in keys {
            if !k.is_empty() {
                spans.push(Span::styled(format!("<{k}>"), label_style(app)));
                spans.push(Span::raw(format!("{what} ")));
            } else {
                spans.push(Span::styled(
                    format!("[{what}]  "),
                    paint(app, Style::default().fg(Color::Yellow)),
                ));
            }
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
