//! The node probe's output (`assets/probe.sh`, format 2, or the format 1 of earlier probes) →
//! [`ProbeReport`]. Pure; never panics.
//!
//! The format is line-oriented, one record per line, fields separated by one space, `-` where the
//! node has no such value (the script's header is the reference):
//! ```text
//! vmmem-probe 2
//! node v1|v2 KERNEL
//! pod UID PATH
//! c NAME LIMIT USAGE PEAK FAILCNT OOMKILL ANON FILE SHMEM INACTIVE_FILE ACTIVE_FILE KERNEL
//!   KERNEL_STACK PAGETABLES SLAB SOCK ANON_THP PIDS [GROUPKILL [SWAP SWAP_LIMIT]]
//! p PID RSS_ANON_KB RSS_FILE_KB RSS_SHMEM_KB COMM
//! g PID SIZE_KB RSS_KB HUGETLB_KB PAGE_KB KIND
//! u PID USAGE_BEFORE USAGE_AFTER
//! missing UID
//! err MESSAGE
//! end
//! ```
//! `c` records follow their `pod`; NAME `.` is the pod cgroup itself, anything else a child
//! directory (a container). `p` and `g` records may come anywhere: they are attached by PID to the
//! cgroup whose PIDS lists it. Record types this version does not know are skipped, so a later
//! probe may add records without changing the format number; anything else that changes bumps it.
//! Format 2 added the swap fields (v1: memory+swap, as `memory.memsw.*` count it) and the `u`
//! record (the pod's usage read around qemu's smaps scan); format 1 output still parses.

use std::collections::HashMap;

use crate::model::readings::{
    CgroupCounters, CgroupLevel, CgroupVersion, LiveSource, MemoryStat, NodeReadings, PodReading,
    ProcessReading,
};

/// The first word of every probe output.
pub const MAGIC: &str = "vmmem-probe";
/// The output format the probe writes and this parser reads (the second word of the first line).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this parser still reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Limits at or above this are "no limit" (v1 shows unlimited as 9223372036854771712 with 4 KiB
/// pages, a little less with larger pages).
const UNLIMITED_FROM: u64 = 1 << 62;

/// Why probe output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("the node probe printed nothing")]
    Empty,
    #[error("this is not node probe output: its first line is {0:?}, expected \"{MAGIC} {FORMAT_VERSION}\"")]
    NotProbe(String),
    #[error(
        "the node probe wrote output format {found}, but this kubectl-vmmem reads format \
         {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}: run the probe that comes with this kubectl-vmmem"
    )]
    Version { found: String },
    #[error("the node probe failed: {0}")]
    Node(String),
    #[error("line {line} of the node probe output is malformed ({reason}): {text:?}")]
    Malformed {
        line: usize,
        reason: &'static str,
        text: String,
    },
    #[error("the node probe output stops before its \"end\" line: it was cut off")]
    Truncated,
    #[error("the node probe output has no \"node\" line (cgroup version and kernel)")]
    NoNode,
}

/// Everything one probe run reported, before the caller adds node name, source and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub cgroup_version: CgroupVersion,
    pub kernel: String,
    pub pods: Vec<PodReading>,
    /// Pod UIDs asked for that have no cgroup on this node.
    pub missing_pods: Vec<String>,
}

impl ProbeReport {
    pub fn into_readings(self, node: &str, source: LiveSource, taken_at: i64) -> NodeReadings {
        NodeReadings {
            node: node.to_string(),
            cgroup_version: self.cgroup_version,
            kernel: self.kernel,
            source,
            taken_at,
            pods: self.pods,
            missing_pods: self.missing_pods,
        }
    }
}

/// Where a PID was listed: pod index, container index (None = the pod cgroup itself).
type Owner = (usize, Option<usize>);

/// Parse one probe run's output.
pub fn parse(text: &str) -> Result<ProbeReport, ProbeError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));
    let first = loop {
        match lines.next() {
            None => return Err(ProbeError::Empty),
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((_, l)) => break l,
        }
    };
    check_header(first)?;

    let records = read_records(lines)?;
    let (cgroup_version, kernel) = records.node.ok_or(ProbeError::NoNode)?;
    let mut pods = records.pods;
    attach_processes(&mut pods, &records.owners, records.processes)?;
    attach_guest_mappings(&mut pods, &records.owners, records.guests)?;
    attach_usage_around_smaps(&mut pods, &records.owners, records.around)?;
    if cgroup_version == CgroupVersion::V1 {
        add_container_oom_kills_to_pods(&mut pods);
    }
    Ok(ProbeReport {
        cgroup_version,
        kernel,
        pods,
        missing_pods: records.missing,
    })
}

/// The records of one probe run up to its `end`: the node, the pods with their cgroups, and the
/// process and guest lines still to attach (with their line numbers) once every PID's owner is known.
#[derive(Default)]
struct Records<'a> {
    node: Option<(CgroupVersion, String)>,
    pods: Vec<PodReading>,
    missing: Vec<String>,
    owners: HashMap<u32, Owner>,
    processes: Vec<(usize, &'a str)>,
    guests: Vec<(usize, &'a str)>,
    around: Vec<(usize, &'a str)>,
}

/// Read the records after the header up to `end` (an output without it was cut).
fn read_records<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
) -> Result<Records<'a>, ProbeError> {
    let mut records = Records::default();
    for (no, line) in lines {
        let bad = |reason: &'static str| ProbeError::Malformed {
            line: no,
            reason,
            text: line.chars().take(200).collect(),
        };
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "" => continue,
            "end" => return Ok(records),
            "err" => return Err(ProbeError::Node(rest.trim().to_string())),
            "node" => records.node = Some(node_record(rest).map_err(bad)?),
            "pod" => records.pods.push(pod_record(rest).map_err(bad)?),
            "c" => {
                let v = records.node.as_ref().map(|n| n.0);
                records.add_cgroup(rest, v).map_err(bad)?
            }
            "p" => records.processes.push((no, rest)),
            "g" => records.guests.push((no, rest)),
            "u" => records.around.push((no, rest)),
            "missing" => records.missing.push(rest.trim().to_string()),
            _ => {} // a record of a later probe: skip
        }
    }
    Err(ProbeError::Truncated)
}

/// `node v1|v2 KERNEL`.
fn node_record(rest: &str) -> Result<(CgroupVersion, String), &'static str> {
    let (v, k) = rest
        .split_once(' ')
        .ok_or("expected a version and a kernel")?;
    let version = match v {
        "v1" => CgroupVersion::V1,
        "v2" => CgroupVersion::V2,
        _ => return Err("the cgroup version is not v1 or v2"),
    };
    Ok((version, k.trim().to_string()))
}

/// `pod UID PATH`: a pod with empty counters until its `c .` record.
fn pod_record(rest: &str) -> Result<PodReading, &'static str> {
    let (uid, path) = rest.split_once(' ').ok_or("expected a UID and a path")?;
    if uid.is_empty() || path.is_empty() {
        return Err("expected a UID and a path");
    }
    Ok(PodReading {
        uid: uid.to_string(),
        cgroup: empty_counters(CgroupLevel::Pod, path.to_string(), None),
        guest_resident_bytes: None,
        guest_resident_taken_at: None,
        guest_hugetlb_bytes: None,
        usage_after_smaps_bytes: None,
        guest_grown_since_bytes: None,
        containers: Vec::new(),
        processes: Vec::new(),
    })
}

impl Records<'_> {
    /// A `c` record: the last pod's own cgroup (`.`) or one of its containers; its PIDS now
    /// belong to that cgroup (the first cgroup to list a PID keeps it).
    fn add_cgroup(&mut self, rest: &str, v: Option<CgroupVersion>) -> Result<(), &'static str> {
        let pod_index = self
            .pods
            .len()
            .checked_sub(1)
            .ok_or("a cgroup before any pod")?;
        let pod = &mut self.pods[pod_index];
        let f = Fields::<CGROUP_FIELDS>::of(rest);
        let (name, mut counters, pids) = cgroup_record(&f, &pod.cgroup.path)?;
        swap_fields(&mut counters, &f, v)?;
        let container = if name == "." {
            pod.cgroup = counters;
            None
        } else {
            pod.containers.push(counters);
            Some(pod.containers.len() - 1)
        };
        for pid in pids {
            self.owners.entry(pid).or_insert((pod_index, container));
        }
        Ok(())
    }
}

/// The error for a malformed line `no` whose record text is `rest`.
fn malformed(no: usize, rest: &str) -> impl FnOnce(&'static str) -> ProbeError + '_ {
    move |reason| ProbeError::Malformed {
        line: no,
        reason,
        text: rest.chars().take(200).collect(),
    }
}

/// Attach each `p` record to the pod (and container) whose cgroup lists its PID; others are dropped.
fn attach_processes(
    pods: &mut [PodReading],
    owners: &HashMap<u32, Owner>,
    processes: Vec<(usize, &str)>,
) -> Result<(), ProbeError> {
    for (no, rest) in processes {
        let (pid, reading) = process_record(rest).map_err(malformed(no, rest))?;
        if let Some(&(p, c)) = owners.get(&pid) {
            let pod = &mut pods[p];
            let container_id = c.and_then(|c| pod.containers[c].container_id.clone());
            pod.processes.push(ProcessReading {
                container_id,
                ..reading
            });
        }
    }
    Ok(())
}

/// Add each `g` record's resident bytes (and huge-page bytes) to the pod whose cgroup lists its PID.
fn attach_guest_mappings(
    pods: &mut [PodReading],
    owners: &HashMap<u32, Owner>,
    guests: Vec<(usize, &str)>,
) -> Result<(), ProbeError> {
    for (no, rest) in guests {
        let g = guest_record(rest).map_err(malformed(no, rest))?;
        if let Some(&(p, _)) = owners.get(&g.pid) {
            let pod = &mut pods[p];
            pod.guest_resident_bytes =
                Some(pod.guest_resident_bytes.unwrap_or(0).saturating_add(g.rss));
            if g.hugetlb > 0 || g.page >= 1 << 20 {
                pod.guest_hugetlb_bytes = Some(
                    pod.guest_hugetlb_bytes
                        .unwrap_or(0)
                        .saturating_add(g.hugetlb),
                );
            }
        }
    }
    Ok(())
}

/// Each `u` record: the usage of the pod of qemu process PID read again after its smaps scan
/// (the USAGE_BEFORE, read just before the scan, only bounds the scan's own duration).
fn attach_usage_around_smaps(
    pods: &mut [PodReading],
    owners: &HashMap<u32, Owner>,
    around: Vec<(usize, &str)>,
) -> Result<(), ProbeError> {
    for (no, rest) in around {
        let f: Vec<&str> = rest.split(' ').collect();
        if f.len() < 3 {
            return Err(malformed(no, rest)("a usage record needs 3 fields"));
        }
        let pid = f[0]
            .parse::<u32>()
            .map_err(|_| malformed(no, rest)("the PID is not a number"))?;
        number(f[1]).map_err(malformed(no, rest))?;
        let after = number(f[2]).map_err(malformed(no, rest))?;
        if let Some(&(p, _)) = owners.get(&pid) {
            pods[p].usage_after_smaps_bytes = Some(after);
        }
    }
    Ok(())
}

/// Format 2's SWAP and SWAP_LIMIT (fields 20 and 21): v2's `memory.swap.current`/`.max` as they
/// are; v1's `memory.memsw.*` count memory plus swap, so the memory figures come off. v1's
/// unlimited memsw (the kubelet never sets it) is no swap limit.
fn swap_fields(
    c: &mut CgroupCounters,
    f: &Fields<'_, CGROUP_FIELDS>,
    v: Option<CgroupVersion>,
) -> Result<(), &'static str> {
    let (Some(swap), Some(limit)) = (f.get(19), f.get(20)) else {
        return Ok(());
    };
    let swap = opt(swap)?;
    let limit = match limit {
        "max" | "-" => None,
        l => Some(raw_number(l)?).filter(|&l| l < UNLIMITED_FROM),
    };
    match v {
        Some(CgroupVersion::V1) => {
            c.swap_bytes = swap.map(|s| s.saturating_sub(c.usage_bytes));
            c.swap_limit_bytes = limit
                .zip(c.limit_bytes)
                .map(|(memsw, mem)| memsw.saturating_sub(mem));
        }
        _ => {
            c.swap_bytes = swap;
            c.swap_limit_bytes = limit.map(bounded).transpose()?;
        }
    }
    Ok(())
}

/// v1 counts an OOM kill (memory.oom_control's oom_kill) only in the cgroup that held the killed
/// task, not in its ancestors: the pod's count is the sum over its containers.
fn add_container_oom_kills_to_pods(pods: &mut [PodReading]) {
    for pod in pods {
        let below: u64 = pod
            .containers
            .iter()
            .map(|c| c.oom_kills)
            .fold(0, u64::saturating_add);
        pod.cgroup.oom_kills = pod.cgroup.oom_kills.saturating_add(below);
    }
}

fn check_header(first: &str) -> Result<(), ProbeError> {
    let mut words = first.split_whitespace();
    if words.next() != Some(MAGIC) {
        return Err(ProbeError::NotProbe(first.chars().take(80).collect()));
    }
    match words.next() {
        Some(v)
            if v.parse::<u32>()
                .is_ok_and(|n| (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&n)) =>
        {
            Ok(())
        }
        Some(v) => Err(ProbeError::Version {
            found: v.chars().take(20).collect(),
        }),
        None => Err(ProbeError::NotProbe(first.chars().take(80).collect())),
    }
}

fn empty_counters(
    level: CgroupLevel,
    path: String,
    container_id: Option<String>,
) -> CgroupCounters {
    CgroupCounters {
        path,
        container_id: container_id.map(std::sync::Arc::from),
        ..CgroupCounters::empty(level)
    }
}

/// The container id in a cgroup directory name, read by [`crate::parse::cgroup_path`]
/// (`cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, or `<id>`). conmon's
/// `crio-conmon-<id>.scope` becomes `conmon-<id>`, so its process is never taken for the container's
/// own. A name of another shape is kept as it is, without `.scope`.
pub fn container_id(name: &str) -> String {
    let found = crate::parse::cgroup_path::kube_cgroup(name).container_id;
    match found {
        Some(id) if name.starts_with("crio-conmon-") => format!("conmon-{id}"),
        Some(id) => id,
        None => name.strip_suffix(".scope").unwrap_or(name).to_string(),
    }
}

type CgroupRecord = (String, CgroupCounters, Vec<u32>);

/// The fields of a cgroup record read: 18, then OOM_GROUP_KILL, then SWAP and SWAP_LIMIT.
const CGROUP_FIELDS: usize = 21;

/// The first `N` space-separated fields of a record, without a list on the heap (a node's
/// probe prints thousands of records each refresh).
struct Fields<'a, const N: usize> {
    f: [&'a str; N],
    len: usize,
}

impl<'a, const N: usize> Fields<'a, N> {
    fn of(rest: &'a str) -> Self {
        let mut f = [""; N];
        let mut len = 0;
        for (slot, field) in f.iter_mut().zip(rest.split(' ')) {
            *slot = field;
            len += 1;
        }
        Fields { f, len }
    }
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> Option<&'a str> {
        (i < self.len).then(|| self.f[i])
    }
}

impl<'a, const N: usize> std::ops::Index<usize> for Fields<'a, N> {
    type Output = &'a str;
    fn index(&self, i: usize) -> &&'a str {
        assert!(i < self.len, "field {i} of {}", self.len);
        &self.f[i]
    }
}

/// `NAME LIMIT USAGE … ANON_THP PIDS`.
fn cgroup_record(
    f: &Fields<'_, CGROUP_FIELDS>,
    pod_path: &str,
) -> Result<CgroupRecord, &'static str> {
    if f.len() < 18 {
        return Err("a cgroup record needs 18 fields");
    }
    let name = f[0];
    if name.is_empty() || name.contains('/') || name == ".." {
        return Err("bad cgroup name");
    }
    let limit = match f[1] {
        "max" | "-" => None,
        v => match raw_number(v)? {
            l if l >= UNLIMITED_FROM => None,
            l => Some(bounded(l)?),
        },
    };
    let usage = number(f[2])?;
    let stat = MemoryStat {
        anon: opt(f[6])?,
        file: opt(f[7])?,
        shmem: opt(f[8])?,
        inactive_file: opt(f[9])?,
        active_file: opt(f[10])?,
        kernel: opt(f[11])?,
        kernel_stack: opt(f[12])?,
        pagetables: opt(f[13])?,
        slab: opt(f[14])?,
        sock: opt(f[15])?,
        anon_thp: opt(f[16])?,
    };
    let pids = match f[17] {
        "-" => Vec::new(),
        list => list
            .split(',')
            .map(|p| p.parse::<u32>().map_err(|_| "a PID is not a number"))
            .collect::<Result<_, _>>()?,
    };
    let (level, path, id) = if name == "." {
        (CgroupLevel::Pod, pod_path.to_string(), None)
    } else {
        (
            CgroupLevel::Container,
            format!("{}/{name}", pod_path.trim_end_matches('/')),
            Some(container_id(name)),
        )
    };
    let counters = CgroupCounters {
        limit_bytes: limit,
        usage_bytes: usage,
        working_set_bytes: usage.saturating_sub(stat.inactive_file.unwrap_or(0)),
        peak_bytes: opt(f[3])?,
        failcnt: opt(f[4])?,
        oom_kills: opt(f[5])?.unwrap_or(0),
        // Added after format 1 shipped, last so older parsers ignore it.
        oom_group_kills: match f.get(18) {
            Some(v) => opt(v)?,
            None => None,
        },
        stat,
        ..empty_counters(level, path, id)
    };
    Ok((name.to_string(), counters, pids))
}

/// `PID RSS_ANON_KB RSS_FILE_KB RSS_SHMEM_KB COMM` (COMM may hold spaces).
fn process_record(rest: &str) -> Result<(u32, ProcessReading), &'static str> {
    let mut f = [""; 5];
    let mut n = 0;
    for (slot, field) in f.iter_mut().zip(rest.splitn(5, ' ')) {
        *slot = field;
        n += 1;
    }
    if n < 5 {
        return Err("a process record needs 5 fields");
    }
    let pid = f[0].parse::<u32>().map_err(|_| "the PID is not a number")?;
    Ok((
        pid,
        ProcessReading {
            pid,
            comm: f[4].to_string(),
            rss_anon_bytes: kib(f[1])?,
            rss_file_bytes: kib(f[2])?,
            rss_shmem_bytes: kib(f[3])?,
            container_id: None,
        },
    ))
}

struct Guest {
    pid: u32,
    rss: u64,
    hugetlb: u64,
    page: u64,
}

/// `PID SIZE_KB RSS_KB HUGETLB_KB PAGE_KB KIND`.
fn guest_record(rest: &str) -> Result<Guest, &'static str> {
    let f = Fields::<6>::of(rest);
    if f.len() < 6 {
        return Err("a guest mapping record needs 6 fields");
    }
    kib(f[1])?;
    Ok(Guest {
        pid: f[0].parse::<u32>().map_err(|_| "the PID is not a number")?,
        rss: kib(f[2])?,
        hugetlb: kib(f[3])?,
        page: kib(f[4])?,
    })
}

/// The largest byte count or counter accepted: 8 PiB (2^53), past any machine's memory, so the
/// model's sums and differences of readings stay far inside i64 (a broken or hostile node cannot
/// crash the tool with `18446744073709551615`).
pub const MAX_VALUE: u64 = 1 << 53;

fn raw_number(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a value is not a number");
    }
    s.parse::<u64>().map_err(|_| "a value is too large")
}

fn bounded(v: u64) -> Result<u64, &'static str> {
    if v > MAX_VALUE {
        return Err("a value is larger than any memory size (8 PiB)");
    }
    Ok(v)
}

fn number(s: &str) -> Result<u64, &'static str> {
    bounded(raw_number(s)?)
}

fn opt(s: &str) -> Result<Option<u64>, &'static str> {
    if s == "-" {
        Ok(None)
    } else {
        number(s).map(Some)
    }
}

fn kib(s: &str) -> Result<u64, &'static str> {
    bounded(number(s)?.checked_mul(1024).ok_or("a value is too large")?)
}

#[cfg(test)]
mod tests;
