//! The three header lines: risk counts and data age; where the data comes from; KubeVirt.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::{age, label_style, paint, risk_style};
use crate::model::report::Risk;
use crate::tui::app::App;

fn kv(app: &App, k: &str, v: String) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("{k}: "), label_style(app)),
        Span::raw(v),
        Span::raw("  "),
    ]
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let c = app.counts;
    let mut l1 = vec![Span::styled(
        format!("VMs: {}  ", app.visible.len()),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    for (n, risk) in [
        (c.critical, Risk::Critical),
        (c.warn, Risk::Warn),
        (c.unknown, Risk::Unknown),
        (c.ok, Risk::Ok),
    ] {
        let style = if n > 0 {
            risk_style(app, risk)
        } else {
            Style::default()
        };
        l1.push(Span::styled(format!("{n} {}", risk.as_str()), style));
        l1.push(Span::raw("  "));
    }
    let data = match app.data_age() {
        Some(a) => format!("{} old", age(a)),
        None => "none yet".into(),
    };
    l1.extend(kv(
        app,
        "data",
        format!("{data}, refresh {}", age(app.refresh)),
    ));
    if app.data_stale() && app.table.is_some() {
        l1.push(Span::styled(
            "STALE  ",
            paint(app, Style::default().fg(Color::Yellow)).add_modifier(Modifier::BOLD),
        ));
    }
    if app.fetching {
        l1.push(Span::raw("fetching…"));
    }
    let ctx = &app.context;
    let mut l2 = kv(app, "ctx", or_dash(&ctx.context));
    l2.extend(kv(app, "cluster", or_dash(&ctx.cluster)));
    l2.extend(kv(
        app,
        "ns",
        app.scope.namespace.clone().unwrap_or_else(|| "all".into()),
    ));
    l2.extend(kv(app, "server", or_dash(&ctx.server)));
    let mut l3 = Vec::new();
    match &app.table {
        Some(r) => {
            l3.extend(kv(
                app,
                "KubeVirt",
                format!("{} ({})", r.kubevirt.version, r.kubevirt.version_source),
            ));
            l3.extend(kv(
                app,
                "ratio",
                r.kubevirt
                    .overhead_ratio
                    .clone()
                    .unwrap_or_else(|| "unset".into()),
            ));
            l3.extend(kv(
                app,
                "Harvester",
                if r.kubevirt.harvester { "yes" } else { "no" }.into(),
            ));
        }
        None => l3.extend(kv(app, "KubeVirt", "-".into())),
    }
    l3.extend(kv(app, "live", or_dash(&app.live)));
    let text = vec![Line::from(l1), Line::from(l2), Line::from(l3)];
    frame.render_widget(Paragraph::new(text), area);
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}
