//! `kubectl vmmem sim`: serve a simulated KubeVirt cluster in the foreground until interrupted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use crate::demo::{ClusterPlan, DemoCluster, ServeOptions};

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Scenario YAML (default: the built-in demo cluster).
    #[arg(long, value_name = "FILE", conflicts_with = "vms")]
    pub scenario: Option<PathBuf>,
    /// Generate this many VMs instead of reading a scenario.
    #[arg(long, value_name = "N")]
    pub vms: Option<usize>,
    /// Nodes for generated VMs.
    #[arg(long, value_name = "M", default_value_t = 3, requires = "vms")]
    pub nodes: usize,
    /// Delay before every exec runs, e.g. 200ms, 2s.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub exec_latency: String,
    /// How often the nodes' memory counters step forward (their cgroup and /proc files and the
    /// kubelet's stats show the model at the start of the step, as periodically published
    /// counters do); 0: continuously. Each node's probe output for the current step is prepared
    /// in the background (for nodes probed in the last 5 minutes, with the commands they were
    /// last asked) and an exec of the same probe command into a node whose files have not
    /// changed since is answered with it: byte for byte what running it now prints, after the
    /// exec latency plus the CPU time that run took.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub counter_period: String,
    /// Run every exec for real (never answer from prepared probe output).
    #[arg(long)]
    pub fresh_exec: bool,
    /// Write a kubeconfig for the simulated cluster here.
    #[arg(long, value_name = "FILE")]
    pub write_kubeconfig: PathBuf,
    /// Port on 127.0.0.1 (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Keep node host trees in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
}

/// `150ms`, `2s`, `1m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration (try 200ms, 2s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("{s:?} is not a duration (try 200ms, 2s, 1m)"),
    };
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(args: &SimArgs) -> anyhow::Result<ExitCode> {
    if !crate::demo::AVAILABLE {
        return Err(crate::demo::DemoError::NotInThisBuild.into());
    }
    let (plan, what) = match (&args.scenario, args.vms) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario {}", path.display()))?;
            (
                ClusterPlan::Scenario(text),
                format!("scenario {}", path.display()),
            )
        }
        (None, Some(vms)) => (
            ClusterPlan::Generated {
                vms,
                nodes: args.nodes,
            },
            "the generated scenario".to_string(),
        ),
        (None, None) => (
            ClusterPlan::Builtin,
            "the built-in demo scenario".to_string(),
        ),
    };
    let opts = ServeOptions {
        port: args.port,
        exec_latency: parse_duration(&args.exec_latency)?,
        counter_period: parse_duration(&args.counter_period)?,
        fresh_exec: args.fresh_exec,
        host_root: args.host_root.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let started = Instant::now();
        let sim = DemoCluster::serve(plan, opts)
            .await
            .with_context(|| format!("starting the simulated cluster of {what}"))?;
        let (vms, nodes) = sim.size();
        sim.write_kubeconfig(&args.write_kubeconfig)
            .with_context(|| format!("writing {}", args.write_kubeconfig.display()))?;
        let ready = started.elapsed();
        // The API's path is its secret (anyone who knows it can exec on this machine): it goes
        // to the kubeconfig (0600) only, never to stderr, which CI logs keep.
        let url = sim.url();
        let origin: String = url.split('/').take(3).collect::<Vec<_>>().join("/");
        eprintln!(
            "simulated cluster with {vms} VMs on {nodes} nodes serving at {origin} (the API's secret path is in the kubeconfig) (ready in {} ms); kubeconfig: {}\npress Ctrl-C to stop",
            ready.as_millis(),
            args.write_kubeconfig.display()
        );
        wait_for_interrupt().await?;
        sim.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_interrupt() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("listening for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}

#[cfg(test)]
mod parse_tests {
    use clap::Parser;

    use crate::cli::args::{Cli, Command};

    #[test]
    fn sim_flags() {
        let cli = Cli::try_parse_from([
            "kubectl vmmem",
            "sim",
            "--vms",
            "5000",
            "--nodes",
            "200",
            "--exec-latency",
            "50ms",
            "--write-kubeconfig",
            "k",
        ])
        .unwrap();
        let Some(Command::Sim(s)) = cli.command else {
            panic!("not sim")
        };
        assert_eq!(
            (s.vms, s.nodes, s.exec_latency.as_str()),
            (Some(5000), 200, "50ms")
        );
        assert!(
            Cli::try_parse_from(["kubectl vmmem", "sim"]).is_err(),
            "--write-kubeconfig is required"
        );
        assert!(
            Cli::try_parse_from([
                "kubectl vmmem",
                "sim",
                "--nodes",
                "2",
                "--write-kubeconfig",
                "k"
            ])
            .is_err(),
            "--nodes needs --vms"
        );
        assert!(Cli::try_parse_from([
            "kubectl vmmem",
            "sim",
            "--scenario",
            "f",
            "--vms",
            "2",
            "--write-kubeconfig",
            "k"
        ])
        .is_err());
    }
}
