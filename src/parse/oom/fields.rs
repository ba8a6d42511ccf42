//! The fields of an OOM report's lines: sizes, counters and task-table rows.

use crate::model::oom_event::{MemCounter, OomTask, OomVictim};

pub(super) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `usage 17024340kB, limit 17024340kB, failcnt 1243`
pub(super) fn counter(rest: &str) -> Option<MemCounter> {
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
pub(super) fn size_bytes(v: &str) -> Option<u64> {
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
pub(super) fn task_columns(header: &str) -> Vec<String> {
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
pub(super) fn task_row(msg: &str, columns: Option<&[String]>) -> Option<OomTask> {
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

/// A kill line: `Killed process 70870 (qemu-system-x86) total-vm:…kB, anon-rss:…kB,
/// file-rss:…kB, shmem-rss:…kB[, UID:…]` (the victim, `killed` true) or the old kernels'
/// `Kill process 12345 (qemu-kvm) score 1000 or sacrifice child` (the process chosen before a
/// child of it may be killed instead, `killed` false).
pub(super) fn kill_record(rest: &str) -> Option<(bool, OomVictim)> {
    let (killed, after) = if let Some(a) = rest.strip_prefix("Killed process ") {
        (true, a)
    } else if let Some(a) = rest.strip_prefix("Kill process ") {
        (false, a)
    } else {
        return None;
    };
    let (pid, after) = after.split_once(' ')?;
    let pid = pid.parse::<u32>().ok()?;
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
    let mut victim = OomVictim {
        pid,
        comm: comm.to_string(),
        ..Default::default()
    };
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
    Some((killed, victim))
}

/// The function of a call-trace line: `out_of_memory+0x113/0x580`, `? out_of_memory+0x…`,
/// `[<ffffffff8a1c2e7d>] mem_cgroup_oom_synchronize+0x55d/0x590` (3.10), with an optional
/// ` [module]` after it → `out_of_memory`.
pub(super) fn trace_function(msg: &str) -> Option<&str> {
    let mut rest = msg.trim_start();
    if let Some(after) = rest.strip_prefix("[<") {
        rest = after.split_once(">]")?.1.trim_start();
    }
    let rest = rest.strip_prefix("? ").unwrap_or(rest);
    let token = rest.split_whitespace().next()?;
    let (name, offset) = token.split_once('+')?;
    let is_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    (is_name && offset.starts_with("0x")).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn kill_lines() {
        let (killed, v) =
            kill_record("Kill process 39079 (qemu-kvm) score 1000 or sacrifice child").unwrap();
        assert!(!killed);
        assert_eq!((v.pid, v.comm.as_str()), (39079, "qemu-kvm"));
        let (killed, v) = kill_record("Killed process 70870 (qemu-system-x86) total-vm:4kB, anon-rss:8kB, file-rss:0kB, shmem-rss:0kB, UID:107 pgtables:4kB oom_score_adj:986").unwrap();
        assert!(killed);
        assert_eq!((v.anon_rss_bytes, v.uid), (Some(8192), Some(107)));
        assert!(kill_record("Killed process x (a)").is_none());
    }

    #[test]
    fn call_trace_functions() {
        assert_eq!(
            trace_function("out_of_memory+0x113/0x580"),
            Some("out_of_memory")
        );
        assert_eq!(
            trace_function("? out_of_memory.part.0+0x1/0x2"),
            Some("out_of_memory.part.0")
        );
        assert_eq!(
            trace_function("[<ffffffff8a1c2e7d>] mem_cgroup_oom_synchronize+0x55d/0x590"),
            Some("mem_cgroup_oom_synchronize")
        );
        assert_eq!(
            trace_function("xfs_buf_read+0x1/0x2 [xfs]"),
            Some("xfs_buf_read")
        );
        assert_eq!(trace_function("memory: usage 4kB"), None);
        assert_eq!(trace_function("<TASK>"), None);
    }
}
