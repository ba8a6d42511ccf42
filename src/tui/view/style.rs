//! The views' shared look: colours (dropped when colour is off), the detail view's lines, and
//! placement helpers.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::model::report::Risk;
use crate::tui::app::App;
use crate::units::human;

/// A style with its colours dropped when colour is off (modifiers stay).
pub fn paint(app: &App, style: Style) -> Style {
    if app.colour {
        style
    } else {
        Style {
            fg: None,
            bg: None,
            ..style
        }
    }
}

pub fn risk_style(app: &App, risk: Risk) -> Style {
    let s = match risk {
        Risk::Critical => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        Risk::Warn => Style::default().fg(Color::Yellow),
        Risk::Ok => Style::default().fg(Color::Green),
        Risk::Unknown => Style::default().fg(Color::DarkGray),
    };
    paint(app, s)
}

pub fn label_style(app: &App) -> Style {
    paint(app, Style::default().fg(Color::Cyan))
}

pub fn bad_style(app: &App) -> Style {
    paint(
        app,
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    )
}

/// A size, or `-` when unknown.
pub fn size(b: Option<i64>) -> String {
    b.map(human).unwrap_or_else(|| "-".into())
}

/// A bold section heading.
pub fn heading(app: &App, s: &str) -> Line<'static> {
    Line::from(Span::styled(
        s.to_string(),
        label_style(app).add_modifier(Modifier::BOLD),
    ))
}

pub fn kv(k: &str, v: String, why: &str) -> Line<'static> {
    if why.is_empty() {
        Line::from(format!("  {k:<16} {v}"))
    } else {
        Line::from(format!("  {k:<16} {v:>10}  {why}"))
    }
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// `n` seconds as `4s`, `3m12s`, `2h5m`.
pub fn age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    }
}
