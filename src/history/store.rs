//! Peaks remembered across runs, like k9s keeps its state: one JSON file per cluster in the
//! user's state directory (`$XDG_STATE_HOME/kubectl-vmmem/peaks/`, else
//! `~/.local/state/kubectl-vmmem/peaks/`) holding, per VM UID, the highest overhead seen with its
//! time and source and the memory configuration it was measured under. Written atomically (a
//! temporary file renamed over it) under an advisory lock, merged with what another process wrote
//! meanwhile (two dashboards), bounded (VMs unseen for 30 days expire, at most 20,000 VMs a
//! cluster, a cluster's file untouched for 30 days is removed), and never a reason to fail: a
//! broken file is set aside with a warning and a new one started.
//!
//! One file per cluster, so that a dashboard reads and writes only its own cluster's peaks (one
//! file for every cluster made each save read them all: 22 MB and some 50 MiB of memory a minute
//! on a machine that had seen 20,000 VMs). A save reads the file only when another process wrote
//! it since this one did. The single file of earlier versions (`peaks.json`) is split into these
//! at the first load.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::peaks::PeakTracker;

/// VMs not seen for this long are forgotten (and a cluster's file not written for this long).
pub const EXPIRE_AFTER: i64 = 30 * 24 * 3600;
/// At most this many VMs of one cluster.
pub const MAX_VMS: usize = 20_000;
/// A file larger than this is not read (it was not written by us).
pub const MAX_FILE: u64 = 64 << 20;
/// The folder of the clusters' files, in the state directory.
const DIR: &str = "peaks";
/// Earlier versions' single file for every cluster (format 1).
const OLD_FILE: &str = "peaks.json";
const OLD_FORMAT: u32 = 1;
const FORMAT: u32 = 2;

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

/// Earlier versions' file: cluster (its API server URL) → that cluster's tracker.
#[derive(Debug, Default, Deserialize)]
struct OldFile {
    format: u32,
    clusters: BTreeMap<String, PeakTracker>,
}

/// One cluster's file, as read.
#[derive(Debug, Deserialize)]
struct ClusterFile {
    format: u32,
    cluster: String,
    peaks: PeakTracker,
}

/// One cluster's file, as written (borrowing the tracker: no copy).
#[derive(Serialize)]
struct ClusterFileRef<'a> {
    format: u32,
    cluster: &'a str,
    peaks: &'a PeakTracker,
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

/// What identifies a version of a file: a file renamed over it, or rewritten, differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

/// The peak store of one directory.
#[derive(Debug, Clone)]
pub struct PeakStore {
    dir: PathBuf,
    /// The cluster files as this process last read or wrote them: unchanged since, a save need
    /// not read them again.
    known: Arc<Mutex<BTreeMap<PathBuf, Stamp>>>,
}

impl PeakStore {
    pub fn new(dir: PathBuf) -> PeakStore {
        PeakStore {
            dir,
            known: Arc::default(),
        }
    }

    /// The store in the user's state directory.
    pub fn in_state_dir() -> Result<PeakStore, StoreError> {
        Ok(PeakStore::new(state_dir()?))
    }

    /// The file of `cluster`: its host and port to be found by eye, and a hash of its whole
    /// URL to be told apart (the URL's path is left out of the name: it can be a secret).
    pub fn path_for(&self, cluster: &str) -> PathBuf {
        self.dir
            .join(DIR)
            .join(format!("{}.json", file_stem(cluster)))
    }

    /// What is stored for `cluster`; a missing file is an empty store, a broken one is moved
    /// aside (the warning says where) and read as empty. Splits an earlier version's single
    /// file first, and removes the files of clusters not seen for [`EXPIRE_AFTER`].
    pub fn load(&self, cluster: &str) -> (PeakTracker, Vec<String>) {
        let mut warnings = Vec::new();
        self.split_old_file(&mut warnings);
        self.remove_expired_files(SystemTime::now());
        let path = self.path_for(cluster);
        let tracker = self.read_cluster(&path, cluster, &mut warnings);
        (tracker.unwrap_or_default(), warnings)
    }

    /// What is stored for `cluster`, read without changing the store (no lock, nothing moved
    /// aside or removed): for commands that only read it. A file that cannot be read gives a
    /// warning and no tracker.
    pub fn peek(&self, cluster: &str) -> (Option<PeakTracker>, Vec<String>) {
        let mut warnings = Vec::new();
        let path = self.path_for(cluster);
        let tracker = self.read_cluster_as(&path, cluster, &mut warnings, Broken::Leave);
        (tracker, warnings)
    }

    /// Take what another process stored for `cluster` into `tracker` (the file is read again
    /// only when another process wrote it since this store last read or wrote it, so `tracker`
    /// must be the one this store loaded for the cluster, grown since), expire, and write it
    /// atomically under the lock. Returns warnings about a broken file set aside.
    pub fn save(
        &self,
        cluster: &str,
        tracker: &mut PeakTracker,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let path = self.path_for(cluster);
        let dir = self.dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let _lock = Lock::take(&path.with_extension("lock"))?;
        let mut warnings = Vec::new();
        let unchanged = self
            .known_stamp(&path)
            .is_some_and(|s| Some(s) == stamp(&path));
        if !unchanged {
            if let Some(stored) = self.read_cluster(&path, cluster, &mut warnings) {
                tracker.merge_stored(stored);
            }
        }
        tracker.expire(now - EXPIRE_AFTER, MAX_VMS);
        self.write_cluster(&path, cluster, tracker)?;
        Ok(warnings)
    }

    fn known_stamp(&self, path: &Path) -> Option<Stamp> {
        self.known.lock().ok()?.get(path).cloned()
    }

    fn remember_stamp(&self, path: &Path) {
        if let (Ok(mut known), Some(s)) = (self.known.lock(), stamp(path)) {
            known.insert(path.to_path_buf(), s);
        }
    }

    /// One cluster's tracker from its file: `None` when there is none, or it was broken (then
    /// set aside with a warning) or belongs to another cluster (a hash collision: not used).
    fn read_cluster(
        &self,
        path: &Path,
        cluster: &str,
        warnings: &mut Vec<String>,
    ) -> Option<PeakTracker> {
        self.read_cluster_as(path, cluster, warnings, Broken::SetAside)
    }

    fn read_cluster_as(
        &self,
        path: &Path,
        cluster: &str,
        warnings: &mut Vec<String>,
        broken: Broken,
    ) -> Option<PeakTracker> {
        let set_aside = |why: &str, warnings: &mut Vec<String>| match broken {
            Broken::SetAside => self.set_aside(path, why, warnings),
            Broken::Leave => warnings.push(format!(
                "the peak store {} could not be read ({why}); peaks from earlier runs are not used",
                path.display()
            )),
        };
        let bytes = match read_bounded(path) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(why) => {
                set_aside(&why, warnings);
                return None;
            }
        };
        match serde_json::from_slice::<ClusterFile>(&bytes) {
            Ok(f) if f.format != FORMAT => {
                let why = format!("format {} is not {FORMAT}", f.format);
                set_aside(&why, warnings);
                None
            }
            Ok(f) if f.cluster != cluster => {
                warnings.push(format!(
                    "the peak store {} holds another cluster's peaks ({}); peaks from earlier runs are not used",
                    path.display(),
                    f.cluster
                ));
                None
            }
            Ok(f) => {
                self.remember_stamp(path);
                Some(f.peaks)
            }
            Err(e) => {
                set_aside(&e.to_string(), warnings);
                None
            }
        }
    }

    fn set_aside(&self, path: &Path, why: &str, warnings: &mut Vec<String>) {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".broken");
        let aside = PathBuf::from(aside);
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

    /// Write one cluster's file (streamed: no copy of the text in memory) and remember it.
    fn write_cluster(
        &self,
        path: &Path,
        cluster: &str,
        tracker: &PeakTracker,
    ) -> Result<(), StoreError> {
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mut out = BufWriter::new(file);
        let body = ClusterFileRef {
            format: FORMAT,
            cluster,
            peaks: tracker,
        };
        serde_json::to_writer(&mut out, &body).map_err(|e| StoreError::Io {
            path: tmp.clone(),
            source: std::io::Error::other(e),
        })?;
        let file = out.into_inner().map_err(|e| StoreError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        self.remember_stamp(path);
        Ok(())
    }

    /// Split an earlier version's single file into the clusters' files (merged with any that
    /// exist), then remove it; a broken one is set aside as before.
    fn split_old_file(&self, warnings: &mut Vec<String>) {
        let old = self.dir.join(OLD_FILE);
        if !old.exists() {
            return;
        }
        let Ok(_lock) = Lock::take(&self.dir.join("peaks.lock")) else {
            return;
        };
        let bytes = match read_bounded(&old) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(why) => return self.set_aside(&old, &why, warnings),
        };
        let file = match serde_json::from_slice::<OldFile>(&bytes) {
            Ok(f) if f.format == OLD_FORMAT => f,
            Ok(f) => {
                let why = format!("format {} is not {OLD_FORMAT}", f.format);
                return self.set_aside(&old, &why, warnings);
            }
            Err(e) => return self.set_aside(&old, &e.to_string(), warnings),
        };
        drop(bytes);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for (cluster, mut tracker) in file.clusters {
            if let Err(e) = self.save(&cluster, &mut tracker, now) {
                warnings.push(format!(
                    "the peak store {} could not be split into one file per cluster ({e}); it is kept",
                    old.display()
                ));
                return;
            }
        }
        let _ = std::fs::remove_file(&old);
    }

    /// Remove the files of clusters not written for [`EXPIRE_AFTER`] (every VM in them has
    /// expired).
    fn remove_expired_files(&self, now: SystemTime) {
        let Ok(entries) = std::fs::read_dir(self.dir.join(DIR)) else {
            return;
        };
        let Some(oldest) = now.checked_sub(Duration::from_secs(EXPIRE_AFTER as u64)) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let json = path.extension().is_some_and(|x| x == "json");
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < oldest);
            if json && old {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("lock"));
            }
        }
    }
}

/// `host_port-<16 hex digits of a 64-bit FNV-1a hash of the whole URL>`.
/// What reading a cluster's file does with one it cannot read.
#[derive(Clone, Copy)]
enum Broken {
    /// Move it aside, so the next save starts a new one.
    SetAside,
    /// Leave it as it is (a command that only reads the store).
    Leave,
}

fn file_stem(cluster: &str) -> String {
    let rest = cluster.split_once("://").map_or(cluster, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let readable: String = authority
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '_',
        })
        .collect();
    let hash = cluster.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{readable}-{hash:016x}")
}

/// The file's bytes; `None` when there is none; an error (as words) when it is not a regular
/// file, too large, or unreadable.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, String> {
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
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    Ok(Some(bytes))
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
