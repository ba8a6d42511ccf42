//! Writing a node's host tree without touching what did not change: the simulator remembers a
//! hash of every file and every directory it wrote per node, so an unchanged file costs neither a
//! read nor a write, and a node's tree has a generation that moves only when some file, directory
//! or removal changed it (what the stored probe outputs are checked against, see `nodecpu`).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

/// What the simulator last wrote into one node's host tree.
#[derive(Debug, Default)]
pub struct Written {
    /// File path to the hash of its content.
    files: HashMap<PathBuf, u64>,
    dirs: HashSet<PathBuf>,
    /// Hash of the live pod directories and pids the last prune kept.
    live: Option<u64>,
    /// Moves whenever the tree's content changes.
    generation: u64,
    /// What the tree was last written from (`tick::tree_fingerprint`): the same inputs write
    /// the same files, so the write can be skipped.
    pub inputs: Option<u64>,
}

impl Written {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forget everything (the tree is rewritten in full next time).
    pub fn clear(&mut self) {
        let generation = self.generation + 1;
        *self = Written {
            generation,
            ..Written::default()
        };
    }
}

fn hash_of(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// One write of a node's tree: skips what `Written` says is already there.
pub struct TreeWriter<'a> {
    seen: &'a mut Written,
    changed: bool,
}

impl<'a> TreeWriter<'a> {
    pub fn new(seen: &'a mut Written) -> TreeWriter<'a> {
        TreeWriter {
            seen,
            changed: false,
        }
    }

    pub fn dir(&mut self, dir: &Path) -> io::Result<()> {
        if self.seen.dirs.contains(dir) {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        self.seen.dirs.insert(dir.to_path_buf());
        Ok(())
    }

    /// Write `content` to `path` unless it already holds it (atomically: a reader never sees a
    /// file half written or missing).
    pub fn file(&mut self, path: &Path, content: impl AsRef<[u8]>) -> io::Result<()> {
        let content = content.as_ref();
        let h = hash_of(content);
        if self.seen.files.get(path) == Some(&h) {
            return Ok(());
        }
        write_atomic(path, content)?;
        self.seen.files.insert(path.to_path_buf(), h);
        self.changed = true;
        Ok(())
    }

    /// Whether the set of live pod directories and pids differs from the last prune's (only
    /// then does the tree need pruning). Records it.
    pub fn live_changed(&mut self, dirs: &HashSet<PathBuf>, pids: &HashSet<String>) -> bool {
        let mut d: Vec<&PathBuf> = dirs.iter().collect();
        d.sort();
        let mut p: Vec<&String> = pids.iter().collect();
        p.sort();
        let mut h = DefaultHasher::new();
        d.hash(&mut h);
        p.hash(&mut h);
        let h = h.finish();
        let changed = self.seen.live != Some(h);
        self.seen.live = Some(h);
        changed
    }

    /// A directory was removed: forget what was written below it.
    pub fn removed(&mut self, dir: &Path) {
        self.seen.files.retain(|p, _| !p.starts_with(dir));
        self.seen.dirs.retain(|p| !p.starts_with(dir));
        self.changed = true;
    }

    /// Finish: the tree's generation (moved if anything changed).
    pub fn finish(self) -> u64 {
        if self.changed {
            self.seen.generation += 1;
        }
        self.seen.generation
    }
}

/// Replace a file's content in one step (write a hidden sibling, rename), so a reader never sees
/// it half written or missing. A file that already holds `content` is left alone (same inode).
pub fn write_atomic(path: &Path, content: impl AsRef<[u8]>) -> io::Result<()> {
    let content = content.as_ref();
    if fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, content)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn unchanged_files_are_not_rewritten_and_the_generation_moves_only_on_change() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.usage_in_bytes");
        let mut seen = Written::default();
        let mut w = TreeWriter::new(&mut seen);
        w.file(&f, "100\n").unwrap();
        let g1 = w.finish();
        let ino = fs::metadata(&f).unwrap().ino();
        let mut w = TreeWriter::new(&mut seen);
        w.file(&f, "100\n").unwrap();
        assert_eq!(w.finish(), g1, "same content: same generation");
        assert_eq!(
            fs::metadata(&f).unwrap().ino(),
            ino,
            "same content: same file"
        );
        let mut w = TreeWriter::new(&mut seen);
        w.file(&f, "200\n").unwrap();
        assert!(w.finish() > g1);
        assert_eq!(fs::read_to_string(&f).unwrap(), "200\n");
        assert!(!dir.path().join(".memory.usage_in_bytes.tmp").exists());
        // Without the record, an unchanged file is still left alone.
        write_atomic(&f, "200\n").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "200\n");
    }
}
