//! A proxy on 127.0.0.1 in front of the simulator's HTTPS API that can hold a request (the first
//! whose bytes contain a pattern) until the test decides to forward or drop it: a deterministic
//! "the request is in flight" moment to kill the client at. It ends the client's TLS with the
//! simulator's own certificate (so the simulator's kubeconfig works against it) and talks TLS to
//! the simulator, reading the plain requests in between.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Default)]
struct State {
    pattern: Mutex<Option<String>>,
    held: AtomicUsize,
    /// `Some(true)`: forward held requests; `Some(false)`: drop them (close both sides).
    verdict: Mutex<Option<bool>>,
}

pub struct Gate {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// A gate to the simulator at `upstream`, whose server TLS configuration and CA (PEM) these are.
    pub async fn start(upstream: SocketAddr, server_tls: Arc<ServerConfig>, ca_pem: &str) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let s = state.clone();
        let acceptor = TlsAcceptor::from(server_tls);
        let connector = connector_trusting(ca_pem);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (s, acceptor, connector) = (s.clone(), acceptor.clone(), connector.clone());
                tokio::spawn(async move {
                    let Ok(client) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let name = ServerName::try_from("127.0.0.1").unwrap();
                    if let Ok(server) = connector.connect(name, server).await {
                        pipe(client, server, s).await;
                    }
                });
            }
        });
        Gate { addr, state, task }
    }

    /// Hold the next requests whose bytes contain `pattern` (e.g. `"PATCH "`, `"/restart "`).
    pub fn hold(&self, pattern: &str) {
        *self.state.verdict.lock().unwrap() = None;
        self.state.held.store(0, Ordering::SeqCst);
        *self.state.pattern.lock().unwrap() = Some(pattern.to_string());
    }

    /// Wait until a request is held.
    pub async fn wait_held(&self, timeout: Duration) {
        let until = Instant::now() + timeout;
        while self.state.held.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < until, "no request was held");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Forward (`true`) or drop (`false`) what is held, and hold nothing more.
    pub fn release(&self, forward: bool) {
        *self.state.pattern.lock().unwrap() = None;
        *self.state.verdict.lock().unwrap() = Some(forward);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn connector_trusting(ca_pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn pipe<C, S>(client: C, server: S, s: Arc<State>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    // Client to server. Returns the server's write half when the client closed (the server may
    // still be answering a request that was delivered late), `None` when a request was dropped.
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return Some(sw),
                Ok(n) => n,
            };
            let mut chunk = buf[..n].to_vec();
            let text = String::from_utf8_lossy(&chunk).into_owned();
            let hold = s
                .pattern
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|p| text.contains(p.as_str()));
            if hold {
                // The whole request (a body may follow its head in another write).
                while let Ok(Ok(m)) =
                    tokio::time::timeout(Duration::from_millis(200), cr.read(&mut buf)).await
                {
                    if m == 0 {
                        break;
                    }
                    chunk.extend_from_slice(&buf[..m]);
                }
                s.held.fetch_add(1, Ordering::SeqCst);
                let forward = loop {
                    if let Some(v) = *s.verdict.lock().unwrap() {
                        break v;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                if !forward {
                    return None;
                }
            }
            if sw.write_all(&chunk).await.is_err() {
                return None;
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    tokio::pin!(down);
    let open = tokio::select! {
        w = up => w,
        _ = &mut down => None,
    };
    if let Some(w) = open {
        // Keep the server side open until it has answered what it was sent.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut down).await;
        drop(w);
    }
}
