//! The OOM parser against the seed's three reports and variants of them in every log format.

use crate::oom_fixtures::fixture;
use vmmem::model::oom_event::{ContainerRuntime, OomEvent, OomScope};
use vmmem::parse::oom::parse_kernel_log;

fn only(name: &str) -> OomEvent {
    let mut events = parse_kernel_log(&fixture(name));
    assert_eq!(events.len(), 1, "{name}: {events:#?}");
    events.remove(0)
}

const EX1_POD: &str = "968a06fb-9ab9-4819-8caf-0392ddff3d9b";
const EX1_CID: &str = "0f32894de86edf3d3832702af794874ef8d400b4969acdea4976b12040756e0d";
const EX1_POD_SLICE: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod968a06fb_9ab9_4819_8caf_0392ddff3d9b.slice";
const EX1_LIMIT: u64 = 17_432_924_160;
const EX2_LIMIT: u64 = 69_201_821_696;
const EX3_LIMIT: u64 = 2_412_421_120;
const EX3_POD: &str = "bc31d215-d48e-4416-8e2b-68716b8f5bcb";
const EX3_CID: &str = "b545a34b33f1939f6256113274da85221b9bce0e51188b1e78ffabe615fad9b3";

fn names(ev: &OomEvent) -> Vec<&str> {
    ev.tasks.iter().map(|t| t.name.as_str()).collect()
}

/// Example 1 as the seed shows it: the excerpt stops at the `oom-kill:` line, so the kill line
/// (victim RSS) is missing and the event is partial.
#[test]
fn seed_example1() {
    let ev = only("seed-example1-journal.log");
    assert_eq!(ev.time.as_deref(), Some("Feb 03 19:57:08"));
    assert_eq!(ev.node, None, "the seed's host is redacted as **");
    assert_eq!(ev.trigger.as_deref(), Some("virt-launcher"));
    assert_eq!(ev.trigger_pid, Some(40785));
    assert_eq!(ev.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
    assert_eq!(ev.oom_memcg.as_deref(), Some(EX1_POD_SLICE));
    assert_eq!(
        ev.task_memcg.as_deref(),
        Some(format!("{EX1_POD_SLICE}/cri-containerd-{EX1_CID}.scope").as_str())
    );
    assert_eq!(ev.scope, Some(OomScope::Pod));
    assert_eq!(ev.pod_uid.as_deref(), Some(EX1_POD));
    assert_eq!(ev.container_id.as_deref(), Some(EX1_CID));
    assert_eq!(ev.runtime, Some(ContainerRuntime::Containerd));
    assert_eq!(ev.limit_bytes(), Some(EX1_LIMIT));
    assert_eq!(ev.usage_bytes(), Some(EX1_LIMIT));
    assert_eq!(ev.failcnt(), Some(1243));
    assert!(!ev.memsw_limit_hit());
    assert_eq!(ev.kmem.map(|k| k.usage_bytes), Some(143_556 * 1024));
    assert_eq!(ev.stats_for.as_deref(), Some(EX1_POD_SLICE));
    assert_eq!(
        names(&ev),
        [
            "pause",
            "virt-launcher-m",
            "virt-launcher",
            "libvirtd",
            "virtlogd",
            "qemu-system-x86"
        ]
    );
    let qemu = &ev.tasks[5];
    assert_eq!(
        (qemu.pid, qemu.uid, qemu.rss_pages),
        (39079, Some(107), 4_201_766)
    );
    assert_eq!(ev.tasks[0].oom_score_adj, Some(-998));
    let v = ev.victim.as_ref().unwrap();
    assert_eq!(
        (v.pid, v.comm.as_str(), v.uid),
        (39079, "qemu-system-x86", Some(107))
    );
    assert_eq!(v.anon_rss_bytes, None);
    assert!(ev.partial);
}

#[test]
fn seed_example2() {
    let ev = only("seed-example2-dmesg-T.log");
    assert_eq!(ev.time.as_deref(), Some("Thu May  9 14:52:38 2024"));
    assert_eq!(ev.trigger.as_deref(), Some("CPU 11/KVM"));
    assert_eq!(ev.trigger_pid, Some(70888));
    assert_eq!(ev.limit_bytes(), Some(EX2_LIMIT));
    assert_eq!(ev.failcnt(), Some(67391));
    assert!(!ev.memsw_limit_hit());
    assert_eq!(ev.scope, Some(OomScope::Pod));
    // task_memcg has the seed's typo (kubepods-urstable.slice); the pod is still found.
    assert!(ev
        .task_memcg
        .as_deref()
        .unwrap()
        .contains("kubepods-urstable.slice"));
    assert_eq!(
        ev.pod_uid.as_deref(),
        Some("ef91e487-dec5-4613-800b-eb23e1a1617d")
    );
    assert_eq!(
        ev.container_id.as_deref(),
        Some("100093783c22a3ae1a42e21dd887b7c26eef52d56ba44c7273ef54507b6efe7c")
    );
    let v = ev.victim.as_ref().unwrap();
    assert_eq!((v.pid, v.comm.as_str()), (70870, "qemu-system-x86"));
    assert_eq!(v.total_vm_bytes, Some(73_209_856 * 1024));
    assert_eq!(v.anon_rss_bytes, Some(66_852_088 * 1024));
    assert_eq!(v.file_rss_bytes, Some(21_948 * 1024));
    assert_eq!(v.shmem_rss_bytes, Some(4 * 1024));
    assert_eq!(ev.tasks.len(), 6);
    assert_eq!(ev.tasks[5].rss_pages, 16_718_510);
    assert!(!ev.partial);
}

#[test]
fn seed_example3() {
    let ev = only("seed-example3-dmesg.log");
    check_example3(&ev);
    assert_eq!(ev.time.as_deref(), Some("8758.722811"));
    assert_eq!(ev.node, None);
    assert!(!ev.partial);
}

fn check_example3(ev: &OomEvent) {
    assert_eq!(ev.trigger.as_deref(), Some("CPU 1/KVM"));
    assert_eq!(ev.trigger_pid, Some(24808));
    assert_eq!(ev.limit_bytes(), Some(EX3_LIMIT));
    assert_eq!(ev.usage_bytes(), Some(EX3_LIMIT));
    assert!(ev.memsw_limit_hit(), "memory+swap hit its limit");
    assert_eq!(ev.failcnt(), Some(2339));
    assert_eq!(ev.memory.unwrap().failcnt, 0);
    assert_eq!(ev.scope, Some(OomScope::Container));
    assert_eq!(ev.pod_uid.as_deref(), Some(EX3_POD));
    assert_eq!(ev.container_id.as_deref(), Some(EX3_CID));
    // v2-style memory.stat on a v1 kernel, printed as continuation lines.
    assert_eq!(ev.stats.get("anon"), Some(&2_390_548_480));
    assert_eq!(ev.stats.get("file"), Some(&69_632));
    assert_eq!(ev.stats.get("inactive_file"), Some(&65_536));
    assert_eq!(ev.stats.get("thp_collapse_alloc"), Some(&0));
    assert_eq!(ev.stats.len(), 40);
    assert_eq!(
        names(ev),
        [
            "virt-launcher-m",
            "virt-launcher",
            "virtqemud",
            "virtlogd",
            "qemu-system-x86",
            "sh",
            "memhold"
        ]
    );
    assert_eq!(ev.tasks[6].rss_pages, 103_103);
    let v = ev.victim.as_ref().unwrap();
    assert_eq!((v.pid, v.comm.as_str()), (24790, "qemu-system-x86"));
    assert_eq!(v.anon_rss_bytes, Some(1_867_320 * 1024));
    assert_eq!(v.total_vm_bytes, Some(2_820_660 * 1024));
}

#[test]
fn example3_as_journal_with_host() {
    let ev = only("variant-example3-journal-host.log");
    check_example3(&ev);
    assert_eq!(ev.node.as_deref(), Some("harvester-node-2"));
    assert_eq!(ev.time.as_deref(), Some("Nov 14 08:12:58"));
    assert!(!ev.partial);
}

#[test]
fn example3_as_kmsg_records() {
    let ev = only("variant-example3-kmsg.log");
    check_example3(&ev);
    assert_eq!(ev.time.as_deref(), Some("8758.722811"));
    assert!(!ev.partial);
}

#[test]
fn example3_cut_short_is_partial_not_an_error() {
    let ev = only("variant-example3-truncated.log");
    assert!(ev.partial);
    assert_eq!(ev.trigger.as_deref(), Some("CPU 1/KVM"));
    assert_eq!(ev.limit_bytes(), Some(EX3_LIMIT));
    assert_eq!(ev.tasks.len(), 4, "rows up to the cut");
    assert_eq!(ev.victim, None);
    assert_eq!(ev.task_memcg, None);
    // The stats block is printed for the cgroup that hit its limit: it still names it.
    assert_eq!(ev.oom_memcg, ev.stats_for);
    assert_eq!(ev.scope, Some(OomScope::Container));
    assert_eq!(ev.pod_uid.as_deref(), Some(EX3_POD));
    assert_eq!(ev.container_id.as_deref(), Some(EX3_CID));
}

fn check_example1_core(ev: &OomEvent) {
    assert_eq!(ev.trigger.as_deref(), Some("virt-launcher"));
    assert_eq!(ev.limit_bytes(), Some(EX1_LIMIT));
    assert_eq!(ev.pod_uid.as_deref(), Some(EX1_POD));
    assert_eq!(ev.container_id.as_deref(), Some(EX1_CID));
    assert_eq!(ev.victim.as_ref().map(|v| v.pid), Some(39079));
}

#[test]
fn example1_without_timestamps_and_with_priorities() {
    let ev = only("variant-example1-raw-notime.log");
    check_example1_core(&ev);
    assert_eq!(ev.time, None);
    assert_eq!(ev.tasks.len(), 6);
    let ev = only("variant-example1-dmesg-r.log");
    check_example1_core(&ev);
    assert_eq!(ev.time.as_deref(), Some(" 70123.456000".trim()));
    assert_eq!(ev.tasks.len(), 6);
    assert_eq!(ev.scope, Some(OomScope::Pod));
}

#[test]
fn example1_on_el7_kernel_3_10() {
    let ev = only("variant-example1-el7-3.10-cgroupfs.log");
    assert_eq!(ev.trigger.as_deref(), Some("qemu-kvm"));
    assert_eq!(ev.trigger_pid, Some(39101));
    assert_eq!(ev.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
    assert_eq!(
        ev.oom_memcg.as_deref(),
        Some(format!("/kubepods/burstable/pod{EX1_POD}").as_str())
    );
    assert_eq!(ev.scope, Some(OomScope::Pod));
    assert_eq!(ev.pod_uid.as_deref(), Some(EX1_POD));
    assert_eq!(ev.container_id.as_deref(), Some(EX1_CID));
    assert_eq!(ev.runtime, None, "cgroupfs paths do not name the runtime");
    assert_eq!(ev.limit_bytes(), Some(EX1_LIMIT));
    assert_eq!(ev.failcnt(), Some(1243));
    // The first stats block (inline KB values) is the limited cgroup's.
    assert_eq!(ev.stats.get("rss"), Some(&0));
    assert_eq!(ev.stats.len(), 10);
    assert_eq!(ev.tasks.len(), 6);
    assert_eq!(ev.tasks[5].rss_pages, 4_201_766);
    assert_eq!(ev.tasks[5].swapents, Some(0));
    let v = ev.victim.as_ref().unwrap();
    assert_eq!((v.pid, v.comm.as_str()), (39079, "qemu-kvm"));
    assert_eq!(v.anon_rss_bytes, Some(16_790_040 * 1024));
    assert_eq!(v.shmem_rss_bytes, Some(0));
    assert!(!ev.partial);
}

#[test]
fn example1_on_cgroup_v2_with_crio() {
    let ev = only("variant-example1-v2-crio.log");
    check_example1_core(&ev);
    assert_eq!(ev.runtime, Some(ContainerRuntime::Crio));
    assert_eq!(ev.scope, Some(OomScope::Pod));
    assert_eq!(ev.memsw, None);
    assert_eq!(ev.swap.map(|s| s.limit_bytes), Some(None));
    assert!(!ev.memsw_limit_hit());
    assert_eq!(ev.stats.get("anon"), Some(&17_258_500_096));
    assert_eq!(ev.stats.get("kernel"), Some(&147_001_344));
    assert_eq!(ev.stats.len(), 10);
    assert_eq!(names(&ev)[2], "virtqemud");
    assert!(!ev.partial);
}

#[test]
fn example1_with_docker_and_a_container_limit() {
    let ev = only("variant-example1-docker-container-limit.log");
    check_example1_core(&ev);
    assert_eq!(ev.runtime, Some(ContainerRuntime::Docker));
    assert_eq!(ev.scope, Some(OomScope::Container));
}

#[test]
fn example1_at_node_kubepods() {
    let ev = only("variant-example1-node-kubepods.log");
    assert_eq!(ev.scope, Some(OomScope::Node));
    assert_eq!(ev.oom_memcg.as_deref(), Some("/kubepods.slice"));
    assert_eq!(ev.limit_bytes(), Some(257_698_036 * 1024));
    // The victim's pod still comes from task_memcg.
    assert_eq!(ev.pod_uid.as_deref(), Some(EX1_POD));
}

#[test]
fn example2_in_syslog_with_other_daemons() {
    let ev = only("variant-example2-syslog-interleaved.log");
    assert_eq!(ev.node.as_deref(), Some("hv-node-07"));
    assert_eq!(ev.time.as_deref(), Some("May  9 14:52:38"));
    assert_eq!(ev.trigger.as_deref(), Some("CPU 11/KVM"));
    assert_eq!(
        ev.limit_bytes(),
        Some(EX2_LIMIT),
        "containerd's line is not the kernel's"
    );
    assert_eq!(ev.tasks.len(), 6, "kubelet's bracketed text is not a task");
    assert_eq!(ev.victim.as_ref().map(|v| v.pid), Some(70870));
    assert!(!ev.partial);
}

#[test]
fn example2_on_6x_with_split_rss_columns() {
    let ev = only("variant-example2-6x-split-rss.log");
    assert_eq!(ev.trigger.as_deref(), Some("CPU 11/KVM"));
    assert_eq!(ev.trigger_pid, Some(70888));
    assert_eq!(ev.limit_bytes(), Some(EX2_LIMIT));
    let q = &ev.tasks[5];
    assert_eq!(q.name, "qemu-system-x86");
    assert_eq!(q.rss_pages, 16_718_510);
    // The split as the kill line reports it (anon-rss 66852088kB, file 21948kB, shmem 4kB).
    assert_eq!(q.rss_anon_pages, Some(16_713_022));
    assert_eq!(q.rss_file_pages, Some(5_487));
    assert_eq!(q.rss_shmem_pages, Some(1));
    assert_eq!(q.oom_score_adj, Some(830));
    assert!(!ev.partial);
}

#[test]
fn global_oom() {
    let ev = only("variant-global-oom.log");
    assert!(ev.global);
    assert_eq!(ev.scope, Some(OomScope::Global));
    assert_eq!(ev.constraint.as_deref(), Some("CONSTRAINT_NONE"));
    assert_eq!(ev.oom_memcg, None);
    assert_eq!(ev.memory, None);
    assert_eq!(ev.limit_bytes(), None);
    assert_eq!(ev.trigger.as_deref(), Some("java"));
    assert_eq!(ev.pod_uid.as_deref(), Some(EX1_POD));
    assert_eq!(ev.tasks.len(), 4);
    assert_eq!(ev.stats.len(), 0, "Mem-Info is not a memcg stats block");
    assert_eq!(
        ev.victim.as_ref().map(|v| v.comm.as_str()),
        Some("qemu-system-x86")
    );
    assert!(!ev.partial);
}

#[test]
fn several_reports_in_one_kernel_log() {
    let events = parse_kernel_log(&fixture("variant-multi-kernel-log.log"));
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0].trigger.as_deref(), Some("virt-launcher"));
    assert_eq!(events[0].node.as_deref(), Some("harvester-node-2"));
    assert_eq!(events[0].limit_bytes(), Some(EX1_LIMIT));
    assert!(events[0].partial, "example 1 has no kill line");
    check_example3(&events[1]);
    assert!(!events[1].partial);
    assert!(events[1].line > events[0].line);
}

#[test]
fn real_report_of_a_6_18_kernel() {
    let ev = only("real-6.18-v1-split-rss.log");
    assert_eq!(ev.trigger.as_deref(), Some("CPU 0/KVM"));
    assert_eq!(ev.trigger_pid, Some(12686));
    assert_eq!(ev.limit_bytes(), Some(32 << 20));
    assert_eq!(ev.oom_memcg.as_deref(), Some("/test/oomexp"));
    assert_eq!(ev.scope, Some(OomScope::Other));
    assert_eq!(ev.stats.get("total_rss"), Some(&33_386_496));
    assert_eq!(ev.tasks.len(), 1);
    assert_eq!(ev.tasks[0].rss_anon_pages, Some(8096));
    let v = ev.victim.as_ref().unwrap();
    assert_eq!((v.pid, v.comm.as_str()), (12684, "qemu-system-x86"));
    assert!(!ev.partial);
}

#[test]
fn no_reports_in_unrelated_text() {
    assert!(parse_kernel_log("").is_empty());
    assert!(parse_kernel_log("[    1.0] Linux version 6.1\nhello\n\n").is_empty());
}

#[test]
fn example3_with_unrelated_lines_inside_the_report() {
    let ev = only("variant-example3-interleaved.log");
    check_example3(&ev);
    assert!(!ev.partial);
}
