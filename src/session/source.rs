//! Opening the live source the options name: the cluster of the kubeconfig, or with `--demo`
//! the built-in simulated cluster started in this process. `list` takes one snapshot; the
//! dashboard keeps the source and takes a snapshot per refresh. This is the product's one use
//! of the simulator.

use anyhow::Context;

use super::options::{Namespaces, Objects, Options};
use crate::cluster::connect::{self, ConnectFlags};
use crate::cluster::live::{LiveOptions, LiveSource, Scope};
use crate::demo::DemoCluster;
use crate::model::inventory::{Inventory, SourceKind};

/// A running live source; with `--demo` it owns the simulated cluster too.
pub struct Live {
    pub source: LiveSource,
    /// The client the source was opened with (the dashboard's fix keys patch through it).
    pub client: kube::Client,
    /// The connection the source was opened with (node readings and agents use its client).
    pub conn: connect::Connection,
    /// Kept alive as long as the source (dropped after it).
    sim: Option<DemoCluster>,
}

/// What keeps the cluster of a one-shot reader up after its watches stopped: the connection,
/// and for the demo the simulated cluster (stopped by [`Opened::close`]).
pub struct Opened {
    pub client: kube::Client,
    pub conn: connect::Connection,
    sim: Option<DemoCluster>,
}

impl Opened {
    /// Stop the demo's simulated cluster (nothing to do for a real one).
    pub async fn close(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

impl Live {
    /// One snapshot, then stop watching (and, for the demo, the simulated cluster).
    pub async fn into_inventory(self) -> Inventory {
        let (inventory, opened) = self.into_parts().await;
        opened.close().await;
        inventory
    }

    /// Stop watching and take the objects without copying them (one-shot readers such as
    /// `list` then hold each object once); the connection stays usable, and the demo cluster
    /// up, until [`Opened::close`].
    pub async fn into_parts(self) -> (Inventory, Opened) {
        let Live {
            source,
            client,
            conn,
            sim,
        } = self;
        let inventory = source.into_snapshot().await;
        (inventory, Opened { client, conn, sim })
    }

    /// Stop watching and, for the demo, the simulated cluster.
    pub async fn close(self) {
        let Live { source, sim, .. } = self;
        drop(source);
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
    }
}

/// How fast the demo's model time runs: `VMMEM_DEMO_SPEED` (a number from 1 to 1000, default 1;
/// 10 shows the memhold VM's first OOM kill after about 15 seconds instead of two and a half
/// minutes).
pub fn demo_speed(var: Option<String>) -> anyhow::Result<f64> {
    let Some(text) = var.filter(|v| !v.trim().is_empty()) else {
        return Ok(1.0);
    };
    match text.trim().parse::<f64>() {
        Ok(s) if (1.0..=1000.0).contains(&s) => Ok(s),
        _ => anyhow::bail!(
            "VMMEM_DEMO_SPEED={text:?} is not a number from 1 to 1000 (how many times faster the demo's clock runs)"
        ),
    }
}

/// Connect as the options say, start watching and wait for the first complete lists.
pub async fn open(opts: &Options) -> anyhow::Result<Live> {
    open_with(opts, false).await
}

/// Connect as the options say and list everything once (page by page, no watches): for one
/// snapshot, taken with [`Live::into_parts`].
pub async fn open_once(opts: &Options) -> anyhow::Result<Live> {
    open_with(opts, true).await
}

/// Only a connection (no watches): the client and, for the demo, the simulated cluster (`fix`
/// reads and patches one VM through it). The namespace is the context's (`default` for the
/// demo).
pub async fn connect_only(opts: &Options) -> anyhow::Result<(Opened, String)> {
    match opts.objects {
        Objects::Demo => {
            let (sim, conn) = start_demo(opts).await?;
            let client = conn.client.clone();
            let opened = Opened {
                client,
                conn,
                sim: Some(sim),
            };
            Ok((opened, "default".to_string()))
        }
        _ => {
            let conn = connect::connect(&opts.connect).await?;
            let ns = conn.default_namespace.clone();
            let opened = Opened {
                client: conn.client.clone(),
                conn,
                sim: None,
            };
            Ok((opened, ns))
        }
    }
}

/// The demo cluster and a connection to it. The demo is not the user's cluster: only the
/// request timeout of the connection flags applies.
async fn start_demo(opts: &Options) -> anyhow::Result<(DemoCluster, connect::Connection)> {
    let sim = DemoCluster::start(demo_speed(std::env::var("VMMEM_DEMO_SPEED").ok())?)
        .await
        .context("starting the built-in demo cluster")?;
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml())
        .context("the demo cluster's kubeconfig")?;
    let demo_flags = ConnectFlags {
        request_timeout: opts.connect.request_timeout,
        ..ConnectFlags::default()
    };
    match connect::from_kubeconfig(kc, &demo_flags).await {
        Ok(conn) => Ok((sim, conn)),
        Err(e) => {
            sim.shutdown().await;
            Err(e.into())
        }
    }
}

async fn start(
    conn: &connect::Connection,
    opts: LiveOptions,
    once: bool,
) -> anyhow::Result<LiveSource> {
    Ok(if once {
        LiveSource::list_once(conn, opts).await?
    } else {
        LiveSource::start(conn, opts).await?
    })
}

async fn open_with(opts: &Options, once: bool) -> anyhow::Result<Live> {
    let timeout = opts.connect.request_timeout;
    if opts.objects == Objects::Demo {
        let (sim, conn) = start_demo(opts).await?;
        // Without -n the demo shows every namespace.
        let scope = match &opts.namespaces {
            Namespaces::One(ns) => Scope::Namespace(ns.clone()),
            _ => Scope::All,
        };
        let live_opts = LiveOptions {
            scope,
            source: SourceKind::Demo,
            initial_timeout: timeout,
        };
        let source = match start(&conn, live_opts, once).await {
            Ok(s) => s,
            Err(e) => {
                sim.shutdown().await;
                return Err(e);
            }
        };
        return Ok(Live {
            source,
            client: conn.client.clone(),
            conn,
            sim: Some(sim),
        });
    }
    let conn = connect::connect(&opts.connect).await?;
    let scope = match &opts.namespaces {
        Namespaces::All => Scope::All,
        Namespaces::One(ns) => Scope::Namespace(ns.clone()),
        Namespaces::Default => Scope::Namespace(conn.default_namespace.clone()),
    };
    let live_opts = LiveOptions {
        scope,
        source: SourceKind::Live,
        initial_timeout: timeout,
    };
    let source = start(&conn, live_opts, once).await?;
    Ok(Live {
        source,
        client: conn.client.clone(),
        conn,
        sim: None,
    })
}

#[cfg(test)]
mod tests {
    use super::demo_speed;

    #[test]
    fn demo_speed_from_the_environment() {
        assert_eq!(demo_speed(None).unwrap(), 1.0);
        assert_eq!(demo_speed(Some(" ".into())).unwrap(), 1.0);
        assert_eq!(demo_speed(Some("10".into())).unwrap(), 10.0);
        let e = demo_speed(Some("fast".into())).unwrap_err().to_string();
        assert!(
            e.contains("VMMEM_DEMO_SPEED=\"fast\" is not a number"),
            "{e}"
        );
        assert!(demo_speed(Some("0.5".into())).is_err());
    }
}
