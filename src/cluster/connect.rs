//! A kube-rs client from kubectl's connection flags, with kubectl's rules: `--kubeconfig` >
//! `KUBECONFIG` (a `:`-list, merged, missing files skipped) > `~/.kube/config` > in-cluster;
//! `--context/--cluster/--user`, `--server`, `--token`, `--as/--as-group`,
//! `--insecure-skip-tls-verify` and `--request-timeout` override the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::token::Token;
use crate::parse::duration;

/// kubectl's connection flags, already parsed.
#[derive(Debug, Clone, Default)]
pub struct ConnectFlags {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub as_user: Option<String>,
    pub as_groups: Vec<String>,
    pub server: Option<String>,
    pub token: Option<Token>,
    pub insecure_skip_tls_verify: bool,
    /// `--certificate-authority`: a PEM file whose certificates replace the kubeconfig's CA.
    pub certificate_authority: Option<PathBuf>,
    /// `None` waits as long as the server takes (kubectl's `0`).
    pub request_timeout: Option<Duration>,
}

/// The process environment the kubeconfig rules read (a value, so tests need not touch env vars).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub kubeconfig: Option<OsString>,
    pub home: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST` is set: we run in a pod.
    pub in_cluster: bool,
}

impl Env {
    pub fn from_process() -> Env {
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from);
        Env {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home,
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        }
    }
}

/// Why no client could be built or the server could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no kubeconfig found (looked at {looked}) and not running inside a cluster; pass --kubeconfig FILE, set KUBECONFIG, or use --demo")]
    NoKubeconfig { looked: String },
    #[error("cannot read kubeconfig {path}: {reason}")]
    ReadKubeconfig { path: String, reason: String },
    #[error("context {name:?} is not in the kubeconfig (it has: {known})")]
    UnknownContext { name: String, known: String },
    #[error("the kubeconfig names no current context; pass --context (it has: {known})")]
    NoCurrentContext { known: String },
    #[error("cluster {name:?} is not in the kubeconfig (it has: {known})")]
    UnknownCluster { name: String, known: String },
    #[error("{} is not usable: {reason}", files.as_deref().map_or("the kubeconfig".to_string(), |f| format!("kubeconfig {f}")))]
    Kubeconfig {
        /// The files it was read from (`None` for one built in memory, e.g. `--demo`).
        files: Option<String>,
        reason: String,
    },
    #[error("in-cluster configuration: {0}")]
    InCluster(String),
    #[error("--server {0:?} is not a URL like https://10.0.0.1:6443")]
    BadServer(String),
    #[error("--certificate-authority {path}: {reason}")]
    CertificateAuthority { path: String, reason: String },
    #[error("refusing to send credentials in clear text to {server}: plain http is only used for this machine (127.0.0.1, ::1, localhost); use https://")]
    PlainHttpCredentials { server: String },
    #[error("cannot build a client for {server}: {reason}")]
    Client { server: String, reason: String },
    #[error("cannot reach the Kubernetes API server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error(
        "the Kubernetes API server at {server} did not answer within {timeout} (--request-timeout)"
    )]
    Timeout { server: String, timeout: String },
    #[error("the Kubernetes API server at {server} refused the request: {message}")]
    Refused { server: String, message: String },
}

/// A client plus what the user should see about where it points.
#[derive(Clone)]
pub struct Connection {
    /// For one-shot requests: each waits at most the request timeout.
    pub client: kube::Client,
    /// The settings the client was built from (watches need their own client without a read timeout).
    pub config: kube::Config,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub server: String,
    /// The context's namespace, else `default`.
    pub default_namespace: String,
    pub request_timeout: Option<Duration>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("context", &self.context)
            .field("cluster", &self.cluster)
            .field("server", &self.server)
            .field("default_namespace", &self.default_namespace)
            .finish()
    }
}

impl Connection {
    /// A client for watches: long-lived responses must not hit the per-request read timeout
    /// (kube-rs watchers detect dead connections themselves).
    pub fn watch_client(&self) -> Result<kube::Client, ConnectError> {
        let mut cfg = self.config.clone();
        cfg.read_timeout = None;
        cfg.reset_reader_on_write = false;
        client_for(&cfg, &self.server)
    }

    /// Ask the server its version: proves it answers (within the request timeout) and that the
    /// credentials are accepted.
    pub async fn check_reachable(&self) -> Result<(), ConnectError> {
        let call = self.client.apiserver_version();
        let result = match self.request_timeout {
            Some(t) => match tokio::time::timeout(t, call).await {
                Ok(r) => r,
                Err(_) => return Err(self.timeout_error()),
            },
            None => call.await,
        };
        result.map(|_| ()).map_err(|e| self.request_error(&e))
    }

    pub fn timeout_error(&self) -> ConnectError {
        ConnectError::Timeout {
            server: self.server.clone(),
            timeout: self
                .request_timeout
                .map_or_else(|| "the default time".to_string(), duration::format),
        }
    }

    /// A failed request as one of our sentences.
    pub fn request_error(&self, e: &kube::Error) -> ConnectError {
        if let Some(sentence) = super::retry::throttled_sentence(e) {
            return ConnectError::Refused {
                server: self.server.clone(),
                message: sentence,
            };
        }
        match e {
            kube::Error::Api(s) => ConnectError::Refused {
                server: self.server.clone(),
                message: if s.message.is_empty() {
                    format!("{} {}", s.code, s.reason)
                } else {
                    s.message.clone()
                },
            },
            other if timed_out(other) => self.timeout_error(),
            other => ConnectError::Unreachable {
                server: self.server.clone(),
                reason: root_cause(other),
            },
        }
    }
}

/// Whether an error or any error under it is a timeout, by type: an I/O error of kind
/// `TimedOut` (the client's connect, read and write timeouts, the system's ETIMEDOUT), tokio's
/// `Elapsed`, or hyper's own timeout.
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tokio::time::error::Elapsed>()
            || matches!(err.downcast_ref::<kube::Error>(), Some(kube::Error::HyperError(h)) if h.is_timeout())
        {
            return true;
        }
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::TimedOut => return true,
            // An I/O error's `source` skips the error it wraps: look at that one too.
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => std::error::Error::source(io),
            },
            None => err.source(),
        };
    }
    false
}

/// The innermost error message (e.g. "Connection refused (os error 111)").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A kubeconfig error as one line: the YAML parser's error comes with a multi-line source
/// snippet, and a read error repeats the path we name already.
pub fn kubeconfig_reason(e: &KubeconfigError) -> String {
    match e {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => first_lines(other),
    }
}

/// An error and its causes, each cause's first line once: "a: b: c".
pub fn first_lines(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let line = err
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if !line.is_empty() && !parts.iter().any(|p| p.contains(&line)) {
            parts.push(line);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// The kubeconfig files to read, in precedence order, and how to describe where we looked.
pub fn kubeconfig_paths(
    flag: Option<&Path>,
    env: &Env,
) -> Result<(Vec<PathBuf>, String), ConnectError> {
    if let Some(p) = flag {
        // An explicit file must exist (kubectl fails too).
        return Ok((vec![p.to_path_buf()], p.display().to_string()));
    }
    if let Some(list) = env.kubeconfig.as_ref().filter(|v| !v.is_empty()) {
        // Like client-go: empty entries and repeats are dropped (the first stays), and files
        // that do not exist are skipped.
        let mut all: Vec<PathBuf> = Vec::new();
        for p in std::env::split_paths(list) {
            if !p.as_os_str().is_empty() && !all.contains(&p) {
                all.push(p);
            }
        }
        let looked = if all.is_empty() {
            format!(
                "KUBECONFIG={:?}, which names no file",
                list.to_string_lossy()
            )
        } else {
            format!(
                "KUBECONFIG={}",
                all.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )
        };
        return Ok((all.into_iter().filter(|p| p.exists()).collect(), looked));
    }
    match &env.home {
        Some(home) => {
            let p = home.join(".kube").join("config");
            let looked = p.display().to_string();
            Ok((if p.exists() { vec![p] } else { vec![] }, looked))
        }
        None => Ok((vec![], "$HOME/.kube/config ($HOME is not set)".to_string())),
    }
}

/// Read and merge kubeconfig files (the first file to set a value wins).
pub fn read_merged(paths: &[PathBuf]) -> Result<Kubeconfig, ConnectError> {
    let mut merged = Kubeconfig::default();
    for p in paths {
        let read_error = |e: KubeconfigError| ConnectError::ReadKubeconfig {
            path: p.display().to_string(),
            reason: kubeconfig_reason(&e),
        };
        let kc = Kubeconfig::read_from(p).map_err(read_error)?;
        merged = merged.merge(kc).map_err(read_error)?;
    }
    Ok(merged)
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// Connect with the process environment.
pub async fn connect(flags: &ConnectFlags) -> Result<Connection, ConnectError> {
    connect_with_env(flags, &Env::from_process()).await
}

/// Build the client the flags and environment describe (no request is made).
pub async fn connect_with_env(flags: &ConnectFlags, env: &Env) -> Result<Connection, ConnectError> {
    let (paths, looked) = kubeconfig_paths(flags.kubeconfig.as_deref(), env)?;
    if !paths.is_empty() {
        let kc = read_merged(&paths)?;
        return from_kubeconfig(kc, flags).await.map_err(|e| match e {
            ConnectError::Kubeconfig {
                files: None,
                reason,
            } => ConnectError::Kubeconfig {
                files: Some(
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
                reason,
            },
            other => other,
        });
    }
    if env.in_cluster {
        let cfg = kube::Config::incluster().map_err(|e| ConnectError::InCluster(e.to_string()))?;
        return finish(cfg, flags, None, None);
    }
    if let Some(server) = &flags.server {
        // kubectl works from flags alone: --server (and --token) without any kubeconfig.
        let url = server
            .parse::<http::Uri>()
            .map_err(|_| ConnectError::BadServer(server.clone()))?;
        return finish(kube::Config::new(url), flags, None, None);
    }
    Err(ConnectError::NoKubeconfig { looked })
}

/// Build a connection from an already loaded kubeconfig (also used by `--demo`).
pub async fn from_kubeconfig(
    kc: Kubeconfig,
    flags: &ConnectFlags,
) -> Result<Connection, ConnectError> {
    let contexts = || names(kc.contexts.iter().map(|c| &c.name));
    let context_name = match flags.context.as_ref().or(kc.current_context.as_ref()) {
        Some(n) => n.clone(),
        None => return Err(ConnectError::NoCurrentContext { known: contexts() }),
    };
    let Some(context) = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
    else {
        return Err(ConnectError::UnknownContext {
            name: context_name,
            known: contexts(),
        });
    };
    let cluster_name = flags
        .cluster
        .clone()
        .unwrap_or_else(|| context.cluster.clone());
    let cluster_known = kc.clusters.iter().any(|c| c.name == cluster_name);
    if !cluster_known && flags.server.is_none() {
        return Err(ConnectError::UnknownCluster {
            name: cluster_name,
            known: names(kc.clusters.iter().map(|c| &c.name)),
        });
    }
    let mut kc = kc;
    if !cluster_known {
        // --server supplies the address of a cluster the file does not have.
        kc.clusters.push(kube::config::NamedCluster {
            name: cluster_name.clone(),
            cluster: Some(kube::config::Cluster {
                server: flags.server.clone(),
                ..Default::default()
            }),
            other: Default::default(),
        });
    }
    let options = KubeConfigOptions {
        context: Some(context_name.clone()),
        cluster: flags.cluster.clone(),
        user: flags.user.clone(),
    };
    let cfg = match kube::Config::from_custom_kubeconfig(kc, &options).await {
        Ok(c) => c,
        Err(KubeconfigError::MissingClusterUrl) if flags.server.is_some() => {
            return Err(ConnectError::BadServer(
                flags.server.clone().unwrap_or_default(),
            ))
        }
        Err(e) => {
            return Err(ConnectError::Kubeconfig {
                files: None,
                reason: kubeconfig_reason(&e),
            })
        }
    };
    finish(cfg, flags, Some(context_name), Some(cluster_name))
}

/// The certificates (DER) of a PEM file given with `--certificate-authority`.
fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, ConnectError> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let bad = |reason: String| ConnectError::CertificateAuthority {
        path: crate::escape::escape(&path.display().to_string()).into_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".to_string()));
    }
    if meta.len() > CA_FILE_LIMIT {
        return Err(bad(format!(
            "{} bytes is too large for a CA certificate file",
            meta.len()
        )));
    }
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".to_string()));
    }
    Ok(certs)
}

/// A CA bundle larger than this is not one (the system's whole bundle is about 200 KiB).
const CA_FILE_LIMIT: u64 = 4 << 20;

/// Apply the override flags and build the client.
fn finish(
    mut cfg: kube::Config,
    flags: &ConnectFlags,
    context: Option<String>,
    cluster: Option<String>,
) -> Result<Connection, ConnectError> {
    if let Some(server) = &flags.server {
        cfg.cluster_url = server
            .parse::<http::Uri>()
            .map_err(|_| ConnectError::BadServer(server.clone()))?;
    }
    if let Some(token) = &flags.token {
        let a = &mut cfg.auth_info;
        a.token = Some(secrecy::SecretString::from(token.expose()));
        a.token_file = None;
        a.exec = None;
        a.auth_provider = None;
        a.username = None;
        a.password = None;
    }
    if let Some(path) = &flags.certificate_authority {
        cfg.root_cert = Some(read_ca_file(path)?);
    }
    if flags.insecure_skip_tls_verify {
        cfg.accept_invalid_certs = true;
        cfg.root_cert = None;
    }
    if let Some(user) = &flags.as_user {
        cfg.auth_info.impersonate = Some(user.clone());
    }
    if !flags.as_groups.is_empty() {
        cfg.auth_info.impersonate_groups = Some(flags.as_groups.clone());
    }
    if let Some(t) = flags.request_timeout {
        cfg.connect_timeout = Some(t);
        cfg.read_timeout = Some(t);
        cfg.write_timeout = Some(t);
        cfg.reset_reader_on_write = true;
    }
    let server = cfg
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    if sends_credentials(&cfg) && !may_carry_credentials(&cfg.cluster_url) {
        return Err(ConnectError::PlainHttpCredentials { server });
    }
    let client = client_for(&cfg, &server)?;
    Ok(Connection {
        client,
        default_namespace: cfg.default_namespace.clone(),
        config: cfg,
        context,
        cluster,
        server,
        request_timeout: flags.request_timeout,
    })
}

/// Whether requests made with `cfg` carry a secret in their headers (a bearer token, a token
/// file, or a password). Client certificates and exec plugins' tokens over http are covered too:
/// an exec plugin's token goes into the same header.
fn sends_credentials(cfg: &kube::Config) -> bool {
    let a = &cfg.auth_info;
    a.token.is_some()
        || a.token_file.is_some()
        || a.password.is_some()
        || a.exec.is_some()
        || a.auth_provider.is_some()
}

/// Whether a request to `url` may carry credentials: https, or plain http to a loopback address
/// (a local proxy or test server; nothing leaves the machine).
pub fn may_carry_credentials(url: &http::Uri) -> bool {
    if url.scheme_str() != Some("http") {
        return true;
    }
    let host = url.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The client for `cfg`: throttled requests (429, 503) are retried with bounded backoff.
fn client_for(cfg: &kube::Config, server: &str) -> Result<kube::Client, ConnectError> {
    super::retry::client_with_retry(cfg).map_err(|e| ConnectError::Client {
        server: server.to_string(),
        // The whole chain: the root cause alone ("Invalid symbol 37") does not say what is bad.
        reason: first_lines(&e),
    })
}

#[cfg(test)]
mod tests;
