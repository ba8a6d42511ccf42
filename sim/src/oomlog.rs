//! A memory-cgroup OOM report in the kernel's own format (as in the seed's Example 3, `dmesg`
//! style with seconds since boot). Pure.

use super::workload::{ProcMem, Sample};

const UNLIMITED_KB: &str = "9007199254740988";

/// One task line of "Tasks state".
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub pid: u32,
    pub uid: u32,
    pub total_vm_pages: i64,
    pub rss_pages: i64,
    pub pgtables_bytes: i64,
    pub name: String,
}

impl Task {
    pub fn from_proc(pid: u32, p: &ProcMem) -> Task {
        let rss_pages = p.rss() / 4096;
        Task {
            pid,
            uid: 107,
            total_vm_pages: p.vsz / 4096,
            rss_pages,
            pgtables_bytes: ((rss_pages / 512 + 8) * 4096).max(28_672),
            name: p.comm.to_string(),
        }
    }
}

/// Everything the report names.
#[derive(Debug, Clone, PartialEq)]
pub struct OomReport {
    /// Seconds since boot.
    pub uptime: f64,
    pub kernel: String,
    /// The vCPU thread that faulted (`CPU 1/KVM`) and its TID.
    pub trigger: String,
    pub trigger_pid: u32,
    pub cpu: u32,
    pub oom_score_adj: i64,
    pub limit_bytes: i64,
    pub failcnt: u64,
    pub kmem_bytes: i64,
    /// Path of the cgroup that hit its limit, below the memory hierarchy root.
    pub oom_memcg: String,
    /// Path of the victim's cgroup.
    pub task_memcg: String,
    /// `cri-containerd-<id>.scope`
    pub cpuset: String,
    pub tasks: Vec<Task>,
    pub victim_pid: u32,
    pub victim: ProcMem,
    pub stat: Sample,
}

/// The report's lines, each prefixed with `[ seconds.micros]`.
pub fn render(r: &OomReport) -> Vec<String> {
    let mut out = Lines {
        t: r.uptime,
        lines: Vec::new(),
    };
    header(&mut out, r);
    call_trace(&mut out);
    counters(&mut out, r);
    cgroup_stats(&mut out, r);
    task_states(&mut out, r);
    kill(&mut out, r);
    out.lines
}

fn kb(b: i64) -> i64 {
    b / 1024
}

/// Report lines being written, and the kernel's clock (each line a little after the last).
struct Lines {
    t: f64,
    lines: Vec<String>,
}

impl Lines {
    /// Add a line stamped now; the next comes `dt` seconds later.
    fn push(&mut self, text: String, dt: f64) {
        let micros = (self.t * 1e6).round() as u64;
        self.lines.push(format!(
            "[{:>5}.{:06}] {text}",
            micros / 1_000_000,
            micros % 1_000_000
        ));
        self.t += dt;
    }
}

/// Who invoked the OOM killer, on which CPU and kernel, and the machine.
fn header(out: &mut Lines, r: &OomReport) {
    out.push(
        format!(
            "{} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj={}",
            r.trigger, r.oom_score_adj
        ),
        0.000006,
    );
    out.push(format!("CPU: {} PID: {} Comm: {} Not tainted {} #1 SLE15-SP4 ff1e28259e46d1fe5c98a695c715341ba6a7fbe4", r.cpu, r.trigger_pid, r.trigger, r.kernel), 0.000004);
    out.push(
        "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.13.0-1ubuntu1.1 04/01/2014"
            .into(),
        0.000001,
    );
}

/// A vCPU's guest page fault charged to the memory cgroup, up to the OOM killer.
fn call_trace(out: &mut Lines) {
    out.push("Call Trace:".into(), 0.000003);
    for f in [
        " <TASK>",
        " dump_stack_lvl+0x45/0x5b",
        " dump_header+0x4a/0x220",
        " oom_kill_process+0xe8/0x140",
        " out_of_memory+0x113/0x580",
        " mem_cgroup_out_of_memory+0xe3/0x100",
        " try_charge_memcg+0x6bb/0x700",
        " charge_memcg+0x40/0xa0",
        " __mem_cgroup_charge+0x2c/0xa0",
        " __handle_mm_fault+0xa37/0x1220",
        " handle_mm_fault+0xd5/0x290",
        " kvm_mmu_page_fault+0x77/0x610 [kvm]",
        " vcpu_enter_guest+0x9bb/0x17e0 [kvm]",
        " kvm_arch_vcpu_ioctl_run+0x37d/0x570 [kvm]",
        " kvm_vcpu_ioctl+0x418/0x660 [kvm]",
        " __x64_sys_ioctl+0x92/0xd0",
        " do_syscall_64+0x5b/0x80",
        " entry_SYSCALL_64_after_hwframe+0x61/0xcb",
        " </TASK>",
    ] {
        out.push(f.into(), 0.000003);
    }
}

/// The cgroup's memory, memory+swap and kmem counters (usage at the limit).
fn counters(out: &mut Lines, r: &OomReport) {
    let usage = kb(r.limit_bytes);
    out.push(
        format!(
            "memory: usage {usage}kB, limit {usage}kB, failcnt {}",
            r.failcnt
        ),
        0.000002,
    );
    out.push(
        format!("memory+swap: usage {usage}kB, limit {UNLIMITED_KB}kB, failcnt 0"),
        0.000001,
    );
    out.push(
        format!(
            "kmem: usage {}kB, limit {UNLIMITED_KB}kB, failcnt 0",
            kb(r.kmem_bytes)
        ),
        0.000001,
    );
}

/// "Memory cgroup stats for …": the memory.stat keys the kernel prints, in one entry.
fn cgroup_stats(out: &mut Lines, r: &OomReport) {
    out.push(
        format!("Memory cgroup stats for {}:", r.oom_memcg),
        0.000018,
    );
    let s = &r.stat;
    let anon = s.compute_anon();
    let file = s.active_file + s.inactive_file;
    let stat_lines = [
        format!("anon {anon}"),
        format!("file {file}"),
        format!("kernel_stack {}", s.kernel_stack),
        format!("pagetables {}", s.pagetables),
        "percpu 360".to_string(),
        "sock 0".to_string(),
        "shmem 0".to_string(),
        format!("file_mapped {}", s.active_file),
        "file_dirty 0".to_string(),
        "file_writeback 0".to_string(),
        "swapcached 0".to_string(),
        format!("anon_thp {}", s.guest_resident / (2 << 20) * (2 << 20)),
        format!("inactive_anon {}", anon - anon / 16),
        format!("active_anon {}", anon / 16),
        format!("inactive_file {}", s.inactive_file),
        format!("active_file {}", s.active_file),
        "unevictable 0".to_string(),
        format!("slab {}", s.slab),
    ];
    out.push(stat_lines.join("\n               "), 0.000001);
}

/// "Tasks state": one line per task of the cgroup.
fn task_states(out: &mut Lines, r: &OomReport) {
    out.push("Tasks state (memory values in pages):".into(), 0.000001);
    out.push(
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name".into(),
        0.000002,
    );
    for task in &r.tasks {
        out.push(
            format!(
                "[{:>7}] {:>5} {:>5} {:>8} {:>8} {:>8} {:>8}         {:>5} {}",
                task.pid,
                task.uid,
                task.pid,
                task.total_vm_pages,
                task.rss_pages,
                task.pgtables_bytes,
                0,
                r.oom_score_adj,
                task.name
            ),
            0.000002,
        );
    }
}

/// The kill: the constraint line, the victim's memory, and the reaper.
fn kill(out: &mut Lines, r: &OomReport) {
    let v = &r.victim;
    out.push(
        format!(
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset={},mems_allowed=0,oom_memcg={},task_memcg={},task={},pid={},uid=107",
            r.cpuset, r.oom_memcg, r.task_memcg, v.comm, r.victim_pid
        ),
        0.00002,
    );
    let pgtables_kb = (v.rss() / 4096 / 512 + 8) * 4;
    out.push(
        format!(
            "Memory cgroup out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB, UID:107 pgtables:{pgtables_kb}kB oom_score_adj:{}",
            r.victim_pid, v.comm, kb(v.vsz), kb(v.anon), kb(v.file), kb(v.shmem), r.oom_score_adj
        ),
        0.0515,
    );
    out.push(
        format!(
            "oom_reaper: reaped process {} ({}), now anon-rss:0kB, file-rss:20kB, shmem-rss:0kB",
            r.victim_pid, v.comm
        ),
        0.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Workload;
    use crate::workload::{sample, Params, Shape};

    #[test]
    fn report_reads_like_the_seed_example_3() {
        let shape = Shape {
            guest_backing: Default::default(),
            guest: 2 << 30,
            vcpus: 2,
            libvirt_comm: "virtqemud",
            qemu_comm: "qemu-system-x86",
            seed: 1,
            migration_target: false,
            virtio_mem: None,
        };
        let stat = sample(&shape, &Params::from_workload(&Workload::default()), 100.0);
        let victim = stat.compute[4].clone();
        let r = OomReport {
            uptime: 8758.722811,
            kernel: "5.14.21-150400.24.116-default".into(),
            trigger: "CPU 1/KVM".into(),
            trigger_pid: 24808,
            cpu: 4,
            oom_score_adj: 920,
            limit_bytes: 2_412_421_120,
            failcnt: 2339,
            kmem_bytes: 21_292 * 1024,
            oom_memcg: "/kubepods.slice/x.slice/cri-containerd-b5.scope".into(),
            task_memcg: "/kubepods.slice/x.slice/cri-containerd-b5.scope".into(),
            cpuset: "cri-containerd-b5.scope".into(),
            tasks: vec![Task {
                pid: 24457,
                uid: 107,
                total_vm_pages: 440_598,
                rss_pages: 3054,
                pgtables_bytes: 192_512,
                name: "virt-launcher-m".into(),
            }],
            victim_pid: 24790,
            victim,
            stat,
        };
        let lines = render(&r);
        assert_eq!(lines[0], "[ 8758.722811] CPU 1/KVM invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=920");
        assert!(lines
            .iter()
            .any(|l| l.ends_with("] memory: usage 2355880kB, limit 2355880kB, failcnt 2339")));
        assert!(lines.iter().any(|l| l.ends_with("] [  24457]   107 24457   440598     3054   192512        0           920 virt-launcher-m")));
        let kill = lines
            .iter()
            .find(|l| l.contains("oom-kill:constraint=CONSTRAINT_MEMCG"))
            .unwrap();
        assert!(kill.ends_with("task=qemu-system-x86,pid=24790,uid=107"));
        assert!(lines.iter().any(|l| l.contains(
            "Memory cgroup out of memory: Killed process 24790 (qemu-system-x86) total-vm:"
        )));
        assert!(lines
            .iter()
            .any(|l| l.contains("\n               inactive_file ")));
    }
}
