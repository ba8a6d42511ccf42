//! Kernel OOM-kill reports, read from a kernel log the way a support engineer reads them.
//!
//! A report runs from `<thread> invoked oom-killer:` to `… Killed process N (comm) …` (plus the
//! `oom_reaper:` line). Between them, depending on the kernel (3.10 … 6.x): the `CPU: … PID: …
//! Comm: …` line, the old `Task in X killed as a result of limit of Y` line, the memcg counters
//! (`memory:`, `memory+swap:` or `swap:`, `kmem:`), `Memory cgroup stats for …` blocks (v1 inline
//! `key:NKB`, v1 `key value` lines, v2 keys), the task table (with or without `rss_anon rss_file
//! rss_shmem` columns) and `oom-kill:constraint=…`. Everything else is skipped. A report missing
//! its start or its kill line is returned with `partial` set; nothing here fails or panics.

use std::collections::VecDeque;

use crate::model::oom_event::OomEvent;

use super::kernel_log::{KernelLine, KernelLineReader};

mod fields;
mod report;
use report::{starts_report, Report};
pub use report::{MAX_GROUP_VICTIMS, MAX_TASK_ROWS};

/// Reports kept from one log: the most recent ones. A log is read as a stream, so memory grows
/// with the reports kept, never with the input (a kernel log of 173 MB of report headers alone
/// is 1.4 million reports).
pub const MAX_REPORTS: usize = 1000;

/// The OOM reports of one kernel log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelLogOoms {
    /// The reports kept, in order (the last [`MAX_REPORTS`]).
    pub events: Vec<OomEvent>,
    /// Earlier reports left out to stay within [`MAX_REPORTS`].
    pub dropped_reports: u64,
}

/// Every OOM report in a kernel log, in order (the last [`MAX_REPORTS`]).
pub fn parse_kernel_log(text: &str) -> Vec<OomEvent> {
    let mut parser = OomLogParser::default();
    for line in text.lines() {
        parser.push_line(line);
    }
    parser.finish().events
}

/// Finds OOM reports in a kernel log fed one input line at a time: what a report has shown so
/// far, and the reports kept, is all it holds.
#[derive(Default)]
pub struct OomLogParser {
    lines: KernelLineReader,
    line_number: usize,
    current: Option<Report>,
    kept: VecDeque<OomEvent>,
    dropped: u64,
}

impl OomLogParser {
    /// Feed the next input line (without its line break).
    pub fn push_line(&mut self, raw: &str) {
        self.line_number += 1;
        let Self {
            lines,
            line_number,
            current,
            kept,
            dropped,
        } = self;
        lines.read(*line_number, raw, &mut |line| {
            if let Some(done) = on_line(current, &line) {
                keep(kept, dropped, done);
            }
        });
    }

    /// The reports found, the one still open included (marked partial when cut short).
    pub fn finish(mut self) -> KernelLogOoms {
        if let Some(done) = self.current.take() {
            keep(&mut self.kept, &mut self.dropped, done.finish());
        }
        KernelLogOoms {
            events: self.kept.into(),
            dropped_reports: self.dropped,
        }
    }
}

fn keep(kept: &mut VecDeque<OomEvent>, dropped: &mut u64, ev: OomEvent) {
    if kept.len() >= MAX_REPORTS {
        kept.pop_front();
        *dropped += 1;
    }
    kept.push_back(ev);
}

/// Feed one kernel line to the open report; a report it ends is returned.
fn on_line(current: &mut Option<Report>, line: &KernelLine) -> Option<OomEvent> {
    let msg: &str = &line.msg;
    if let Some(trigger) = msg.split_once(" invoked oom-killer").map(|(t, _)| t) {
        let done = current.take().map(Report::finish);
        let mut r = Report::start(line, false);
        r.ev.trigger = Some(trigger.trim().to_string()).filter(|t| !t.is_empty());
        *current = Some(r);
        return done;
    }
    let ends_previous = current
        .as_ref()
        .is_some_and(|r| r.killed && starts_report(msg) && !r.continues_group(msg));
    let done = if ends_previous {
        current.take().map(Report::finish)
    } else {
        None
    };
    if current.is_none() && starts_report(msg) {
        *current = Some(Report::start(line, true));
    }
    if let Some(r) = current.as_mut() {
        r.feed(line);
    }
    done
}

/// Reports from one node's kernel log (the agent's `dmesg`, a support bundle's `kernel.log`):
/// events whose lines carried no host name get the node's.
pub fn parse_node_kernel_log(text: &str, node: &str) -> Vec<OomEvent> {
    let mut events = parse_kernel_log(text);
    name_node(&mut events, node);
    events
}

/// Give events whose lines carried no host name the node's.
pub fn name_node(events: &mut [OomEvent], node: &str) {
    for ev in events {
        if ev.node.is_none() {
            ev.node = Some(node.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_name_fills_only_missing_hosts() {
        let dmesg =
            "[ 1.0] x invoked oom-killer: y\n[ 1.1] memory: usage 4kB, limit 4kB, failcnt 1\n";
        let events = parse_node_kernel_log(dmesg, "node-1");
        assert_eq!(events[0].node.as_deref(), Some("node-1"));
        let journal = "Feb 03 19:57:08 h7 kernel: x invoked oom-killer: y\n";
        let events = parse_node_kernel_log(journal, "node-1");
        assert_eq!(events[0].node.as_deref(), Some("h7"));
    }

    #[test]
    fn only_the_last_reports_are_kept() {
        let mut parser = OomLogParser::default();
        for i in 0..MAX_REPORTS + 5 {
            parser.push_line(&format!(
                "[ {i}.0] CPU 0/KVM invoked oom-killer: gfp_mask=0xcc0"
            ));
        }
        let got = parser.finish();
        assert_eq!(got.events.len(), MAX_REPORTS);
        assert_eq!(got.dropped_reports, 5);
        assert_eq!(got.events[0].line, 6);
        assert!(got.events.iter().all(|e| e.partial));
    }

    #[test]
    fn rate_limited_kill_lines_are_reports_of_their_own() {
        // Without `memory.oom.group`, a second kill line is another OOM whose header the kernel
        // rate-limited away.
        let text = "[ 1.0] a invoked oom-killer: x\n\
[ 1.1] Memory cgroup out of memory: Killed process 7 (qemu-kvm) total-vm:4kB\n\
[ 2.1] Memory cgroup out of memory: Killed process 9 (virtlogd) total-vm:4kB\n\
[ 3.1] Killed process 11 (virt-launcher) total-vm:4kB\n";
        let evs = parse_kernel_log(text);
        let pids: Vec<_> = evs.iter().map(|e| e.victim.as_ref().unwrap().pid).collect();
        assert_eq!(pids, [7, 9, 11]);
        assert!(evs[1].partial && evs[2].partial);
    }

    #[test]
    fn a_group_kill_names_each_process_once() {
        let text = "[ 1.0] a invoked oom-killer: x\n\
[ 1.1] Memory cgroup out of memory: Killed process 7 (qemu-kvm) total-vm:4kB\n\
[ 1.2] Tasks in /kubepods.slice/x.scope are going to be killed due to memory.oom.group set\n\
[ 1.3] Memory cgroup out of memory: Killed process 7 (qemu-kvm) total-vm:4kB\n\
[ 1.4] Memory cgroup out of memory: Killed process 8 (virtlogd) total-vm:4kB\n";
        let evs = parse_kernel_log(text);
        assert_eq!(evs.len(), 1);
        let pids: Vec<_> = evs[0].victims().map(|v| v.pid).collect();
        assert_eq!(pids, [7, 8]);
        assert_eq!(
            evs[0].group_kill.as_deref(),
            Some("/kubepods.slice/x.scope")
        );
    }
}
