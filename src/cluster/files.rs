//! Reading an inventory from files: a manifest file, a folder of them, or a Harvester support
//! bundle (zip or extracted, with nested per-node zips holding kernel logs).

use std::io::{Cursor, Read};
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

/// Read `path` (file, folder or zip).
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut acc = Loaded::default();
    acc.inventory.source = SourceKind::Files;
    let mut manifests = Vec::new();
    if meta.is_dir() {
        walk(path, path, &mut acc, &mut manifests)?;
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.display().to_string();
        if !is_zip(&name, &bytes) && !interesting(&name) {
            let binary = bytes.contains(&0) || std::str::from_utf8(&bytes).is_err();
            bail!(
                "{name}: not a YAML/JSON manifest (.yaml, .yml, .json), a kernel log (kernel.log*, dmesg*) or a support bundle zip{}",
                if binary { " (it holds binary data)" } else { "" }
            );
        }
        ingest(&name, bytes, &mut acc, &mut manifests, 0)?;
    }
    parse_all(manifests, &mut acc)?;
    Ok(acc)
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

/// Like [`load`], and fail when the files hold no VM at all (never a silent empty report).
pub fn load_inventory(path: &Path) -> anyhow::Result<Loaded> {
    let loaded = load(path)?;
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

fn walk(root: &Path, dir: &Path, acc: &mut Loaded, out: &mut Vec<Pending>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let ft = std::fs::symlink_metadata(&p)
            .with_context(|| format!("cannot read {}", p.display()))?;
        if ft.is_dir() {
            walk(root, &p, acc, out)?;
        } else if ft.is_file() && interesting(&p.to_string_lossy()) {
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            ingest(&rel, bytes, acc, out, 0)?;
        }
    }
    Ok(())
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

fn ingest(
    name: &str,
    bytes: Vec<u8>,
    acc: &mut Loaded,
    out: &mut Vec<Pending>,
    zip_depth: usize,
) -> anyhow::Result<()> {
    if is_zip(name, &bytes) {
        if zip_depth >= MAX_ZIP_DEPTH {
            bail!(
                "{name}: zip archives nested more than {MAX_ZIP_DEPTH} deep (not a support bundle)"
            );
        }
        return ingest_zip(name, &bytes, acc, out, zip_depth + 1);
    }
    if is_kernel_log(name) {
        acc.files_read += 1;
        acc.kernel_logs.push(KernelLog {
            node: node_of(name),
            name: name.to_string(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        });
        return Ok(());
    }
    if is_manifest(name) {
        acc.files_read += 1;
        out.push(Pending {
            name: name.to_string(),
            bytes,
        });
    }
    Ok(())
}

fn ingest_zip(
    name: &str,
    bytes: &[u8],
    acc: &mut Loaded,
    out: &mut Vec<Pending>,
    zip_depth: usize,
) -> anyhow::Result<()> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .with_context(|| format!("{name}: not a readable zip archive"))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{name}: entry {i} is unreadable"))?;
        if entry.is_dir() || !interesting(entry.name()) {
            continue;
        }
        let inner = format!("{name}!{}", entry.name());
        let mut buf = Vec::with_capacity(entry.size().min(64 << 20) as usize);
        entry
            .read_to_end(&mut buf)
            .with_context(|| format!("{inner}: cannot decompress"))?;
        drop(entry);
        ingest(&inner, buf, acc, out, zip_depth)?;
    }
    Ok(())
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
