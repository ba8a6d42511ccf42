//! Talking to Prometheus (issue 20): at a URL the user gives (`--prometheus`, TLS verified unless
//! told otherwise, with `--prometheus-token` or the kubeconfig user's credentials), or through
//! the API server's service proxy to a well-known monitoring service (the kube client's TLS and
//! credentials then carry the request to the API server). Answers are read up to
//! [`MAX_ANSWER_BYTES`] and every failure is one sentence that says which credential or which
//! permission was refused.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;

use super::connect::{may_carry_credentials, root_cause, timed_out, Connection};
use super::token::Token;
use crate::model::prom_query::{Series, Window};
use crate::parse::prometheus::{series, AnswerError, MAX_ANSWER_BYTES};

/// A monitoring service a distribution installs, reached through the API server's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownService {
    pub namespace: &'static str,
    pub name: &'static str,
    pub scheme: &'static str,
    pub port: u16,
    /// Whose it is, in words.
    pub product: &'static str,
}

impl KnownService {
    /// The proxy path's service part: `https:thanos-querier:9091`.
    fn proxy_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{}:{}:{}/proxy",
            self.namespace, self.scheme, self.name, self.port
        )
    }

    /// `monitoring/prometheus-k8s:9090`.
    pub fn words(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// The services looked for, in order. Harvester ships Rancher's monitoring chart
/// (rancher-monitoring, a kube-prometheus-stack): `rancher-monitoring-prometheus` in
/// `cattle-monitoring-system`, port 9090. OpenShift's cluster monitoring: `thanos-querier` in
/// `openshift-monitoring`, port 9091 `web` over https (behind kube-rbac-proxy, which wants a
/// bearer token the API server's proxy does not pass on: use `--prometheus` with its route
/// there). kube-prometheus: `prometheus-k8s` in `monitoring`, port 9090 `web`. The Prometheus
/// operator (kube-prometheus-stack too) makes `prometheus-operated` (port 9090 `web`) in the
/// namespace of each Prometheus; `monitoring` is the usual one.
pub const WELL_KNOWN: [KnownService; 4] = [
    KnownService {
        namespace: "cattle-monitoring-system",
        name: "rancher-monitoring-prometheus",
        scheme: "http",
        port: 9090,
        product: "Harvester/Rancher monitoring",
    },
    KnownService {
        namespace: "openshift-monitoring",
        name: "thanos-querier",
        scheme: "https",
        port: 9091,
        product: "OpenShift cluster monitoring",
    },
    KnownService {
        namespace: "monitoring",
        name: "prometheus-k8s",
        scheme: "http",
        port: 9090,
        product: "kube-prometheus",
    },
    KnownService {
        namespace: "monitoring",
        name: "prometheus-operated",
        scheme: "http",
        port: 9090,
        product: "the Prometheus operator (kube-prometheus-stack)",
    },
];

/// How the user asked to reach Prometheus.
#[derive(Debug, Clone, Default)]
pub struct PromFlags {
    /// `--prometheus URL`; `None`: look for a well-known service.
    pub url: Option<String>,
    /// `--prometheus-token` (or `VMMEM_PROMETHEUS_TOKEN`).
    pub token: Option<Token>,
    /// `--prometheus-insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// `--prometheus-until` (Unix seconds): the window's end; `None`: now.
    pub until: Option<i64>,
}

/// Which credential went with the requests, for the sentence of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    Flag,
    Kubeconfig,
    None,
    /// Through the API server: the kube client's own, which the proxy does not pass on.
    Proxy,
}

/// A failure to get an answer from Prometheus, as a sentence.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("--prometheus {0:?} is not a URL like https://prometheus.example:9090")]
    BadUrl(String),
    #[error("refusing to send --prometheus-token in clear text to {0}: plain http is only used for this machine (127.0.0.1, ::1, localhost); use https://")]
    PlainHttpToken(String),
    #[error("cannot build a client for Prometheus at {url}: {reason}")]
    Client { url: String, reason: String },
    #[error("cannot reach Prometheus at {at}: {reason}")]
    Unreachable { at: String, reason: String },
    #[error("Prometheus at {at} did not answer within {seconds} s")]
    Timeout { at: String, seconds: u64 },
    #[error("Prometheus at {at} refused {credential} (401 Unauthorized)")]
    Unauthorized { at: String, credential: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("Prometheus at {at} refused the query ({status}): {answer}")]
    Refused {
        at: String,
        status: u16,
        answer: AnswerError,
    },
    #[error("{at} answered {status}: {body}")]
    Http {
        at: String,
        status: u16,
        body: String,
    },
}

impl PromError {
    /// Whether a coarser step may get an answer (too many points, or too large an answer).
    pub fn too_many_points(&self) -> bool {
        matches!(self, PromError::Refused { answer, .. } if answer.too_many_points())
    }
}

/// A client for one Prometheus.
#[derive(Clone)]
pub struct PromClient {
    client: kube::Client,
    /// Prepended to `/api/v1/...` (the service proxy's path; empty for a URL).
    path: String,
    /// Where the answers come from, in words (`monitoring/prometheus-k8s:9090 via the API
    /// server`, or the URL).
    pub source: String,
    service: Option<KnownService>,
    credential: Credential,
    timeout: Duration,
}

/// Each query waits at most this long unless `--request-timeout` says otherwise.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

impl PromClient {
    /// A client for `--prometheus URL`: TLS verified with the system's roots (not the cluster's
    /// CA) unless `--prometheus-insecure-skip-tls-verify`; `--prometheus-token`, else the
    /// kubeconfig user's credentials (only over https or to this machine; over plain http to
    /// another host none are sent).
    pub fn direct(
        flags: &PromFlags,
        url: &str,
        conn: Option<&Connection>,
    ) -> Result<PromClient, PromError> {
        let uri = url
            .trim_end_matches('/')
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
            .ok_or_else(|| PromError::BadUrl(url.to_string()))?;
        let mut cfg = match conn {
            Some(c) if flags.token.is_none() => c.config.clone(),
            _ => kube::Config::new(uri.clone()),
        };
        cfg.cluster_url = uri.clone();
        cfg.root_cert = None;
        cfg.root_cert_file = None;
        cfg.tls_server_name = None;
        cfg.accept_invalid_certs = flags.insecure_skip_tls_verify;
        cfg.auth_info.impersonate = None;
        cfg.auth_info.impersonate_groups = None;
        let safe = may_carry_credentials(&uri);
        let credential = match &flags.token {
            Some(_) if !safe => return Err(PromError::PlainHttpToken(url.to_string())),
            Some(t) => {
                cfg.auth_info = kube::config::AuthInfo {
                    token: Some(secrecy::SecretString::from(t.expose())),
                    ..Default::default()
                };
                Credential::Flag
            }
            None if conn.is_some() && safe => Credential::Kubeconfig,
            None => {
                cfg.auth_info = kube::config::AuthInfo::default();
                Credential::None
            }
        };
        let client = super::retry::client_with_retry(&cfg).map_err(|e| PromError::Client {
            url: url.to_string(),
            reason: super::connect::first_lines(&e),
        })?;
        let timeout = conn
            .and_then(|c| c.request_timeout)
            .unwrap_or(QUERY_TIMEOUT);
        Ok(PromClient {
            client,
            path: String::new(),
            source: url.trim_end_matches('/').to_string(),
            service: None,
            credential,
            timeout,
        })
    }

    /// A client for `service` through the API server's service proxy.
    pub fn through_proxy(conn: &Connection, service: KnownService) -> PromClient {
        PromClient {
            client: conn.client.clone(),
            path: service.proxy_path(),
            source: format!("{} via the API server", service.words()),
            service: Some(service),
            credential: Credential::Proxy,
            timeout: conn.request_timeout.unwrap_or(QUERY_TIMEOUT),
        }
    }

    /// `query_range` of `query` over `window`.
    pub async fn query_range(
        &self,
        query: &str,
        window: &Window,
    ) -> Result<Vec<Series>, PromError> {
        let qs = form(&[
            ("query", query),
            ("start", &window.start.to_string()),
            ("end", &window.end.to_string()),
            ("step", &window.step.to_string()),
        ]);
        let uri = format!("{}/api/v1/query_range?{qs}", self.path);
        let req = Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(|e| PromError::Client {
                url: self.source.clone(),
                reason: e.to_string(),
            })?;
        let call = async {
            let resp = self
                .client
                .send(req)
                .await
                .map_err(|e| self.send_error(&e))?;
            let status = resp.status();
            let body = read_capped(resp.into_body()).await;
            Ok::<_, PromError>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r?,
            Err(_) => return Err(self.timeout_error()),
        };
        let body = match body {
            Ok(b) => b,
            Err(Read::TooLarge) => return Err(self.refused(status, AnswerError::TooLarge)),
            Err(Read::Failed(e)) => return Err(self.send_error(&e)),
        };
        self.answer(status, &body)
    }

    fn timeout_error(&self) -> PromError {
        PromError::Timeout {
            at: self.source.clone(),
            seconds: self.timeout.as_secs(),
        }
    }

    fn send_error(&self, e: &kube::Error) -> PromError {
        if timed_out(e) {
            return self.timeout_error();
        }
        PromError::Unreachable {
            at: self.source.clone(),
            reason: root_cause(e),
        }
    }

    fn refused(&self, status: StatusCode, answer: AnswerError) -> PromError {
        PromError::Refused {
            at: self.source.clone(),
            status: status.as_u16(),
            answer,
        }
    }

    /// The series of a successful answer, else the failure in words.
    fn answer(&self, status: StatusCode, body: &[u8]) -> Result<Vec<Series>, PromError> {
        match status {
            StatusCode::UNAUTHORIZED => return Err(self.unauthorized()),
            StatusCode::FORBIDDEN => return Err(self.forbidden(body)),
            _ => {}
        }
        if !status.is_success() {
            return Err(match series(body) {
                Err(a @ AnswerError::Refused { .. }) => self.refused(status, a),
                _ => PromError::Http {
                    at: self.source.clone(),
                    status: status.as_u16(),
                    body: first_line(body),
                },
            });
        }
        series(body).map_err(|a| self.refused(status, a))
    }

    fn unauthorized(&self) -> PromError {
        let credential = match self.credential {
            Credential::Flag => "the --prometheus-token".to_string(),
            Credential::Kubeconfig => "the kubeconfig user's credentials (pass --prometheus-token if it wants another)".to_string(),
            Credential::None => "a request without credentials (pass --prometheus-token or set VMMEM_PROMETHEUS_TOKEN)".to_string(),
            Credential::Proxy => "the request from the API server's service proxy, which does not pass your credentials on (OpenShift's thanos-querier wants a token: use --prometheus with its route's URL and --prometheus-token)".to_string(),
        };
        PromError::Unauthorized {
            at: self.source.clone(),
            credential,
        }
    }

    /// A 403: from the API server (RBAC: `get` on `services/proxy`), else from Prometheus.
    fn forbidden(&self, body: &[u8]) -> PromError {
        let kube_status = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(|v| v["kind"] == "Status");
        match (self.service, kube_status) {
            (Some(svc), Some(status)) => PromError::Forbidden(format!(
                "the API server refused the service proxy to {}: your user may not get services/proxy in namespace {} (RBAC: get on services/proxy){}",
                svc.words(),
                svc.namespace,
                status["message"].as_str().map(|m| format!("; it said: {m}")).unwrap_or_default()
            )),
            _ => PromError::Forbidden(format!(
                "Prometheus at {} answered 403 Forbidden to {}: that user may not query it",
                self.source,
                match self.credential {
                    Credential::Flag => "the --prometheus-token",
                    Credential::Kubeconfig => "the kubeconfig user",
                    Credential::None => "a request without credentials",
                    Credential::Proxy => "the API server's service proxy",
                }
            )),
        }
    }
}

/// The first line of a body, short, for a sentence.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.lines().next().unwrap_or_default().trim().to_string()
}

enum Read {
    TooLarge,
    Failed(kube::Error),
}

/// The body, up to [`MAX_ANSWER_BYTES`] (reading stops there).
async fn read_capped(mut body: Body) -> Result<Vec<u8>, Read> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Read::Failed)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_ANSWER_BYTES {
                return Err(Read::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// `application/x-www-form-urlencoded` pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut o = String::with_capacity(s.len() * 3);
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    o.push(b as char)
                }
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Why a well-known service could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    NotThere,
    /// 403 on `get services`.
    Forbidden,
    Failed(String),
}

/// The first well-known monitoring service the user may see, else what each lookup said, as one
/// sentence.
pub async fn discover(conn: &Connection) -> Result<KnownService, String> {
    let mut said = Vec::new();
    for svc in WELL_KNOWN {
        let req = Request::get(format!(
            "/api/v1/namespaces/{}/services/{}",
            svc.namespace, svc.name
        ))
        .body(Body::empty());
        let Ok(req) = req else { continue };
        let call = conn.client.send(req);
        let timeout = conn.request_timeout.unwrap_or(QUERY_TIMEOUT);
        let outcome = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(r)) if r.status().is_success() => return Ok(svc),
            Ok(Ok(r)) if r.status() == StatusCode::NOT_FOUND => Missing::NotThere,
            Ok(Ok(r)) if r.status() == StatusCode::FORBIDDEN => Missing::Forbidden,
            Ok(Ok(r)) => Missing::Failed(format!("answered {}", r.status())),
            Ok(Err(e)) => Missing::Failed(root_cause(&e)),
            Err(_) => Missing::Failed("no answer in time".into()),
        };
        said.push((svc, outcome));
    }
    Err(not_found_sentence(&said))
}

/// `no Prometheus found: cattle-monitoring-system/rancher-monitoring-prometheus:9090 (Harvester/Rancher
/// monitoring) is not there, …; your user may not get services in openshift-monitoring (RBAC: get
/// on services), …`.
pub fn not_found_sentence(said: &[(KnownService, Missing)]) -> String {
    let parts: Vec<String> = said
        .iter()
        .map(|(s, m)| match m {
            Missing::NotThere => format!("{} ({}) is not there", s.words(), s.product),
            Missing::Forbidden => format!(
                "{} ({}) could not be looked up: your user may not get services in namespace {} (RBAC: get on services)",
                s.words(),
                s.product,
                s.namespace
            ),
            Missing::Failed(why) => format!("{} ({}) could not be looked up: {why}", s.words(), s.product),
        })
        .collect();
    format!(
        "no history from Prometheus: no well-known monitoring service could be used ({}); pass --prometheus URL",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_and_forms() {
        assert_eq!(
            WELL_KNOWN[1].proxy_path(),
            "/api/v1/namespaces/openshift-monitoring/services/https:thanos-querier:9091/proxy"
        );
        assert_eq!(
            form(&[("query", "max by (a) (x{b=\"c\"}[5m])"), ("step", "60")]),
            "query=max%20by%20%28a%29%20%28x%7Bb%3D%22c%22%7D%5B5m%5D%29&step=60"
        );
        let s = not_found_sentence(&[
            (WELL_KNOWN[0], Missing::NotThere),
            (WELL_KNOWN[2], Missing::Forbidden),
        ]);
        assert!(s.contains("cattle-monitoring-system/rancher-monitoring-prometheus:9090 (Harvester/Rancher monitoring) is not there"), "{s}");
        assert!(
            s.contains("may not get services in namespace monitoring (RBAC: get on services)"),
            "{s}"
        );
    }

    #[test]
    fn tokens_go_only_over_https_or_to_this_machine() {
        let flags = PromFlags {
            token: Some(Token::from("t")),
            ..PromFlags::default()
        };
        let e = PromClient::direct(&flags, "http://prom.example:9090", None)
            .err()
            .unwrap();
        assert!(matches!(e, PromError::PlainHttpToken(_)), "{e}");
        assert!(matches!(
            PromClient::direct(&flags, "ftp://x", None).err().unwrap(),
            PromError::BadUrl(_)
        ));
    }
}
