//! The built-in simulated cluster behind `--demo` and `kubectl vmmem sim`: the one place the
//! product names the simulator crate (`vmmem-sim`, behind the default-on cargo feature `demo`).
//! A build without the feature keeps this module's types, and every way to start a cluster
//! says that this build has no demo.

use std::path::PathBuf;
use std::time::Duration;

/// Whether this build carries the simulated cluster.
pub const AVAILABLE: bool = cfg!(feature = "demo");

/// Why the demo cluster could not start or be used.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("this build of kubectl-vmmem has no demo: it was built without the cargo feature `demo` (build it with the default features to get --demo and `sim`)")]
    NotInThisBuild,
    #[cfg(feature = "demo")]
    #[error(transparent)]
    Sim(#[from] vmmem_sim::SimError),
    #[cfg(feature = "demo")]
    #[error(transparent)]
    Scenario(#[from] vmmem_sim::scenario::ScenarioError),
}

/// What the served cluster holds.
#[derive(Debug, Clone)]
pub enum ClusterPlan {
    /// The demo cluster `--demo` shows.
    Builtin,
    /// `vms` generated VMs on `nodes` nodes (for scale tests).
    Generated { vms: usize, nodes: usize },
    /// A scenario in YAML.
    Scenario(String),
}

/// How `kubectl vmmem sim` serves its cluster.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// 0: any free port on 127.0.0.1.
    pub port: u16,
    pub exec_latency: Duration,
    /// How often node counters step forward (zero: continuously).
    pub counter_period: Duration,
    /// Run every exec for real (no prepared probe output).
    pub fresh_exec: bool,
    /// Keep the nodes' host trees here instead of a temporary directory.
    pub host_root: Option<PathBuf>,
}

#[cfg(feature = "demo")]
pub use with_sim::DemoCluster;
#[cfg(not(feature = "demo"))]
pub use without_sim::DemoCluster;

#[cfg(feature = "demo")]
mod with_sim {
    use std::path::Path;

    use vmmem_sim::{Scenario, Sim, SimHandle, SimOptions};

    use super::{ClusterPlan, DemoError, ServeOptions};

    /// A running simulated cluster; dropping it stops it too, [`DemoCluster::shutdown`] waits.
    pub struct DemoCluster {
        sim: SimHandle,
        vms: usize,
        nodes: usize,
    }

    impl DemoCluster {
        /// The demo cluster with model time running `speed` times as fast as the wall clock.
        pub async fn start(speed: f64) -> Result<DemoCluster, DemoError> {
            let scenario = Scenario::demo()?;
            let (vms, nodes) = (scenario.vms.len(), scenario.nodes.len());
            let opts = SimOptions {
                speed,
                ..SimOptions::default()
            };
            let sim = Sim::start(scenario, opts).await?;
            Ok(DemoCluster { sim, vms, nodes })
        }

        /// Serve `plan` as `kubectl vmmem sim` does.
        pub async fn serve(
            plan: ClusterPlan,
            opts: ServeOptions,
        ) -> Result<DemoCluster, DemoError> {
            let scenario = match plan {
                ClusterPlan::Builtin => Scenario::demo()?,
                ClusterPlan::Generated { vms, nodes } => Scenario::generated(vms, nodes),
                ClusterPlan::Scenario(yaml) => Scenario::from_yaml(&yaml)?,
            };
            let (vms, nodes) = (scenario.vms.len(), scenario.nodes.len());
            let opts = SimOptions {
                port: opts.port,
                exec_latency: opts.exec_latency,
                counter_period: opts.counter_period,
                fresh_exec: opts.fresh_exec,
                host_root: opts.host_root,
                ..SimOptions::default()
            };
            let sim = Sim::start(scenario, opts).await?;
            Ok(DemoCluster { sim, vms, nodes })
        }

        /// (VMs, nodes) in the cluster.
        pub fn size(&self) -> (usize, usize) {
            (self.vms, self.nodes)
        }

        /// The API's base URL (it holds a secret path segment).
        pub fn url(&self) -> String {
            self.sim.url()
        }

        /// An admin kubeconfig for the cluster.
        pub fn kubeconfig_yaml(&self) -> String {
            self.sim.kubeconfig_yaml("admin")
        }

        /// Write an admin kubeconfig (readable by its owner only).
        pub fn write_kubeconfig(&self, path: &Path) -> Result<(), DemoError> {
            Ok(self.sim.write_kubeconfig(path)?)
        }

        /// An admin client of the cluster.
        pub async fn client(&self) -> Result<kube::Client, DemoError> {
            Ok(self.sim.client().await?)
        }

        /// Stop serving and remove the nodes' host trees.
        pub async fn shutdown(self) {
            self.sim.shutdown().await;
        }
    }
}

#[cfg(not(feature = "demo"))]
mod without_sim {
    use std::convert::Infallible;
    use std::path::Path;

    use super::{ClusterPlan, DemoError, ServeOptions};

    /// No cluster can exist in this build: every constructor fails with
    /// [`DemoError::NotInThisBuild`].
    pub struct DemoCluster {
        never: Infallible,
    }

    impl DemoCluster {
        pub async fn start(_speed: f64) -> Result<DemoCluster, DemoError> {
            Err(DemoError::NotInThisBuild)
        }

        pub async fn serve(
            _plan: ClusterPlan,
            _opts: ServeOptions,
        ) -> Result<DemoCluster, DemoError> {
            Err(DemoError::NotInThisBuild)
        }

        pub fn size(&self) -> (usize, usize) {
            match self.never {}
        }

        pub fn url(&self) -> String {
            match self.never {}
        }

        pub fn kubeconfig_yaml(&self) -> String {
            match self.never {}
        }

        pub fn write_kubeconfig(&self, _path: &Path) -> Result<(), DemoError> {
            match self.never {}
        }

        pub async fn client(&self) -> Result<kube::Client, DemoError> {
            match self.never {}
        }

        pub async fn shutdown(self) {
            match self.never {}
        }
    }
}
