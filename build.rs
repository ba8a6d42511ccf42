//! Stamps the git revision into `--version`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let rev =
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown revision".to_string());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    let rev = if dirty { format!("{rev}-dirty") } else { rev };
    println!("cargo:rustc-env=VMMEM_GIT_REVISION={rev}");
    // Rebuild when HEAD moves: HEAD itself (checkout), the branch it points at (commit), packed
    // refs and the index (staging). `--git-path` finds them in worktrees too, where `.git` is a
    // file. Outside a git checkout (a crate tarball) nothing is watched.
    let mut watched = vec![
        "HEAD".to_string(),
        "packed-refs".to_string(),
        "index".to_string(),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
