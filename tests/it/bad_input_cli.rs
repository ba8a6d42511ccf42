//! Garbage given to `--from` and malformed kubeconfigs: each ends with exit code 1 and ONE line
//! on stderr that names the file and the problem — no panic, no backtrace, no multi-line dump.
//! Unreadable files are made unreadable for real: as root (who may read anything) the plugin
//! runs as `nobody` through `setpriv`.

use crate::common;
use crate::fix_checks;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kubectl-vmmem")
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Run the plugin (as `nobody` when `unprivileged` and we are root), with `HOME` an empty
/// folder and `KUBECONFIG` as given; return stderr after checking exit code 1 and one line.
fn one_line_error(args: &[&str], kubeconfig_env: Option<&str>, unprivileged: bool) -> String {
    let home = tempfile::tempdir().unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if unprivileged && root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(args)
        .env("HOME", home.path())
        .env("RUST_BACKTRACE", "1")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(std::process::Stdio::null());
    match kubeconfig_env {
        Some(v) => cmd.env("KUBECONFIG", v),
        None => cmd.env_remove("KUBECONFIG"),
    };
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e} (setpriv needed as root)"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "-->", "Error {"] {
        assert!(!stderr.contains(bad), "{args:?}: {stderr}");
    }
    assert!(out.stdout.is_empty(), "{args:?}: stdout is not empty");
    lines[0].to_string()
}

fn has(line: &str, parts: &[&str]) {
    for p in parts {
        assert!(line.contains(p), "{p:?} missing in: {line}");
    }
}

#[test]
fn from_garbage_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name).to_str().unwrap().to_string();
    let binary: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(d.join("blob.bin"), &binary).unwrap();
    let line = one_line_error(&["list", "--from", &p("blob.bin")], None, false);
    has(
        &line,
        &["blob.bin", "not a YAML/JSON manifest", "binary data"],
    );
    let line = one_line_error(&["oom", "--from", &p("blob.bin")], None, false);
    has(&line, &["blob.bin", "binary data"]);
    // Binary data with a manifest's name: read, and nothing found in it.
    std::fs::write(d.join("blob.yaml"), &binary).unwrap();
    let line = one_line_error(&["list", "--from", &p("blob.yaml")], None, false);
    has(&line, &["blob.yaml", "found no VirtualMachine"]);
    // A zip that is not a bundle, and a file that only starts like a zip.
    {
        let f = std::fs::File::create(d.join("other.zip")).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("README.txt", o).unwrap();
        z.write_all(b"hello").unwrap();
        z.start_file("config.yaml", o).unwrap();
        z.write_all(b"color: blue\n").unwrap();
        z.finish().unwrap();
    }
    let line = one_line_error(&["list", "--from", &p("other.zip")], None, false);
    has(&line, &["other.zip", "found no VirtualMachine"]);
    let mut fake = b"PK\x03\x04".to_vec();
    fake.extend_from_slice(&binary[..300]);
    std::fs::write(d.join("fake.zip"), fake).unwrap();
    let line = one_line_error(&["list", "--from", &p("fake.zip")], None, false);
    has(&line, &["fake.zip", "not a readable zip archive"]);
    // Zips nested without end.
    let mut inner = b"kind: VirtualMachine\n".to_vec();
    for i in 0..7 {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        let name = if i == 0 {
            "vm.yaml".to_string()
        } else {
            format!("n{i}.zip")
        };
        z.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&inner).unwrap();
        z.finish().unwrap();
        inner = buf.into_inner();
    }
    std::fs::write(d.join("deep.zip"), inner).unwrap();
    let line = one_line_error(&["list", "--from", &p("deep.zip")], None, false);
    has(&line, &["deep.zip", "nested more than"]);
    // An empty folder, and a folder of unrelated YAML.
    std::fs::create_dir(d.join("empty")).unwrap();
    let line = one_line_error(&["list", "--from", &p("empty")], None, false);
    has(&line, &["empty", "found no VirtualMachine", "0 file(s)"]);
    std::fs::create_dir(d.join("unrelated")).unwrap();
    std::fs::write(
        d.join("unrelated/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: y}\n",
    )
    .unwrap();
    std::fs::write(d.join("unrelated/ci.yml"), "steps:\n- run: make\n").unwrap();
    let line = one_line_error(&["list", "--from", &p("unrelated")], None, false);
    has(
        &line,
        &["unrelated", "found no VirtualMachine", "2 file(s)"],
    );
    // A real manifest cut in the middle of a flow mapping.
    let seed = std::fs::read_to_string(fixture("seed/harvester-v1.3.yaml")).unwrap();
    let cut = seed.find("resources:").expect("fixture shape");
    std::fs::write(
        d.join("cut.yaml"),
        format!("{}resources: {{limits: {{memory: 2Gi", &seed[..cut]),
    )
    .unwrap();
    let line = one_line_error(&["list", "--from", &p("cut.yaml")], None, false);
    has(&line, &["cut.yaml", "cannot read document"]);
    let line = one_line_error(&["list", "--from", &p("missing.yaml")], None, false);
    has(&line, &["missing.yaml", "No such file"]);
    // A folder nobody may list.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(d.join("locked")).unwrap();
    std::fs::write(d.join("locked/vm.yaml"), &seed).unwrap();
    std::fs::set_permissions(d.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let line = one_line_error(&["list", "--from", &p("locked")], None, true);
    has(&line, &["locked", "Permission denied"]);
    std::fs::set_permissions(d.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn kubeconfig(cluster_extra: &str, context_cluster: &str, current: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n{cluster_extra}contexts:\n- name: x\n  context: {{cluster: {context_cluster}, user: u}}\n{current}users:\n- name: u\n  user:\n{user}"
    )
}

#[test]
fn malformed_kubeconfigs_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let ok_user = "    token: t\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            write("invalid", "apiVersion: v1\nkind: Config\nclusters: [\n"),
            vec![
                "cannot read kubeconfig",
                "invalid",
                "failed to parse kubeconfig YAML",
            ],
        ),
        (
            write("no-current", &kubeconfig("", "c", "", ok_user)),
            vec!["names no current context", "it has: x"],
        ),
        (
            write(
                "no-cluster",
                &kubeconfig("", "missing", "current-context: x\n", ok_user),
            ),
            vec!["cluster \"missing\" is not in the kubeconfig", "it has: c"],
        ),
        (
            write(
                "bad-ca",
                &kubeconfig(
                    "    certificate-authority-data: '!!!not base64'\n",
                    "c",
                    "current-context: x\n",
                    ok_user,
                ),
            ),
            vec!["kubeconfig ", "bad-ca", "certificate authority", "base64"],
        ),
        (
            write(
                "bad-client-cert",
                &kubeconfig(
                    "",
                    "c",
                    "current-context: x\n",
                    "    client-certificate-data: '%%%'\n    client-key-data: '%%%'\n",
                ),
            ),
            vec!["client certificate", "base64"],
        ),
        (
            write("not-a-mapping", "just words\n"),
            vec!["not-a-mapping", "failed to parse kubeconfig YAML"],
        ),
        (
            d.join("nope").to_str().unwrap().to_string(),
            vec!["cannot read kubeconfig", "nope", "No such file"],
        ),
    ];
    for (path, want) in &cases {
        let line = one_line_error(&["list", "--kubeconfig", path], None, false);
        has(&line, want);
        // The same file through KUBECONFIG.
        let line = one_line_error(&["list"], Some(path), false);
        if !path.ends_with("nope") {
            has(&line, want);
        }
    }
    let binary = d.join("binary");
    std::fs::write(&binary, [0xffu8, 0xfe, 0, 1, 2, 0x80]).unwrap();
    let line = one_line_error(
        &["list", "--kubeconfig", binary.to_str().unwrap()],
        None,
        false,
    );
    has(&line, &["cannot read kubeconfig", "binary"]);
    // Unreadable for the user running the plugin.
    let locked = write(
        "locked",
        &kubeconfig("", "c", "current-context: x\n", ok_user),
    );
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let line = one_line_error(&["list", "--kubeconfig", &locked], None, true);
    has(
        &line,
        &["cannot read kubeconfig", "locked", "Permission denied"],
    );
    // KUBECONFIG pointing to nothing, to a folder, to only separators.
    let line = one_line_error(&["list"], Some("/nonexistent/a:/nonexistent/b"), false);
    has(
        &line,
        &[
            "no kubeconfig found",
            "KUBECONFIG=/nonexistent/a:/nonexistent/b",
        ],
    );
    let line = one_line_error(&["list"], Some(d.to_str().unwrap()), false);
    has(&line, &["cannot read kubeconfig", "Is a directory"]);
    let line = one_line_error(&["list"], Some("::"), false);
    has(&line, &["no kubeconfig found", "names no file"]);
    // A file listed twice is read once: its names are not doubled in the message.
    let twice = cases[2].0.clone();
    let line = one_line_error(&["list"], Some(&format!("{twice}::{twice}")), false);
    has(&line, &["(it has: c)"]);
}

/// `fix … | head` with the reader gone before the plan is printed: one line, exit 1, and the VM
/// untouched (a plan nobody saw is never applied), instead of a panic in `println!`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_with_stdout_closed_applies_nothing() {
    use vmmem_sim::{Scenario, Sim, SimOptions};
    let sim = Sim::start(Scenario::demo().unwrap(), SimOptions::default())
        .await
        .unwrap();
    let (_dir, kc) = common::admin_kubeconfig(&sim);
    let admin = fix_checks::client(&kc).await;
    let before = fix_checks::get_vm(&admin, "default", "web-01").await;
    let mut child = Command::new(bin())
        .args([
            "fix",
            "default/web-01",
            "--reserve",
            "1Gi",
            "--yes",
            "--kubeconfig",
        ])
        .arg(&kc)
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    has(
        stderr.trim(),
        &[
            "error: cannot show the plan on standard output",
            "Broken pipe",
            "nothing was applied",
        ],
    );
    let after = fix_checks::get_vm(&admin, "default", "web-01").await;
    assert_eq!(before, after, "the VM changed");
    sim.shutdown().await;
}

#[test]
fn a_bad_global_refresh_is_refused_by_every_command() {
    let seed = fixture("seed");
    let seed = seed.to_str().unwrap();
    for args in [
        vec!["list", "--from", seed, "--refresh", "soon"],
        vec!["oom", "--from", seed, "--refresh", "10ms"],
    ] {
        let line = one_line_error(&args, None, false);
        has(&line, &["--refresh"]);
    }
}
