//! One OOM report being read, line by line, and what it says once it ends.

use crate::model::oom_event::{OomEvent, OomScope, OomTask, OomVictim};

use super::fields::{
    counter, floor_char_boundary, kill_record, size_bytes, task_columns, task_row, trace_function,
};
use crate::parse::cgroup_path::{kube_cgroup, CgroupLevel};
use crate::parse::kernel_log::KernelLine;

/// Task-table rows kept per report: the largest by RSS (a node-wide OOM lists every process of
/// the node; a KubeVirt pod's table has about ten).
pub const MAX_TASK_ROWS: usize = 256;
/// Processes listed per report beyond the first victim (a `memory.oom.group` kill of a
/// container with more processes names the first ones).
pub const MAX_GROUP_VICTIMS: usize = 64;
/// Keys kept from one `Memory cgroup stats` block (v2 prints about 50).
pub const MAX_STATS: usize = 128;

/// A line that belongs to the body of a report, seen without its `invoked oom-killer` start
/// (the kernel rate-limits the report's header, never its kill line).
pub(super) fn starts_report(msg: &str) -> bool {
    msg.starts_with("oom-kill:")
        || msg.starts_with("Memory cgroup out of memory:")
        || msg.starts_with("Out of memory:")
        || msg.starts_with("Killed process ")
        || (msg.starts_with("Task in ") && msg.contains(" killed as a result of limit of "))
        || msg.starts_with("memory: usage ")
}

/// `Memory cgroup out of memory: Killed process …` (5.x+ names the reason), or the bare kill
/// line of 3.10 … 4.19.
fn killed_line(msg: &str) -> Option<&str> {
    let rest = msg
        .strip_prefix("Memory cgroup out of memory: ")
        .or_else(|| msg.strip_prefix("Out of memory: "))
        .unwrap_or(msg);
    rest.starts_with("Killed process ").then_some(rest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Body,
    Stats,
    Tasks,
}

/// What the call trace showed: `out_of_memory` reached from the page allocator with no memory
/// cgroup function on the way is a node-wide OOM.
#[derive(Debug, Default, Clone, Copy)]
struct TraceSeen {
    out_of_memory: bool,
    page_allocator: bool,
    memcg: bool,
}

impl TraceSeen {
    fn note(&mut self, function: &str) {
        let f = function.split('.').next().unwrap_or(function);
        match f {
            "out_of_memory" | "__out_of_memory" => self.out_of_memory = true,
            _ if f.starts_with("__alloc_pages")
                || f.starts_with("alloc_pages")
                || f == "__get_free_pages" =>
            {
                self.page_allocator = true
            }
            _ if f.starts_with("mem_cgroup_")
                || f.starts_with("__mem_cgroup_")
                || f.starts_with("try_charge")
                || f.contains("charge_memcg")
                || f == "memcg_oom_recover" =>
            {
                self.memcg = true
            }
            _ => {}
        }
    }
}

pub(super) struct Report {
    pub(super) ev: OomEvent,
    section: Section,
    /// Column names of the task table after `[ pid ]`, e.g. `uid tgid total_vm rss … name`.
    columns: Option<Vec<String>>,
    /// The `Killed process` line was seen.
    pub(super) killed: bool,
    /// Old kernels' `Kill process … or sacrifice child` was seen: the `oom-kill:` summary of
    /// 4.19 then names the process chosen, not necessarily the one killed.
    sacrifice_child: bool,
    /// A second `Memory cgroup stats for` block started (3.10 prints one per child).
    stats_done: bool,
    cut_at_start: bool,
    trace: TraceSeen,
    /// Index and RSS of the smallest row of a full task table.
    smallest_task: Option<(usize, u64)>,
}

/// Index and RSS of the smallest row.
fn smallest_of(tasks: &[OomTask]) -> (usize, u64) {
    tasks
        .iter()
        .enumerate()
        .min_by_key(|(_, t)| t.rss_pages)
        .map_or((0, 0), |(i, t)| (i, t.rss_pages))
}

impl Report {
    pub(super) fn start(line: &KernelLine, cut_at_start: bool) -> Report {
        Report {
            ev: OomEvent {
                line: line.number,
                time: line.time.as_deref().map(str::to_string),
                node: line.host.as_deref().map(str::to_string),
                ..Default::default()
            },
            section: Section::Body,
            columns: None,
            killed: false,
            sacrifice_child: false,
            stats_done: false,
            cut_at_start,
            trace: TraceSeen::default(),
            smallest_task: None,
        }
    }

    /// `msg` is one more process of this report's `memory.oom.group` kill (the kernel prints
    /// `Tasks in X are going to be killed due to memory.oom.group set`, then a kill line each).
    pub(super) fn continues_group(&self, msg: &str) -> bool {
        const KILL: &str = "Memory cgroup out of memory: Killed process ";
        // A kill line, or what is left of one where a log was cut off.
        self.ev.group_kill.is_some() && (killed_line(msg).is_some() || KILL.starts_with(msg))
    }

    pub(super) fn feed(&mut self, line: &KernelLine) {
        let msg: &str = &line.msg;
        if self.ev.node.is_none() {
            self.ev.node = line.host.as_deref().map(str::to_string);
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
        } else if msg.starts_with("[<") {
            self.trace_line(msg);
        } else if msg.starts_with('[') {
            if let Some(task) = task_row(msg, self.columns.as_deref()) {
                self.section = Section::Tasks;
                self.add_task(task);
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
        } else if let Some(rest) = msg.strip_prefix("Tasks in ") {
            // 4.19+: `Tasks in /…/cri-containerd-<id>.scope are going to be killed due to
            // memory.oom.group set`.
            if let Some((path, _)) = rest.split_once(" are going to be killed") {
                self.ev.group_kill = Some(path.trim().to_string());
            }
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
        } else if self.section == Section::Body {
            self.trace_line(msg);
        }
    }

    fn trace_line(&mut self, msg: &str) {
        if let Some(f) = trace_function(msg) {
            self.trace.note(f);
        }
    }

    /// Keep the row, or when the table is full, keep the larger RSS.
    fn add_task(&mut self, task: OomTask) {
        let tasks = &mut self.ev.tasks;
        if tasks.len() < MAX_TASK_ROWS {
            tasks.push(task);
            return;
        }
        self.ev.tasks_omitted += 1;
        let smallest = *self.smallest_task.get_or_insert_with(|| smallest_of(tasks));
        if task.rss_pages > smallest.1 {
            tasks.remove(smallest.0);
            tasks.push(task);
            self.smallest_task = Some(smallest_of(tasks));
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
                for item in values.split_whitespace().take(MAX_STATS) {
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
        if !self.stats_done && self.ev.stats.len() < MAX_STATS {
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
        if victim.pid == 0 && victim.comm.is_empty() {
            return;
        }
        match self.ev.victim.as_mut() {
            Some(v) if v.pid == victim.pid || v.pid == 0 => {
                v.pid = victim.pid;
                v.uid = v.uid.or(victim.uid);
                if v.comm.is_empty() {
                    v.comm = victim.comm;
                }
            }
            // A victim the kill line named stays: the summary of 4.19 may name the parent.
            Some(_) if self.killed => {}
            _ => self.ev.victim = Some(victim),
        }
    }

    /// A `Killed process` line names a victim; `Kill process … or sacrifice child` only the
    /// process chosen (a child of it may be killed instead).
    fn kill_line(&mut self, rest: &str) {
        let Some((killed, found)) = kill_record(rest) else {
            return;
        };
        if !killed {
            self.sacrifice_child = true;
            self.ev.candidate = Some(found);
            return;
        }
        if self.killed {
            self.add_group_victim(found);
            return;
        }
        let mut victim = match self.ev.victim.take() {
            Some(v) if v.pid == found.pid || v.pid == 0 => v,
            _ => OomVictim::default(),
        };
        victim.pid = found.pid;
        victim.comm = found.comm;
        victim.total_vm_bytes = found.total_vm_bytes;
        victim.anon_rss_bytes = found.anon_rss_bytes;
        victim.file_rss_bytes = found.file_rss_bytes;
        victim.shmem_rss_bytes = found.shmem_rss_bytes;
        victim.uid = victim.uid.or(found.uid);
        self.ev.victim = Some(victim);
        self.killed = true;
    }

    /// One more process killed by the same report (a `memory.oom.group` kill); the kernel may
    /// print the first victim again.
    fn add_group_victim(&mut self, found: OomVictim) {
        let ev = &mut self.ev;
        let seen = ev.victim.as_ref().is_some_and(|v| v.pid == found.pid)
            || ev.group_victims.iter().any(|v| v.pid == found.pid);
        if seen {
            return;
        }
        if ev.group_victims.len() < MAX_GROUP_VICTIMS {
            ev.group_victims.push(found);
        } else {
            ev.group_victims_omitted += 1;
        }
    }

    pub(super) fn finish(mut self) -> OomEvent {
        self.ev.partial = self.cut_at_start || !self.killed;
        if !self.killed && self.sacrifice_child {
            // Only `Killed process` names the victim on these kernels.
            self.ev.victim = None;
        }
        self.fill_victim_uid();
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
        let group = ev.group_kill.as_deref().map(kube_cgroup);
        ev.pod_uid = [&oom, &task, &group]
            .into_iter()
            .flatten()
            .find_map(|k| k.pod_uid.clone());
        if let Some(k) = [&task, &group, &oom, &cpuset]
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
        let memcg_lines = memcg || ev.memory.is_some() || ev.oom_memcg.is_some();
        let t = self.trace;
        if ev.scope.is_none() && !memcg_lines && t.out_of_memory && t.page_allocator && !t.memcg {
            ev.scope = Some(OomScope::Global);
            ev.global_from_call_trace = true;
        }
        self.ev
    }

    /// The victim's uid from its task-table row, when the kill lines did not print it.
    fn fill_victim_uid(&mut self) {
        let tasks = &self.ev.tasks;
        if let Some(v) = self.ev.victim.as_mut().filter(|v| v.uid.is_none()) {
            v.uid = tasks.iter().find(|t| t.pid == v.pid).and_then(|t| t.uid);
        }
    }
}
