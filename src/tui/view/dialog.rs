//! Dialogs: notices, and the fix dialog (before/after, strategy, patch, restart, answer).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{bad_style, centred, label_style, paint};
use crate::session::dashboard::fix::{ApplyOutcome, FixKind, PlanView};
use crate::tui::app::{App, FixDialog, Notice, Stage};

/// The warning of the seed's Solution 2, shown before removing a limit.
pub const HOST_EXHAUSTION: &str = "Without a memory limit the VM is never OOM-killed by its cgroup, but it may exhaust all memory on the host in extreme cases: be careful with this in production.";

/// A bordered box in the middle of `area`; the last line (the keys to answer with) always
/// stays visible at the bottom even when the rest has to be cut.
fn frame_box(
    frame: &mut Frame<'_>,
    area: Rect,
    title: &str,
    mut lines: Vec<Line<'static>>,
    w: u16,
) {
    let footer = lines.pop().unwrap_or_default();
    let inner_w = usize::from(w.min(area.width).saturating_sub(4)).max(1);
    let rows = |l: &Line<'_>| l.width().div_ceil(inner_w).max(1);
    let h: usize = lines.iter().map(rows).sum::<usize>() + rows(&footer);
    let r = centred(area, w, (h as u16).saturating_add(2));
    frame.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .padding(Padding::horizontal(1))
        .title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let foot_h = (rows(&footer) as u16).min(inner.height);
    let body = Rect {
        height: inner.height - foot_h,
        ..inner
    };
    let foot = Rect {
        y: inner.y + inner.height - foot_h,
        height: foot_h,
        ..inner
    };
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
    frame.render_widget(Paragraph::new(footer).wrap(Wrap { trim: false }), foot);
}

pub fn draw_notice(frame: &mut Frame<'_>, area: Rect, app: &App, n: &Notice) {
    let lines = vec![
        Line::from(n.text.clone()),
        Line::default(),
        Line::from(Span::styled("[enter] ok", label_style(app))),
    ];
    frame_box(frame, area, &n.title, lines, 64);
}

pub fn draw_fix(frame: &mut Frame<'_>, area: Rect, app: &App, d: &FixDialog) {
    let mut lines = choice_lines(app, d);
    lines.push(Line::default());
    match &d.plan {
        None => lines.push(Line::from("planning…")),
        Some(Err(e)) => lines.push(Line::from(vec![
            Span::styled("cannot plan: ", bad_style(app)),
            Span::raw(e.clone()),
        ])),
        Some(Ok(p)) => lines.extend(plan_lines(app, p)),
    }
    lines.push(Line::default());
    lines.push(answer_line(app, d));
    let w = if area.width >= 100 { 90 } else { area.width };
    frame_box(frame, area, d.kind.title(), lines, w);
}

/// The VM, the strategy and the restart choice (with the keys that change them), and the
/// warning before removing a limit.
fn choice_lines(app: &App, d: &FixDialog) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = vec![Line::from(vec![
        Span::styled("VM ", label_style(app)),
        Span::styled(
            d.key.to_string(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
    ])];
    if let FixKind::Reserve(s) = d.kind {
        lines.push(Line::from(vec![
            Span::styled("strategy ", label_style(app)),
            Span::raw(format!("{}  ", s.as_str())),
            Span::raw("(s: change)"),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled("restart  ", label_style(app)),
        Span::raw(if d.restart {
            "now: the VM restarts right after the patch  (r: later)"
        } else {
            "later: the change takes effect at the next restart  (r: now)"
        }),
    ]));
    if d.kind == FixKind::RemoveLimit {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            format!("WARNING: {HOST_EXHAUSTION}"),
            bad_style(app),
        )));
    }
    lines
}

/// The plan: before → after per line (changed values in bold green), why, the patch and the
/// warnings.
fn plan_lines(app: &App, p: &PlanView) -> Vec<Line<'static>> {
    let mut lines = before_after_lines(app, p);
    if !p.reason.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("why ", label_style(app)),
            Span::raw(p.reason.clone()),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("patch", label_style(app))));
    for l in p.patch.lines() {
        lines.push(Line::from(format!("  {l}")));
    }
    for w in &p.warnings {
        lines.push(Line::from(vec![
            Span::styled("warning: ", paint(app, Style::default().fg(Color::Yellow))),
            Span::raw(w.clone()),
        ]));
    }
    lines
}

/// The plan's BEFORE/AFTER table, its label and before columns as wide as their longest cell.
fn before_after_lines(app: &App, p: &PlanView) -> Vec<Line<'static>> {
    let lw = p
        .lines
        .iter()
        .map(|l| l.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let bw = p
        .lines
        .iter()
        .map(|l| l.before.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut lines = vec![Line::from(Span::styled(
        format!("{:<lw$}  {:<bw$}   AFTER", "", "BEFORE"),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    for l in &p.lines {
        let changed = l.before != l.after;
        let arrow = if changed { "→" } else { " " };
        lines.push(Line::from(vec![
            Span::raw(format!("{:<lw$}  {:<bw$} {arrow} ", l.label, l.before)),
            Span::styled(
                l.after.clone(),
                if changed {
                    paint(app, Style::default().fg(Color::Green)).add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                },
            ),
        ]));
    }
    lines
}

/// The last line: the keys to answer with at this stage, the progress, or the outcome.
fn answer_line(app: &App, d: &FixDialog) -> Line<'static> {
    match &d.stage {
        Stage::Planning => Line::from("[esc] cancel"),
        Stage::Review => match &d.plan {
            Some(Ok(_)) => Line::from(Span::styled(
                "Apply this change? [y] yes  [n/esc] no",
                Style::default().add_modifier(Modifier::BOLD),
            )),
            _ => Line::from("[esc] close"),
        },
        Stage::Applying => Line::from(match &d.progress {
            Some(p) => format!("applying… {p}"),
            None => "applying… waiting for the server".to_string(),
        }),
        Stage::Done(o) => outcome(app, o),
    }
}

fn outcome(app: &App, o: &ApplyOutcome) -> Line<'static> {
    let (what, msg, style) = match o {
        ApplyOutcome::Applied(m) => (
            "done: ",
            m,
            paint(app, Style::default().fg(Color::Green)).add_modifier(Modifier::BOLD),
        ),
        ApplyOutcome::Conflict(m) => (
            "CONFLICT (the VM changed; refresh and retry): ",
            m,
            bad_style(app),
        ),
        ApplyOutcome::Forbidden(m) => ("FORBIDDEN: ", m, bad_style(app)),
        ApplyOutcome::Failed(m) => ("FAILED: ", m, bad_style(app)),
    };
    Line::from(vec![
        Span::styled(what, style),
        Span::raw(format!("{msg}  [enter] close")),
    ])
}
