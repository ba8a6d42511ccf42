use proptest::prelude::*;

use super::*;

const POD: &str = "99ee3a64-645b-4699-9384-5a3875d78b41";
const A64: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B64: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SLICE: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod99ee3a64_645b_4699_9384_5a3875d78b41.slice";

/// What probe.sh printed for a hand-made cgroup v2 tree (tests/it/probe_fixtures.rs builds the same).
fn v2_sample() -> String {
    format!(
        "vmmem-probe 1
node v2 6.4.0-150600.23.25-default
missing 1111-2222
pod {POD} {SLICE}
c . 2472419328 341094400 341999616 7 1 100 200 5 150 50 30 10 20 9 0 0 -
c cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope max 1000 2000 7 1 100 200 5 150 50 30 10 20 9 0 0 101,102
c cri-containerd-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.scope max 10 20 0 0 100 200 5 150 50 30 10 20 9 0 0 103
p 101 60 30 0 virt-launcher-m
p 102 2000 30 4 qemu-system-x86
p 103 20 30 0 pause
p 999 1 1 1 not-in-any-pod
g 102 2097152 1048576 0 4 anon
end
"
    )
}

#[test]
fn v2_counters_processes_and_guest() {
    let out = parse(&v2_sample()).unwrap();
    assert_eq!(out.cgroup_version, CgroupVersion::V2);
    assert_eq!(out.kernel, "6.4.0-150600.23.25-default");
    assert_eq!(out.missing_pods, vec!["1111-2222"]);
    assert_eq!(out.pods.len(), 1);
    let pod = &out.pods[0];
    assert_eq!(pod.uid, POD);
    assert_eq!(pod.cgroup.level, CgroupLevel::Pod);
    assert_eq!(pod.cgroup.path, SLICE);
    assert_eq!(pod.cgroup.limit_bytes, Some(2_472_419_328));
    assert_eq!(pod.cgroup.usage_bytes, 341_094_400);
    assert_eq!(pod.cgroup.working_set_bytes, 341_094_400 - 150);
    assert_eq!(pod.cgroup.peak_bytes, Some(341_999_616));
    assert_eq!(pod.cgroup.failcnt, Some(7));
    // v2 memory.events already counts descendants: no summing.
    assert_eq!(pod.cgroup.oom_kills, 1);
    assert_eq!(pod.cgroup.stat.kernel, Some(30));
    assert_eq!(pod.cgroup.stat.slab, Some(9));
    assert_eq!(pod.containers.len(), 2);
    let compute = &pod.containers[0];
    assert_eq!(compute.level, CgroupLevel::Container);
    assert_eq!(compute.container_id.as_deref(), Some(A64));
    assert_eq!(compute.path, format!("{SLICE}/cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope"));
    assert_eq!(compute.limit_bytes, None);
    assert_eq!(compute.working_set_bytes, 850);
    let comms: Vec<_> = pod.processes.iter().map(|p| p.comm.as_str()).collect();
    assert_eq!(comms, ["virt-launcher-m", "qemu-system-x86", "pause"]);
    let qemu = &pod.processes[1];
    assert_eq!(qemu.rss_anon_bytes, 2000 * 1024);
    assert_eq!(qemu.rss_shmem_bytes, 4 * 1024);
    assert_eq!(qemu.container_id.as_deref(), Some(A64));
    assert_eq!(pod.processes[2].container_id.as_deref(), Some(B64));
    assert_eq!(pod.guest_resident_bytes, Some(1 << 30));
    assert_eq!(pod.guest_hugetlb_bytes, None);
}

#[test]
fn v1_oom_kills_add_up_and_unlimited_is_none() {
    let text = format!(
        "vmmem-probe 1\nnode v1 5.14.21-150400.24.60-default\npod {POD} {SLICE}\n\
         c . 2412421120 2412421120 2412421120 2339 0 2390548480 69632 0 65536 4096 21803008 - - - - 1702887424 -\n\
         c cri-containerd-b545.scope 9223372036854771712 2355880 2355880 0 1 1 1 0 0 0 - - - - - - 24457,24790\n\
         c cri-containerd-pause.scope 9223372036854771712 4096 4096 0 0 1 1 0 0 0 - - - - - - 5\n\
         end\n"
    );
    let out = parse(&text).unwrap();
    let pod = &out.pods[0];
    assert_eq!(out.cgroup_version, CgroupVersion::V1);
    assert_eq!(
        pod.cgroup.oom_kills, 1,
        "the kill counted in the scope belongs to the pod"
    );
    assert_eq!(pod.containers[0].oom_kills, 1);
    assert_eq!(pod.containers[0].limit_bytes, None);
    assert_eq!(pod.cgroup.failcnt, Some(2339));
    assert_eq!(pod.cgroup.stat.kernel, Some(21_803_008));
    assert_eq!(pod.cgroup.stat.kernel_stack, None);
    assert_eq!(pod.cgroup.stat.anon_thp, Some(1_702_887_424));
    assert_eq!(pod.guest_resident_bytes, None);
}

#[test]
fn hugetlb_guest_is_reported_apart() {
    let text = format!(
        "vmmem-probe 1\nnode v2 6.1\npod {POD} {SLICE}\n\
         c . 1 1 1 0 0 - - - - - - - - - - - -\n\
         c x max 1 1 0 0 - - - - - - - - - - - 7\n\
         g 7 4194304 0 2097152 2048 file\n\
         g 7 1048576 4096 0 4 memfd\nend\n"
    );
    let pod = &parse(&text).unwrap().pods[0];
    assert_eq!(pod.guest_hugetlb_bytes, Some(2 << 30));
    assert_eq!(pod.guest_resident_bytes, Some(4 << 20));
}

#[test]
fn container_ids_lose_their_runtime_prefix() {
    assert_eq!(container_id(&format!("cri-containerd-{A64}.scope")), A64);
    assert_eq!(container_id(&format!("crio-{A64}.scope")), A64);
    assert_eq!(
        container_id(&format!("crio-conmon-{A64}.scope")),
        format!("conmon-{A64}")
    );
    assert_eq!(container_id(&format!("docker-{A64}.scope")), A64);
    assert_eq!(container_id(A64), A64);
    assert_eq!(container_id("init.scope"), "init");
}

#[test]
fn another_format_is_rejected_clearly() {
    let e = parse("vmmem-probe 3\nnode v2 6.1\nend\n").unwrap_err();
    assert_eq!(e, ProbeError::Version { found: "3".into() });
    let msg = e.to_string();
    assert!(
        msg.contains("format 3") && msg.contains("reads format 1 to 2"),
        "{msg}"
    );
    assert!(parse("vmmem-probe 0\nnode v2 6.1\nend\n").is_err());
    assert!(matches!(
        parse("hello\n").unwrap_err(),
        ProbeError::NotProbe(_)
    ));
    assert_eq!(parse("").unwrap_err(), ProbeError::Empty);
    assert_eq!(parse("\n\n").unwrap_err(), ProbeError::Empty);
}

#[test]
fn node_errors_cut_off_runs_and_bad_lines() {
    let e = parse("vmmem-probe 1\nerr no memory cgroup hierarchy at /x\n").unwrap_err();
    assert_eq!(
        e,
        ProbeError::Node("no memory cgroup hierarchy at /x".into())
    );
    let mut cut = v2_sample();
    cut.truncate(cut.find("p 103").unwrap());
    assert_eq!(parse(&cut).unwrap_err(), ProbeError::Truncated);
    assert_eq!(
        parse("vmmem-probe 1\nend\n").unwrap_err(),
        ProbeError::NoNode
    );
    let bad = v2_sample().replace("c . 2472419328 341094400", "c . 2472419328 34x");
    match parse(&bad).unwrap_err() {
        ProbeError::Malformed { line, reason, .. } => {
            assert_eq!(line, 5);
            assert_eq!(reason, "a value is not a number");
        }
        other => panic!("{other:?}"),
    }
    let orphan = "vmmem-probe 1\nnode v1 6.1\nc . 1 1 1 0 0 - - - - - - - - - - - -\nend\n";
    assert!(matches!(
        parse(orphan),
        Err(ProbeError::Malformed { line: 3, .. })
    ));
}

#[test]
fn unknown_records_and_crlf_are_tolerated() {
    let text = v2_sample()
        .replace("\nend\n", "\nfuture a b c\nend\n")
        .replace('\n', "\r\n");
    assert_eq!(parse(&text).unwrap().pods.len(), 1);
}

#[test]
fn readings_keep_the_json_contract() {
    let r = parse(&v2_sample())
        .unwrap()
        .into_readings("node1", LiveSource::Local, 1_700_000_000);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["cgroupVersion"], "v2");
    assert_eq!(v["missingPods"][0], "1111-2222");
    let pod = &v["pods"][0];
    for key in [
        "uid",
        "level",
        "path",
        "limitBytes",
        "usageBytes",
        "workingSetBytes",
        "peakBytes",
        "failcnt",
        "oomKills",
        "guestResidentBytes",
        "containers",
        "processes",
    ] {
        assert!(pod.get(key).is_some(), "pods[0].{key} missing in {pod}");
    }
    assert_eq!(pod["level"], "pod");
    assert_eq!(pod["containers"][0]["containerId"], A64);
    assert_eq!(pod["processes"][1]["rssAnonBytes"], 2000 * 1024);
    let back: NodeReadings = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_anything(s in "\\PC*") {
        let _ = parse(&s);
        let _ = parse(&format!("vmmem-probe 1\n{s}"));
    }

    #[test]
    fn never_panics_on_damaged_output(
        cut in 0usize..2000,
        edits in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8),
    ) {
        let mut bytes = v2_sample().into_bytes();
        for (at, b) in edits {
            let at = at % bytes.len();
            bytes[at] = if b.is_ascii() { b } else { b' ' };
        }
        bytes.truncate(cut.min(bytes.len()));
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse(&s);
    }

    #[test]
    fn token_soup_never_panics(
        lines in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just("c".to_string()), Just("p".to_string()), Just("g".to_string()),
                    Just("pod".to_string()), Just("node".to_string()), Just("end".to_string()),
                    Just("-".to_string()), Just("max".to_string()), Just(".".to_string()),
                    Just("v1".to_string()), Just("18446744073709551615".to_string()),
                    Just("18446744073709551616".to_string()), Just("4294967296".to_string()),
                    Just("1,2,,3".to_string()), "[0-9]{1,6}",
                ],
                0..22,
            ),
            0..12,
        ),
    ) {
        let body: Vec<String> = lines.iter().map(|l| l.join(" ")).collect();
        let _ = parse(&format!("vmmem-probe 1\nnode v1 k\n{}\nend\n", body.join("\n")));
    }
}

/// Format 2 on cgroup v2: SWAP and SWAP_LIMIT are `memory.swap.current` and `memory.swap.max`
/// ("max": no limit); the `u` record gives the pod's usage after qemu's smaps scan.
#[test]
fn format_2_reads_v2_swap_and_the_usage_after_smaps() {
    let text = format!(
        "vmmem-probe 2\nnode v2 6.8\npod {POD} {SLICE}\n\
         c . 2000 1000 - 0 0 - - - - - - - - - - - - 0 104857600 max\n\
         c x 1500 900 - 0 0 - - - - - - - - - - - 7 0 104857600 268435456\n\
         g 7 1048576 4096 0 4 anon\nu 7 1000 5000\nend\n"
    );
    let pod = &parse(&text).unwrap().pods[0];
    assert_eq!(
        (pod.cgroup.swap_bytes, pod.cgroup.swap_limit_bytes),
        (Some(100 << 20), None)
    );
    let c = &pod.containers[0];
    assert_eq!(
        (c.swap_bytes, c.swap_limit_bytes),
        (Some(100 << 20), Some(256 << 20))
    );
    assert_eq!(pod.usage_after_smaps_bytes, Some(5000));
}

/// Format 2 on cgroup v1: `memory.memsw.*` count memory plus swap; an unlimited memsw (what the
/// kubelet leaves) is no swap limit, and `-` (no swap accounting) is unknown.
#[test]
fn format_2_reads_v1_memsw_as_swap() {
    let text = format!(
        "vmmem-probe 2\nnode v1 5.14\npod {POD} {SLICE}\n\
         c . 2000 1000 - 0 0 - - - - - - - - - - - - - 1300 9223372036854771712\n\
         c x 1500 900 - 0 0 - - - - - - - - - - - - - 1000 2500\n\
         c y 1500 900 - 0 0 - - - - - - - - - - - - - - -\nend\n"
    );
    let pod = &parse(&text).unwrap().pods[0];
    assert_eq!(
        (pod.cgroup.swap_bytes, pod.cgroup.swap_limit_bytes),
        (Some(300), None)
    );
    let x = &pod.containers[0];
    assert_eq!((x.swap_bytes, x.swap_limit_bytes), (Some(100), Some(1000)));
    let y = &pod.containers[1];
    assert_eq!((y.swap_bytes, y.swap_limit_bytes), (None, None));
}

/// Format 1 (probes before swap and the `u` record) still parses: no swap, no usage after smaps.
#[test]
fn format_1_output_still_parses() {
    let text = format!(
        "vmmem-probe 1\nnode v2 6.1\npod {POD} {SLICE}\n\
         c . 2000 1000 - 0 0 - - - - - - - - - - - - 0\nend\n"
    );
    let pod = &parse(&text).unwrap().pods[0];
    assert_eq!(
        (pod.cgroup.swap_bytes, pod.usage_after_smaps_bytes),
        (None, None)
    );
    assert_eq!(pod.cgroup.oom_group_kills, Some(0));
}
