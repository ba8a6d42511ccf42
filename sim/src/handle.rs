//! Starting and stopping the simulator, connecting clients to it, and the hooks tests use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::requests::RequestTally;
use super::resources::VIRTUAL_MACHINES;
use super::scenario::{Scenario, ScenarioError};
use super::server::{serve, App};
use super::status::ApiError;
use super::tick;
use super::tls::ServerTls;
use super::world::World;

/// Why the simulator could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("simulated API: {0}")]
    Api(#[from] ApiError),
    #[error("kubeconfig for the simulator: {0}")]
    Kubeconfig(String),
    #[error("kube client for the simulator: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// Delay before each exec runs its command.
    pub exec_latency: Duration,
    /// Delay before a created pod turns Running.
    pub pod_start_delay: Duration,
    /// Wait after a VMI failed before its VM starts again.
    pub restart_backoff: Duration,
    /// Wait from a started VMI's launcher pod to the VMI `Running`: KubeVirt marks a VMI
    /// `Running` only once virt-handler started its domain in the running pod, so a watch sees
    /// the pod before the VMI runs. The scenario's own VMs run from the start.
    pub domain_start_delay: Duration,
    /// Wait after a launcher pod is deleted before its VMI is marked failed (zero: at once).
    pub pod_gone_notice: Duration,
    /// How often model time is applied (pods starting, OOM kills).
    pub tick: Duration,
    /// Where node host trees go (default: a fresh temporary directory, removed on drop).
    pub host_root: Option<PathBuf>,
    /// Model seconds per wall second (1; the demo's `VMMEM_DEMO_SPEED` raises it).
    pub speed: f64,
    /// How often the nodes' memory counters (host trees, kubelet stats) step forward; zero:
    /// they follow the model continuously. With steps, each node's probe output is prepared in
    /// the background and stored (see `sim::nodecpu`).
    pub counter_period: Duration,
    /// Run every exec for real (no stored probe output).
    pub fresh_exec: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            port: 0,
            exec_latency: Duration::ZERO,
            pod_start_delay: Duration::from_millis(300),
            restart_backoff: Duration::from_secs(10),
            pod_gone_notice: Duration::ZERO,
            domain_start_delay: Duration::from_millis(300),
            tick: Duration::from_millis(200),
            host_root: None,
            speed: 1.0,
            counter_period: Duration::ZERO,
            fresh_exec: false,
        }
    }
}

/// A directory that is deleted when dropped (when we created it).
struct HostRoot {
    path: PathBuf,
    owned: bool,
}

impl Drop for HostRoot {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub struct Sim;

impl Sim {
    /// The built-in demo cluster (`demo.yaml` of this crate) with default options: what `--demo` runs.
    pub async fn start_demo() -> Result<SimHandle, SimError> {
        Sim::start_demo_at(1.0).await
    }

    /// The demo with model time running `speed` times as fast (`VMMEM_DEMO_SPEED=10` shows
    /// the memhold VM's OOM kill within seconds instead of minutes).
    pub async fn start_demo_at(speed: f64) -> Result<SimHandle, SimError> {
        let opts = SimOptions {
            speed,
            ..SimOptions::default()
        };
        Sim::start(Scenario::demo()?, opts).await
    }

    /// Build the cluster of `scenario` and serve it on 127.0.0.1.
    pub async fn start(scenario: Scenario, opts: SimOptions) -> Result<SimHandle, SimError> {
        // The trees are created fresh and private (0700): an existing directory, which someone
        // else may have prepared (or may read), is never reused.
        let root = match &opts.host_root {
            Some(p) => {
                create_private_dir(p)?;
                HostRoot {
                    path: p.clone(),
                    owned: false,
                }
            }
            None => {
                let p = host_tree_parent().join(format!(
                    "vmmem-sim-{}-{:016x}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                create_private_dir(&p)?;
                HostRoot {
                    path: p,
                    owned: true,
                }
            }
        };
        let mut world = World::new(&scenario, root.path.clone())?;
        world.exec.latency = opts.exec_latency;
        world.pod_start_delay = opts.pod_start_delay.as_secs_f64();
        world.restart_backoff = opts.restart_backoff.as_secs_f64();
        world.pod_gone_notice = opts.pod_gone_notice.as_secs_f64();
        world.domain_start_delay = opts.domain_start_delay.as_secs_f64();
        world.exec.cpus.counter_period = opts.counter_period.as_secs_f64();
        world.exec.cpus.fresh = opts.fresh_exec;
        if opts.speed != 1.0 {
            world.clock = super::clock::SimClock::with_speed(opts.speed);
        }
        let world = Arc::new(Mutex::new(world));
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let app = App {
            world: world.clone(),
            addr,
            stop: stop_rx,
            prefix: format!(
                "sim-{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
            requests: Default::default(),
            tokens: Default::default(),
            tls: ServerTls::generate()?,
        };
        let server = tokio::spawn(serve(listener, app.clone()));
        let ticker = {
            let world = world.clone();
            let every = opts.tick.max(Duration::from_millis(10));
            tokio::spawn(async move {
                let mut iv = tokio::time::interval(every);
                loop {
                    iv.tick().await;
                    let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
                    tick::tick(&mut w);
                    tick::refresh_host_trees(&mut w);
                }
            })
        };
        let cpus_stop = Arc::new(AtomicBool::new(false));
        let cpus = super::nodecpu::spawn_background(world.clone(), cpus_stop.clone());
        Ok(SimHandle {
            app,
            stop_tx,
            server: Some(server),
            ticker,
            cpus: Some(cpus_stop).zip(cpus),
            _root: root,
        })
    }
}

/// A running simulator. Dropping it stops the server and removes its host trees.
pub struct SimHandle {
    app: App,
    stop_tx: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    ticker: JoinHandle<()>,
    /// The nodes' background worker (`sim::nodecpu`): its stop flag and thread.
    cpus: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    _root: HostRoot,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.app.addr
    }

    /// The API's base URL (HTTPS, with its secret first path segment).
    pub fn url(&self) -> String {
        format!("https://{}/{}", self.app.addr, self.app.prefix)
    }

    /// The bearer token that names `user` on this simulator (every API request needs one).
    pub fn token_for(&self, user: &str) -> String {
        self.app.tokens.token_for(user)
    }

    /// The certificate (PEM) of the CA that signed the server's: what clients must trust.
    pub fn ca_pem(&self) -> &str {
        self.app.tls.ca_pem()
    }

    /// The server's TLS configuration (its certificate for 127.0.0.1), for tests that put a
    /// proxy in front of the simulator which must look like it to clients.
    pub fn server_tls_config(&self) -> Arc<tokio_rustls::rustls::ServerConfig> {
        self.app.tls.config()
    }

    /// The CA as a kubeconfig's `certificate-authority-data` (base64 of the PEM).
    pub fn ca_data(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem())
    }

    /// Requests served so far, by kind.
    pub fn request_tally(&self) -> RequestTally {
        self.app.requests.tally()
    }

    /// Every authorization the server made so far (verb, group, resource, namespace, name).
    pub fn accesses(&self) -> Vec<super::requests::Access> {
        self.app.requests.accesses()
    }

    /// Compact like etcd: forget the event history and list snapshots, so watches and continue
    /// tokens from earlier resourceVersions get 410 and clients list again.
    pub fn compact(&self) {
        self.world().store.compact();
    }

    /// The world, for tests and the CLI (do not hold it across an await).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.app.world()
    }

    /// A kubeconfig for `user`: HTTPS on 127.0.0.1 with this simulator's CA, and the bearer
    /// token that names the user.
    pub fn kubeconfig_yaml(&self, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: vmmem-sim\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: vmmem-sim\n  context:\n    cluster: vmmem-sim\n    user: {user}\n    namespace: default\ncurrent-context: vmmem-sim\nusers:\n- name: {user}\n  user:\n    token: {token}\n",
            url = self.url(),
            ca = self.ca_data(),
            token = self.token_for(user),
        )
    }

    /// Write an admin kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        self.write_kubeconfig_as(path, "admin")
    }

    pub fn write_kubeconfig_as(&self, path: &Path, user: &str) -> Result<(), SimError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        write_private(path, &self.kubeconfig_yaml(user))?;
        Ok(())
    }

    /// A kube-rs config for `user`.
    pub async fn kube_config_as(&self, user: &str) -> Result<kube::Config, SimError> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(user))
            .map_err(|e| SimError::Kubeconfig(e.to_string()))?;
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| SimError::Kubeconfig(e.to_string()))
    }

    pub async fn kube_config(&self) -> Result<kube::Config, SimError> {
        self.kube_config_as("admin").await
    }

    /// An admin kube-rs client.
    pub async fn client(&self) -> Result<kube::Client, SimError> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }

    /// Make `ns` forbidden for `user` (403 like RBAC; cluster-wide lists of namespaced resources too).
    pub fn forbid_namespace(&self, user: &str, ns: &str) {
        self.world().auth.forbid_namespace(user, ns);
    }

    /// Deny `verb` on `resource` (`pods`, `pods/exec`, `nodes/proxy`) to `user` everywhere.
    pub fn forbid_verb(&self, user: &str, verb: &str, resource: &str) {
        self.world().auth.forbid_verb(user, verb, resource);
    }

    pub fn allow_namespace(&self, user: &str, ns: &str) {
        self.world().auth.allow_namespace(user, ns);
    }

    pub fn set_exec_latency(&self, d: Duration) {
        self.world().exec.latency = d;
    }

    /// Let exec run any command (for tests of exec itself: exit codes, long runs). Off, as in
    /// `kubectl vmmem sim` and the demo, exec runs only what the simulated pods would have.
    pub fn allow_any_exec(&self, any: bool) {
        self.world().exec.any_command = any;
    }

    /// Make exec into pods on `node` hang (or stop hanging); its kubelet's summary then fails
    /// with 503 as if the node could not be reached.
    pub fn hang_node_exec(&self, node: &str, hang: bool) {
        let mut w = self.world();
        if hang {
            w.exec.hung_nodes.insert(node.to_string());
        } else {
            w.exec.hung_nodes.remove(node);
        }
    }

    /// Change a VM behind the clients' backs (an annotation), so their resourceVersion is stale.
    /// Returns the new resourceVersion.
    pub fn bump_vm(&self, ns: &str, name: &str) -> Result<String, SimError> {
        let mut w = self.world();
        let mut vm = w
            .store
            .get(&VIRTUAL_MACHINES, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&VIRTUAL_MACHINES, name))?;
        let n = vm["metadata"]["annotations"]["sim.vmmem.kubectl.io/bumped"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        vm["metadata"]["annotations"]["sim.vmmem.kubectl.io/bumped"] = json!((n + 1).to_string());
        let stored = w.store.replace(&VIRTUAL_MACHINES, vm)?;
        Ok(stored["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// Move model time forward (workloads grow, OOM kills happen) and apply it now.
    pub fn advance(&self, by: Duration) {
        let mut w = self.world();
        w.clock.advance(by);
        tick::tick(&mut w);
    }

    /// Stop model time (workloads hold still, pods do not start) or let it run again.
    pub fn freeze_model_time(&self, frozen: bool) {
        self.world().clock.freeze(frozen);
    }

    /// Apply model time now (without waiting for the next tick).
    pub fn tick_now(&self) {
        tick::tick(&mut self.world());
    }

    /// The node's host tree as of now: the directory playing the node's `/`.
    pub fn write_host_tree(&self, node: &str) -> std::io::Result<PathBuf> {
        tick::write_host_tree(&mut self.world(), node)
    }

    /// Let the nodes' counters step every `period` (zero: continuously) and store probe output
    /// (see `sim::nodecpu`); `fresh` runs every exec for real.
    pub fn set_counters(&self, period: Duration, fresh: bool) {
        let mut w = self.world();
        w.exec.cpus.counter_period = period.as_secs_f64();
        w.exec.cpus.fresh = fresh;
    }

    /// The node's kernel log lines so far.
    pub fn kernel_log(&self, node: &str) -> Vec<String> {
        self.world()
            .nodes
            .get(node)
            .map(|n| n.kernel_log.clone())
            .unwrap_or_default()
    }

    /// Stop serving (clients see connection refused); the cluster keeps running.
    pub async fn stop_server(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(3), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }

    /// Serve again on the same address.
    pub async fn restart_server(&mut self) -> Result<(), SimError> {
        if self.server.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.app.addr).await?;
        let _ = self.stop_tx.send(false);
        self.server = Some(tokio::spawn(serve(listener, self.app.clone())));
        Ok(())
    }

    /// Stop everything and remove the host trees.
    pub async fn shutdown(mut self) {
        self.stop_server().await;
        self.ticker.abort();
        self.stop_cpus();
    }

    /// Stop the nodes' background worker and wait for it (before the host trees go).
    fn stop_cpus(&mut self) {
        if let Some((stop, thread)) = self.cpus.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        self.ticker.abort();
        self.stop_cpus();
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

/// Where the simulator's host trees go: a memory file system when the machine has one (the
/// trees play /sys/fs/cgroup and /proc, which are not on disk either, and a disk file system's
/// inode allocation for the files rewritten on every exec costs far more CPU), else the
/// temporary directory.
fn host_tree_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let usable = std::env::var_os("TMPDIR").is_none()
        && std::fs::metadata(shm).is_ok_and(|m| m.is_dir())
        && tempfile_probe(shm);
    if usable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Whether a directory can be created (and removed again) in `dir`.
fn tempfile_probe(dir: &Path) -> bool {
    let p = dir.join(format!(
        "vmmem-probe-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let ok = std::fs::create_dir(&p).is_ok();
    let _ = std::fs::remove_dir(&p);
    ok
}

/// Create `dir` (its parent must exist) readable by its owner only; an existing one is an error.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{} exists already: the simulator's host trees go to a new directory",
                    dir.display()
                ),
            )
        } else {
            e
        }
    })?;
    // The umask may have taken bits away, never added: set exactly 0700.
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Write a file only its owner can read (the kubeconfig holds the API's secret URL).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(text.as_bytes())?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}
