//! A memory cgroup as cgroup v2 shows it (the unified hierarchy of SLE Micro 5.5 / Harvester
//! v1.4 nodes, Linux 5.14): `memory.current`, `memory.max`, `memory.peak`, the hierarchical
//! `memory.events`, the v2 `memory.stat` keys and `memory.swap.*`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::cgroups::CgroupFiles;
use crate::treefiles::TreeWriter;

fn memory_stat(c: &CgroupFiles) -> String {
    let t = &c.total;
    let rows: [(&str, i64); 16] = [
        ("anon", t.anon),
        ("file", t.active_file + t.inactive_file + t.shmem),
        ("kernel", t.kernel),
        ("kernel_stack", t.kernel / 8),
        ("pagetables", t.kernel / 2),
        ("percpu", 0),
        ("sock", 0),
        ("shmem", t.shmem),
        ("file_mapped", t.active_file),
        ("anon_thp", t.anon_huge),
        ("inactive_anon", t.anon - t.anon / 8),
        ("active_anon", t.anon / 8 + t.shmem),
        ("inactive_file", t.inactive_file),
        ("active_file", t.active_file),
        ("unevictable", 0),
        ("slab", t.kernel - t.kernel / 8 - t.kernel / 2),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{k} {v}");
    }
    s
}

pub(super) fn write_cgroup_v2(w: &mut TreeWriter, dir: &Path, c: &CgroupFiles) -> io::Result<()> {
    w.dir(dir)?;
    let usage = c.total.usage();
    let limit = |l: Option<i64>| l.map_or_else(|| "max\n".to_string(), |l| format!("{l}\n"));
    let (ooms, kills, groups) = (
        c.ooms + c.ooms_below,
        c.oom_kill + c.oom_kill_below,
        c.group_kills + c.group_kills_below,
    );
    let files: [(&str, String); 9] = [
        // Every v2 cgroup lists the controllers its parent gives it.
        (
            "cgroup.controllers",
            "cpu io memory hugetlb pids\n".to_string(),
        ),
        ("memory.max", limit(c.limit)),
        ("memory.current", format!("{usage}\n")),
        ("memory.peak", format!("{}\n", c.max_usage.max(usage))),
        (
            "memory.events",
            format!(
                "low 0\nhigh 0\nmax {}\noom {ooms}\noom_kill {kills}\noom_group_kill {groups}\n",
                c.failcnt
            ),
        ),
        ("memory.stat", memory_stat(c)),
        ("memory.swap.current", format!("{}\n", c.swap)),
        ("memory.swap.max", limit(c.swap_limit)),
        (
            "cgroup.procs",
            c.procs.iter().map(|p| format!("{p}\n")).collect(),
        ),
    ];
    for (name, text) in files {
        w.file(&dir.join(name), text)?;
    }
    Ok(())
}
