//! `probe` readings for people: one table of cgroups, one of processes.

use crate::escape::Shown;
use crate::model::readings::{CgroupCounters, NodeReadings};
use crate::output::table::{Table, Tone, NONE};
use crate::units::human;

fn size(b: Option<u64>) -> String {
    b.map(|b| human(i64::try_from(b).unwrap_or(i64::MAX)))
        .unwrap_or_else(|| NONE.to_string())
}

fn count(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| NONE.to_string())
}

/// A container id as kubectl and crictl show it: its first 13 characters.
fn short_id(id: &str) -> &str {
    id.get(..13).unwrap_or(id)
}

fn cgroup_row(uid: &str, name: &str, c: &CgroupCounters, guest: String) -> Vec<(String, Tone)> {
    let oom = if c.oom_kills > 0 {
        Tone::Bad
    } else {
        Tone::Plain
    };
    vec![
        (uid.to_string(), Tone::Plain),
        (name.to_string(), Tone::Plain),
        (
            c.limit_bytes
                .map(|_| size(c.limit_bytes))
                .unwrap_or_else(|| "unlimited".into()),
            Tone::Plain,
        ),
        (size(Some(c.usage_bytes)), Tone::Plain),
        (size(Some(c.working_set_bytes)), Tone::Plain),
        (size(c.peak_bytes), Tone::Plain),
        (count(c.failcnt), Tone::Plain),
        (c.oom_kills.to_string(), oom),
        (guest, Tone::Plain),
    ]
}

/// A title line, the cgroup table and the process table.
pub fn tables(r: &NodeReadings, colour: bool) -> String {
    let mut cgroups = Table::new([
        "POD",
        "CGROUP",
        "LIMIT",
        "USAGE",
        "WORKING SET",
        "PEAK",
        "FAILCNT",
        "OOM KILLS",
        "GUEST RESIDENT",
    ]);
    let mut procs = Table::new(["POD", "CONTAINER", "PID", "COMM", "ANON", "FILE", "SHMEM"]);
    for pod in &r.pods {
        let guest = match (pod.guest_resident_bytes, pod.guest_hugetlb_bytes) {
            (_, Some(h)) => format!("{} hugetlb", size(Some(h))),
            (g, None) => size(g),
        };
        cgroups.row(cgroup_row(&pod.uid, "pod", &pod.cgroup, guest));
        for c in &pod.containers {
            let id = c.container_id.as_deref().unwrap_or("?");
            cgroups.row(cgroup_row(&pod.uid, short_id(id), c, String::new()));
        }
        for p in &pod.processes {
            procs.plain_row([
                pod.uid.clone(),
                p.container_id
                    .as_deref()
                    .map(short_id)
                    .unwrap_or("pod")
                    .to_string(),
                p.pid.to_string(),
                p.comm.clone(),
                size(Some(p.rss_anon_bytes)),
                size(Some(p.rss_file_bytes)),
                size(Some(p.rss_shmem_bytes)),
            ]);
        }
    }
    let mut out = format!(
        "node {}: cgroup {}, kernel {}, {} pod(s)\n",
        Shown(&r.node),
        r.cgroup_version.as_str(),
        Shown(&r.kernel),
        r.pods.len()
    );
    if !cgroups.is_empty() {
        out.push('\n');
        out.push_str(&cgroups.render(colour));
    }
    if !procs.is_empty() {
        out.push('\n');
        out.push_str(&procs.render(colour));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::readings::LiveSource;

    #[test]
    fn cgroups_then_processes() {
        let text = "vmmem-probe 1\nnode v1 6.1\npod u1 /kubepods/pod-u1\n\
            c . 2147483648 1073741824 1073741824 3 1 - - - 1048576 - - - - - - - -\n\
            c 0123456789abcdef0123 9223372036854771712 1024 - - 0 - - - - - - - - - - - 7\n\
            p 7 2048 1024 0 qemu-system-x86\ng 7 1048576 524288 0 4 anon\nend\n";
        let r = crate::parse::probe::parse(text)
            .unwrap()
            .into_readings("n1", LiveSource::Local, 0);
        let t = tables(&r, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "node n1: cgroup v1, kernel 6.1, 1 pod(s)");
        assert!(lines[2].starts_with("POD   CGROUP          LIMIT"), "{t}");
        assert!(
            lines[3].contains("pod") && lines[3].contains("2GiB") && lines[3].contains("512MiB"),
            "{t}"
        );
        assert!(
            lines[4].contains("0123456789abc ") && lines[4].contains("unlimited"),
            "{t}"
        );
        assert!(
            lines[7].contains("qemu-system-x86") && lines[7].contains("2MiB"),
            "{t}"
        );
    }
}
