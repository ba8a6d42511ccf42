//! A real memory cgroup (v1) subtree below this process's own cgroup, laid out like a node's
//! kubepods tree, with helper processes inside. Dropping it kills the helpers and removes every
//! cgroup it made, also when a test fails half-way. Shared by tests/it/probe_kernel.rs and
//! benches/probe.rs.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The memory cgroup v1 directory of this process, or why there is none to build below.
pub fn own_memory_cgroup() -> Result<PathBuf, String> {
    let text = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path = text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            ctl.split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        })
        .next()
        .ok_or_else(|| {
            "/proc/self/cgroup has no memory controller line: this machine has no cgroup v1 memory \
             hierarchy (cgroup v2 only?)"
                .to_string()
        })?;
    let dir = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
    if !dir.join("memory.limit_in_bytes").is_file() {
        return Err(format!(
            "{} is not a cgroup v1 memory directory (no memory.limit_in_bytes)",
            dir.display()
        ));
    }
    Ok(dir)
}

pub struct Tree {
    /// The subtree's own cgroup directory (plays the memory hierarchy root).
    pub root: PathBuf,
    /// Plays the host's /sys/fs/cgroup: its `memory` entry is a symlink to `root`.
    pub fake: tempfile::TempDir,
    created: Vec<PathBuf>,
    /// The helpers started, at the index [`Tree::start`] returns; killed when the tree is dropped.
    pub children: Vec<Child>,
}

impl Tree {
    /// A fresh subtree named after `tag` and this process; stale ones of dead runs are removed.
    pub fn new(tag: &str) -> Result<Tree, String> {
        let base = own_memory_cgroup()?;
        sweep_stale(&base);
        let root = base.join(format!("vmmem-{tag}-{}", std::process::id()));
        if root.exists() {
            remove_tree(&root);
        }
        fs::create_dir(&root).map_err(|e| {
            format!(
                "cannot create a memory cgroup below {}: {e} (run as root with the cgroup v1 memory \
                 hierarchy writable)",
                base.display()
            )
        })?;
        let fake = tempfile::tempdir().map_err(|e| e.to_string())?;
        let tree = Tree {
            root: root.clone(),
            fake,
            created: vec![root.clone()],
            children: Vec::new(),
        };
        std::os::unix::fs::symlink(&root, tree.fake.path().join("memory"))
            .map_err(|e| format!("symlink: {e}"))?;
        Ok(tree)
    }

    /// Create the cgroups of `rel` (like `mkdir -p`) below the subtree root.
    pub fn mkdir(&mut self, rel: &str) -> Result<PathBuf, String> {
        let mut dir = self.root.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
                self.created.push(dir.clone());
            }
        }
        Ok(dir)
    }

    pub fn set(&self, cgroup: &Path, file: &str, value: &str) -> Result<(), String> {
        fs::write(cgroup.join(file), value)
            .map_err(|e| format!("writing {value} to {}/{file}: {e}", cgroup.display()))
    }

    /// Start `exe args` inside `cgroup`, let it allocate, and wait until it says it is ready.
    pub fn spawn(&mut self, exe: &Path, args: &[String], cgroup: &Path) -> Result<u32, String> {
        let i = self.start(exe, args, cgroup)?;
        let child = &mut self.children[i];
        let mut line = String::new();
        let out = child.stdout.take().ok_or("no stdout")?;
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err(format!(
                "{} {args:?} did not get ready: {line:?}",
                exe.display()
            ));
        }
        Ok(child.id())
    }

    /// Start `exe args` inside `cgroup` without waiting (it may get killed); its index.
    pub fn start(&mut self, exe: &Path, args: &[String], cgroup: &Path) -> Result<usize, String> {
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
        let pid = child.id();
        self.children.push(child);
        let i = self.children.len() - 1;
        self.set(cgroup, "cgroup.procs", &pid.to_string())?;
        let mut stdin = self.children[i].stdin.take().ok_or("no stdin")?;
        stdin.write_all(b"g").map_err(|e| e.to_string())?;
        Ok(i)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut left = Vec::new();
        for dir in self.created.iter().rev() {
            if !rmdir_retrying(dir) {
                left.push(dir.display().to_string());
            }
        }
        if !left.is_empty() {
            eprintln!("ERROR: could not remove test cgroups: {}", left.join(", "));
        }
    }
}

/// rmdir a cgroup, retrying while its killed processes finish exiting.
fn rmdir_retrying(dir: &Path) -> bool {
    for _ in 0..250 {
        match fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

/// Remove a cgroup directory and its child cgroups (deepest first).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// SIGKILL the helpers a dead run left in its subtree (only ever our own memhold copies).
fn kill_inside(dir: &Path) {
    if let Ok(pids) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                kill_inside(&e.path());
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
}

/// Remove subtrees left by runs that were killed before their Drop ran (their PID is gone).
fn sweep_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("vmmem-")
            .and_then(|r| r.rsplit('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            kill_inside(&e.path());
            remove_tree(&e.path());
        }
    }
}

/// Build tests/support/memhold.c into `dir` and copy it under each of `names` (the kernel shows a
/// process by its executable's file name, cut to 15 characters).
pub fn helpers(dir: &Path, names: &[&str]) -> Result<HashMap<String, PathBuf>, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/memhold.c");
    let exe = dir.join("memhold-build");
    let out = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run cc to build the test helper: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut map = HashMap::new();
    for name in names {
        let p = dir.join(name);
        fs::copy(&exe, &p).map_err(|e| format!("copy helper to {}: {e}", p.display()))?;
        map.insert(name.to_string(), p);
    }
    Ok(map)
}

/// A made-up 64-hex container id.
pub fn container_id(seed: u64) -> String {
    let mut s = String::new();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while s.len() < 64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(64);
    s
}
