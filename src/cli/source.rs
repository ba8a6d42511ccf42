//! Opening the live source the global flags name: the cluster of the kubeconfig, or with
//! `--demo` the built-in simulated cluster started in this process. `list` takes one snapshot;
//! the dashboard keeps the source and takes a snapshot per refresh.

use anyhow::Context;

use super::args::GlobalArgs;
use crate::cluster::connect::{self, ConnectFlags};
use crate::cluster::live::{LiveOptions, LiveSource, Scope};
use crate::demo::DemoCluster;
use crate::model::inventory::{Inventory, SourceKind};
use crate::parse::duration;

/// kubectl's connection flags from the command line.
pub fn connect_flags(global: &GlobalArgs) -> anyhow::Result<ConnectFlags> {
    let timeout = duration::parse(&global.request_timeout)
        .with_context(|| "--request-timeout".to_string())?;
    Ok(ConnectFlags {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
        cluster: global.cluster.clone(),
        user: global.user.clone(),
        as_user: global.as_user.clone(),
        as_groups: global.as_group.clone(),
        server: global.server.clone(),
        token: global.token.clone(),
        insecure_skip_tls_verify: global.insecure_skip_tls_verify,
        request_timeout: (!timeout.is_zero()).then_some(timeout),
    })
}

/// The caps on what `--from` reads, from `--max-file-size` and `--max-total-size`.
pub fn file_limits(global: &GlobalArgs) -> anyhow::Result<crate::cluster::files::Limits> {
    let size = |flag: &str, value: Option<&String>, default: u64| -> anyhow::Result<u64> {
        let Some(value) = value else {
            return Ok(default);
        };
        let bytes = crate::parse::quantity::parse_memory(value)
            .with_context(|| format!("{flag} {value:?}"))?;
        match u64::try_from(bytes) {
            Ok(b) if b > 0 => Ok(b),
            _ => anyhow::bail!("{flag} {value:?} must be larger than 0"),
        }
    };
    use crate::cluster::files::Limits;
    Ok(Limits {
        max_file_bytes: size(
            "--max-file-size",
            global.max_file_size.as_ref(),
            Limits::DEFAULT_MAX_FILE_BYTES,
        )?,
        max_total_bytes: size(
            "--max-total-size",
            global.max_total_size.as_ref(),
            Limits::DEFAULT_MAX_TOTAL_BYTES,
        )?,
    })
}

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

/// Connect as the flags say, start watching and wait for the first complete lists.
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

/// Connect as the flags say and wait for the first complete lists.
pub async fn open(global: &GlobalArgs) -> anyhow::Result<Live> {
    open_with(global, false).await
}

/// Connect as the flags say and list everything once (page by page, no watches): for one
/// snapshot, taken with [`Live::into_parts`].
pub async fn open_once(global: &GlobalArgs) -> anyhow::Result<Live> {
    open_with(global, true).await
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

async fn open_with(global: &GlobalArgs, once: bool) -> anyhow::Result<Live> {
    let flags = connect_flags(global)?;
    if global.demo {
        let sim = DemoCluster::start(demo_speed(std::env::var("VMMEM_DEMO_SPEED").ok())?)
            .await
            .context("starting the built-in demo cluster")?;
        let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml())
            .context("the demo cluster's kubeconfig")?;
        // The demo is not the user's cluster: only the timeout and the namespace flags apply,
        // and without -n it shows every namespace.
        let demo_flags = ConnectFlags {
            request_timeout: flags.request_timeout,
            ..ConnectFlags::default()
        };
        let conn = connect::from_kubeconfig(kc, &demo_flags).await?;
        let scope = match &global.namespace {
            Some(ns) if !global.all_namespaces => Scope::Namespace(ns.clone()),
            _ => Scope::All,
        };
        let opts = LiveOptions {
            scope,
            source: SourceKind::Demo,
            initial_timeout: flags.request_timeout,
        };
        let source = start(&conn, opts, once).await?;
        return Ok(Live {
            source,
            client: conn.client.clone(),
            conn,
            sim: Some(sim),
        });
    }
    let conn = connect::connect(&flags).await?;
    let scope = Scope::from_flags(
        global.all_namespaces,
        global.namespace.as_deref(),
        &conn.default_namespace,
    );
    let opts = LiveOptions {
        scope,
        source: SourceKind::Live,
        initial_timeout: flags.request_timeout,
    };
    let source = start(&conn, opts, once).await?;
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
