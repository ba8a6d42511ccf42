//! Reading an inventory from files: a manifest file, a folder of them, or a Harvester support
//! bundle (zip or extracted, with nested per-node zips holding kernel logs).

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::model::inventory::{Inventory, SourceKind};
use crate::parse::manifest::{self, kind_from_file_name, Object};

/// A kernel log found in the files (for `oom`).
#[derive(Debug, Clone)]
pub struct KernelLog {
    pub node: Option<String>,
    /// Where it was found, for messages.
    pub name: String,
    pub text: String,
}

/// Everything read from the files.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub inventory: Inventory,
    pub kernel_logs: Vec<KernelLog>,
    pub files_read: usize,
}

/// Caps on what one `--from` reads, so a crafted file cannot take this machine's memory: a zip
/// whose small entry unpacks to gigabytes, a sparse file, `/dev/zero`.
///
/// The defaults fit a real Harvester support bundle with room: its largest files are a
/// namespace's `pods.yaml` (about 15 KB per launcher pod: 75 MB at 5,000 VMs in one namespace)
/// and a node's `kernel.log` (the kernel's ring buffer is at most 32 MiB; journal exports of
/// several boots a few times that), so 256 MiB a file; everything kept together (only
/// manifests, kernel logs and nested node zips are read, other logs are skipped unread) stays
/// far below 1 GiB for hundreds of nodes. `--max-file-size` and `--max-total-size` raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most one file or zip entry may hold, unpacked.
    pub max_file_bytes: u64,
    /// The most all files kept in memory may hold together; also the most a zip file on disk
    /// may hold (it is read in place, not loaded).
    pub max_total_bytes: u64,
}

impl Limits {
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 << 20;
    pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1 << 30;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: Limits::DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: Limits::DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

/// Read `path` (file, folder or zip) within the default [`Limits`].
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    load_with(path, &Limits::default())
}

/// Read `path` (file, folder or zip) within `limits`.
pub fn load_with(path: &Path, limits: &Limits) -> anyhow::Result<Loaded> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = Reader::new(*limits);
    if meta.is_dir() {
        reader.walk(path, path)?;
    } else {
        let name = path.display().to_string();
        let file = open_regular(path, &name)?;
        let head = head_of(&file, &name)?;
        if !is_zip(&name, &head) && !interesting(&name) {
            let binary = head.contains(&0) || std::str::from_utf8(&head).is_err();
            bail!(
                "{name}: not a YAML/JSON manifest (.yaml, .yml, .json), a kernel log (kernel.log*, dmesg*) or a support bundle zip{}",
                if binary { " (it holds binary data)" } else { "" }
            );
        }
        reader.file(&name, file, &head)?;
    }
    let Reader {
        mut acc, pending, ..
    } = reader;
    parse_all(pending, &mut acc)?;
    Ok(acc)
}

/// Open `path` only if it is a regular file: a FIFO would block the open and the read, a
/// device (`/dev/zero`) never ends. Opened without blocking, then checked on the open file (no
/// window to swap the file between the check and the read).
fn open_regular(path: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot read {name}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {name}"))?;
    if !meta.is_file() {
        bail!(
            "{name}: not a regular file (it is {}); --from reads files, folders and zips only",
            file_type_words(&meta.file_type())
        );
    }
    Ok(file)
}

fn file_type_words(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

/// The first bytes of a file (to recognise a zip, or binary data), read in place.
fn head_of(file: &std::fs::File, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4096);
    let mut f = file;
    f.take(4096)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {name}"))?;
    f.seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot read {name}"))?;
    Ok(head)
}

/// What one load has read so far, and what it may still read.
struct Reader {
    limits: Limits,
    /// Bytes of manifests, kernel logs and nested zips held in memory now.
    held: u64,
    acc: Loaded,
    pending: Vec<Pending>,
}

impl Reader {
    fn new(limits: Limits) -> Reader {
        let mut acc = Loaded::default();
        acc.inventory.source = SourceKind::Files;
        Reader {
            limits,
            held: 0,
            acc,
            pending: Vec::new(),
        }
    }

    /// Refuse `size` bytes of `name` before reading them, if they pass a cap.
    fn admit(&self, name: &str, size: u64) -> anyhow::Result<()> {
        let Limits {
            max_file_bytes,
            max_total_bytes,
        } = self.limits;
        if size > max_file_bytes {
            bail!(
                "{name}: holds {}, more than the {} one file may hold (--max-file-size; a support bundle's files are far smaller)",
                bytes_words(size),
                bytes_words(max_file_bytes)
            );
        }
        if self.held.saturating_add(size) > max_total_bytes {
            bail!(
                "{name}: with it, the files read would hold more than {} together (--max-total-size)",
                bytes_words(max_total_bytes)
            );
        }
        Ok(())
    }

    /// A regular file: a zip is read in place, anything else loaded (within the caps).
    fn file(&mut self, name: &str, file: std::fs::File, head: &[u8]) -> anyhow::Result<()> {
        let size = file
            .metadata()
            .with_context(|| format!("cannot read {name}"))?
            .len();
        if is_zip(name, head) {
            if size > self.limits.max_total_bytes {
                bail!(
                    "{name}: the zip holds {}, more than {} (--max-total-size)",
                    bytes_words(size),
                    bytes_words(self.limits.max_total_bytes)
                );
            }
            let zip = zip::ZipArchive::new(std::io::BufReader::new(file))
                .with_context(|| format!("{name}: not a readable zip archive"))?;
            return self.zip(name, zip, 1);
        }
        self.admit(name, size)?;
        // A file may grow while it is read: it is held to the cap, not to its size above.
        let cap = self.limits.max_file_bytes;
        let bytes = read_capped(file, name, cap, cap)?;
        self.ingest(name, bytes, 0)
    }

    fn walk(&mut self, root: &Path, dir: &Path) -> anyhow::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let ft = std::fs::symlink_metadata(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            if ft.is_dir() {
                self.walk(root, &p)?;
            } else if ft.is_file() && interesting(&p.to_string_lossy()) {
                let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                let file = open_regular(&p, &rel)?;
                let head = head_of(&file, &rel)?;
                self.file(&rel, file, &head)?;
            }
        }
        Ok(())
    }
}
/// A manifest file waiting to be parsed.
struct Pending {
    name: String,
    bytes: Vec<u8>,
}

/// Parse manifests on all cores (files are independent), then merge in file order.
fn parse_all(pending: Vec<Pending>, acc: &mut Loaded) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let total: usize = pending.iter().map(|p| p.bytes.len()).sum();
    let per = total / threads + 1;
    // Contiguous groups of similar size keep the merge in file order.
    let mut groups: Vec<Vec<Pending>> = vec![Vec::new()];
    let mut size = 0;
    for p in pending {
        if size >= per {
            groups.push(Vec::new());
            size = 0;
        }
        size += p.bytes.len();
        if let Some(g) = groups.last_mut() {
            g.push(p);
        }
    }
    let results: Vec<anyhow::Result<Vec<Object>>> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|g| s.spawn(move || parse_group(g)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a manifest parser thread failed")))
            })
            .collect()
    });
    for objects in results {
        manifest::add_to_inventory(objects?, &mut acc.inventory);
    }
    Ok(())
}

fn parse_group(group: Vec<Pending>) -> anyhow::Result<Vec<Object>> {
    let mut out = Vec::new();
    for p in group {
        let text = String::from_utf8_lossy(&p.bytes);
        let hint = kind_from_file_name(&p.name);
        if hint.is_none() && !mentions_kind(&text) {
            continue;
        }
        out.extend(manifest::parse(&text, &p.name, hint)?);
    }
    Ok(out)
}

/// Like [`load_inventory_with`], within the default [`Limits`].
pub fn load_inventory(path: &Path) -> anyhow::Result<Loaded> {
    load_inventory_with(path, &Limits::default())
}

/// Like [`load_with`], and fail when the files hold no VM at all (never a silent empty report).
pub fn load_inventory_with(path: &Path, limits: &Limits) -> anyhow::Result<Loaded> {
    let loaded = load_with(path, limits)?;
    let inv = &loaded.inventory;
    if inv.vms.is_empty() && inv.vmis.is_empty() {
        bail!(
            "{}: found no VirtualMachine or VirtualMachineInstance objects in {} file(s) read (expected YAML/JSON manifests, `kubectl get -o yaml` output, or a Harvester support bundle)",
            path.display(),
            loaded.files_read
        );
    }
    Ok(loaded)
}

fn is_manifest(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

fn is_kernel_log(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.starts_with("kernel.log") || base.starts_with("dmesg")
}

fn interesting(name: &str) -> bool {
    is_manifest(name) || is_kernel_log(name) || name.to_ascii_lowercase().ends_with(".zip")
}

/// Kinds worth parsing: skip manifests that cannot hold any (a bundle has hundreds).
fn mentions_kind(text: &str) -> bool {
    [
        "VirtualMachine",
        "Pod",
        "KubeVirt",
        "Setting",
        "Node",
        "ResourceQuota",
        "Namespace",
    ]
    .iter()
    .any(|k| text.contains(k))
}

/// The node a kernel log belongs to, from bundle paths like `nodes/n1.zip!n1/logs/kernel.log`
/// or `nodes/n1/logs/kernel.log`.
fn node_of(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split(['/', '!']).collect();
    let logs = parts.iter().rposition(|p| *p == "logs")?;
    let node = parts.get(logs.checked_sub(1)?)?;
    let node = node.strip_suffix(".zip").unwrap_or(node);
    (!node.is_empty() && node != "nodes").then(|| node.to_string())
}

fn is_zip(name: &str, bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || name.to_ascii_lowercase().ends_with(".zip")
}

/// Zips inside zips deeper than this are refused (a bundle nests one level: node zips).
const MAX_ZIP_DEPTH: usize = 4;

impl Reader {
    /// Bytes of `name` in memory: a nested zip is opened, a kernel log or manifest kept.
    fn ingest(&mut self, name: &str, bytes: Vec<u8>, zip_depth: usize) -> anyhow::Result<()> {
        self.admit(name, bytes.len() as u64)?;
        if is_zip(name, &bytes) {
            if zip_depth >= MAX_ZIP_DEPTH {
                bail!(
                    "{name}: zip archives nested more than {MAX_ZIP_DEPTH} deep (not a support bundle)"
                );
            }
            let size = bytes.len() as u64;
            self.held += size;
            let zip = zip::ZipArchive::new(Cursor::new(&bytes))
                .with_context(|| format!("{name}: not a readable zip archive"))?;
            self.zip(name, zip, zip_depth + 1)?;
            // Its entries are kept (and counted) on their own; the archive itself goes.
            self.held -= size;
            return Ok(());
        }
        if is_kernel_log(name) {
            self.held += bytes.len() as u64;
            self.acc.files_read += 1;
            self.acc.kernel_logs.push(KernelLog {
                node: node_of(name),
                name: name.to_string(),
                text: String::from_utf8_lossy(&bytes).into_owned(),
            });
            return Ok(());
        }
        if is_manifest(name) {
            self.held += bytes.len() as u64;
            self.acc.files_read += 1;
            self.pending.push(Pending {
                name: name.to_string(),
                bytes,
            });
        }
        Ok(())
    }

    /// The interesting entries of a zip, each checked against the caps by its declared size
    /// before it is unpacked, and while it is unpacked (a declared size can lie).
    fn zip<R: Read + Seek>(
        &mut self,
        name: &str,
        mut zip: zip::ZipArchive<R>,
        zip_depth: usize,
    ) -> anyhow::Result<()> {
        for i in 0..zip.len() {
            let entry = zip
                .by_index(i)
                .with_context(|| format!("{name}: entry {i} is unreadable"))?;
            if entry.is_dir() || !interesting(entry.name()) {
                continue;
            }
            let inner = format!("{name}!{}", entry.name());
            let declared = entry.size();
            self.admit(&inner, declared)?;
            let buf = read_capped(entry, &inner, declared, self.limits.max_file_bytes)?;
            self.ingest(&inner, buf, zip_depth)?;
        }
        Ok(())
    }
}

/// Read all of `source`, which says it holds `declared` bytes, and never more than that or
/// `cap`: a stream that goes on past either is refused when it does, not after.
fn read_capped(source: impl Read, name: &str, declared: u64, cap: u64) -> anyhow::Result<Vec<u8>> {
    let limit = declared.min(cap);
    let mut buf = Vec::with_capacity(limit.min(64 << 20) as usize);
    source
        .take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("{name}: cannot read it"))?;
    if buf.len() as u64 > limit {
        if limit == cap {
            bail!(
                "{name}: holds more than the {} one file may hold (--max-file-size; a support bundle's files are far smaller)",
                bytes_words(cap)
            );
        }
        bail!(
            "{name}: holds more than the {} it declares (a damaged or crafted file)",
            bytes_words(declared)
        );
    }
    Ok(buf)
}

/// A size in words for a message: `256MiB (268435456 bytes)`.
fn bytes_words(b: u64) -> String {
    let h = crate::units::human(i64::try_from(b).unwrap_or(i64::MAX));
    format!("{h} ({b} bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_from_bundle_paths() {
        assert_eq!(
            node_of("b.zip!sb/nodes/n1.zip!n1/logs/kernel.log").as_deref(),
            Some("n1")
        );
        assert_eq!(
            node_of("sb/nodes/n2/logs/kernel.log.1").as_deref(),
            Some("n2")
        );
        assert_eq!(node_of("kernel.log"), None);
    }
}
