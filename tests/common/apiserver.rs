//! A real kube-apiserver (v1.20.2, built from Debian's `kubernetes` source package) with etcd on free
//! loopback ports, for integration tests: `tests/apiserver/start.sh` does the work, this guard stops it
//! again in `Drop`, even when the test panics. A watchdog started by the script also stops it if this
//! process dies without dropping the guard.
//!
//! When the server cannot be built or started here, [`RealApiServer::start`] returns an error saying
//! why; tests must fail with it, never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The unprivileged user of the throwaway PKI: authenticated, in no group, bound to no role.
pub const USER_NAME: &str = "vmmem-user";
/// The admin user (group `system:masters`).
pub const ADMIN_NAME: &str = "vmmem-admin";

/// A running etcd + kube-apiserver, stopped (by PID) when dropped.
pub struct RealApiServer {
    state: Option<tempfile::TempDir>,
    env: HashMap<String, String>,
    pids: Vec<u32>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apiserver")
        .join(name)
}

fn tail(text: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl RealApiServer {
    /// Build (or take from the cache) kube-apiserver, start etcd and the apiserver with a fresh PKI,
    /// and install the structural KubeVirt CRDs. Takes a few seconds with a cached binary; the first
    /// run on a machine builds it (minutes).
    pub fn start() -> Result<Self> {
        let state = tempfile::Builder::new()
            .prefix("vmmem-apiserver-")
            .tempdir()
            .context("creating the apiserver state dir")?;
        let out = Command::new("bash")
            .arg(script("start.sh"))
            .arg("--watch")
            .arg(std::process::id().to_string())
            .arg(state.path())
            .stdin(Stdio::null())
            .output()
            .context("running tests/apiserver/start.sh")?;
        let mut server = RealApiServer {
            state: Some(state),
            env: HashMap::new(),
            pids: Vec::new(),
        };
        server.pids = server.read_pids(); // whatever was started, so that Drop can check it is gone
        if !out.status.success() {
            bail!(
                "the real kube-apiserver could not be started here ({}):\n{}",
                out.status,
                tail(&out.stderr, 40)
            );
        }
        server.env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for key in ["SERVER", "ADMIN_KUBECONFIG", "USER_KUBECONFIG"] {
            if !server.env.contains_key(key) {
                bail!(
                    "start.sh printed no {key}; stdout:\n{}",
                    tail(&out.stdout, 20)
                );
            }
        }
        Ok(server)
    }

    fn read_pids(&self) -> Vec<u32> {
        let Some(state) = &self.state else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(state.path().join("pids")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect()
    }

    fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// `https://127.0.0.1:PORT`
    pub fn server_url(&self) -> &str {
        self.var("SERVER")
    }

    /// Kubeconfig of the admin (`system:masters`), certificates embedded.
    pub fn admin_kubeconfig(&self) -> &Path {
        Path::new(self.var("ADMIN_KUBECONFIG"))
    }

    /// Kubeconfig of [`USER_NAME`], who may do nothing until a test grants it a role.
    pub fn user_kubeconfig(&self) -> &Path {
        Path::new(self.var("USER_KUBECONFIG"))
    }

    pub fn user_name(&self) -> &str {
        USER_NAME
    }

    /// The CA that signed the serving certificate.
    pub fn ca_file(&self) -> &Path {
        Path::new(self.var("CA_FILE"))
    }

    /// PIDs of every process the script started (etcd, kube-apiserver, watchdog).
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// The apiserver's log so far (for failure messages).
    pub fn apiserver_log(&self) -> String {
        self.state
            .as_ref()
            .and_then(|s| std::fs::read_to_string(s.path().join("apiserver.log")).ok())
            .unwrap_or_default()
    }

    /// A kube-rs config for the admin.
    pub async fn admin_config(&self) -> Result<kube::Config> {
        load_config(self.admin_kubeconfig()).await
    }

    /// A kube-rs config for the unprivileged user.
    pub async fn user_config(&self) -> Result<kube::Config> {
        load_config(self.user_kubeconfig()).await
    }

    /// Stop etcd and the apiserver (by the PIDs start.sh recorded) and remove the state dir.
    /// Idempotent; `Drop` calls it too.
    pub fn stop(&mut self) -> Result<()> {
        let Some(state) = self.state.take() else {
            return Ok(());
        };
        let out = Command::new("bash")
            .arg(script("stop.sh"))
            .arg(state.path())
            .stdin(Stdio::null())
            .output()
            .context("running tests/apiserver/stop.sh")?;
        if !out.status.success() {
            // keep the state dir: its pids file names what is still running
            let kept = state.keep();
            bail!(
                "stop.sh failed ({}), state kept in {}:\n{}",
                out.status,
                kept.display(),
                tail(&out.stderr, 20)
            );
        }
        Ok(())
    }
}

async fn load_config(path: &Path) -> Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    Ok(config)
}

impl Drop for RealApiServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("RealApiServer: {e:#}");
        }
    }
}

/// Is any of `pids` still a live (non-zombie) process?
pub fn live_pids(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    // state is the field after the ")" that closes the command name
                    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
                })
                .unwrap_or(false)
        })
        .collect()
}
