//! Peaks remembered across runs, like k9s keeps its state: one JSON file in the user's state
//! directory (`$XDG_STATE_HOME/kubectl-vmmem/`, else `~/.local/state/kubectl-vmmem/`) holding,
//! per cluster and VM UID, the highest overhead seen with its time and source and the memory
//! configuration it was measured under. Written atomically (a temporary file renamed over it)
//! under an advisory lock, merged with what another process wrote meanwhile (two dashboards),
//! bounded (VMs unseen for 30 days expire; at most 20,000 VMs), and never a reason to fail: a
//! broken file is set aside with a warning and a new one started.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::peaks::PeakTracker;

/// VMs not seen for this long are forgotten.
pub const EXPIRE_AFTER: i64 = 30 * 24 * 3600;
/// At most this many VMs in the whole file.
pub const MAX_VMS: usize = 20_000;
/// A file larger than this is not read (it was not written by us).
pub const MAX_FILE: u64 = 64 << 20;
const FILE: &str = "peaks.json";
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("neither XDG_STATE_HOME nor HOME is set: no place to remember peaks")]
    NoHome,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    /// Cluster (its API server URL) → that cluster's tracker.
    clusters: BTreeMap<String, PeakTracker>,
}

/// The state directory: `$XDG_STATE_HOME/kubectl-vmmem`, else `$HOME/.local/state/kubectl-vmmem`.
pub fn state_dir() -> Result<PathBuf, StoreError> {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("kubectl-vmmem"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/state/kubectl-vmmem")),
        None => Err(StoreError::NoHome),
    }
}

/// The peak store of one directory.
#[derive(Debug, Clone)]
pub struct PeakStore {
    dir: PathBuf,
}

impl PeakStore {
    pub fn new(dir: PathBuf) -> PeakStore {
        PeakStore { dir }
    }

    /// The store in the user's state directory.
    pub fn in_state_dir() -> Result<PeakStore, StoreError> {
        Ok(PeakStore::new(state_dir()?))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// What is stored for `cluster`; a missing file is an empty store, a broken one is moved
    /// aside (the warning says where) and read as empty.
    pub fn load(&self, cluster: &str) -> (PeakTracker, Vec<String>) {
        let mut warnings = Vec::new();
        let mut disk = self.read_all(&mut warnings);
        (disk.clusters.remove(cluster).unwrap_or_default(), warnings)
    }

    /// Merge `tracker` into what is stored for `cluster` (the other clusters are kept), expire,
    /// and write atomically under the lock. Returns warnings about a broken file set aside.
    pub fn save(
        &self,
        cluster: &str,
        tracker: &PeakTracker,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let _lock = Lock::take(&self.dir.join("peaks.lock"))?;
        let mut warnings = Vec::new();
        let mut disk = self.read_all(&mut warnings);
        let mut merged = tracker.clone();
        if let Some(stored) = disk.clusters.remove(cluster) {
            merged.merge_stored(stored);
        }
        for vm in merged.vms.values_mut() {
            vm.session = None;
        }
        disk.clusters.insert(cluster.to_string(), merged);
        for t in disk.clusters.values_mut() {
            t.expire(now - EXPIRE_AFTER, MAX_VMS);
        }
        disk.clusters.retain(|_, t| !t.vms.is_empty());
        let total: usize = disk.clusters.values().map(|t| t.vms.len()).sum();
        if total > MAX_VMS {
            // Across clusters: keep the most recently seen.
            let mut seen: Vec<i64> = disk
                .clusters
                .values()
                .flat_map(|t| t.vms.values().map(|v| v.seen))
                .collect();
            seen.sort_unstable();
            let oldest = seen[total - MAX_VMS];
            for t in disk.clusters.values_mut() {
                t.expire(oldest, MAX_VMS);
            }
        }
        disk.format = FORMAT;
        self.write_atomically(&disk)?;
        Ok(warnings)
    }

    fn read_all(&self, warnings: &mut Vec<String>) -> OnDisk {
        let path = self.path();
        let text = match read_bounded(&path) {
            Ok(Some(t)) => t,
            Ok(None) => return OnDisk::default(),
            Err(why) => {
                self.set_aside(&path, &why, warnings);
                return OnDisk::default();
            }
        };
        match serde_json::from_str::<OnDisk>(&text) {
            Ok(d) if d.format == FORMAT => d,
            Ok(d) => {
                let why = format!("format {} is not {FORMAT}", d.format);
                self.set_aside(&path, &why, warnings);
                OnDisk::default()
            }
            Err(e) => {
                self.set_aside(&path, &e.to_string(), warnings);
                OnDisk::default()
            }
        }
    }

    fn set_aside(&self, path: &Path, why: &str, warnings: &mut Vec<String>) {
        let aside = self.dir.join(format!("{FILE}.broken"));
        let moved = std::fs::rename(path, &aside).is_ok();
        warnings.push(if moved {
            format!(
                "the peak store {} could not be read ({why}); it was moved to {} and a new one is started",
                path.display(),
                aside.display()
            )
        } else {
            format!(
                "the peak store {} could not be read ({why}); peaks from earlier runs are not used",
                path.display()
            )
        });
    }

    fn write_atomically(&self, disk: &OnDisk) -> Result<(), StoreError> {
        let path = self.path();
        let tmp = self.dir.join(format!("{FILE}.{}.tmp", std::process::id()));
        let body = serde_json::to_vec(disk).map_err(|e| StoreError::Io {
            path: tmp.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&body).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }
}

/// The file's text; `None` when there is none; an error (as words) when it is not a regular
/// file, too large, or unreadable.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE {
        return Err(format!("{} bytes, more than {MAX_FILE}", meta.len()));
    }
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    Ok(Some(text))
}

/// An advisory lock on a file, released when dropped (the kernel releases it if we die).
struct Lock {
    _file: File,
}

impl Lock {
    fn take(path: &Path) -> Result<Lock, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor we own; blocks until the other writer is done.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc != 0 {
                return Err(StoreError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests;
