//! A real single-node Kubernetes for integration tests: etcd, kube-apiserver, containerd + runc and a
//! kubelet v1.20.2 inside a network namespace the harness creates (`tests/node/start.sh` does the
//! work; its header says what it changes on the host and `tests/node/stop.sh` undoes it). This guard
//! stops it again in `Drop`, even when the test panics; a watchdog started by the script also stops it
//! if this process dies without dropping the guard.
//!
//! When the node cannot be built or started here, [`RealNode::start`] returns an error saying why;
//! tests must fail with it, never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::apiserver::{run_start, run_stop, script_env, tail};

/// A running node (and its control plane), stopped (by PID) when dropped.
pub struct RealNode {
    state: Option<tempfile::TempDir>,
    env: HashMap<String, String>,
    /// Held until the node is stopped: kubelets share the host's `/kubepods`, so only one real node
    /// runs on a machine at a time (other tests, or other checkouts, wait here).
    _host_lock: HostLock,
}

/// An exclusive `flock` on a file in the system's temp dir, released when dropped (or when the process
/// dies: the kernel drops it with the descriptor).
struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    fn take() -> Result<Self> {
        use std::os::unix::io::AsRawFd;
        let path = std::env::temp_dir().join("kubectl-vmmem-real-node.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor this File owns; blocks until no other holder is left.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "locking {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(HostLock { _file: file })
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/node")
        .join(name)
}

impl RealNode {
    /// Build (or take from the cache) the apiserver and the kubelet, build the local images, start
    /// everything and wait until the node is Ready (about 20 s with cached binaries). Waits first while another real node
    /// runs on this machine.
    pub fn start() -> Result<Self> {
        let host_lock = HostLock::take()?;
        let (state, out) = run_start(&script("start.sh"), "vmmem-node-")?;
        let mut node = RealNode {
            state: Some(state),
            env: HashMap::new(),
            _host_lock: host_lock,
        };
        if !out.status.success() {
            bail!(
                "the real node could not be started here ({}):\n{}",
                out.status,
                tail(&out.stderr, 60)
            );
        }
        let required = [
            "SERVER",
            "ADMIN_KUBECONFIG",
            "NODE_NAME",
            "NODE_IP",
            "IMAGE",
        ];
        node.env = script_env(&out.stdout, &required)?;
        Ok(node)
    }

    fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// Kubeconfig of the admin (group `system:masters`), certificates embedded.
    pub fn admin_kubeconfig(&self) -> &Path {
        Path::new(self.var("ADMIN_KUBECONFIG"))
    }

    /// Kubeconfig of a user in no group, bound to no role until a test grants one.
    pub fn user_kubeconfig(&self) -> &Path {
        Path::new(self.var("USER_KUBECONFIG"))
    }

    /// The node's name (as registered by the kubelet).
    pub fn name(&self) -> &str {
        self.var("NODE_NAME")
    }

    /// The node's address (the kubelet listens on it, port 10250), reached from the host.
    pub fn node_ip(&self) -> &str {
        self.var("NODE_IP")
    }

    /// The CA that signed the apiserver's and the admin's certificates (`admin.crt`, `admin.key`
    /// beside it: the kubelet trusts this CA for client certificates).
    pub fn ca_file(&self) -> &Path {
        Path::new(self.var("CA_FILE"))
    }

    /// The busybox image with the fake launcher processes, already on the node (pull policy Never).
    pub fn image(&self) -> &str {
        self.var("IMAGE")
    }

    /// The kubelet's log, for a failing test's message.
    pub fn kubelet_log_tail(&self, lines: usize) -> String {
        let Some(state) = &self.state else {
            return String::new();
        };
        let text = std::fs::read(state.path().join("kubelet.log")).unwrap_or_default();
        tail(&text, lines)
    }

    /// Run `kubectl` as the admin; its stdout, or an error with its stderr.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl apply -f -` of `manifest` (YAML or JSON) as the admin.
    pub fn apply(&self, manifest: &str) -> Result<String> {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl apply")?;
        child
            .stdin
            .take()
            .context("kubectl's stdin")?
            .write_all(manifest.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl apply failed: {}\n{manifest}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stop everything (by the PIDs start.sh recorded), undo the host changes and remove the state
    /// dir. Idempotent; `Drop` calls it too.
    pub fn stop(&mut self) -> Result<()> {
        match self.state.take() {
            Some(state) => run_stop(&script("stop.sh"), state),
            None => Ok(()),
        }
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("RealNode: {e:#}");
        }
    }
}
