//! The node probe's record stream, generated from a random model of pods, containers and
//! processes: valid output reads back exactly (every counter, every process attached to its pod,
//! guest resident summed, v1 OOM kills added up from containers); the same output damaged at
//! random (lines lost, doubled, swapped, fields garbled, numbers past u64, cut anywhere) never
//! panics, and its errors are one line.

use proptest::prelude::*;
use vmmem::cluster::files::load_inventory;
use vmmem::model::inventory::Readings;
use vmmem::model::readings::{CgroupVersion, LiveSource};
use vmmem::model::report::{build, ReportOptions};
use vmmem::output::report::{table, write_json};
use vmmem::parse::probe::{parse, MAX_VALUE};

/// The seed's VM `vm2`: its virt-launcher pod and node.
const SEED_POD_UID: &str = "99ee3a64-645b-4699-9384-5a3875d78b41";
const SEED_NODE: &str = "harv41";

#[derive(Debug, Clone)]
struct Cg {
    name: String,
    limit: Option<u64>,
    usage: u64,
    oom: Option<u64>,
    /// The 11 memory.stat values and peak/failcnt (None prints `-`).
    rest: Vec<Option<u64>>,
}

#[derive(Debug, Clone)]
struct Proc {
    kb: [u64; 3],
    comm: String,
    guest_kb: Option<u64>,
}

#[derive(Debug, Clone)]
struct PodModel {
    uid: String,
    cgroups: Vec<Cg>,
    /// Processes listed in cgroup `owner` (index into cgroups).
    procs: Vec<(usize, Proc)>,
}

/// Counter values: realistic ones, the largest accepted (8 PiB) and, when `huge`, numbers no
/// memory has (which the parser refuses).
fn num(huge: bool) -> BoxedStrategy<u64> {
    let sane = prop_oneof![
        4 => 0u64..(64u64 << 30),
        1 => Just(MAX_VALUE),
        1 => Just(0),
    ];
    if huge {
        prop_oneof![4 => sane, 1 => Just(u64::MAX), 1 => MAX_VALUE..u64::MAX].boxed()
    } else {
        sane.boxed()
    }
}

fn cg(name: String, huge: bool) -> impl Strategy<Value = Cg> {
    (
        prop_oneof![
            1 => Just(None),
            3 => num(huge).prop_map(Some),
            // cgroup v1's "unlimited".
            1 => Just(Some(9_223_372_036_854_771_712)),
        ],
        num(huge),
        proptest::option::of(0u64..5),
        proptest::collection::vec(proptest::option::of(num(huge)), 13),
    )
        .prop_map(move |(limit, usage, oom, rest)| Cg {
            name: name.clone(),
            limit,
            usage,
            oom,
            rest,
        })
}

fn proc_() -> impl Strategy<Value = Proc> {
    (
        [0u64..(1 << 30), 0u64..(1 << 30), 0u64..(1 << 30)],
        proptest::sample::select(vec![
            "qemu-system-x86",
            "virt-launcher",
            "virt-launcher-monitor",
            "virtqemud",
            "CPU 0/KVM",
            "a b  c",
        ]),
        proptest::option::of(0u64..(1 << 30)),
    )
        .prop_map(|(kb, comm, guest_kb)| Proc {
            kb,
            comm: comm.to_string(),
            guest_kb,
        })
}

fn pod(huge: bool) -> impl Strategy<Value = PodModel> {
    (
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        proptest::collection::vec("[0-9a-f]{64}", 0..3),
    )
        .prop_flat_map(move |(uid, ids)| {
            let mut names = vec![".".to_string()];
            names.extend(ids.iter().map(|id| format!("cri-containerd-{id}.scope")));
            let n = names.len();
            let cgs: Vec<_> = names.into_iter().map(|n| cg(n, huge)).collect();
            (
                Just(uid),
                cgs,
                proptest::collection::vec((0..n, proc_()), 0..5),
            )
        })
        .prop_map(|(uid, cgroups, procs)| PodModel {
            uid,
            cgroups,
            procs,
        })
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// The probe output for `pods` (PIDs numbered across all pods), with `missing` UIDs.
fn render(v2: bool, pods: &[PodModel], missing: &[String]) -> String {
    let mut out = format!(
        "vmmem-probe 1\nnode {} 6.4.0-test #1 SMP\n",
        if v2 { "v2" } else { "v1" }
    );
    let mut pid = 100u32;
    let mut tail = String::new();
    for p in pods {
        out.push_str(&format!(
            "pod {} /kubepods.slice/kubepods-pod{}.slice\n",
            p.uid,
            p.uid.replace('-', "_")
        ));
        let mut pids: Vec<Vec<u32>> = vec![Vec::new(); p.cgroups.len()];
        for (owner, pr) in &p.procs {
            pid += 1;
            pids[*owner].push(pid);
            tail.push_str(&format!(
                "p {pid} {} {} {} {}\n",
                pr.kb[0], pr.kb[1], pr.kb[2], pr.comm
            ));
            if let Some(g) = pr.guest_kb {
                tail.push_str(&format!("g {pid} {} {g} 0 4 anon\n", g + 1));
            }
        }
        for (c, list) in p.cgroups.iter().zip(&pids) {
            let pids = if list.is_empty() {
                "-".to_string()
            } else {
                list.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let rest: Vec<String> = c.rest.iter().map(|v| opt(*v)).collect();
            out.push_str(&format!(
                "c {} {} {} {} {} {} {} {pids}\n",
                c.name,
                c.limit.map_or("max".to_string(), |l| l.to_string()),
                c.usage,
                rest[0],
                rest[1],
                opt(c.oom),
                rest[2..].join(" "),
            ));
        }
    }
    out.push_str(&tail);
    for m in missing {
        out.push_str(&format!("missing {m}\n"));
    }
    out.push_str("end\n");
    out
}

#[derive(Debug, Clone)]
enum Damage {
    Cut(usize),
    Drop(usize),
    Double(usize),
    Swap(usize, usize),
    Garble(usize, usize, String),
    Huge(usize),
    Blank(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Cut),
        any::<usize>().prop_map(Damage::Drop),
        any::<usize>().prop_map(Damage::Double),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Swap(a, b)),
        (any::<usize>(), any::<usize>(), "\\PC{0,6}").prop_map(|(l, f, s)| Damage::Garble(l, f, s)),
        any::<usize>().prop_map(Damage::Huge),
        any::<usize>().prop_map(Damage::Blank),
    ]
}

fn apply(text: &str, d: &Damage) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match d {
        Damage::Cut(at) => {
            let mut i = at % (text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            return text[..i].to_string();
        }
        Damage::Drop(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        Damage::Double(i) if !lines.is_empty() => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Damage::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
        Damage::Garble(l, f, s) if !lines.is_empty() => {
            let mut fields: Vec<String> = lines[l % n].split(' ').map(str::to_string).collect();
            let k = f % fields.len();
            fields[k] = s.clone();
            lines[l % n] = fields.join(" ");
        }
        Damage::Huge(l) if !lines.is_empty() => {
            lines[l % n] = lines[l % n].replace(|c: char| c.is_ascii_digit(), "99999");
        }
        Damage::Blank(l) => lines.insert(l % n, String::new()),
        _ => {}
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn valid_output_reads_back_exactly(
        v2 in any::<bool>(),
        pods in proptest::collection::vec(pod(false), 0..4),
        missing in proptest::collection::vec("[0-9a-f-]{36}", 0..2),
    ) {
        // UIDs are unique on a node.
        let mut seen = std::collections::HashSet::new();
        let pods: Vec<PodModel> = pods.into_iter().filter(|p| seen.insert(p.uid.clone())).collect();
        let text = render(v2, &pods, &missing);
        let r = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(r.cgroup_version, if v2 { CgroupVersion::V2 } else { CgroupVersion::V1 });
        prop_assert_eq!(&r.missing_pods, &missing);
        prop_assert_eq!(r.pods.len(), pods.len());
        for (got, want) in r.pods.iter().zip(&pods) {
            prop_assert_eq!(&got.uid, &want.uid);
            prop_assert_eq!(got.cgroup.usage_bytes, want.cgroups[0].usage);
            let limit = want.cgroups[0].limit.filter(|&l| l < 1 << 62);
            prop_assert_eq!(got.cgroup.limit_bytes, limit);
            prop_assert_eq!(got.containers.len(), want.cgroups.len() - 1);
            prop_assert_eq!(got.processes.len(), want.procs.len());
            for (gp, (owner, wp)) in got.processes.iter().zip(&want.procs) {
                prop_assert_eq!(gp.rss_anon_bytes, wp.kb[0] * 1024);
                prop_assert_eq!(gp.rss_shmem_bytes, wp.kb[2] * 1024);
                prop_assert_eq!(&gp.comm, &wp.comm);
                prop_assert_eq!(gp.container_id.is_some(), *owner > 0);
            }
            let guest: Option<u64> = want
                .procs
                .iter()
                .filter_map(|(_, p)| p.guest_kb.map(|k| k * 1024))
                .fold(None, |acc, b| Some(acc.unwrap_or(0) + b));
            prop_assert_eq!(got.guest_resident_bytes, guest);
            let own = want.cgroups[0].oom.unwrap_or(0);
            let below = want.cgroups[1..].iter().map(|c| c.oom.unwrap_or(0)).sum::<u64>();
            prop_assert_eq!(got.cgroup.oom_kills, if v2 { own } else { own + below });
        }
    }

    #[test]
    fn readings_of_any_size_never_panic_the_report(v2 in any::<bool>(), p in pod(false)) {
        let p = PodModel { uid: SEED_POD_UID.to_string(), ..p };
        let text = render(v2, &[p], &[]);
        // Every value is in range (up to 8 PiB), so the probe reads and the model must cope.
        let r = parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let inv = load_inventory(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed/harvester-v1.3.yaml"),
        )
        .unwrap()
        .inventory;
        let mut readings = Readings::new();
        readings.insert(SEED_NODE.to_string(), std::sync::Arc::new(r.into_readings(SEED_NODE, LiveSource::Agent, 0)));
        let report = build(&inv, &readings, &ReportOptions::default());
        let row = report.vms.iter().find(|v| v.name == "vm2").unwrap();
        prop_assert!(row.cgroup.is_some(), "the reading joined vm2");
        let mut out = Vec::new();
        write_json(&report, &mut out).unwrap();
        let _ = table(&report, true).render(false);
    }

    #[test]
    fn numbers_no_memory_has_are_refused(v2 in any::<bool>(), huge in MAX_VALUE + 1..=u64::MAX) {
        let p = PodModel {
            uid: SEED_POD_UID.to_string(),
            cgroups: vec![Cg { name: ".".into(), limit: None, usage: huge, oom: None, rest: vec![None; 13] }],
            procs: Vec::new(),
        };
        let e = parse(&render(v2, &[p], &[])).unwrap_err().to_string();
        prop_assert!(e.contains("larger than any memory size") || e.contains("too large"), "{}", e);
    }

    #[test]
    fn damaged_output_never_panics(
        v2 in any::<bool>(),
        pods in proptest::collection::vec(pod(true), 1..3),
        damages in proptest::collection::vec(damage(), 1..5),
    ) {
        let mut text = render(v2, &pods, &[]);
        for d in &damages {
            text = apply(&text, d);
        }
        match parse(&text) {
            Ok(r) => prop_assert!(r.pods.len() <= text.matches("pod ").count()),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.contains('\n'), "{}", msg);
            }
        }
    }
}
