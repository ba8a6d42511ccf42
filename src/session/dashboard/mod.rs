//! What feeds the dashboard: owned snapshots taken in the background ([`snapshot`]) from files or
//! a live cluster ([`cluster`]: watches, a reading round per refresh, the nodes' kernel logs read
//! when something suggests an OOM kill), and the fix keys' backend ([`cluster_fix`]). The
//! dashboard (`tui/`) only runs these and draws what they send.

pub mod cluster;
pub mod cluster_fix;
pub mod fix;
mod history_load;
pub mod kernel_logs;
pub mod oom_watch;
pub mod snapshot;

#[cfg(test)]
mod tests_focus;
#[cfg(test)]
mod tests_oom_source;

use std::sync::Arc;

use cluster::ClusterSource;
use cluster_fix::{ClientSlot, ClusterFix};
use fix::FixBackend;
use snapshot::{DataSource, FilesSource, Scope};

use super::options::{Namespaces, Options};

/// The dashboard's data source and fix backend for the options.
pub enum Sources {
    /// `--from`: files, which cannot be changed (no fix backend).
    Files(Box<FilesSource>),
    /// A cluster or the demo, and the backend of the fix keys (sharing its connection).
    Cluster(Box<ClusterSource>, Arc<dyn FixBackend>),
}

/// Open nothing yet: the sources connect in the background once the screen is up.
pub fn sources(opts: &Options) -> Sources {
    match opts.from_files() {
        Some(path) => Sources::Files(Box::new(FilesSource::new(path.to_path_buf(), opts.clone()))),
        None => {
            let slot = ClientSlot::default();
            let fix = ClusterFix::new(slot.clone(), opts.report_options());
            Sources::Cluster(
                Box::new(ClusterSource::new(opts.clone(), slot)),
                Arc::new(fix),
            )
        }
    }
}

/// The scope from `-n`/`-A`, else the source's default namespace.
pub fn initial_scope(namespaces: &Namespaces, source: &dyn DataSource) -> Scope {
    match namespaces {
        Namespaces::All => Scope { namespace: None },
        Namespaces::One(ns) => Scope {
            namespace: Some(ns.clone()),
        },
        Namespaces::Default => Scope {
            namespace: source.default_namespace(),
        },
    }
}
