//! The detail view's OOM history: how many kills (current pod by cgroup counter or kernel log,
//! earlier pods by kernel log, each kill once), the cgroup counters, and every kill found in
//! the nodes' kernel logs with its verdict paragraph, wrapped to the column.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::style::{bad_style, heading, kv, label_style, size};
use crate::model::oom_verdict::OomExplanation;
use crate::model::report::VmRow;
use crate::tui::app::App;
use crate::units::human;

/// A count, or `-` where the source has no such counter (the kubelet's summary).
fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

/// Lines of the OOM history section for a column `width` cells wide.
pub fn lines(app: &App, r: &VmRow, width: u16) -> Vec<Line<'static>> {
    let mut out = vec![heading(app, "OOM history"), kill_count_line(app, r)];
    out.extend(cgroup_counter_lines(r));
    if r.oom_history.is_empty() {
        out.push(Line::from(
            "  no OOM reports for this VM in the kernel logs read so far",
        ));
        return out;
    }
    out.push(Line::from(format!(
        "  {} kill(s) in the nodes' kernel logs, oldest first:",
        r.oom_history.len()
    )));
    let width = usize::from(width.max(20));
    for (i, e) in r.oom_history.iter().enumerate() {
        out.push(Line::default());
        out.extend(kill_lines(app, r, i, e, width));
    }
    out
}

/// The kill was in the row's current pod.
fn in_current_pod(r: &VmRow, e: &OomExplanation) -> bool {
    r.pod_uid.is_some() && e.event.pod_uid == r.pod_uid
}

/// The VM's OOM kills, split into the current pod's and earlier pods'; red when there were any.
fn kill_count_line(app: &App, r: &VmRow) -> Line<'static> {
    // A sidecar's kill (kubevirt#15501) is listed below but not counted as the VM's.
    let vm_kills = || r.oom_history.iter().filter(|e| e.kills_vm());
    let log_current = vm_kills().filter(|e| in_current_pod(r, e)).count() as u64;
    let cgroup = r.cgroup.as_ref().and_then(|c| c.oom_kills).unwrap_or(0);
    let current = cgroup.max(log_current);
    let earlier = vm_kills().count() as u64 - log_current;
    let counted = if r.oom_kills.is_some() {
        format!("current pod {current}, earlier pods {earlier}")
    } else {
        "not known without a live reading or a kill in the kernel logs".to_string()
    };
    let kills = kv("OOM kills", count(r.oom_kills), &counted);
    if r.oom_kills.unwrap_or(0) > 0 {
        kills.style(bad_style(app))
    } else {
        kills
    }
}

/// The current pod's cgroup counters: OOM kills, limit hits and peak usage.
fn cgroup_counter_lines(r: &VmRow) -> Vec<Line<'static>> {
    let Some(c) = &r.cgroup else {
        return vec![Line::from(
            "  no live data for the current pod (its OOM counters come from the node's cgroups)",
        )];
    };
    vec![
        kv(
            "cgroup counter",
            count(c.oom_kills),
            "OOM kills the current pod's cgroup recorded",
        ),
        kv(
            "limit hits",
            c.failcnt
                .map(|f| f.to_string())
                .unwrap_or_else(|| "-".into()),
            "failcnt / memory.events max",
        ),
        kv(
            "peak usage",
            size(c.peak_bytes.map(|p| p as i64)),
            &format!(
                "{} cgroup {} ({})",
                c.level,
                c.version.unwrap_or("version unknown"),
                r.live_source.map(|s| s.as_str()).unwrap_or("-")
            ),
        ),
    ]
}

/// Kill number `i` (from 0) of the kernel logs: when, where, which pod, the trigger and the
/// victim, then its verdict paragraph wrapped to `width`.
fn kill_lines(
    app: &App,
    r: &VmRow,
    i: usize,
    e: &OomExplanation,
    width: usize,
) -> Vec<Line<'static>> {
    let ev = &e.event;
    let pod = match ev.pod_uid.as_deref() {
        Some(uid) if in_current_pod(r, e) => format!("pod {} (current)", short_uid(uid)),
        Some(uid) => format!("pod {} (earlier)", short_uid(uid)),
        None => "pod unknown".into(),
    };
    let mut out = vec![Line::from(vec![
        Span::styled(format!("  #{} ", i + 1), label_style(app)),
        Span::raw(format!(
            "{}  node {}  {pod}",
            ev.time
                .as_deref()
                .map(str::trim)
                .unwrap_or("time not printed"),
            ev.node.as_deref().unwrap_or("-"),
        )),
    ])];
    let victim = match &ev.victim {
        Some(v) => {
            let anon = v
                .anon_rss_bytes
                .map(|b| format!(", {} anon", human(b as i64)))
                .unwrap_or_default();
            format!("{} (pid {}{anon})", v.comm, v.pid)
        }
        None => "not printed".into(),
    };
    out.push(Line::from(format!(
        "     trigger {}  killed {victim}{}",
        ev.trigger.as_deref().unwrap_or("-"),
        if ev.partial {
            "  (report cut short)"
        } else {
            ""
        }
    )));
    for l in wrap(&e.verdict, width.saturating_sub(6).max(14)) {
        out.push(Line::from(Span::styled(
            format!("     {l}"),
            Style::default(),
        )));
    }
    out
}

/// The first block of a pod UID, enough to tell pods apart on screen.
fn short_uid(uid: &str) -> String {
    let head: String = uid.chars().take(8).collect();
    if head.len() < uid.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// Words into lines of at most `width` characters (a longer word gets a line of its own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if len > 0 && len + 1 + w > width {
            out.push(std::mem::take(&mut line));
            len = 0;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += w;
    }
    if len > 0 {
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_word_boundaries() {
        assert_eq!(
            wrap("the pod hit its memory limit of 2.4GiB", 12),
            vec!["the pod hit", "its memory", "limit of", "2.4GiB"]
        );
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            vec!["averyveryverylongword", "x"]
        );
        assert!(wrap("   ", 10).is_empty());
    }
}
