//! The krew manifest by krew's rules: the committed krew-manifest.yaml, the .krew.yaml template
//! rendered by scripts/krew-manifest.sh from archives scripts/package.sh builds, deliberately
//! broken manifests, and the release workflow that ties them together.

use crate::krew_rules;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::krew_rules::{
    archive_violations, missing_release_platforms, platforms, sha256_of, violations,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn doc(yaml: &str) -> serde_json::Value {
    vmmem::parse::yaml::from_str(yaml).unwrap()
}

/// Run one of our scripts; panics with its stderr when it fails.
fn script(name: &str, args: &[&str]) -> String {
    let o = Command::new("sh")
        .arg(root().join("scripts").join(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sh scripts/{name} ({e}): this test needs a POSIX sh")
        });
    assert!(
        o.status.success(),
        "scripts/{name} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A small stand-in for the plugin binary: these tests are about archives and manifests, not the
/// program inside (tests/plugin_install.rs packages and runs the real one).
fn stand_in(dir: &Path) -> PathBuf {
    let bin = dir.join("stand-in-binary");
    std::fs::write(&bin, "#!/bin/sh\necho kubectl-vmmem stand-in\n").unwrap();
    bin
}

/// Archives for every released platform, built by scripts/package.sh.
fn release_archives(dist: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dist).unwrap();
    let bin = stand_in(dist);
    package_all(&bin, dist)
}

/// scripts/package.sh of `bin` for every released platform into `dist`.
fn package_all(bin: &Path, dist: &Path) -> Vec<PathBuf> {
    krew_rules::RELEASED
        .iter()
        .map(|(os, arch)| {
            let out = script(
                "package.sh",
                &[
                    "--bin",
                    bin.to_str().unwrap(),
                    "--platform",
                    &format!("{os}_{arch}"),
                    "--version",
                    &version(),
                    "--out",
                    dist.to_str().unwrap(),
                ],
            );
            PathBuf::from(out.trim())
        })
        .collect()
}

/// A valid manifest to break in tests.
fn valid() -> String {
    let dir = tempfile::tempdir().unwrap();
    release_archives(dir.path());
    script(
        "krew-manifest.sh",
        &[&version(), dir.path().to_str().unwrap()],
    )
}

/// Everything wrong with a manifest meant to be committed: krew's rules, every released platform
/// present, each entry the template's with a real sum, and a header naming the build that made
/// the archives (scripts/cross-build.sh or the release workflow), not a partial local one.
fn committed_manifest_problems(text: &str) -> Vec<String> {
    let mut out = violations(text, "vmmem");
    for missing in missing_release_platforms(text) {
        out.push(format!(
            "no {missing} entry: run scripts/cross-build.sh to build and add every platform"
        ));
    }
    let Ok(d) = vmmem::parse::yaml::from_str::<serde_json::Value>(text) else {
        return out;
    };
    if d["spec"]["version"].as_str() != Some(version().as_str()) {
        out.push(format!(
            "spec.version {:?} is not Cargo.toml's {}",
            d["spec"]["version"],
            version()
        ));
    }
    let template = read(".krew.yaml").replace("{{ .TagName }}", &version());
    for p in platforms(&d) {
        let (os, arch) = (p.label("os").unwrap_or("?"), p.label("arch").unwrap_or("?"));
        let file = format!("kubectl-vmmem_{}_{os}_{arch}.", version());
        if !p.uri.contains(&file) {
            out.push(format!(
                "{os}/{arch}: uri {} is not the release asset {file}*",
                p.uri
            ));
        }
        if !template.contains(&format!("\"{}\"", p.uri)) {
            out.push(format!("{os}/{arch}: {} is not in .krew.yaml", p.uri));
        }
    }
    // The same text the script writes (descriptions, caveats) as the template.
    let t = doc(&read(".krew.yaml").replace("{{", "#{{"));
    for key in ["shortDescription", "description", "caveats", "homepage"] {
        if d["spec"][key] != t["spec"][key] {
            out.push(format!("spec.{key} differs from .krew.yaml"));
        }
    }
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    if header.iter().any(|l| l.contains("Partial")) {
        out.push("the header says the manifest is partial".to_string());
    }
    let built = header
        .iter()
        .find_map(|l| l.strip_prefix("# Archives built by "));
    match built {
        Some(b)
            if (b.starts_with("scripts/cross-build.sh ")
                || b.starts_with("the release workflow"))
                && b.split_whitespace().any(|w| {
                    let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
                    w.len() >= 12 && w.chars().all(|c| c.is_ascii_hexdigit())
                }) => {}
        _ => out.push(
            "the header does not say which build made the archives (\"# Archives built by \
             scripts/cross-build.sh ... from commit <rev>\")"
                .to_string(),
        ),
    }
    out
}

#[test]
fn the_committed_manifest_has_every_platform_by_krews_rules_and_the_template() {
    let committed = read("krew-manifest.yaml");
    assert_eq!(
        committed_manifest_problems(&committed),
        Vec::<String>::new()
    );
}

#[test]
fn a_committed_manifest_missing_any_platform_is_rejected() {
    let committed = read("krew-manifest.yaml");
    let d = doc(&committed);
    for p in platforms(&d) {
        let (os, arch) = (p.label("os").unwrap(), p.label("arch").unwrap());
        // Drop this platform's entry: its selector through its bin line.
        let start = committed
            .find(&format!("        os: {os}\n        arch: {arch}\n"))
            .and_then(|i| committed[..i].rfind("  - selector:"))
            .unwrap_or_else(|| panic!("no {os}/{arch} selector"));
        let bin = format!("    bin: {}\n", p.bin);
        let end = start + committed[start..].find(&bin).unwrap() + bin.len();
        let without = format!("{}{}", &committed[..start], &committed[end..]);
        assert_eq!(platforms(&doc(&without)).len(), platforms(&d).len() - 1);
        let problems = committed_manifest_problems(&without);
        assert!(
            problems
                .iter()
                .any(|m| m.contains(&format!("no {os}/{arch} entry"))),
            "without {os}/{arch}: {problems:?}"
        );
    }
    // A partial local manifest (what scripts/krew-manifest.sh --partial writes) is rejected too.
    let partial = committed.replacen(
        "\n",
        "\n# Partial: only the platforms whose archive was in the dist folder\n",
        1,
    );
    assert!(committed_manifest_problems(&partial)
        .iter()
        .any(|m| m.contains("partial")));
}

#[test]
fn the_template_renders_to_a_valid_manifest_for_every_released_platform() {
    let dir = tempfile::tempdir().unwrap();
    let archives = release_archives(dir.path());
    let manifest = script(
        "krew-manifest.sh",
        &[&version(), dir.path().to_str().unwrap()],
    );
    assert_eq!(
        violations(&manifest, "vmmem"),
        Vec::<String>::new(),
        "{manifest}"
    );
    assert_eq!(missing_release_platforms(&manifest), Vec::<String>::new());
    let plats = platforms(&doc(&manifest));
    assert_eq!(plats.len(), krew_rules::RELEASED.len());
    for archive in &archives {
        let file = archive.file_name().unwrap().to_str().unwrap();
        let p = plats
            .iter()
            .find(|p| p.uri.ends_with(&format!("/{file}")))
            .unwrap_or_else(|| panic!("no platform downloads {file}"));
        assert_eq!(p.sha256, sha256_of(archive), "{file}");
        assert_eq!(archive_violations(archive, &p.bin), Vec::<String>::new());
        assert!(krew_rules::archive_files(archive).contains(&"README.md".to_string()));
        // package.sh's .sha256 file agrees.
        let side = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
        assert_eq!(side, format!("{}  {file}\n", p.sha256));
    }
}

#[test]
fn archives_are_reproducible_from_the_same_binary() {
    // The same binary packaged twice, its file dated differently in between, gives the same
    // bytes: the manifest's sums stay true for a rebuild of the same inputs.
    let dir = tempfile::tempdir().unwrap();
    let bin = stand_in(dir.path());
    let first = package_all(&bin, &dir.path().join("first"));
    let f = std::fs::File::options().write(true).open(&bin).unwrap();
    let then = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890);
    f.set_modified(then).unwrap();
    drop(f);
    let second = package_all(&bin, &dir.path().join("second"));
    assert_eq!(first.len(), krew_rules::RELEASED.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            sha256_of(a),
            sha256_of(b),
            "{} is not reproducible",
            a.display()
        );
        // Sorted entries: LICENSE, README.md, then the binary.
        let files = krew_rules::archive_files(a);
        assert_eq!(files.len(), 3, "{files:?}");
    }
    let listing = Command::new("tar")
        .arg("tvzf")
        .arg(&first[0])
        .output()
        .expect("this test needs `tar` on PATH");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        names,
        ["LICENSE", "README.md", "kubectl-vmmem"],
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .all(|l| l.contains(" 0/0 ") && l.contains("1980-01-01 00:00")),
        "owner or date not fixed:\n{listing}"
    );
}

#[test]
fn the_renderer_never_invents_sums() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stand_in(dir.path());
    let bin = bin.to_str().unwrap();
    script(
        "package.sh",
        &[
            "--bin",
            bin,
            "--platform",
            "linux_amd64",
            "--version",
            &version(),
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    let full = Command::new("sh")
        .arg(root().join("scripts/krew-manifest.sh"))
        .args([&version(), dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !full.status.success(),
        "rendered a release manifest with four archives missing"
    );
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("no archive kubectl-vmmem_v"),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let partial = script(
        "krew-manifest.sh",
        &["--partial", &version(), dir.path().to_str().unwrap()],
    );
    assert_eq!(
        violations(&partial, "vmmem"),
        Vec::<String>::new(),
        "{partial}"
    );
    assert_eq!(missing_release_platforms(&partial).len(), 4, "{partial}");
    let empty = tempfile::tempdir().unwrap();
    let none = Command::new("sh")
        .arg(root().join("scripts/krew-manifest.sh"))
        .args(["--partial", &version(), empty.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !none.status.success(),
        "rendered a manifest without any platform"
    );
}

/// `valid` with `from` replaced by `to` (which must occur).
fn broken(valid: &str, from: &str, to: &str) -> String {
    assert!(valid.contains(from), "{from:?} not in the manifest");
    valid.replacen(from, to, 1)
}

fn assert_rejected(manifest: &str, expect: &str) {
    let v = violations(manifest, "vmmem");
    assert!(
        v.iter().any(|m| m.contains(expect)),
        "expected a violation containing {expect:?}, got {v:?}"
    );
}

#[test]
fn broken_manifests_are_rejected() {
    let ok = valid();
    assert_eq!(violations(&ok, "vmmem"), Vec::<String>::new());
    let sha = platforms(&doc(&ok))[0].sha256.clone();

    // Overlapping selectors: the same pair twice, and an os-only selector over an os/arch one.
    let linux = "  - selector:\n      matchLabels:\n        os: linux\n        arch: amd64\n";
    assert_rejected(
        &broken(&ok, linux, &linux.replace("arch: amd64", "arch: arm64")),
        "match linux/arm64: selectors overlap",
    );
    assert_rejected(
        &broken(&ok, linux, &linux.replace("        arch: amd64\n", "")),
        "match linux/arm64: selectors overlap",
    );
    // Uppercase, short and missing sums.
    assert_rejected(&broken(&ok, &sha, &sha.to_uppercase()), "64 lowercase hex");
    assert_rejected(&broken(&ok, &sha, &sha[..63]), "64 lowercase hex");
    assert_rejected(
        &broken(&ok, &format!("sha256: {sha}"), "shasum: x"),
        "64 lowercase hex",
    );
    // Version without v, and not semver.
    let v = format!("version: {}", version());
    assert_rejected(&broken(&ok, &v, &v.replace(": v", ": ")), "leading v");
    assert_rejected(&broken(&ok, &v, "version: v1.2"), "leading v");
    assert_rejected(&broken(&ok, &v, "version: v01.2.3"), "leading v");
    // Unknown os and arch, extra labels, matchExpressions.
    assert_rejected(&broken(&ok, "os: darwin", "os: plan9"), "os \"plan9\"");
    assert_rejected(&broken(&ok, "arch: arm64", "arch: sparc"), "linux/sparc");
    assert_rejected(
        &broken(
            &ok,
            "        os: linux\n",
            "        os: linux\n        distro: suse\n",
        ),
        "label \"distro\"",
    );
    assert_rejected(
        &broken(
            &ok,
            "      matchLabels:\n        os: darwin\n        arch: amd64\n",
            "      matchExpressions:\n      - {key: os, operator: In, values: [darwin]}\n",
        ),
        "matchLabels (os, arch) only",
    );
    // bin: missing, and without .exe on windows.
    assert_rejected(
        &broken(&ok, "    bin: kubectl-vmmem\n", ""),
        "bin is missing",
    );
    assert_rejected(
        &broken(&ok, "bin: kubectl-vmmem.exe", "bin: kubectl-vmmem"),
        "must end in .exe",
    );
    // uri of something that is not an archive; identity fields.
    assert_rejected(
        &broken(&ok, "_linux_amd64.tar.gz", "_linux_amd64"),
        "uri must be",
    );
    assert_rejected(&broken(&ok, "name: vmmem", "name: vm-mem"), "metadata.name");
    assert_rejected(
        &broken(&ok, "kind: Plugin", "kind: Pluginz"),
        "kind must be Plugin",
    );
    assert_rejected(
        &broken(&ok, "  platforms:\n", "  platformz:\n"),
        "at least one platform",
    );
    assert_rejected(
        &broken(
            &ok,
            "shortDescription: ",
            "shortDescription: |\n    two\n    lines\n  x: ",
        ),
        "one non-empty line",
    );
}

#[test]
fn archives_without_a_license_or_the_binary_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kubectl-vmmem"), "x").unwrap();
    std::fs::write(dir.path().join("README.md"), "x").unwrap();
    let tgz = dir.path().join("a.tar.gz");
    let st = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .args([
            "-C",
            dir.path().to_str().unwrap(),
            "kubectl-vmmem",
            "README.md",
        ])
        .status()
        .expect("this test needs `tar` on PATH");
    assert!(st.success());
    let v = archive_violations(&tgz, "kubectl-vmmem");
    assert!(v.len() == 1 && v[0].contains("no LICENSE"), "{v:?}");
    let v = archive_violations(&tgz, "kubectl-vmmem.exe");
    assert!(
        v.iter().any(|m| m.contains("no kubectl-vmmem.exe inside")),
        "{v:?}"
    );
}

#[test]
fn the_release_workflow_builds_every_platform_of_the_template() {
    let wf: serde_json::Value =
        vmmem::parse::yaml::from_str(&read(".github/workflows/release.yml")).unwrap();
    let tags: Vec<&str> = wf["on"]["push"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(tags, vec!["v*.*.*"], "the release must run on version tags");
    let matrix: Vec<String> = wf["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = krew_rules::RELEASED
        .iter()
        .map(|(o, a)| format!("{o}_{a}"))
        .collect();
    let mut got = matrix.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // The template has exactly those platforms too.
    let template = read(".krew.yaml");
    for p in &matrix {
        assert!(template.contains(&format!("_{p}.")), ".krew.yaml lacks {p}");
    }
    assert_eq!(template.matches("addURIAndSha").count(), matrix.len());
    // Each platform is built for the Rust target scripts/cross-build.sh builds it for here.
    let script_targets = script("cross-build.sh", &["--print-targets"]);
    for m in wf["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
    {
        let (p, t) = (
            m["platform"].as_str().unwrap(),
            m["target"].as_str().unwrap(),
        );
        assert!(
            script_targets.lines().any(|l| l == format!("{p} {t}")),
            "the workflow builds {p} for {t}; scripts/cross-build.sh --print-targets says:\n{script_targets}"
        );
    }
    assert_eq!(script_targets.lines().count(), matrix.len());
    let steps = vmmem::output::yaml::to_string(&wf["jobs"]).unwrap();
    for needed in [
        "scripts/cross-build.sh",
        "scripts/krew-manifest.sh",
        "krew-release-bot",
        "sha256sum -c",
    ] {
        assert!(steps.contains(needed), "the workflow does not use {needed}");
    }
}
