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
    if meta.is_dir() {
        walk(path, path, &mut acc)?;
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        ingest(&path.display().to_string(), &bytes, &mut acc)?;
    }
    Ok(acc)
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

fn walk(root: &Path, dir: &Path, acc: &mut Loaded) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let ft = std::fs::symlink_metadata(&p)
            .with_context(|| format!("cannot read {}", p.display()))?;
        if ft.is_dir() {
            walk(root, &p, acc)?;
        } else if ft.is_file() && interesting(&p.to_string_lossy()) {
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            ingest(&rel, &bytes, acc)?;
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

fn ingest(name: &str, bytes: &[u8], acc: &mut Loaded) -> anyhow::Result<()> {
    if bytes.starts_with(b"PK\x03\x04") || name.to_ascii_lowercase().ends_with(".zip") {
        return ingest_zip(name, bytes, acc);
    }
    if is_kernel_log(name) {
        acc.files_read += 1;
        acc.kernel_logs.push(KernelLog {
            node: node_of(name),
            name: name.to_string(),
            text: String::from_utf8_lossy(bytes).into_owned(),
        });
        return Ok(());
    }
    if !is_manifest(name) {
        return Ok(());
    }
    acc.files_read += 1;
    let text = String::from_utf8_lossy(bytes);
    if !mentions_kind(&text) {
        return Ok(());
    }
    let objects = manifest::parse(&text, name, kind_from_file_name(name))?;
    let inv = &mut acc.inventory;
    for obj in objects {
        match obj {
            Object::Vm(v) => inv.vms.push(*v),
            Object::Vmi(v) => inv.vmis.push(*v),
            Object::Pod(p) => inv.pods.push(*p),
            Object::Node(n) => inv.nodes.push(*n),
            Object::KubeVirt(k) => inv.kubevirts.push(*k),
            Object::HarvesterSetting(s) => {
                inv.harvester_settings.get_or_insert_with(Vec::new).push(*s)
            }
            Object::ResourceQuota(q) => inv.resource_quotas.push(*q),
        }
    }
    Ok(())
}

fn ingest_zip(name: &str, bytes: &[u8], acc: &mut Loaded) -> anyhow::Result<()> {
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
        ingest(&inner, &buf, acc)?;
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
