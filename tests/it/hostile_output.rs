//! Terminal injection (issue 18): names, namespaces, node names (from zip entry names in a
//! support bundle), phases, process names in kernel logs and in /proc, annotation values of a
//! fix plan, and file names, all holding ESC, BEL, CSI and OSC sequences, the one-character CSI
//! (U+009B) and DEL, go through every command of the real binary: no raw control character
//! reaches stdout or stderr of text output (they show escaped, `\x1b`), and JSON stays exact.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Every kind of control a name could smuggle: clear screen, bell, retitle the window (OSC),
/// CSI as one C1 character, DEL.
const EVIL: &str = "\x1b[2J\x07\x1b]0;owned\x07\u{9b}8m\x7f";
/// How [`EVIL`] shows once escaped.
const EVIL_SHOWN: &str = "\\x1b[2J\\x07\\x1b]0;owned\\x07\\u{9b}8m\\x7f";

fn bundle_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bundle/supportbundle_8a3f0c1e-2b4d-4c6e-9f10-3a5b7c9d1e2f_2024-05-09T14-55-00Z")
}

/// Text may hold line breaks and nothing else below U+0020, no DEL, no C1 control.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
        panic!("{what}: raw control {c:?} in:\n{text}");
    }
}

fn run(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"));
    cmd.env("XDG_STATE_HOME", crate::common::state_home());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Run a text command: both streams clean; return stdout and stderr as text.
fn clean_run(args: &[&str], env: &[(&str, &Path)]) -> (Output, String, String) {
    let out = run(args, env);
    assert_clean(&format!("{args:?} stdout"), &out.stdout);
    assert_clean(&format!("{args:?} stderr"), &out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Replace every `from` inside every string of a JSON value.
fn taint(v: &mut Value, swaps: &[(&str, String)]) {
    match v {
        Value::String(s) => {
            for (from, to) in swaps {
                if s.contains(from) {
                    *s = s.replace(from, to);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| taint(x, swaps)),
        Value::Object(o) => o.values_mut().for_each(|x| taint(x, swaps)),
        _ => {}
    }
}

/// The fixture bundle as a zip, with hostile VM, namespace, node and process names: its
/// manifests (as JSON, which carries any character), and node 2's kernel log in a nested
/// `nodes/<node>.zip` as Harvester packs it, the node named by the entry names alone.
fn hostile_bundle(dir: &Path) -> PathBuf {
    use zip::write::SimpleFileOptions;
    let node = format!("harvester-node-2{EVIL}");
    let swaps = [
        ("harvester-node-2", node.clone()),
        ("prod", format!("prod{EVIL}")),
        ("Running", format!("Running{EVIL}")),
    ];
    let path = dir.join("bundle.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = SimpleFileOptions::default();
    let root = bundle_root();
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let rel = p
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        if rel.ends_with("kernel.log") {
            // A process may name itself anything (prctl PR_SET_NAME); the kernel prints it.
            let log = text
                .replace("qemu-system-x86", &format!("qemu{EVIL}"))
                .replace("virt-launcher", &format!("virt-launcher{EVIL}"));
            let mut inner = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            inner
                .start_file(format!("{node}/logs/kernel.log"), opts)
                .unwrap();
            inner.write_all(log.as_bytes()).unwrap();
            let inner = inner.finish().unwrap().into_inner();
            zip.start_file(format!("sb/nodes/{node}.zip"), opts)
                .unwrap();
            zip.write_all(&inner).unwrap();
            continue;
        }
        let mut docs: Vec<Value> = vmmem::parse::yaml::documents(&text).unwrap();
        docs.iter_mut().for_each(|d| taint(d, &swaps));
        let name = rel.replace("/prod/", &format!("/prod{EVIL}/"));
        zip.start_file(format!("sb/{name}"), opts).unwrap();
        for d in docs.iter().filter(|d| !d.is_null()) {
            zip.write_all(serde_json::to_string(d).unwrap().as_bytes())
                .unwrap();
            zip.write_all(b"\n").unwrap();
        }
    }
    zip.finish().unwrap();
    path
}

#[test]
fn list_and_oom_from_a_hostile_bundle_show_controls_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = hostile_bundle(dir.path());
    let b = bundle.to_str().unwrap();
    for output in ["table", "wide"] {
        let (out, stdout, stderr) = clean_run(&["list", "-A", "--from", b, "-o", output], &[]);
        assert!(out.status.success(), "{output}: {stderr}");
        assert!(stdout.contains(&format!("prod{EVIL_SHOWN}")), "{stdout}");
        assert!(
            stdout.contains(&format!("harvester-node-2{EVIL_SHOWN}")),
            "{stdout}"
        );
        if output == "wide" {
            assert!(stdout.contains(&format!("Running{EVIL_SHOWN}")), "{stdout}");
        }
    }
    // JSON stays exact: the names as they are (JSON escapes C0 itself).
    let out = run(&["list", "-A", "--from", b, "-o", "json"], &[]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces: Vec<&str> = doc["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["namespace"].as_str())
        .collect();
    assert!(
        namespaces.contains(&format!("prod{EVIL}").as_str()),
        "{namespaces:?}"
    );
    // oom: the node (from the zip entry names), the killed process, the VM.
    let (out, stdout, stderr) = clean_run(&["oom", "--from", b], &[]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("harvester-node-2{EVIL_SHOWN}")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("qemu{EVIL_SHOWN}")), "{stdout}");
    let out = run(&["oom", "--from", b, "-o", "json"], &[]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["events"][0]["node"].as_str(),
        Some(format!("harvester-node-2{EVIL}").as_str())
    );
}

#[test]
fn file_names_in_warnings_and_errors_show_escaped() {
    let dir = tempfile::tempdir().unwrap();
    // A kernel log without OOM reports: the note on stderr names the file.
    let log = dir.path().join(format!("kernel{EVIL}.log"));
    std::fs::write(&log, "[    0.000000] Linux version 6.1\n").unwrap();
    let (out, _, stderr) = clean_run(&["oom", "-f", log.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("kernel{EVIL_SHOWN}.log")),
        "{stderr}"
    );
    // A broken manifest inside a zip: the error names the entry.
    let zip_path = dir.path().join("b.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    zip.start_file(
        format!("sb/{EVIL}/virtualmachines.yaml"),
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"kind: VirtualMachine\nmetadata: [unclosed\n")
        .unwrap();
    zip.finish().unwrap();
    let (out, _, stderr) = clean_run(&["list", "--from", zip_path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: ") && stderr.contains(&format!("b.zip!sb/{EVIL_SHOWN}/")),
        "{stderr}"
    );
}

#[test]
fn probe_local_tables_show_process_names_escaped() {
    let h = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = h.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("proc/sys/kernel/osrelease", &format!("6.1{EVIL}\n"));
    w("cg/cgroup.controllers", "cpuset cpu io memory pids\n");
    let pod = "cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podbc31d215_d48e_4416_8e2b_68716b8f5bcb.slice";
    let ctr = format!("{pod}/cri-containerd-b545a34b33f1939f6256113274da85221b9bce0e51188b1e78ffabe615fad9b3.scope");
    for (cg, procs) in [(pod.to_string(), ""), (ctr, "4242\n")] {
        w(&format!("{cg}/cgroup.procs"), procs);
        w(&format!("{cg}/memory.max"), "2147483648\n");
        w(&format!("{cg}/memory.current"), "1048576\n");
        w(&format!("{cg}/memory.peak"), "1048576\n");
        w(
            &format!("{cg}/memory.events"),
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        );
        w(
            &format!("{cg}/memory.stat"),
            "anon 1000\nfile 2000\nkernel 300\nshmem 0\ninactive_file 10\nactive_file 10\n",
        );
    }
    w(
        "proc/4242/status",
        &format!("Name:\tqemu{EVIL}\nPid:\t4242\nRssAnon:\t    1024 kB\nRssFile:\t     512 kB\nRssShmem:\t       0 kB\n"),
    );
    let cg = h.path().join("cg");
    let proc_root = h.path().join("proc");
    let (out, stdout, stderr) = clean_run(
        &[
            "probe",
            "--local",
            "--cgroup-root",
            cg.to_str().unwrap(),
            "--proc-root",
            proc_root.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("kernel 6.1{EVIL_SHOWN}")),
        "{stdout}"
    );
    assert!(stdout.contains("qemu\\x1b[2J"), "{stdout}");
}

/// A fix plan whose `--undo` record (an annotation anyone with edit on the VM can write) holds
/// escape sequences: `ESC[8m` once hid the rest of the plan and the prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_plans_show_annotation_values_escaped() {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    let sim = common::demo().await;
    let (dir, kc) = common::admin_kubeconfig(&sim);
    let flags = vmmem::cluster::connect::ConnectFlags {
        kubeconfig: Some(kc.clone()),
        ..Default::default()
    };
    let conn = vmmem::cluster::connect::connect_with_env(&flags, &Default::default())
        .await
        .unwrap();
    let vms: Api<DynamicObject> =
        Api::namespaced_with(conn.client.clone(), "default", &common::vm_resource());
    let record = serde_json::json!({
        "version": 2,
        "fields": {"limitsMemory": format!("64Gi{EVIL}")},
        "written": {"reservedMemory": format!("100Mi{EVIL}")}
    });
    let patch = serde_json::json!({"metadata": {"annotations": {
        "vmmem.kubectl.io/previous": record.to_string(),
    }}});
    vms.patch("web-01", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let kc_env = [("KUBECONFIG", kc.as_path())];
    let kubeconfig = kc.to_str().unwrap().to_string();
    let runs: Vec<(Vec<String>, Output)> = tokio::task::spawn_blocking(move || {
        let kc_env = [("KUBECONFIG", Path::new(&kubeconfig))];
        [
            vec!["fix", "web-01", "-n", "default", "--dry-run=client"],
            vec![
                "fix",
                "web-01",
                "-n",
                "default",
                "--undo",
                "--dry-run=client",
            ],
            vec![
                "fix",
                "web-01",
                "-n",
                "default",
                "--undo",
                "--dry-run=server",
                "--yes",
            ],
        ]
        .into_iter()
        .map(|args| {
            let out = run(&args, &kc_env);
            (args.iter().map(|s| s.to_string()).collect(), out)
        })
        .collect()
    })
    .await
    .unwrap();
    let _ = kc_env;
    let mut shown_somewhere = false;
    for (args, out) in &runs {
        assert_clean(&format!("{args:?} stdout"), &out.stdout);
        assert_clean(&format!("{args:?} stderr"), &out.stderr);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Shown escaped by the terminal filter, or quoted (Rust's `{:?}`) in a refusal.
        shown_somewhere |=
            all.contains(&format!("64Gi{EVIL_SHOWN}")) || all.contains("64Gi\\u{1b}[2J\\u{7}");
        eprintln!("{args:?} → {:?}\n{all}", out.status.code());
    }
    assert!(
        shown_somewhere,
        "no plan or error quoted the planted values"
    );
    drop(dir);
    sim.shutdown().await;
}
