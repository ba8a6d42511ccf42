//! The main table. Only the rows on screen are formatted, so 5,000 VMs cost what 20 do.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::bars::{inline_bar, level_colour};
use super::style::{bad_style, centred, paint, risk_style};
use crate::model::report::{Flag, TableRow};
use crate::tui::app::App;
use crate::tui::columns::{Column, ALL, PRIORITY};
use crate::units::human;

const GAP: u16 = 2;

fn size(b: Option<i64>) -> String {
    b.map(human).unwrap_or_else(|| "-".into())
}

/// Cells of one row for the chosen columns.
fn cells(app: &App, r: &TableRow, cols: &[Column], bar: usize) -> Vec<Cell<'static>> {
    let stale = app.row_stale(r.stale);
    cols.iter()
        .map(|c| match c {
            Column::Namespace => Cell::from(r.namespace.clone()),
            Column::Name => Cell::from(r.name.clone()),
            Column::Node => Cell::from(r.node.clone().unwrap_or_else(|| "-".into())),
            Column::Guest => Cell::from(size(r.guest_bytes)),
            Column::VmLimit => {
                Cell::from(r.vm_limit_bytes.map(human).unwrap_or_else(|| "none".into()))
            }
            Column::PodLimit => Cell::from(match r.pod_limit_bytes {
                Some(l) => human(l),
                None if r.vm_limit_bytes.is_none() => "none".into(),
                None => "-".into(),
            }),
            Column::Usage => usage_cell(app, r, bar),
            Column::Overhead => Cell::from(overhead_cell(r)),
            Column::Headroom => {
                let style = if r.headroom_bytes.is_some_and(|h| h < 0) {
                    bad_style(app)
                } else {
                    Style::default()
                };
                Cell::from(Span::styled(size(r.headroom_bytes), style))
            }
            Column::Risk => Cell::from(Span::styled(risk_text(r), risk_style(app, r.risk))),
            Column::Ooms => Cell::from(ooms(r)),
            Column::Source => Cell::from(if stale {
                "stale".to_string()
            } else {
                r.live_source
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "spec".into())
            }),
        })
        .collect()
}

/// The risk, `*` when under-reserved, and the time to OOM when the overhead grows steadily.
fn risk_text(r: &TableRow) -> String {
    let mut text = r.risk.as_str().to_string();
    if r.has_flag(Flag::UnderReserved) {
        text.push('*');
    }
    if let Some(e) = &r.oom_eta {
        text.push_str(&format!(" OOM {}", e.words()));
    }
    text
}

/// OOM kills of the VM across its current and earlier pods (cgroup counters and kernel logs,
/// each kill once); `-` when nothing could be read.
fn ooms(r: &TableRow) -> String {
    r.oom_kills.map_or_else(|| "-".into(), |n| n.to_string())
}

fn usage_cell(app: &App, r: &TableRow, bar: usize) -> Cell<'static> {
    let Some(usage) = r.usage_bytes else {
        return Cell::from("-");
    };
    let used = human(usage as i64);
    match r.usage_permille() {
        Some(p) => Cell::from(Line::from(vec![
            Span::styled(
                inline_bar(p, bar),
                paint(app, Style::default().fg(level_colour(p))),
            ),
            Span::raw(format!(" {used}")),
        ])),
        None => Cell::from(format!("{} {used}", " ".repeat(bar))),
    }
}

/// `used/budget`.
pub fn overhead_cell(r: &TableRow) -> String {
    match (r.overhead_used_bytes, r.overhead_budget_bytes) {
        (Some(u), Some(b)) => format!("{}/{}", human(u), human(b)),
        (Some(u), None) => format!("{}/-", human(u)),
        (None, Some(b)) => format!("-/{}", human(b)),
        (None, None) => "-".into(),
    }
}

/// Choose columns and widths for `width` cells: drop the least important columns until they
/// fit, then squeeze NAME.
pub fn layout(app: &App, rows: &[&TableRow], width: u16) -> (Vec<Column>, Vec<u16>, usize) {
    let bar = if width >= 120 { 8 } else { 4 };
    let mut keep: Vec<Column> = ALL
        .into_iter()
        .filter(|c| *c != Column::Namespace || app.all_namespaces())
        .collect();
    let widths = |keep: &[Column]| -> Vec<u16> {
        keep.iter()
            .map(|&c| content_width_of(app, rows, c, bar))
            .collect()
    };
    let total = |w: &[u16]| w.iter().sum::<u16>() + GAP * w.len().saturating_sub(1) as u16;
    let mut w = widths(&keep);
    for drop in PRIORITY.iter().rev() {
        if total(&w) <= width || keep.len() <= 2 {
            break;
        }
        if let Some(i) = keep.iter().position(|c| c == drop) {
            keep.remove(i);
            w.remove(i);
        }
    }
    if total(&w) > width {
        if let Some(i) = keep.iter().position(|c| *c == Column::Name) {
            let over = total(&w) - width;
            w[i] = w[i].saturating_sub(over).max(8);
        }
    }
    (keep, w, bar)
}

/// Width a column needs for the rows on screen.
fn content_width_of(app: &App, rows: &[&TableRow], c: Column, bar: usize) -> u16 {
    let header = c.header().chars().count() + 1;
    let w = rows
        .iter()
        .map(|r| text_of(r, c, bar, app).chars().count())
        .max()
        .unwrap_or(0);
    header.max(w).min(40) as u16
}

/// The plain text of a cell (for widths), same as what `cells` draws.
fn text_of(r: &TableRow, c: Column, bar: usize, app: &App) -> String {
    match c {
        Column::Namespace => r.namespace.clone(),
        Column::Name => r.name.clone(),
        Column::Node => r.node.clone().unwrap_or_else(|| "-".into()),
        Column::Guest => size(r.guest_bytes),
        Column::VmLimit => r.vm_limit_bytes.map(human).unwrap_or_else(|| "none".into()),
        Column::PodLimit => r
            .pod_limit_bytes
            .map(human)
            .unwrap_or_else(|| "none".into()),
        Column::Usage => r
            .usage_bytes
            .map(|u| format!("{} {}", " ".repeat(bar), human(u as i64)))
            .unwrap_or_else(|| "-".into()),
        Column::Overhead => overhead_cell(r),
        Column::Headroom => size(r.headroom_bytes),
        Column::Risk => risk_text(r),
        Column::Ooms => ooms(r),
        Column::Source => {
            if app.row_stale(r.stale) {
                "stale".into()
            } else {
                r.live_source
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "spec".into())
            }
        }
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    if app.visible.is_empty() {
        draw_empty(frame, area, app);
        return;
    }
    let page = usize::from(area.height.saturating_sub(1)).max(1);
    // Keep the selection on screen even if the size changed since the last update.
    let mut offset = app.offset.min(app.visible.len().saturating_sub(1));
    if app.selected < offset {
        offset = app.selected;
    } else if app.selected >= offset + page {
        offset = app.selected + 1 - page;
    }
    let window: Vec<&TableRow> = (offset..(offset + page).min(app.visible.len()))
        .filter_map(|i| app.visible_row(i))
        .collect();
    let (cols, widths, bar) = layout(app, &window, area.width);
    let header = Row::new(cols.iter().map(|c| {
        let mut h = c.header().to_string();
        if app.sort.column == *c {
            h.push(if app.sort.reverse { '↓' } else { '↑' });
        }
        Cell::from(h)
    }))
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row<'static>> = window
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut style = Style::default();
            if app.row_stale(r.stale) {
                style = style.add_modifier(Modifier::DIM);
            }
            if offset + i == app.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(cells(app, r, &cols, bar)).style(style)
        })
        .collect();
    let table = Table::new(rows, widths.iter().map(|&w| Constraint::Length(w)))
        .header(header)
        .column_spacing(GAP);
    frame.render_widget(table, area);
}

fn draw_empty(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let (text, style) = if app.table.is_none() {
        match app.health.describe() {
            Some((what, msg)) => (
                format!("Cannot read the cluster ({what}):\n{msg}\n\nctrl-r retries; q quits."),
                bad_style(app),
            ),
            None => ("Loading…".to_string(), Style::default()),
        }
    } else if !app.filter.is_empty() {
        (
            format!("No VM matches the filter {:?} (esc clears it).", app.filter),
            Style::default(),
        )
    } else {
        let scope = match &app.scope.namespace {
            Some(ns) => format!("in namespace {ns}.\n(:ns all or 0 shows every namespace.)"),
            None => "in any namespace.".into(),
        };
        (
            format!("No VirtualMachines {scope}"),
            paint(app, Style::default().fg(Color::DarkGray)),
        )
    };
    let lines = text.lines().count() as u16;
    let r = centred(area, area.width.saturating_sub(4), lines);
    frame.render_widget(
        Paragraph::new(text)
            .style(style)
            .alignment(ratatui::layout::Alignment::Center)
            .wrap(ratatui::widgets::Wrap { trim: true }),
        r,
    );
}
