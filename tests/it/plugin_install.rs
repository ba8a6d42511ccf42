//! The release archive installs and runs as a kubectl plugin: scripts/package.sh builds it (from
//! this test run's binary), scripts/krew-manifest.sh describes it, and the install does what
//! `kubectl krew install --manifest=… --archive=…` does (krew itself is not needed): check the
//! platform and sha256, unpack into KREW_ROOT/store/vmmem/<version>/, link KREW_ROOT/bin/kubectl-vmmem.
//! Then the real kubectl finds the plugin and runs it.

use crate::krew_rules;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{assert_ok, kubectl, kubectl_or_fail, path_with, stdout};
use clap::CommandFactory;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// This machine as krew names it.
fn host() -> (&'static str, &'static str) {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("this test knows no krew arch for {other}"),
    };
    (os, arch)
}

fn sh(script: &str, args: &[&str]) -> String {
    let o = Command::new("sh")
        .arg(root().join("scripts").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh ({e}): this test needs a POSIX sh"));
    assert!(
        o.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `kubectl krew install --manifest --archive`, done by hand. Returns KREW_ROOT/bin.
fn krew_install(krew_root: &Path, manifest: &str, archive: &Path) -> PathBuf {
    assert_eq!(
        krew_rules::violations(manifest, "vmmem"),
        Vec::<String>::new()
    );
    let doc: serde_json::Value = vmmem::parse::yaml::from_str(manifest).unwrap();
    let (os, arch) = host();
    let matching: Vec<_> = krew_rules::platforms(&doc)
        .into_iter()
        .filter(|p| p.matches(os, arch))
        .collect();
    assert_eq!(matching.len(), 1, "platforms for {os}/{arch}: {matching:?}");
    let platform = &matching[0];
    assert_eq!(
        platform.sha256,
        krew_rules::sha256_of(archive),
        "the archive's sha256 differs from the manifest's"
    );
    assert_eq!(
        krew_rules::archive_violations(archive, &platform.bin),
        Vec::<String>::new()
    );
    let version = doc["spec"]["version"].as_str().unwrap();
    let store = krew_root.join("store/vmmem").join(version);
    std::fs::create_dir_all(&store).unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(&store)
        .status()
        .expect("this test needs `tar` on PATH");
    assert!(st.success());
    let bin_dir = krew_root.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(store.join(&platform.bin), bin_dir.join("kubectl-vmmem")).unwrap();
    std::fs::create_dir_all(krew_root.join("receipts")).unwrap();
    std::fs::write(krew_root.join("receipts/vmmem.yaml"), manifest).unwrap();
    bin_dir
}

#[test]
fn the_archive_installs_krew_style_and_runs_through_kubectl() {
    let kubectl_bin = kubectl_or_fail();
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let (os, arch) = host();
    let archive = PathBuf::from(
        sh(
            "package.sh",
            &[
                "--bin",
                env!("CARGO_BIN_EXE_kubectl-vmmem"),
                "--platform",
                &format!("{os}_{arch}"),
                "--version",
                &version(),
                "--out",
                dist.to_str().unwrap(),
            ],
        )
        .trim(),
    );
    let manifest = sh(
        "krew-manifest.sh",
        &["--partial", &version(), dist.to_str().unwrap()],
    );
    let krew_root = dir.path().join("krew");
    let bin_dir = krew_install(&krew_root, &manifest, &archive);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = path_with(&bin_dir, &kubectl_bin);
    let run = |args: &[&str]| kubectl(&kubectl_bin, &path, &home, args, &[]);

    let o = run(&["plugin", "list"]);
    assert_ok(&o, "kubectl plugin list");
    let linked = bin_dir.join("kubectl-vmmem");
    assert!(
        stdout(&o).contains(linked.to_str().unwrap()),
        "kubectl plugin list: {}",
        stdout(&o)
    );

    let o = run(&["vmmem", "--version"]);
    assert_ok(&o, "kubectl vmmem --version");
    let v = stdout(&o);
    let rev = v
        .trim()
        .strip_prefix(&format!("kubectl vmmem {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'));
    let rev = rev.unwrap_or_else(|| panic!("--version: {v:?}"));
    let hex = rev.trim_end_matches("-dirty");
    assert!(
        hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "--version names no git revision: {v:?}"
    );

    let o = run(&["vmmem", "list", "--demo"]);
    assert_ok(&o, "kubectl vmmem list --demo");
    let table = stdout(&o);
    assert!(
        table.starts_with("NAMESPACE") && table.contains("web-01") && table.contains("db-01"),
        "{table}"
    );

    // The completion script the docs tell krew users to write, written through kubectl.
    let o = run(&["vmmem", "completion"]);
    assert_ok(&o, "kubectl vmmem completion");
    let script = bin_dir.join("kubectl_complete-vmmem");
    std::fs::write(&script, &o.stdout).unwrap();
    support::make_executable(&script);
    let o = run(&["__complete", "vmmem", "list", "-o", "w"]);
    assert_ok(&o, "kubectl __complete vmmem list -o w");
    assert_eq!(stdout(&o), "wide\n:4\n");
}

#[test]
fn every_command_has_help_with_examples_naming_kubectl_vmmem() {
    let kubectl_bin = kubectl_or_fail();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    support::install_plugin(&bin);
    let path = path_with(&bin, &kubectl_bin);
    let mut cmd = vmmem::cli::args::Cli::command();
    cmd.build();
    let mut names: Vec<Vec<String>> = vec![vec![]];
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        names.push(vec![sub.get_name().to_string()]);
        for inner in sub
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            names.push(vec![
                sub.get_name().to_string(),
                inner.get_name().to_string(),
            ]);
        }
    }
    assert!(names.len() >= 4, "{names:?}");
    for words in names {
        let mut args = vec!["vmmem"];
        args.extend(words.iter().map(String::as_str));
        args.push("--help");
        let o = kubectl(&kubectl_bin, &path, dir.path(), &args, &[]);
        assert_ok(&o, &format!("kubectl {}", args.join(" ")));
        let help = stdout(&o);
        let usage = format!(
            "Usage: kubectl vmmem{}",
            words.iter().map(|w| format!(" {w}")).collect::<String>()
        );
        assert!(
            help.contains(&usage),
            "`kubectl {}` lacks {usage:?}:\n{help}",
            args.join(" ")
        );
        assert!(
            help.contains("Examples:\n  kubectl vmmem"),
            "`kubectl {}` has no examples:\n{help}",
            args.join(" ")
        );
        assert!(
            !help.contains("kubectl-vmmem "),
            "`kubectl {}` names kubectl-vmmem:\n{help}",
            args.join(" ")
        );
    }
}
