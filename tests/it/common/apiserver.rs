//! A real kube-apiserver (v1.20.2, built from Debian's `kubernetes` source package) with etcd on free
//! loopback ports, for integration tests: `tests/apiserver/start.sh` does the work, this guard stops it
//! again in `Drop`, even when the test panics. A watchdog started by the script also stops it if this
//! process dies without dropping the guard.
//!
//! When the server cannot be built or started here, [`RealApiServer::start`] returns an error saying
//! why; tests must fail with it, never skip.
//!
//! KubeVirt's `subresources.kubevirt.io` API (VM `restart`, …) is served by virt-api through API
//! aggregation. [`RealApiServer::serve_kubevirt_subresources`] registers a test's own axum router as
//! that API server (TLS, through an ExternalName Service to localhost), so requests to it go through
//! the real apiserver's authentication, RBAC and proxy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use kube::api::ApiResource;

/// The unprivileged user of the throwaway PKI: authenticated, in no group, bound to no role.
pub const USER_NAME: &str = "vmmem-user";

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

/// The last `lines` lines of a script's output, for an error message.
pub(crate) fn tail(text: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Run a harness's `start.sh` with a fresh state dir (named `prefix…`) and a watchdog on this
/// process; the state dir and what the script printed.
pub(crate) fn run_start(
    start_script: &Path,
    prefix: &str,
) -> Result<(tempfile::TempDir, std::process::Output)> {
    let state = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a state dir")?;
    let out = Command::new("bash")
        .arg(start_script)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .arg(state.path())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", start_script.display()))?;
    Ok((state, out))
}

/// Run a harness's `stop.sh` on its state dir, which is removed when it succeeds and kept (its
/// pids file names what is still running) when it fails.
pub(crate) fn run_stop(stop_script: &Path, state: tempfile::TempDir) -> Result<()> {
    let out = Command::new("bash")
        .arg(stop_script)
        .arg(state.path())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", stop_script.display()))?;
    if !out.status.success() {
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

/// The `KEY=VALUE` lines a start script printed, with each of `required` present.
pub(crate) fn script_env(stdout: &[u8], required: &[&str]) -> Result<HashMap<String, String>> {
    let env: HashMap<String, String> = String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(key) = required.iter().find(|k| !env.contains_key(**k)) {
        bail!("start.sh printed no {key}; stdout:\n{}", tail(stdout, 20));
    }
    Ok(env)
}

impl RealApiServer {
    /// Build (or take from the cache) kube-apiserver, start etcd and the apiserver with a fresh PKI,
    /// and install the structural KubeVirt CRDs. Takes a few seconds with a cached binary; the first
    /// run on a machine builds it (minutes).
    pub fn start() -> Result<Self> {
        let (state, out) = run_start(&script("start.sh"), "vmmem-apiserver-")?;
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
        server.env = script_env(
            &out.stdout,
            &["SERVER", "ADMIN_KUBECONFIG", "USER_KUBECONFIG"],
        )?;
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

    /// Kubeconfig of the admin (`vmmem-admin`, group `system:masters`), certificates embedded.
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

    /// Serve `router` over TLS on a free loopback port as KubeVirt's aggregated API
    /// `v1.subresources.kubevirt.io` (Service `kubevirt/virt-api`), and wait until the apiserver
    /// reports the APIService Available. The router must answer `GET /apis/subresources.kubevirt.io/v1`
    /// (the apiserver's availability check); see [`subresources_discovery`]. Requests arrive with the
    /// caller's name in `X-Remote-User`. The backend stops when the returned guard is dropped.
    pub async fn serve_kubevirt_subresources(&self, router: axum::Router) -> Result<Backend> {
        let tls = server_tls(
            Path::new(self.var("VIRT_API_CERT")),
            Path::new(self.var("VIRT_API_KEY")),
        )?;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = tcp.local_addr()?.port();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let backend = Backend { task };
        self.register_kubevirt_subresources(port).await?;
        Ok(backend)
    }

    async fn register_kubevirt_subresources(&self, port: u16) -> Result<()> {
        use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
        let client = kube::Client::try_from(self.admin_config().await?)?;
        let ca = std::fs::read(self.ca_file())?;
        let objects = [
            (
                ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
                None,
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "kubevirt"}}),
            ),
            (
                ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
                Some("kubevirt"),
                serde_json::json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "virt-api", "namespace": "kubevirt"},
                    "spec": {"type": "ExternalName", "externalName": "localhost"}}),
            ),
            (
                apiservice_resource(),
                None,
                serde_json::json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": {"name": "v1.subresources.kubevirt.io"},
                    "spec": {"group": "subresources.kubevirt.io", "version": "v1",
                        "groupPriorityMinimum": 1000, "versionPriority": 15,
                        "caBundle": k8s_openapi::ByteString(ca),
                        "service": {"name": "virt-api", "namespace": "kubevirt", "port": port}}}),
            ),
        ];
        for (ar, ns, body) in objects {
            let api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            // create, or merge-patch what exists: server-side apply of an APIService panics in
            // the 1.20 aggregator ("FieldManager must be installed to run apply")
            let name = body["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let object: DynamicObject = serde_json::from_value(body.clone())?;
            match api.create(&PostParams::default(), &object).await {
                Err(kube::Error::Api(s)) if s.is_already_exists() => {
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                        .await
                        .with_context(|| format!("patching {} {name}", ar.kind))?;
                }
                other => {
                    other.with_context(|| format!("creating {} {name}", ar.kind))?;
                }
            }
        }
        // Available, and proxied: the proxy handler is installed apart from the Available condition,
        // and until then requests for the group get a plain "404 page not found".
        let apiservices: Api<DynamicObject> = Api::all_with(client.clone(), &apiservice_resource());
        let mut last = String::new();
        for _ in 0..300 {
            let svc = apiservices.get("v1.subresources.kubevirt.io").await?;
            let conditions = svc.data["status"]["conditions"].as_array().cloned();
            let available = conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c["type"] == "Available");
            if let Some(c) = available {
                last = format!("{}: {}", c["reason"], c["message"]);
                if c["status"] == "True" {
                    let discovery =
                        http::Request::get("/apis/subresources.kubevirt.io/v1").body(Vec::new())?;
                    match client.request_text(discovery).await {
                        Ok(_) => return Ok(()),
                        Err(e) => last = format!("Available, but discovery through it: {e}"),
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        bail!("APIService v1.subresources.kubevirt.io not served after 30 s: {last}")
    }

    /// PIDs of every process the script started (etcd, kube-apiserver, watchdog).
    pub fn pids(&self) -> &[u32] {
        &self.pids
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
        match self.state.take() {
            Some(state) => run_stop(&script("stop.sh"), state),
            None => Ok(()),
        }
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

/// A TLS server standing in for an aggregated API server; stops when dropped.
pub struct Backend {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The discovery document virt-api serves for `subresources.kubevirt.io/v1` (the part tests need).
pub fn subresources_discovery() -> serde_json::Value {
    let sub = |name: &str, kind: &str, verbs: &[&str]| {
        serde_json::json!({"name": name, "singularName": "", "namespaced": true, "kind": kind,
            "verbs": verbs})
    };
    serde_json::json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "subresources.kubevirt.io/v1",
        "resources": [
            sub("virtualmachines/restart", "VirtualMachine", &["update"]),
            sub("virtualmachines/start", "VirtualMachine", &["update"]),
            sub("virtualmachines/stop", "VirtualMachine", &["update"]),
            sub("virtualmachineinstances/console", "VirtualMachineInstance", &["get"]),
        ]
    })
}

fn apiservice_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService"),
        "apiservices",
    )
}

fn server_tls(
    cert: &Path,
    key: &Path,
) -> Result<std::sync::Arc<tokio_rustls::rustls::ServerConfig>> {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(std::sync::Arc::new(config))
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
