//! One VM: the breakdown as a stacked bar and a table, the memory model explained, the spec
//! with O's terms, OOM history, the recommendation, and usage/overhead over the session.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::bars::{stacked, Segment};
use super::style::{bad_style, heading, kv, label_style, paint, risk_style, size};
use crate::model::memory::Part;
use crate::model::readings::LiveSource;
use crate::model::report::flags_joined;
use crate::model::report::VmRow;
use crate::tui::app::App;
use crate::tui::history::VmKey;
use crate::units::{human, to_quantity_string};

/// Glyph and colour per breakdown component (the glyph keeps the bar readable without colour).
fn look(part: Part) -> (char, Color) {
    match part {
        Part::Guest => ('G', Color::Blue),
        Part::Qemu => ('Q', Color::Magenta),
        Part::LauncherMonitor => ('M', Color::Cyan),
        Part::Launcher => ('L', Color::LightCyan),
        Part::Virtqemud | Part::Libvirtd => ('V', Color::Yellow),
        Part::Virtlogd => ('D', Color::LightYellow),
        Part::Other => ('O', Color::LightRed),
        Part::Kernel => ('K', Color::Red),
        Part::File => ('F', Color::Gray),
    }
}

/// Legend names short enough for 80 columns.
fn short(part: Part) -> &'static str {
    match part {
        Part::LauncherMonitor => "monitor",
        Part::Launcher => "launcher",
        p => p.as_str(),
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, key: &VmKey) {
    let Some(r) = app.detail(key) else {
        let text = if app.detail_missing.as_ref() == Some(key) {
            Paragraph::new(format!(
                "{key}'s figures could not be read just now; they come with the next refresh. esc goes back."
            ))
        } else if app.row(key).is_some() {
            Paragraph::new(format!("Reading {key}…"))
        } else {
            Paragraph::new(format!(
                "{key} is not in the current data (deleted, or outside the namespace). esc goes back."
            ))
            .style(bad_style(app))
        };
        frame.render_widget(text, area);
        return;
    };
    let series = app.history.get(key);
    let spark_rows = if area.height >= 30 { 2 } else { 1 };
    // The history chart (issue 20) only where there is history and room for it beside a body
    // that still shows everything down to the time to OOM at 200 columns (on a shorter terminal
    // the history is in words in the body).
    let chart_rows = if super::detail_history::has_chart(r) && area.height >= CHART_MIN_HEIGHT {
        super::detail_history::CHART_ROWS
    } else {
        0
    };
    let [title, bar, legend, sparks, chart, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(spark_rows * 2),
        Constraint::Length(chart_rows),
        Constraint::Min(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title_line(app, r)), title);
    draw_bar(frame, bar, legend, app, r);
    draw_sparks(frame, sparks, app, series, spark_rows);
    if chart_rows > 0 {
        super::detail_history::draw(frame, chart, app, r);
    }
    let split = body.width >= 150;
    let left = left_lines(app, r, if split { body.width / 2 } else { body.width });
    let right = right_lines(app, r);
    if split {
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(body);
        frame.render_widget(
            Paragraph::new(left)
                .wrap(Wrap { trim: false })
                .scroll((app.detail_scroll, 0)),
            a,
        );
        frame.render_widget(
            Paragraph::new(right)
                .wrap(Wrap { trim: false })
                .scroll((app.detail_scroll, 0)),
            b,
        );
    } else {
        let mut all = left;
        all.push(Line::default());
        all.extend(right);
        frame.render_widget(
            Paragraph::new(all)
                .wrap(Wrap { trim: false })
                .scroll((app.detail_scroll, 0)),
            body,
        );
    }
}

fn title_line(app: &App, r: &VmRow) -> Line<'static> {
    let mut spans = vec![
        Span::styled(
            format!("{}/{}", r.namespace, r.name),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "  node {}  {}  ",
            r.node.as_deref().unwrap_or("-"),
            r.phase
        )),
        Span::styled(format!("risk {}", r.risk.as_str()), risk_style(app, r.risk)),
    ];
    if app.row_stale(r.stale) {
        spans.push(Span::styled(
            "  STALE",
            paint(app, Style::default().fg(Color::Yellow)),
        ));
    }
    if !r.flags.is_empty() {
        spans.push(Span::raw(format!("  [{}]", flags_joined(&r.flags, ", "))));
    }
    Line::from(spans)
}

fn draw_bar(frame: &mut Frame<'_>, bar: Rect, legend: Rect, app: &App, r: &VmRow) {
    if r.breakdown.is_empty() {
        frame.render_widget(
            Paragraph::new("breakdown: no live data for this VM (spec only)")
                .style(paint(app, Style::default().fg(Color::DarkGray))),
            bar,
        );
        return;
    }
    let limit = r
        .cgroup
        .as_ref()
        .and_then(|c| c.limit_bytes)
        .map(|l| l as i64)
        .unwrap_or(0);
    let segs: Vec<Segment<'_>> = r
        .breakdown
        .iter()
        .map(|c| {
            let (glyph, colour) = look(c.name);
            Segment {
                label: short(c.name),
                glyph,
                colour,
                bytes: c.bytes,
            }
        })
        .collect();
    let mut spans = vec![Span::raw("[")];
    spans.extend(stacked(
        &segs,
        limit,
        usize::from(bar.width.saturating_sub(2)),
        app.colour,
    ));
    spans.push(Span::raw("]"));
    frame.render_widget(Paragraph::new(Line::from(spans)), bar);
    let mut l = Vec::new();
    for s in segs.iter().filter(|s| s.bytes > 0) {
        l.push(Span::styled(
            s.glyph.to_string(),
            paint(app, Style::default().fg(s.colour)).add_modifier(Modifier::BOLD),
        ));
        l.push(Span::raw(format!(" {} ", s.label)));
    }
    l.push(Span::raw(if limit > 0 {
        format!("· free, of the limit {}", human(limit))
    } else {
        "(no limit)".to_string()
    }));
    frame.render_widget(Paragraph::new(Line::from(l)), legend);
}

fn draw_sparks(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    series: Option<&crate::tui::history::Series>,
    rows: u16,
) {
    let [u, o] = Layout::vertical([Constraint::Length(rows), Constraint::Length(rows)]).areas(area);
    let Some(s) = series.filter(|s| !s.usage.is_empty()) else {
        frame.render_widget(
            Paragraph::new("usage and overhead over the session: no live samples yet"),
            u,
        );
        return;
    };
    for (rect, name, data, colour) in [
        (u, "usage   ", &s.usage, Color::Blue),
        (o, "overhead", &s.overhead, Color::Magenta),
    ] {
        let last = data.back().unwrap_or(0);
        let max = data.iter().max().unwrap_or(0);
        let min = data.iter().min().unwrap_or(0);
        let label = format!(
            "{name} {:>8} (min {:>8}, max {:>8}) ",
            human(last as i64),
            human(min as i64),
            human(max as i64)
        );
        let lw = (label.chars().count() as u16).min(rect.width);
        let [a, b] = Layout::horizontal([Constraint::Length(lw), Constraint::Min(1)]).areas(rect);
        frame.render_widget(Paragraph::new(label).style(label_style(app)), a);
        // The newest samples that fit.
        let n = usize::from(b.width);
        let skip = data.len().saturating_sub(n);
        // Bars start at min − (max − min), so changes show and the lowest sample is still
        // visible; the label gives the real scale.
        let floor = min.saturating_sub(max - min);
        let points: Vec<u64> = data.iter().skip(skip).map(|v| v - floor).collect();
        frame.render_widget(
            Sparkline::default()
                .data(&points)
                .style(paint(app, Style::default().fg(colour))),
            b,
        );
    }
}

/// The detail view's height from which the history chart is drawn.
const CHART_MIN_HEIGHT: u16 = 56;

/// Breakdown table, memory model, OOM history (`width`: the column's).
fn left_lines(app: &App, r: &VmRow, width: u16) -> Vec<Line<'static>> {
    let mut out = vec![heading(app, "Breakdown (cgroup usage, no double counting)")];
    if r.breakdown.is_empty() {
        out.push(Line::from("  no live data"));
    } else {
        out.push(Line::from(format!(
            "  {:<22} {:>10} {:>10} {:>10}",
            "COMPONENT", "BYTES", "BUDGET", "OVER/UNDER"
        )));
        for c in &r.breakdown {
            let diff = c.budget_bytes.map(|b| c.bytes - b);
            let diff_text = match diff {
                Some(d) if d > 0 => format!("+{}", human(d)),
                Some(d) => human(d),
                None => "-".into(),
            };
            let style = if diff.is_some_and(|d| d > 0) && c.name != Part::Guest {
                bad_style(app)
            } else {
                Style::default()
            };
            out.push(Line::from(vec![
                Span::raw(format!(
                    "  {:<22} {:>10} {:>10} ",
                    c.name,
                    human(c.bytes),
                    size(c.budget_bytes)
                )),
                Span::styled(format!("{diff_text:>10}"), style),
            ]));
        }
    }
    out.push(Line::default());
    out.push(heading(app, "Memory model"));
    out.push(kv(
        "guest resident",
        size(r.guest_resident_bytes),
        &guest_resident_note(app, r),
    ));
    out.push(kv(
        "overhead used",
        size(r.overhead_used_bytes),
        "all but guest RAM and page cache",
    ));
    out.push(kv(
        "overhead budget",
        size(r.overhead_budget_bytes),
        "limit − guest: room beside a full guest",
    ));
    out.push(kv(
        "projected peak",
        size(r.projected_peak_bytes),
        "guest + overhead used: usage with a full guest",
    ));
    let head = kv(
        "headroom",
        size(r.headroom_bytes),
        "limit − projected peak; below 0: OOM kill ahead",
    );
    out.push(if r.headroom_bytes.is_some_and(|h| h < 0) {
        head.style(bad_style(app))
    } else {
        head
    });
    if let Some(swap) = r
        .cgroup
        .as_ref()
        .and_then(|c| c.swap_bytes.map(|s| (s, c.swap_limit_bytes)))
    {
        out.push(kv(
            "swap",
            size(Some(swap.0 as i64)),
            &match swap.1 {
                Some(l) => format!(
                    "of {} allowed; the headroom counts what is left",
                    human(l as i64)
                ),
                None => "no swap limit read: the headroom counts memory only".into(),
            },
        ));
    }
    out.push(Line::default());
    out.extend(super::detail_oom::lines(app, r, width));
    out
}

/// Spec, O's terms, recommendation, notes.
fn right_lines(app: &App, r: &VmRow) -> Vec<Line<'static>> {
    let mut out = spec_lines(app, r);
    out.push(Line::default());
    out.extend(recommendation_lines(app, r));
    let history = super::detail_history::lines(app, r);
    if !history.is_empty() {
        out.push(Line::default());
        out.extend(history);
    }
    if !r.notes.is_empty() {
        out.push(Line::default());
        out.push(heading(app, "Notes"));
        for n in &r.notes {
            out.push(Line::from(format!("  - {n}")));
        }
    }
    out
}

/// The VM's memory spec, KubeVirt's overhead O term by term, and the pod's limit and request.
fn spec_lines(app: &App, r: &VmRow) -> Vec<Line<'static>> {
    let mut out = vec![heading(app, "Spec")];
    out.push(kv("guest", size(r.guest_bytes), "spec.domain.memory.guest"));
    if let Some(running) = r.guest_running_bytes {
        let why = if Some(running) == r.guest_bytes {
            "what qemu has (memory hotplug on)"
        } else {
            "what qemu has: hotplug under way"
        };
        out.push(kv("guest running", human(running), why));
    }
    out.push(kv(
        "VM limit",
        r.vm_limit_bytes.map(human).unwrap_or_else(|| "none".into()),
        "resources.limits.memory",
    ));
    out.push(kv(
        "VM request",
        size(r.vm_request_bytes),
        "resources.requests.memory",
    ));
    out.push(kv(
        "reserved",
        size(r.reserved_bytes),
        &format!("from {}", r.reserved_source),
    ));
    out.push(kv(
        "KubeVirt O",
        human(r.expected_overhead_bytes),
        &format!(
            "overhead KubeVirt adds, as {} computes it:",
            r.kubevirt_version
        ),
    ));
    if let Some(why) = inferred_version(app) {
        out.push(Line::from(format!("      {why}")));
    }
    for t in &r.overhead_terms {
        out.push(Line::from(format!(
            "      {:<30} {:>10}",
            t.name,
            human(t.bytes)
        )));
    }
    out.push(kv(
        "pod limit",
        size(r.pod_limit_bytes),
        &format!(
            "compute container (KubeVirt would set {})",
            size(r.expected_pod_limit_bytes)
        ),
    ));
    out.push(kv("pod request", size(r.pod_request_bytes), ""));
    out.extend(beside_lines(r));
    out
}

/// The containers beside compute by kind and the pod-level limit they make, and hugepage-backed
/// guest RAM (outside the memory cgroup).
fn beside_lines(r: &VmRow) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if !r.sidecar_bytes_by_kind.is_empty() {
        let kinds: Vec<String> = r
            .sidecar_bytes_by_kind
            .iter()
            .map(|(k, b)| format!("{} {}", k.words(), b.map_or("no limit".into(), human)))
            .collect();
        let pod_level = match r.pod_level_limit_bytes {
            Some(b) => format!("pod-level limit {}", human(b)),
            None => "so no pod-level limit".into(),
        };
        out.push(kv(
            "sidecars",
            human(r.sidecar_bytes),
            &format!("{}; {pod_level}", kinds.join(", ")),
        ));
    }
    if let Some(h) = r.hugepages_bytes {
        out.push(kv(
            "hugepages",
            human(h),
            "guest RAM charged to hugetlb, not the memory cgroup",
        ));
    }
    out
}

/// When nothing states the KubeVirt version: which versions reproduce the pods' overhead.
fn inferred_version(app: &App) -> Option<String> {
    let k = &app.table.as_ref()?.kubevirt;
    (k.version_source == "inferredFromPod").then(|| {
        format!(
            "{} inferred: the pods' O is {}'s",
            k.version,
            k.inferred_versions.join(", ")
        )
    })
}

/// The reservation to set, why, its evidence, and the time to OOM at the current trend.
fn recommendation_lines(app: &App, r: &VmRow) -> Vec<Line<'static>> {
    let mut out = vec![heading(app, "Recommendation")];
    let rec = &r.recommendation;
    out.push(Line::from(format!(
        "  reserve {} ({}; now {})",
        to_quantity_string(rec.reserve_bytes),
        rec.strategy.as_str(),
        size(r.reserved_bytes)
    )));
    out.push(Line::from(format!("  why: {}", rec.reason)));
    for e in &rec.evidence {
        out.push(Line::from(format!(
            "  evidence: {} outside guest RAM, {} ({})",
            human(e.bytes),
            e.words(),
            e.source
        )));
    }
    if let Some(eta) = &r.oom_eta {
        out.push(Line::from(format!(
            "  time to OOM: {} (± {}) at +{}/min",
            eta.words(),
            crate::model::trend::duration_words(eta.error_seconds),
            human((eta.rate * 60.0) as i64)
        )));
    }
    out
}

/// Where the guest-resident figure comes from: exact from qemu's smaps (this round, or carried
/// from the round that last read smaps), or estimated from an RSS.
fn guest_resident_note(app: &App, r: &VmRow) -> String {
    if r.guest_resident_bytes.is_none() {
        return "guest RAM resident in qemu: needs live data".into();
    }
    if !r.guest_resident_exact {
        return match r.live_source {
            Some(LiveSource::Kubelet) => "estimated: min(container RSS, guest), kubelet".into(),
            _ => "estimated: min(qemu RSS, guest)".into(),
        };
    }
    match r.guest_resident_carried_from {
        Some(at) => {
            let now = app
                .now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(at, |d| d.as_secs() as i64);
            format!("exact, from qemu's smaps read {}s ago", (now - at).max(0))
        }
        None => "exact, from qemu's smaps".into(),
    }
}
