//! Kernel OOM-kill reports, read from a kernel log the way a support engineer reads them.
//!
//! A report runs from `<thread> invoked oom-killer:` to `… Killed process N (comm) …` (plus the
//! `oom_reaper:` line). Between them, depending on the kernel (3.10 … 6.x): the `CPU: … PID: …
//! Comm: …` line, the old `Task in X killed as a result of limit of Y` line, the memcg counters
//! (`memory:`, `memory+swap:` or `swap:`, `kmem:`), `Memory cgroup stats for …` blocks (v1 inline
//! `key:NKB`, v1 `key value` lines, v2 keys), the task table (with or without `rss_anon rss_file
//! rss_shmem` columns) and `oom-kill:constraint=…`. Everything else is skipped. A report missing
//! its start or its kill line is returned with `partial` set; nothing here fails or panics.

use crate::model::oom_event::{MemCounter, OomEvent, OomScope, OomTask, OomVictim};

use super::cgroup_path::{kube_cgroup, CgroupLevel};
use super::kernel_log::{kernel_lines, KernelLine};

/// Every OOM report in a kernel log, in order.
pub fn parse_kernel_log(text: &str) -> Vec<OomEvent> {
    let mut events = Vec::new();
    let mut current: Option<Report> = None;
    for line in kernel_lines(text) {
        let msg: &str = &line.msg;
        if let Some(trigger) = msg.split_once(" invoked oom-killer").map(|(t, _)| t) {
            if let Some(done) = current.take() {
                events.push(done.finish());
            }
            let mut r = Report::start(&line, false);
            r.ev.trigger = Some(trigger.trim().to_string()).filter(|t| !t.is_empty());
            current = Some(r);
            continue;
        }
        let ends_previous = current
            .as_ref()
            .is_some_and(|r| r.killed && starts_report(msg));
        if ends_previous {
            if let Some(done) = current.take() {
                events.push(done.finish());
            }
        }
        if current.is_none() && starts_report(msg) {
            current = Some(Report::start(&line, true));
        }
        if let Some(r) = current.as_mut() {
            r.feed(&line);
        }
    }
    if let Some(done) = current.take() {
        events.push(done.finish());
    }
    events
}

/// Reports from one node's kernel log (the agent's `dmesg`, a support bundle's `kernel.log`):
/// events whose lines carried no host name get the node's.
pub fn parse_node_kernel_log(text: &str, node: &str) -> Vec<OomEvent> {
    let mut events = parse_kernel_log(text);
    for ev in &mut events {
        if ev.node.is_none() {
            ev.node = Some(node.to_string());
        }
    }
    events
}

/// A line that belongs to the body of a report, seen without its `invoked oom-killer` start.
fn starts_report(msg: &str) -> bool {
    msg.starts_with("oom-kill:")
        || msg.starts_with("Memory cgroup out of memory:")
        || msg.starts_with("Out of memory:")
        || (msg.starts_with("Task in ") && msg.contains(" killed as a result of limit of "))
        || msg.starts_with("memory: usage ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Body,
    Stats,
    Tasks,
}

struct Report {
    ev: OomEvent,
    section: Section,
    /// Column names of the task table after `[ pid ]`, e.g. `uid tgid total_vm rss … name`.
    columns: Option<Vec<String>>,
    /// The `Killed process` line was seen.
    killed: bool,
    /// A second `Memory cgroup stats for` block started (3.10 prints one per child).
    stats_done: bool,
    cut_at_start: bool,
}

impl Report {
    fn start(line: &KernelLine, cut_at_start: bool) -> Report {
        Report {
            ev: OomEvent {
                line: line.number,
                time: line.time.as_deref().map(str::to_string),
                node: line.host.map(str::to_string),
                ..Default::default()
            },
            section: Section::Body,
            columns: None,
            killed: false,
            stats_done: false,
            cut_at_start,
        }
    }

    fn feed(&mut self, line: &KernelLine) {
        let msg: &str = &line.msg;
        if self.ev.node.is_none() {
            self.ev.node = line.host.map(str::to_string);
        }
        // Unrelated lines (another CPU's messages) may land inside a stats block: it ends only
        // at the next part of the report.
        if self.section == Section::Stats && self.stats_line(msg) {
            return;
        }
        if let Some(rest) = msg.strip_prefix("Memory cgroup stats for ") {
            self.stats_header(rest);
        } else if msg.starts_with("Tasks state") {
            self.section = Section::Tasks;
        } else if msg.starts_with('[') && msg.contains("pid") && msg.contains("name") {
            self.columns = Some(task_columns(msg));
            self.section = Section::Tasks;
        } else if msg.starts_with('[') {
            if let Some(task) = task_row(msg, self.columns.as_deref()) {
                self.section = Section::Tasks;
                self.ev.tasks.push(task);
            }
        } else if let Some(rest) = msg.strip_prefix("oom-kill:") {
            self.section = Section::Body;
            self.oom_kill_line(rest);
        } else if let Some(rest) = msg.strip_prefix("Memory cgroup out of memory: ") {
            self.section = Section::Body;
            self.ev
                .constraint
                .get_or_insert_with(|| "CONSTRAINT_MEMCG".to_string());
            self.kill_line(rest);
        } else if let Some(rest) = msg.strip_prefix("Out of memory: ") {
            self.section = Section::Body;
            self.ev.global = true;
            self.kill_line(rest);
        } else if msg.starts_with("Killed process ") {
            self.section = Section::Body;
            self.kill_line(msg);
        } else if let Some(rest) = msg.strip_prefix("Task in ") {
            self.section = Section::Body;
            if let Some((task, limit)) = rest.split_once(" killed as a result of limit of ") {
                self.ev.task_memcg = Some(task.trim().to_string());
                self.ev.oom_memcg = Some(limit.trim().to_string());
                self.ev
                    .constraint
                    .get_or_insert_with(|| "CONSTRAINT_MEMCG".to_string());
            }
        } else if let Some(rest) = msg.strip_prefix("memory: ") {
            self.ev.memory = self.ev.memory.or(counter(rest));
        } else if let Some(rest) = msg.strip_prefix("memory+swap: ") {
            self.ev.memsw = self.ev.memsw.or(counter(rest));
        } else if let Some(rest) = msg.strip_prefix("swap: ") {
            self.ev.swap = self.ev.swap.or(counter(rest));
        } else if let Some(rest) = msg.strip_prefix("kmem: ") {
            self.ev.kmem = self.ev.kmem.or(counter(rest));
        } else if msg.starts_with("CPU: ") && self.ev.trigger_pid.is_none() {
            self.cpu_line(msg);
        }
    }

    /// `CPU: 4 PID: 24808 Comm: CPU 1/KVM Not tainted …` (6.x adds `UID: 0` before PID).
    fn cpu_line(&mut self, msg: &str) {
        let Some((_, after)) = msg.split_once(" PID: ") else {
            return;
        };
        let pid = after.split_whitespace().next().and_then(|p| p.parse().ok());
        self.ev.trigger_pid = pid;
        if self.ev.trigger.is_none() {
            if let Some((_, comm)) = after.split_once(" Comm: ") {
                let end = [" Not tainted", " Tainted:"]
                    .iter()
                    .filter_map(|m| comm.find(m))
                    .min()
                    .unwrap_or(comm.len().min(15));
                let end = floor_char_boundary(comm, end);
                self.ev.trigger = Some(comm[..end].trim().to_string()).filter(|s| !s.is_empty());
            }
        }
    }

    fn stats_header(&mut self, rest: &str) {
        if self.stats_done || self.ev.stats_for.is_some() {
            self.stats_done = true;
            self.section = Section::Stats;
            return;
        }
        // 3.10: `PATH: cache:0KB rss:1048576KB …` on the same line.
        let (path, inline) = match rest.find(": ") {
            Some(pos) => (&rest[..pos], Some(&rest[pos + 2..])),
            None => (rest.strip_suffix(':').unwrap_or(rest), None),
        };
        self.ev.stats_for = Some(path.trim().to_string());
        match inline {
            Some(values) => {
                for item in values.split_whitespace() {
                    if let Some((k, v)) = item.split_once(':') {
                        if let Some(bytes) = size_bytes(v) {
                            self.ev.stats.insert(k.to_string(), bytes);
                        }
                    }
                }
                self.stats_done = true;
            }
            None => self.section = Section::Stats,
        }
    }

    /// A `key value` line of a stats block; false when the block has ended.
    fn stats_line(&mut self, msg: &str) -> bool {
        let mut parts = msg.split_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        if !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return false;
        }
        let Ok(v) = value.parse::<u64>() else {
            return false;
        };
        if !self.stats_done {
            self.ev.stats.insert(key.to_string(), v);
        }
        true
    }

    /// `constraint=…,nodemask=…,cpuset=…,mems_allowed=…,[global_oom,]oom_memcg=…,task_memcg=…,task=…,pid=…,uid=…`
    fn oom_kill_line(&mut self, rest: &str) {
        let mut rest = rest;
        let mut victim = OomVictim::default();
        if let Some((head, uid)) = rest.rsplit_once(",uid=") {
            victim.uid = uid.trim().parse().ok();
            rest = head;
        }
        if let Some((head, pid)) = rest.rsplit_once(",pid=") {
            victim.pid = pid.trim().parse().unwrap_or(0);
            rest = head;
        }
        if let Some((head, task)) = rest.rsplit_once(",task=") {
            victim.comm = task.to_string();
            rest = head;
        }
        for field in rest.split(',') {
            match field.split_once('=') {
                Some(("constraint", v)) => self.ev.constraint = Some(v.to_string()),
                Some(("cpuset", v)) => self.ev.cpuset = Some(v.to_string()),
                Some(("oom_memcg", v)) => self.ev.oom_memcg = Some(v.to_string()),
                Some(("task_memcg", v)) => self.ev.task_memcg = Some(v.to_string()),
                None if field == "global_oom" => self.ev.global = true,
                _ => {}
            }
        }
        if victim.pid != 0 || !victim.comm.is_empty() {
            match self.ev.victim.as_mut() {
                Some(v) if v.pid == victim.pid || v.pid == 0 => {
                    v.pid = victim.pid;
                    v.uid = v.uid.or(victim.uid);
                    if v.comm.is_empty() {
                        v.comm = victim.comm;
                    }
                }
                _ => self.ev.victim = Some(victim),
            }
        }
    }

    /// `Killed process 70870 (qemu-system-x86) total-vm:…kB, anon-rss:…kB, file-rss:…kB, shmem-rss:…kB[, UID:…]`
    /// or the old `Kill process 12345 (qemu-kvm) score 1000 or sacrifice child`.
    fn kill_line(&mut self, rest: &str) {
        let (killed, after) = if let Some(a) = rest.strip_prefix("Killed process ") {
            (true, a)
        } else if let Some(a) = rest.strip_prefix("Kill process ") {
            (false, a)
        } else {
            return;
        };
        let Some((pid, after)) = after.split_once(' ') else {
            return;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return;
        };
        let (comm, tail) = match after.strip_prefix('(') {
            Some(a) => {
                let end = a
                    .find(") total-vm:")
                    .or_else(|| a.find(") score "))
                    .or_else(|| a.rfind(')'))
                    .unwrap_or(a.len());
                (&a[..end], a.get(end + 1..).unwrap_or(""))
            }
            None => ("", after),
        };
        let mut victim = match self.ev.victim.take() {
            Some(v) if v.pid == pid || v.pid == 0 => v,
            _ => OomVictim::default(),
        };
        victim.pid = pid;
        victim.comm = comm.to_string();
        for item in tail.split([',', ' ']).filter(|s| !s.is_empty()) {
            let Some((k, v)) = item.split_once(':') else {
                continue;
            };
            match k {
                "total-vm" => victim.total_vm_bytes = size_bytes(v),
                "anon-rss" => victim.anon_rss_bytes = size_bytes(v),
                "file-rss" => victim.file_rss_bytes = size_bytes(v),
                "shmem-rss" => victim.shmem_rss_bytes = size_bytes(v),
                "UID" => victim.uid = victim.uid.or(v.parse().ok()),
                _ => {}
            }
        }
        self.ev.victim = Some(victim);
        if killed {
            self.killed = true;
        }
    }

    fn finish(mut self) -> OomEvent {
        self.ev.partial = self.cut_at_start || !self.killed;
        let ev = &mut self.ev;
        // The first stats block is printed for the cgroup that hit its limit: it stands in for
        // `oom_memcg=` when the `oom-kill:` line is missing (kernels before 4.19 without the
        // `Task in` line, reports cut short).
        if ev.oom_memcg.is_none() && !ev.global {
            ev.oom_memcg = ev.stats_for.clone();
        }
        let limit_path = ev.oom_memcg.clone();
        let oom = limit_path.as_deref().map(kube_cgroup);
        let task = ev.task_memcg.as_deref().map(kube_cgroup);
        let cpuset = ev.cpuset.as_deref().map(kube_cgroup);
        ev.pod_uid = [&oom, &task]
            .into_iter()
            .flatten()
            .find_map(|k| k.pod_uid.clone());
        if let Some(k) = [&task, &oom, &cpuset]
            .into_iter()
            .flatten()
            .find(|k| k.container_id.is_some())
        {
            ev.container_id = k.container_id.clone();
            ev.runtime = k.runtime;
        }
        let memcg = ev
            .constraint
            .as_deref()
            .is_some_and(|c| c == "CONSTRAINT_MEMCG");
        ev.scope = if ev.global || (ev.constraint.is_some() && !memcg) {
            Some(OomScope::Global)
        } else {
            oom.map(|k| match k.level {
                CgroupLevel::Root => OomScope::Global,
                CgroupLevel::Kubepods => OomScope::Node,
                CgroupLevel::Pod => OomScope::Pod,
                CgroupLevel::Container => OomScope::Container,
                CgroupLevel::Other => OomScope::Other,
            })
        };
        self.ev
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `usage 17024340kB, limit 17024340kB, failcnt 1243`
fn counter(rest: &str) -> Option<MemCounter> {
    let mut usage = None;
    let mut limit = None;
    let mut failcnt = None;
    for part in rest.split(',') {
        let mut words = part.split_whitespace();
        match (words.next(), words.next()) {
            (Some("usage"), Some(v)) => usage = size_bytes(v),
            (Some("limit"), Some(v)) => limit = size_bytes(v),
            (Some("failcnt"), Some(v)) => failcnt = v.parse().ok(),
            _ => {}
        }
    }
    let limit = limit?;
    // The kernel prints "unlimited" as PAGE_COUNTER_MAX pages in kB (9007199254740988kB on 4K pages).
    let limit = (limit < (1u64 << 62)).then_some(limit);
    Some(MemCounter {
        usage_bytes: usage?,
        limit_bytes: limit,
        failcnt: failcnt.unwrap_or(0),
    })
}

/// `17024340kB`, `0KB`, `4096` (bytes), `12MB` → bytes, saturating.
fn size_bytes(v: &str) -> Option<u64> {
    let v = v.trim().trim_end_matches(',');
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = v[..digits].parse().ok()?;
    let mult: u64 = match &v[digits..] {
        "" | "B" => 1,
        "kB" | "KB" | "k" | "K" => 1 << 10,
        "MB" | "M" => 1 << 20,
        "GB" | "G" => 1 << 30,
        _ => return None,
    };
    Some(n.saturating_mul(mult))
}

/// `[  pid  ]   uid  tgid total_vm      rss … name` → the names after the bracket.
fn task_columns(header: &str) -> Vec<String> {
    let after = header.split_once(']').map_or(header, |(_, a)| a);
    after.split_whitespace().map(str::to_string).collect()
}

/// Columns of the common layouts, used when the header line is missing.
const CLASSIC: [&str; 8] = [
    "uid",
    "tgid",
    "total_vm",
    "rss",
    "pgtables_bytes",
    "swapents",
    "oom_score_adj",
    "name",
];
const SPLIT_RSS: [&str; 11] = [
    "uid",
    "tgid",
    "total_vm",
    "rss",
    "rss_anon",
    "rss_file",
    "rss_shmem",
    "pgtables_bytes",
    "swapents",
    "oom_score_adj",
    "name",
];

/// `[  24790]   107 24790   705165   472935  4374528        0           920 qemu-system-x86`
fn task_row(msg: &str, columns: Option<&[String]>) -> Option<OomTask> {
    let rest = msg.strip_prefix('[')?;
    let (pid, mut rest) = rest.split_once(']')?;
    let pid: u32 = pid.trim().parse().ok()?;
    // Numeric columns first, then the name (which may contain spaces).
    let mut numbers: Vec<i64> = Vec::new();
    let wanted = columns.map(|c| c.len().saturating_sub(1));
    loop {
        let trimmed = rest.trim_start();
        if wanted.is_some_and(|w| numbers.len() >= w) {
            rest = trimmed;
            break;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        match trimmed[..end].parse::<i64>() {
            Ok(n) if end > 0 => {
                numbers.push(n);
                rest = &trimmed[end..];
            }
            _ => {
                rest = trimmed;
                break;
            }
        }
    }
    let name = rest.trim();
    let default_cols: Vec<String>;
    let cols: &[String] = match columns {
        Some(c) => c,
        None => {
            let layout: &[&str] = if numbers.len() >= SPLIT_RSS.len() - 1 {
                &SPLIT_RSS
            } else {
                &CLASSIC
            };
            default_cols = layout.iter().map(|s| s.to_string()).collect();
            &default_cols
        }
    };
    let get = |col: &str| -> Option<i64> {
        cols.iter()
            .position(|c| c == col)
            .and_then(|i| numbers.get(i).copied())
    };
    let unsigned = |col: &str| get(col).and_then(|n| u64::try_from(n).ok());
    Some(OomTask {
        pid,
        uid: unsigned("uid").and_then(|n| u32::try_from(n).ok()),
        tgid: unsigned("tgid").and_then(|n| u32::try_from(n).ok()),
        total_vm_pages: unsigned("total_vm"),
        rss_pages: unsigned("rss")?,
        rss_anon_pages: unsigned("rss_anon"),
        rss_file_pages: unsigned("rss_file"),
        rss_shmem_pages: unsigned("rss_shmem"),
        swapents: unsigned("swapents"),
        oom_score_adj: get("oom_score_adj"),
        name: name.to_string(),
    })
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
    fn sizes() {
        assert_eq!(size_bytes("17024340kB"), Some(17_432_924_160));
        assert_eq!(size_bytes("0KB"), Some(0));
        assert_eq!(size_bytes("4096"), Some(4096));
        assert_eq!(size_bytes("x"), None);
        assert_eq!(size_bytes("99999999999999999999999kB"), None);
    }

    #[test]
    fn counters() {
        let c = counter("usage 2355880kB, limit 2355880kB, failcnt 2339").unwrap();
        assert_eq!(c.limit_bytes, Some(2_412_421_120));
        assert_eq!(c.failcnt, 2339);
        let c = counter("usage 0kB, limit 9007199254740988kB, failcnt 0").unwrap();
        assert_eq!(c.limit_bytes, None);
        assert_eq!(counter("garbage"), None);
    }

    #[test]
    fn task_rows_both_layouts() {
        let t = task_row("[  39079]   107 39079  4457263  4201766 34439168        0           986 qemu-system-x86", None).unwrap();
        assert_eq!(
            (t.pid, t.rss_pages, t.oom_score_adj),
            (39079, 4_201_766, Some(986))
        );
        assert_eq!(t.name, "qemu-system-x86");
        let cols = task_columns("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name");
        let t = task_row("[  12684]     0 12684    27276     8372     8096      276         0   122880        0             0 qemu-system-x86", Some(&cols)).unwrap();
        assert_eq!(
            (t.rss_pages, t.rss_anon_pages, t.rss_file_pages),
            (8372, Some(8096), Some(276))
        );
        let t = task_row("[  12684]     0 12684    27276     8372     8096      276         0   122880        0             0 qemu-system-x86", None).unwrap();
        assert_eq!(t.rss_shmem_pages, Some(0));
        let t = task_row(
            "[  38886]     0 38886      243        1    28672        0          -998 my proc 2",
            None,
        )
        .unwrap();
        assert_eq!(
            (t.oom_score_adj, t.name.as_str()),
            (Some(-998), "my proc 2")
        );
        assert!(task_row("[  pid  ] uid", None).is_none());
    }
}
