//! Helpers for tests that run the plugin through the real kubectl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real kubectl, or a loud failure saying why the test cannot run.
pub fn kubectl_or_fail() -> PathBuf {
    let bin = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    match Command::new(&bin).args(["version", "--client"]).output() {
        Ok(o) if o.status.success() => which(Path::new(&bin)).unwrap_or_else(|| PathBuf::from(&bin)),
        Ok(o) => panic!(
            "`{} version --client` failed ({}): this test needs a working kubectl >= 1.26 (set KUBECTL=/path/to/kubectl)",
            Path::new(&bin).display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run `{}` ({e}): this test needs the real kubectl >= 1.26 on PATH (or KUBECTL=/path/to/kubectl)",
            Path::new(&bin).display()
        ),
    }
}

/// The absolute path of a program name as PATH resolves it.
fn which(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return Some(bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Copy the plugin binary built for this test run into `dir` as `kubectl-vmmem`.
pub fn install_plugin(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let dest = dir.join("kubectl-vmmem");
    std::fs::copy(env!("CARGO_BIN_EXE_kubectl-vmmem"), &dest).unwrap();
    dest
}

/// Write `kubectl_complete-vmmem` as `kubectl vmmem completion` prints it, executable.
pub fn install_completion(dir: &Path) -> PathBuf {
    let o = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .arg("completion")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dest = dir.join("kubectl_complete-vmmem");
    std::fs::write(&dest, &o.stdout).unwrap();
    make_executable(&dest);
    dest
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(path, perm).unwrap();
}

/// A PATH with `first` in front of the directories of kubectl and `sh` only, so no other
/// kubectl plugin of this machine is found.
pub fn path_with(first: &Path, kubectl: &Path) -> std::ffi::OsString {
    let mut dirs = vec![first.to_path_buf()];
    if let Some(d) = kubectl.parent() {
        dirs.push(d.to_path_buf());
    }
    for d in ["/usr/bin", "/bin"] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    std::env::join_paths(dirs).unwrap()
}

/// Run kubectl with `path` as PATH, a private HOME and no KUBECONFIG unless given in `env`.
pub fn kubectl(
    kubectl: &Path,
    path: &std::ffi::OsStr,
    home: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
) -> Output {
    let mut cmd = Command::new(kubectl);
    cmd.args(args)
        .env("PATH", path)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
