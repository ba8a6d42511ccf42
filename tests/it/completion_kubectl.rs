//! Shell completion through the real kubectl (≥ 1.26): `kubectl __complete vmmem …` runs
//! `kubectl_complete-vmmem` from PATH, which runs `kubectl-vmmem __complete`; names come from a
//! simulated cluster named by the kubeconfig.

use std::path::Path;

use crate::support::{
    assert_ok, install_completion, install_plugin, kubectl, kubectl_or_fail, path_with, stdout,
};
use vmmem::cli::complete::{complete, Lookup};
use vmmem::cli::complete_cluster::fill;
use vmmem::cluster::connect::Env;
use vmmem_sim::{Scenario, Sim, SimOptions};

struct Setup {
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
    kubectl: std::path::PathBuf,
    path: std::ffi::OsString,
}

fn setup() -> Setup {
    let kubectl = kubectl_or_fail();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    install_plugin(&bin);
    install_completion(&bin);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = path_with(&bin, &kubectl);
    Setup {
        _dir: dir,
        home,
        kubectl,
        path,
    }
}

/// Candidates (first field of each line) and the directive line.
fn complete_via_kubectl(s: &Setup, words: &[&str], env: &[(&str, &Path)]) -> (Vec<String>, String) {
    let mut args = vec!["__complete", "vmmem"];
    args.extend_from_slice(words);
    let o = kubectl(&s.kubectl, &s.path, &s.home, &args, env);
    assert_ok(&o, &format!("kubectl {}", args.join(" ")));
    let text = stdout(&o);
    let mut lines: Vec<&str> = text.lines().collect();
    let directive = lines.pop().unwrap_or_default().to_string();
    let values = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    (values, directive)
}

#[test]
fn kubectl_completes_subcommands_through_the_plugin_script() {
    let s = setup();
    let (all, directive) = complete_via_kubectl(&s, &[""], &[]);
    for sub in ["list", "oom", "completion"] {
        assert!(all.contains(&sub.to_string()), "{sub} missing from {all:?}");
    }
    assert!(!all.iter().any(|v| v.starts_with("__")), "{all:?}");
    assert_eq!(directive, ":4");
    let (li, directive) = complete_via_kubectl(&s, &["li"], &[]);
    assert_eq!(li, vec!["list"]);
    assert_eq!(directive, ":4");
    // Descriptions travel after a tab.
    let o = kubectl(
        &s.kubectl,
        &s.path,
        &s.home,
        &["__complete", "vmmem", "li"],
        &[],
    );
    assert!(
        stdout(&o).starts_with("list\tList every VM"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn kubectl_completes_flags_and_their_values() {
    let s = setup();
    let (out, directive) = complete_via_kubectl(&s, &["list", "-o", ""], &[]);
    assert_eq!(out, vec!["table", "wide", "json", "yaml"]);
    assert_eq!(directive, ":4");
    let (flags, _) = complete_via_kubectl(&s, &["list", "--na"], &[]);
    assert_eq!(flags, vec!["--namespace"]);
    let (live, _) = complete_via_kubectl(&s, &["--live", ""], &[]);
    assert_eq!(live, vec!["auto", "agent", "pod-exec", "kubelet", "off"]);
    // A file-valued flag lets the shell complete file names (directive 0).
    let (_, directive) = complete_via_kubectl(&s, &["oom", "-f", ""], &[]);
    assert_eq!(directive, ":0");
}

#[test]
fn names_come_from_the_cluster_of_the_kubeconfig() {
    let s = setup();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(Sim::start(Scenario::demo().unwrap(), SimOptions::default()))
        .unwrap();
    let kc = s.home.join("sim.kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let kc_str = kc.to_str().unwrap();

    let (ns, directive) =
        complete_via_kubectl(&s, &["list", "--kubeconfig", kc_str, "-n", ""], &[]);
    assert!(
        ns.contains(&"default".to_string()) && ns.contains(&"prod".to_string()),
        "{ns:?}"
    );
    assert_eq!(directive, ":4");
    // KUBECONFIG works like kubectl's, and the typed prefix narrows.
    let (pr, _) = complete_via_kubectl(&s, &["list", "-n", "pr"], &[("KUBECONFIG", &kc)]);
    assert_eq!(pr, vec!["prod"]);
    let (eq, _) = complete_via_kubectl(&s, &["list", "--namespace=pr"], &[("KUBECONFIG", &kc)]);
    assert_eq!(eq, vec!["--namespace=prod"]);
    let (nodes, _) = complete_via_kubectl(&s, &["oom", "--node", ""], &[("KUBECONFIG", &kc)]);
    assert_eq!(
        nodes,
        vec![
            "harvester-node-1",
            "harvester-node-2",
            "harvester-node-3",
            "lab-node-1"
        ]
    );
    let (ctx, _) = complete_via_kubectl(&s, &["--context", ""], &[("KUBECONFIG", &kc)]);
    assert_eq!(ctx, vec!["vmmem-sim"]);

    // VM names for a NAME positional (the shape `fix NAME` has), in the namespace given or the
    // context's.
    let mut cmd = clap::Command::new("kubectl vmmem")
        .arg(clap::Arg::new("kubeconfig").long("kubeconfig").global(true))
        .arg(
            clap::Arg::new("namespace")
                .short('n')
                .long("namespace")
                .global(true),
        )
        .subcommand(clap::Command::new("fix").arg(clap::Arg::new("name").value_name("NAME")));
    cmd.build();
    let env = Env::default();
    let ask = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let mut a = complete(&cmd, &words);
        assert_eq!(a.lookup, Some(Lookup::VmNames));
        // The lookup runs its own runtime: call it from a plain thread.
        std::thread::scope(|t| t.spawn(|| fill(&mut a, &env)).join().unwrap());
        a.candidates.into_iter().map(|(v, _)| v).collect::<Vec<_>>()
    };
    // The same names the real kubectl lists.
    let kubectl_names = |ns: &str| {
        let o = kubectl(
            &s.kubectl,
            &s.path,
            &s.home,
            &[
                "--kubeconfig",
                kc_str,
                "get",
                "virtualmachines",
                "-n",
                ns,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            &[],
        );
        assert_ok(&o, "kubectl get virtualmachines");
        let mut v: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
        v.sort();
        v
    };
    let prod = kubectl_names("prod");
    assert!(prod.contains(&"db-01".to_string()), "{prod:?}");
    assert_eq!(
        ask(&["fix", "--kubeconfig", kc_str, "-n", "prod", ""]),
        prod
    );
    let w: Vec<String> = kubectl_names("default")
        .into_iter()
        .filter(|n| n.starts_with('w'))
        .collect();
    assert!(w.contains(&"web-01".to_string()), "{w:?}");
    assert_eq!(ask(&["fix", "--kubeconfig", kc_str, "w"]), w);

    // A cluster that is gone: no candidates, no error text, still the directive.
    rt.block_on(sim.shutdown());
    let started = std::time::Instant::now();
    let (gone, directive) = complete_via_kubectl(&s, &["list", "-n", ""], &[("KUBECONFIG", &kc)]);
    assert!(gone.is_empty(), "{gone:?}");
    assert_eq!(directive, ":4");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn no_kubeconfig_means_no_names_and_no_error() {
    let s = setup();
    let o = kubectl(
        &s.kubectl,
        &s.path,
        &s.home,
        &["__complete", "vmmem", "-n", ""],
        &[],
    );
    assert_ok(&o, "kubectl __complete vmmem -n ''");
    assert_eq!(stdout(&o), ":4\n");
}
