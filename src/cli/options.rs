//! The session's typed options, built once from the flags. Below `cli/` nothing sees a flag.

use std::time::Duration;

use anyhow::{bail, Context};

use super::args::{GlobalArgs, LiveMode};
use crate::cluster::connect::ConnectFlags;
use crate::cluster::files::Limits;
use crate::history::HistoryMode;
use crate::model::version::Version;
use crate::node::agent_spec::AgentFlags;
use crate::node::readers::Mode;
use crate::parse::duration;
use crate::session::{Namespaces, Objects, Options, ReportSettings};

/// Parse `--refresh` like kubectl durations (`2s`, `500ms`, `1m`, or seconds like k9s's `2`).
pub fn parse_refresh(s: &str) -> anyhow::Result<Duration> {
    let d = duration::parse(s).context("--refresh")?;
    if d < Duration::from_millis(100) {
        bail!("--refresh {s:?} is too short (at least 100ms)");
    }
    Ok(d)
}

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
        certificate_authority: global.certificate_authority.clone(),
        request_timeout: (!timeout.is_zero()).then_some(timeout),
    })
}

/// `--kubevirt-version`, checked.
pub fn kubevirt_version(global: &GlobalArgs) -> anyhow::Result<Option<Version>> {
    match &global.kubevirt_version {
        Some(v) => Version::parse(v)
            .with_context(|| format!("--kubevirt-version {v:?} is not a version like v1.3.0"))
            .map(Some),
        None => Ok(None),
    }
}

/// The one place flags become the session's options.
pub fn options(global: &GlobalArgs) -> anyhow::Result<Options> {
    let report = ReportSettings {
        kubevirt_version: kubevirt_version(global)?,
    };
    let objects = match (&global.from, global.demo) {
        (Some(path), _) => Objects::Files(path.clone()),
        (None, true) => Objects::Demo,
        (None, false) => Objects::Cluster,
    };
    let namespaces = match (&global.namespace, global.all_namespaces) {
        (_, true) => Namespaces::All,
        (Some(ns), false) => Namespaces::One(ns.clone()),
        (None, false) => Namespaces::Default,
    };
    let live = match global.live {
        LiveMode::Auto => Mode::Auto,
        LiveMode::Agent => Mode::Agent,
        LiveMode::PodExec => Mode::PodExec,
        LiveMode::Kubelet => Mode::Kubelet,
        LiveMode::Off => Mode::Off,
    };
    Ok(Options {
        connect: connect_flags(global)?,
        objects,
        namespaces,
        live,
        agent: AgentFlags {
            namespace: global.agent_namespace.clone(),
            image: global.agent_image.clone(),
            pull_secret: global.agent_pull_secret.clone(),
            pull_policy: global.agent_pull_policy.clone(),
        },
        report,
        refresh: parse_refresh(&global.refresh)?,
        readonly: global.readonly,
        file_limits: file_limits(global)?,
        history: history(&global.history)?,
        prometheus: crate::cluster::prometheus::PromFlags {
            url: global.prometheus.clone(),
            token: global.prometheus_token.clone(),
            insecure_skip_tls_verify: global.prometheus_insecure_skip_tls_verify,
            until: global
                .prometheus_until
                .as_deref()
                .map(prometheus_until)
                .transpose()?,
        },
    })
}

/// `--prometheus-until`: an RFC 3339 time, not in the future (Unix seconds).
pub fn prometheus_until(s: &str) -> anyhow::Result<i64> {
    let Some(t) = crate::model::evidence::parse_rfc3339(s) else {
        anyhow::bail!(
            "--prometheus-until \"{}\" is not an RFC 3339 time (e.g. 2026-11-21T22:00:00Z)",
            crate::escape::Shown(s)
        );
    };
    if t > crate::session::peaks::unix_now() {
        anyhow::bail!("--prometheus-until {s} is in the future");
    }
    Ok(t)
}

/// `--history`: `off`, or the window within which remembered peaks count.
pub fn history(s: &str) -> anyhow::Result<HistoryMode> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(HistoryMode::Off);
    }
    if s.trim().is_empty() {
        return Ok(HistoryMode::default());
    }
    let days = s
        .trim()
        .strip_suffix('d')
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| Duration::from_secs(n.saturating_mul(86_400)));
    let d = match days {
        Some(d) => d,
        None => duration::parse(s)
            .with_context(|| format!("--history {s:?} is not off or a duration like 7d"))?,
    };
    if d.is_zero() {
        return Ok(HistoryMode::Off);
    }
    if d < Duration::from_secs(3600) || d > Duration::from_secs(30 * 86_400) {
        bail!("--history {s:?} is outside 1h to 30d (or off)");
    }
    Ok(HistoryMode::Window {
        window_seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
    })
}

/// The caps on what `--from` reads, from `--max-file-size` and `--max-total-size`.
pub fn file_limits(global: &GlobalArgs) -> anyhow::Result<Limits> {
    let size = |flag: &str, value: Option<&String>, default: u64| -> anyhow::Result<u64> {
        let Some(value) = value else {
            return Ok(default);
        };
        let bytes =
            crate::units::parse_memory(value).with_context(|| format!("{flag} {value:?}"))?;
        match u64::try_from(bytes) {
            Ok(b) if b > 0 => Ok(b),
            _ => bail!("{flag} {value:?} must be larger than 0"),
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_flag() {
        assert_eq!(parse_refresh("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_refresh("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_refresh("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_refresh("10ms").is_err());
        assert!(parse_refresh("soon").is_err());
    }

    #[test]
    fn flags_become_options() {
        let mut g = GlobalArgs {
            refresh: "2s".into(),
            request_timeout: "0".into(),
            ..GlobalArgs::default()
        };
        let o = options(&g).unwrap();
        assert_eq!(o.namespaces, Namespaces::Default);
        assert_eq!(o.objects, Objects::Cluster);
        assert_eq!(o.connect.request_timeout, None);
        g.namespace = Some("prod".into());
        assert_eq!(
            options(&g).unwrap().namespaces,
            Namespaces::One("prod".into())
        );
        g.all_namespaces = true;
        assert_eq!(options(&g).unwrap().namespaces, Namespaces::All);
        g.demo = true;
        g.live = LiveMode::Off;
        g.request_timeout = "5s".into();
        let o = options(&g).unwrap();
        assert_eq!(o.objects, Objects::Demo);
        assert_eq!(o.live, Mode::Off);
        assert_eq!(o.connect.request_timeout, Some(Duration::from_secs(5)));
        g.kubevirt_version = Some("banana".into());
        let e = options(&g).unwrap_err().to_string();
        assert!(e.contains("--kubevirt-version \"banana\""), "{e}");
    }
}
