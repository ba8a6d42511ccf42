//! The detail view's history from Prometheus (issue 20): the window as a small chart (the compute
//! container's usage and the memory outside guest RAM, against the pod's limit and the room
//! outside guest RAM), and the figures in words.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
use ratatui::Frame;

use super::style::{heading, label_style, paint};
use crate::model::evidence::{utc_minute, weekday};
use crate::model::prom_history::{ago_words, VmHistory};
use crate::model::report::VmRow;
use crate::tui::app::App;
use crate::units::human;

/// Rows the chart takes when the VM has history.
pub const CHART_ROWS: u16 = 8;

/// Whether the VM has points to chart.
pub fn has_chart(r: &VmRow) -> bool {
    r.prometheus.as_ref().is_some_and(|h| !h.chart.is_empty())
}

/// `Tuesday 2026-12-01 03:12 UTC`.
fn when(t: i64) -> String {
    format!("{} {}", weekday(t), utc_minute(t))
}

/// The chart: usage and overhead over the window, the limit and the budget as lines.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, r: &VmRow) {
    let Some(h) = r.prometheus.as_deref().filter(|h| !h.chart.is_empty()) else {
        return;
    };
    let x = |t: i64| (t - h.start) as f64;
    let usage: Vec<(f64, f64)> = h
        .chart
        .iter()
        .filter_map(|p| Some((x(p.at), p.usage? as f64)))
        .collect();
    let overhead: Vec<(f64, f64)> = h
        .chart
        .iter()
        .filter_map(|p| Some((x(p.at), p.overhead?.max(0) as f64)))
        .collect();
    let limit: Vec<(f64, f64)> = h
        .chart
        .iter()
        .filter_map(|p| Some((x(p.at), p.limit.filter(|&l| l > 0)? as f64)))
        .collect();
    let span = (h.end - h.start) as f64;
    let budget: Vec<(f64, f64)> = r
        .overhead_budget_bytes
        .filter(|&b| b > 0)
        .map(|b| vec![(0.0, b as f64), (span, b as f64)])
        .unwrap_or_default();
    let top = usage
        .iter()
        .chain(&limit)
        .chain(&budget)
        .map(|p| p.1)
        .fold(1.0_f64, f64::max)
        * 1.05;
    let set = |name: &'static str, colour: Color| {
        Dataset::default()
            .name(name)
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(paint(app, Style::default().fg(colour)))
    };
    let chart = Chart::new(vec![
        set("usage", Color::Blue).data(&usage),
        set("outside guest ≥", Color::Magenta).data(&overhead),
        set("limit", Color::Red).data(&limit),
        set("budget", Color::Yellow).data(&budget),
    ])
    .x_axis(
        Axis::default()
            .bounds([0.0, span.max(1.0)])
            .labels([
                utc_minute(h.start),
                format!("the last {}", ago_words(h.end - h.start)),
                utc_minute(h.end),
            ])
            .style(label_style(app)),
    )
    // The legend says which line is which; shown unless it would cover half the chart.
    .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 1)))
    .y_axis(
        Axis::default()
            .bounds([0.0, top])
            .labels(["0".to_string(), human(top as i64)])
            .style(label_style(app)),
    );
    frame.render_widget(chart, area);
}

/// The figures in words, for the right column; while the first load runs, that it runs.
pub fn lines(app: &App, r: &VmRow) -> Vec<Line<'static>> {
    let Some(h) = r.prometheus.as_deref() else {
        return match &app.history_loading {
            Some(words) => vec![
                heading(app, "History (from Prometheus)"),
                Line::from(format!("  {words}")),
            ],
            None => Vec::new(),
        };
    };
    let mut out = vec![heading(
        app,
        &format!(
            "History (the last {}, from Prometheus)",
            ago_words(h.end - h.start)
        ),
    )];
    out.extend(figure_lines(h));
    out
}

fn figure_lines(h: &VmHistory) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(format!("  source           {}", h.source))];
    if let Some(n) = &h.note {
        out.push(Line::from(format!("  {n}")));
        return out;
    }
    if let Some(p) = h.peak_usage {
        out.push(Line::from(format!(
            "  peak usage       {} on {}",
            human(p.bytes),
            when(p.at)
        )));
    }
    if let Some(p) = h.peak_working_set {
        out.push(Line::from(format!(
            "  peak working set {} on {}",
            human(p.bytes),
            when(p.at)
        )));
    }
    match h.peak_overhead {
        Some(p) => out.push(Line::from(format!(
            "  outside guest    at least {} on {} (RSS less the guest: a lower bound)",
            human(p.bytes),
            when(p.at)
        ))),
        None => out.push(Line::from(
            "  outside guest    unknown (no RSS, or the guest was never fully resident)",
        )),
    }
    let kills: Vec<String> = h.oom_kills.iter().map(|&t| when(t)).collect();
    out.push(Line::from(match kills.len() {
        0 => "  OOM kills        none".to_string(),
        _ => format!("  OOM kills        {}: {}", kills.len(), kills.join(", ")),
    }));
    for c in &h.limit_changes {
        out.push(Line::from(format!(
            "  limit changed    {} → {} on {}",
            human(c.from_bytes),
            human(c.to_bytes),
            when(c.at)
        )));
    }
    out.push(Line::from(format!(
        "  launcher pods    {} (one point per {})",
        h.pods.len(),
        ago_words(h.step_seconds)
    )));
    out
}
