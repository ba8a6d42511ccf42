//! A real Prometheus (Debian's `prometheus` package) on a free loopback port with its TSDB in a
//! temp dir, for integration tests and the history bench: `tests/prometheus/start.sh` does the work
//! (history loaded with `promtool tsdb create-blocks-from openmetrics` before it starts), this
//! guard stops it again in `Drop`, even when the test panics. A watchdog started by the script also
//! stops it if this process dies without dropping the guard.
//!
//! When Prometheus is missing or cannot start, [`RealPrometheus::start`] returns an error saying
//! why; tests must fail with it, never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::apiserver::{run_stop, script_env, tail};
use super::prom_http::{self, encode};

/// What to load and scrape.
#[derive(Debug, Default)]
pub struct PrometheusSetup {
    /// OpenMetrics files to import with promtool.
    pub imports: Vec<PathBuf>,
    /// Directories of ready TSDB blocks to copy in.
    pub blocks: Vec<PathBuf>,
    /// A YAML list of `scrape_configs` entries.
    pub scrape: Option<String>,
}

/// A running Prometheus, stopped (by PID) when dropped.
pub struct RealPrometheus {
    state: Option<tempfile::TempDir>,
    env: HashMap<String, String>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/prometheus")
        .join(name)
}

impl RealPrometheus {
    /// Import the history, start Prometheus and wait until it answers `/-/ready`.
    pub fn start(setup: &PrometheusSetup) -> Result<Self> {
        let state = tempfile::Builder::new()
            .prefix("vmmem-prometheus-")
            .tempdir()
            .context("creating a state dir")?;
        let mut cmd = Command::new("bash");
        cmd.arg(script("start.sh"))
            .arg("--watch")
            .arg(std::process::id().to_string());
        for f in &setup.imports {
            cmd.arg("--import").arg(f);
        }
        for d in &setup.blocks {
            cmd.arg("--blocks").arg(d);
        }
        if let Some(yaml) = &setup.scrape {
            let path = state.path().join("scrape.yml");
            std::fs::write(&path, yaml).context("writing the scrape config")?;
            cmd.arg("--scrape").arg(path);
        }
        let out = cmd
            .arg(state.path())
            .stdin(Stdio::null())
            .output()
            .context("running tests/prometheus/start.sh")?;
        let mut prom = RealPrometheus {
            state: Some(state),
            env: HashMap::new(),
        };
        if !out.status.success() {
            bail!(
                "the real Prometheus could not be started here ({}):\n{}",
                out.status,
                tail(&out.stderr, 40)
            );
        }
        prom.env = script_env(&out.stdout, &["URL", "PROMETHEUS_PID", "IMPORT_MS"])?;
        Ok(prom)
    }

    fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        self.var("URL")
    }

    /// promtool's wall time for all imports.
    pub fn import_time(&self) -> Duration {
        Duration::from_millis(self.var("IMPORT_MS").parse().unwrap_or(0))
    }

    /// `GET /api/v1/query_range` with `query` over `[start, end]` every `step` seconds: the status
    /// and the JSON body.
    pub fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(u16, serde_json::Value)> {
        self.get(&format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            encode(query)
        ))
    }

    /// `GET /api/v1/query` with `query` at `time`.
    pub fn query(&self, query: &str, time: i64) -> Result<(u16, serde_json::Value)> {
        self.get(&format!(
            "/api/v1/query?query={}&time={time}",
            encode(query)
        ))
    }

    /// `GET path` on the server: the status and the JSON body.
    pub fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        let reply = prom_http::get(
            &format!("{}{path}", self.url()),
            &[],
            Duration::from_secs(120),
        )
        .with_context(|| format!("GET {path}"))?;
        let body = serde_json::from_slice(&reply.body).with_context(|| {
            format!(
                "GET {path}: not JSON: {}",
                String::from_utf8_lossy(&reply.body)
            )
        })?;
        Ok((reply.status, body))
    }

    /// Stop Prometheus (by the PIDs start.sh recorded) and remove the state dir. Idempotent;
    /// `Drop` calls it too.
    pub fn stop(&mut self) -> Result<()> {
        match self.state.take() {
            Some(state) => run_stop(&script("stop.sh"), state),
            None => Ok(()),
        }
    }
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("RealPrometheus: {e:#}");
        }
    }
}

/// The result rows of a successful query answer, or an error naming what Prometheus said.
pub fn result_rows(status: u16, body: &serde_json::Value) -> Result<Vec<serde_json::Value>> {
    if status != 200 || body["status"] != "success" {
        bail!("Prometheus answered {status}: {body}");
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}
