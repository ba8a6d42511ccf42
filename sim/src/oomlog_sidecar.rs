//! The guest-console-log sidecar hitting its own 60M limit (kubevirt#15501): the kernel kills
//! its processes (on cgroup v2 the kubelet's `memory.oom.group` takes the whole container at
//! once), and the VM runs on. The report in the kernel's own format, as on a SLE 15 SP5 node.

use super::hosttree::{pod_slice, scope};
use super::tick::clamped;
use super::world::World;

/// The sidecar's memory limit as the kernel stores it (60M, rounded down to the page).
pub const CONSOLE_LIMIT: i64 = 60_000_000 / 4096 * 4096;

/// Kill the console-log sidecar of every launcher whose time for it has come (once per pod).
pub fn console_log_kills(w: &mut World, now: f64) {
    let due: Vec<(String, f64)> = w
        .launchers
        .values()
        .filter(|l| l.console_killed_at.is_none() && l.has_console_sidecar())
        .filter_map(|l| {
            let at = l.started + l.params.console_oom_after?;
            (at <= now).then(|| (l.pod_uid.clone(), at))
        })
        .collect();
    for (uid, at) in due {
        let Some(l) = w.launchers.get_mut(&uid) else {
            continue;
        };
        l.console_killed_at = Some(at);
        let l = l.clone();
        let Some(node) = w.nodes.get_mut(&l.node) else {
            continue;
        };
        let victim = clamped(&l, at - l.started).sidecar;
        let driver = node.cgroup_driver;
        let cg = format!(
            "{}/{}",
            pod_slice(driver, l.qos, &l.pod_uid),
            scope(driver, &l.container_ids[2])
        );
        let report = Report {
            uptime: node.uptime_at_start + at,
            kernel: node.kernel.clone(),
            v2: node.cgroup_v2,
            pid: l.pids[6],
            cgroup: cg,
            cpuset: scope(driver, &l.container_ids[2]),
            anon: victim.anon,
            file: victim.file,
            vsz: victim.vsz,
        };
        node.kernel_log.extend(render(&report));
    }
}

struct Report {
    uptime: f64,
    kernel: String,
    v2: bool,
    pid: u32,
    cgroup: String,
    cpuset: String,
    anon: i64,
    file: i64,
    vsz: i64,
}

fn render(r: &Report) -> Vec<String> {
    let kb = |b: i64| b / 1024;
    let limit = kb(CONSOLE_LIMIT);
    let (pid, cg) = (r.pid, &r.cgroup);
    let rss_pages = (r.anon + r.file) / 4096;
    let mut lines = vec![
        "virt-tail invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=986"
            .to_string(),
        format!(
            "CPU: 2 PID: {pid} Comm: virt-tail Not tainted {} #1 SLE15-SP5",
            r.kernel
        ),
        "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.13.0-1ubuntu1.1 04/01/2014"
            .into(),
        "Call Trace:".into(),
        " <TASK>".into(),
        " dump_stack_lvl+0x45/0x5b".into(),
        " dump_header+0x4a/0x1f4".into(),
        " oom_kill_process.cold+0xb/0x10".into(),
        " out_of_memory+0x1bd/0x4f0".into(),
        " mem_cgroup_out_of_memory+0x136/0x150".into(),
        " try_charge_memcg+0x6f4/0x780".into(),
        " charge_memcg+0x45/0xb0".into(),
        " __mem_cgroup_charge+0x2d/0x90".into(),
        " </TASK>".into(),
        format!("memory: usage {limit}kB, limit {limit}kB, failcnt 212"),
    ];
    if r.v2 {
        lines.push("swap: usage 0kB, limit 0kB, failcnt 0".into());
    } else {
        lines.push(format!(
            "memory+swap: usage {limit}kB, limit 9007199254740988kB, failcnt 0"
        ));
    }
    lines.push(format!("Memory cgroup stats for {cg}:"));
    lines.push(format!("anon {}", r.anon));
    lines.push(format!("file {}", r.file));
    lines.push("Tasks state (memory values in pages):".into());
    lines.push(
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name".into(),
    );
    lines.push(format!(
        "[{pid:>7}]   107 {pid:>5} {:>8} {rss_pages:>8}   372736        0           986 virt-tail",
        r.vsz / 4096
    ));
    lines.push(format!(
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset={},mems_allowed=0,oom_memcg={cg},task_memcg={cg},task=virt-tail,pid={pid},uid=107",
        r.cpuset
    ));
    lines.push(format!(
        "Memory cgroup out of memory: Killed process {pid} (virt-tail) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:0kB, UID:107 pgtables:364kB oom_score_adj:986",
        kb(r.vsz), kb(r.anon), kb(r.file)
    ));
    if r.v2 {
        lines.push(format!(
            "Tasks in {cg} are going to be killed due to memory.oom.group set"
        ));
    }
    lines.push(format!(
        "oom_reaper: reaped process {pid} (virt-tail), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
    ));
    lines
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let micros = ((r.uptime + i as f64 * 0.000003) * 1e6).round() as u64;
            format!(
                "[{:>5}.{:06}] {text}",
                micros / 1_000_000,
                micros % 1_000_000
            )
        })
        .collect()
}
