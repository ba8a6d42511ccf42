//! `?`: every key, the sort letters, and how to read the table.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{centred, label_style};
use crate::tui::action::KEYS;
use crate::tui::app::App;
use crate::tui::columns::ALL;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut lines: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>16}  "), label_style(app)),
                Span::raw(*what),
            ])
        })
        .collect();
    let sorts: Vec<String> = ALL
        .iter()
        .map(|c| format!("{} {}", c.sort_key(), c.header()))
        .collect();
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "Sort (shift+letter)",
        Style::default().add_modifier(Modifier::BOLD),
    )));
    lines.push(Line::from(format!("  {}", sorts.join(", "))));
    lines.push(Line::default());
    lines.push(Line::from(
        "RISK critical: headroom < 0 or OOM kill · warn: headroom < 25% of budget or < 64Mi · unknown: no live data · * under-reserved · SOURCE stale (dim): old data",
    ));
    if let Some(log) = &app.log_file {
        lines.push(Line::from(format!("Log (-v): {}", log.display())));
    }
    if app.readonly {
        lines.push(Line::from(
            "Read-only (--readonly): f, L and u are disabled.",
        ));
    }
    let w = area.width.min(96);
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let h: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let r = centred(area, w, (h as u16).saturating_add(2));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Help (esc closes) "),
        ),
        r,
    );
}
