//! What a session is asked to do, typed: built once from the command line's flags (in `cli/`)
//! and handed down. Nothing below `cli/` sees a flag struct.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::connect::ConnectFlags;
use crate::model::report::ReportOptions;
use crate::model::version::Version;
use crate::node::agent_spec::AgentFlags;
use crate::node::readers::{Mode, ReadOptions};

/// Where the objects come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Objects {
    /// The cluster of the kubeconfig (and the connection flags).
    #[default]
    Cluster,
    /// The built-in simulated cluster, started in this process (`--demo`).
    Demo,
    /// Files: a YAML/JSON file, a folder or a support bundle (`--from`).
    Files(PathBuf),
}

/// Which namespaces to look at (`-n`, `-A`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Namespaces {
    /// Neither flag: the context's namespace for a cluster, every namespace for the demo and
    /// for files.
    #[default]
    Default,
    One(String),
    All,
}

impl Namespaces {
    /// The namespace named by `-n` (without `-A`), if any.
    pub fn named(&self) -> Option<&str> {
        match self {
            Namespaces::One(ns) => Some(ns),
            _ => None,
        }
    }
}

/// Options of the report itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportSettings {
    /// The KubeVirt version to assume when the cluster does not say (`--kubevirt-version`).
    pub kubevirt_version: Option<Version>,
}

/// Everything a command needs to know about the cluster it reads and how.
#[derive(Clone)]
pub struct Options {
    /// kubectl's connection flags (the demo uses only their request timeout).
    pub connect: ConnectFlags,
    pub objects: Objects,
    pub namespaces: Namespaces,
    /// Where live memory numbers come from (`--live`).
    pub live: Mode,
    /// Agent pod settings (`--agent-*`).
    pub agent: AgentFlags,
    pub report: ReportSettings,
    /// The dashboard's refresh period.
    pub refresh: Duration,
    /// No mutating action.
    pub readonly: bool,
    /// The caps on what `--from` reads.
    pub file_limits: crate::cluster::files::Limits,
    /// Whether peaks remembered on this machine are used and kept, and over which window.
    pub history: crate::history::HistoryMode,
    /// Where history from Prometheus comes from (`--prometheus*`; issue 20).
    pub prometheus: crate::cluster::prometheus::PromFlags,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect: ConnectFlags::default(),
            objects: Objects::default(),
            namespaces: Namespaces::default(),
            live: Mode::Auto,
            agent: AgentFlags::default(),
            report: ReportSettings::default(),
            refresh: Duration::from_secs(2),
            readonly: false,
            file_limits: crate::cluster::files::Limits::default(),
            history: crate::history::HistoryMode::default(),
            prometheus: crate::cluster::prometheus::PromFlags::default(),
        }
    }
}

/// The token stays out of debug output.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("objects", &self.objects)
            .field("namespaces", &self.namespaces)
            .field("live", &self.live)
            .field("report", &self.report)
            .field("refresh", &self.refresh)
            .field("readonly", &self.readonly)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// The report's options before any reading (no history, no stale nodes).
    pub fn report_options(&self) -> ReportOptions {
        ReportOptions {
            version_flag: self.report.kubevirt_version,
            ..ReportOptions::default()
        }
    }

    /// How node readings are taken.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            mode: self.live,
            readonly: self.readonly,
            ..ReadOptions::default()
        }
    }

    /// Whether the objects come from files (nothing live, nothing to change).
    pub fn from_files(&self) -> Option<&std::path::Path> {
        match &self.objects {
            Objects::Files(p) => Some(p),
            _ => None,
        }
    }

    /// The same options looking at `namespace` (`None`: every namespace).
    pub fn with_namespace(&self, namespace: Option<&str>) -> Options {
        Options {
            namespaces: match namespace {
                Some(ns) => Namespaces::One(ns.to_string()),
                None => Namespaces::All,
            },
            ..self.clone()
        }
    }
}
