//! The simulated nodes' own CPUs. On a real cluster each node runs its probe on its own CPU; here
//! every node's probe runs on this one machine, so 200 nodes' probes at once cost what 200 nodes
//! would spend in parallel. Three things keep that honest and cheap:
//!
//! - Counter steps (`counter_period`, 0 = continuous): a node's cgroup and `/proc` files (and its
//!   kubelet's stats) show the memory model at the start of the current step, as a kernel or a
//!   kubelet that publishes its counters periodically would; between steps a node's host tree
//!   does not change unless its pods do.
//! - Stored probe output: when the node probe (`sh -c … assets/probe.sh`) runs against a node's
//!   tree, its output is kept with the tree's generation (which moves whenever any file of the
//!   tree changes). A later exec of the byte-same command into that node, finding the same
//!   generation, gets that output without running it again: byte for byte what a run now would
//!   print, since the probe reads nothing but the tree. It is answered after the exec latency
//!   plus the CPU time the stored run took (what the node itself would spend).
//! - A background worker ("the nodes' CPUs", one thread): at start it writes every node's tree,
//!   and at every counter step it rewrites the trees of the nodes exec'd into in the last 5
//!   minutes and runs the probe commands each was last asked for, so the next exec finds them
//!   ready.
//!
//! `fresh` (`kubectl vmmem sim --fresh-exec`) runs every exec for real and stores nothing.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::hosttree;
use super::tick::write_host_tree_at;
use super::world::World;

/// The tool's node probe (`assets/probe.sh`, the same file the tool carries): recognised in
/// exec commands so that its output can be prepared ahead, and run for real.
pub const PROBE_SCRIPT: &str = include_str!("../../assets/probe.sh");

/// Probe commands remembered per node for the background to prepare.
const LEARNED: usize = 2;
/// Stored outputs per node.
const STORED: usize = 4;
/// The background prepares nodes exec'd into within this long.
const WATCHED_FOR: Duration = Duration::from_secs(300);

/// One finished run of a probe command against one generation of a node's tree.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub command: Vec<String>,
    /// A virt-launcher container's own view (pod uid, container index), or the whole node.
    pub view: Option<(String, usize)>,
    pub generation: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// CPU time (user + system) the run took.
    pub took: Duration,
}

/// Counters of what the stored outputs saved.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuCounts {
    /// Execs answered from a stored output.
    pub served: u64,
    /// Probe runs for an exec.
    pub ran: u64,
    /// Probe runs by the background.
    pub prepared: u64,
}

#[derive(Debug, Default)]
pub struct NodeCpus {
    /// Seconds between counter steps; 0: the counters follow the model continuously.
    pub counter_period: f64,
    /// Run every exec for real; store nothing.
    pub fresh: bool,
    stored: HashMap<String, Vec<StoredRun>>,
    learned: HashMap<String, Vec<Vec<String>>>,
    /// The counter step each node was last prepared for.
    prepared: HashMap<String, u64>,
    /// When each node was last exec'd into.
    last_exec: HashMap<String, Instant>,
    pub counts: CpuCounts,
}

/// Whether `command` is the node probe (`["sh", "-c", SETTINGS + assets/probe.sh, …]`): a
/// command that reads nothing but the node's host tree, whose output can be stored.
pub fn is_probe(command: &[String]) -> bool {
    command.len() >= 3
        && command[0] == "sh"
        && command[1] == "-c"
        && command[2].ends_with(PROBE_SCRIPT)
}

impl NodeCpus {
    /// Model time the node counters show at model time `now`.
    pub fn counter_time(&self, now: f64) -> f64 {
        if self.counter_period > 0.0 {
            (now / self.counter_period).floor() * self.counter_period
        } else {
            now
        }
    }

    /// The counter step at `now` (0 when continuous).
    pub fn step(&self, now: f64) -> u64 {
        if self.counter_period > 0.0 {
            (now / self.counter_period).floor().max(0.0) as u64
        } else {
            0
        }
    }

    /// The stored output of `command` in `view` of `node` at tree `generation`, unless fresh.
    pub fn lookup(
        &self,
        node: &str,
        command: &[String],
        view: &Option<(String, usize)>,
        generation: u64,
    ) -> Option<&StoredRun> {
        if self.fresh {
            return None;
        }
        self.stored.get(node)?.iter().find(|r| {
            r.generation == generation && r.view == *view && r.command.as_slice() == command
        })
    }

    pub fn store(&mut self, node: &str, run: StoredRun) {
        if self.fresh {
            return;
        }
        let runs = self.stored.entry(node.to_string()).or_default();
        runs.retain(|r| !(r.view == run.view && r.command == run.command));
        runs.insert(0, run);
        runs.truncate(STORED);
    }

    /// Someone exec'd into a pod on `node`.
    pub fn exec_seen(&mut self, node: &str) {
        self.last_exec.insert(node.to_string(), Instant::now());
    }

    /// Whether the background should prepare `node` for `step`: not yet done, and either never
    /// prepared (its files are written once at start) or exec'd into lately.
    fn wants(&self, node: &str, step: u64) -> bool {
        match self.prepared.get(node) {
            Some(&s) if s == step => false,
            None => true,
            Some(_) => self
                .last_exec
                .get(node)
                .is_some_and(|t| t.elapsed() <= WATCHED_FOR),
        }
    }

    /// Remember a probe command an agent ran on `node` (the background prepares it).
    pub fn learn(&mut self, node: &str, command: &[String]) {
        let cmds = self.learned.entry(node.to_string()).or_default();
        if cmds.first().is_some_and(|c| c.as_slice() == command) {
            return;
        }
        cmds.retain(|c| c.as_slice() != command);
        cmds.insert(0, command.to_vec());
        cmds.truncate(LEARNED);
    }

    /// What the background and the stored outputs have done, for `/vmmem-sim/nodes`.
    pub fn status(&self, now: f64, nodes: usize) -> Value {
        let step = self.step(now);
        let prepared = self.prepared.values().filter(|&&s| s == step).count();
        let next = if self.counter_period > 0.0 {
            (step + 1) as f64 * self.counter_period - now
        } else {
            0.0
        };
        json!({
            "counterPeriodSeconds": self.counter_period,
            "step": step,
            "secondsToNextStep": next,
            "fresh": self.fresh,
            "nodes": nodes,
            "prepared": if self.counter_period > 0.0 { prepared } else { 0 },
            "served": self.counts.served,
            "ran": self.counts.ran,
            "preparedRuns": self.counts.prepared,
        })
    }
}

/// The environment a node exec runs in: its host tree as the node's `/sys/fs/cgroup` and
/// `/proc`, its kernel log, the tree's root (also the working directory) and the node's name.
pub fn exec_env(
    root: &Path,
    cgroup_root: &Path,
    proc_root: &Path,
    node: &str,
) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("VMMEM_CGROUP_ROOT", cgroup_root.to_path_buf()),
        ("VMMEM_PROC_ROOT", proc_root.to_path_buf()),
        ("VMMEM_KERNEL_LOG", hosttree::kernel_log(root)),
        ("VMMEM_HOST_ROOT", root.to_path_buf()),
        ("NODE_NAME", PathBuf::from(node)),
    ]
}

/// A finished command: stdout, stderr, exit code (`None`: a signal), CPU time.
pub type Finished = (Vec<u8>, Vec<u8>, Option<i32>, Duration);

/// Run a command to its end with no stdin, collecting its output and the CPU time it used
/// (blocking).
#[cfg(unix)]
pub fn run_collect(
    command: &[String],
    root: &Path,
    env: &[(&'static str, PathBuf)],
) -> std::io::Result<Finished> {
    let mut child = command_for(command, root, env).spawn()?;
    let pid = child.id() as libc::pid_t;
    let collected = collect(&mut child);
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid (std never reaps it: `child` is only dropped); the
    // rusage is a plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    if r != pid {
        return Err(std::io::Error::last_os_error());
    }
    let (out, err) = collected?;
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((out, err, code, tv(ru.ru_utime) + tv(ru.ru_stime)))
}

/// Elsewhere: the wall time stands in for the CPU time.
#[cfg(not(unix))]
pub fn run_collect(
    command: &[String],
    root: &Path,
    env: &[(&'static str, PathBuf)],
) -> std::io::Result<Finished> {
    let started = std::time::Instant::now();
    let mut child = command_for(command, root, env).spawn()?;
    let (out, err) = collect(&mut child)?;
    let code = child.wait()?.code();
    Ok((out, err, code, started.elapsed()))
}

fn command_for(
    command: &[String],
    root: &Path,
    env: &[(&'static str, PathBuf)],
) -> std::process::Command {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Read a child's stdout and stderr to their ends.
fn collect(child: &mut std::process::Child) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut err_pipe = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut e);
        }
        e
    });
    let mut out = Vec::new();
    if let Some(mut p) = child.stdout.take() {
        p.read_to_end(&mut out)?;
    }
    Ok((out, err_reader.join().unwrap_or_default()))
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

/// Prepare one node for the current counter step: write its tree, run the probe commands it was
/// last asked for against it (unless stored already). Returns false when the step moved on.
fn prepare_node(world: &Mutex<World>, node: &str, step: u64) -> bool {
    let (root, generation, todo) = {
        let mut w = lock(world);
        let now = w.now();
        if w.exec.cpus.step(now) != step {
            return false;
        }
        let Ok((root, generation)) = write_host_tree_at(&mut w, node) else {
            return true;
        };
        w.exec
            .written
            .insert(node.to_string(), std::time::Instant::now());
        let cpus = &w.exec.cpus;
        let todo: Vec<Vec<String>> = if cpus.fresh {
            Vec::new()
        } else {
            cpus.learned
                .get(node)
                .into_iter()
                .flatten()
                .filter(|c| cpus.lookup(node, c, &None, generation).is_none())
                .cloned()
                .collect()
        };
        (root, generation, todo)
    };
    let env = exec_env(
        &root,
        &hosttree::cgroup_root(&root),
        &hosttree::proc_root(&root),
        node,
    );
    for command in todo {
        let Ok((stdout, stderr, code, took)) = run_collect(&command, &root, &env) else {
            continue;
        };
        let mut w = lock(world);
        // Only what ran against the tree as it still is.
        let same = w
            .exec
            .trees
            .get(node)
            .is_some_and(|t| t.generation() == generation);
        if same {
            w.exec.cpus.counts.prepared += 1;
            w.exec.cpus.store(
                node,
                StoredRun {
                    command,
                    view: None,
                    generation,
                    stdout,
                    stderr,
                    code,
                    took,
                },
            );
        }
    }
    lock(world)
        .exec
        .cpus
        .prepared
        .insert(node.to_string(), step);
    true
}

/// Start the background worker (only with counter steps: with continuous counters nothing it
/// prepares would still hold when asked for). It ends when `stop` is set.
pub fn spawn_background(
    world: Arc<Mutex<World>>,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sim-node-cpus".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let todo = {
                    let w = lock(&world);
                    let cpus = &w.exec.cpus;
                    if cpus.counter_period <= 0.0 {
                        None
                    } else {
                        let step = cpus.step(w.now());
                        let nodes: Vec<String> = w
                            .nodes
                            .keys()
                            .filter(|n| cpus.wants(n, step))
                            .cloned()
                            .collect();
                        Some((step, nodes))
                    }
                };
                if let Some((step, nodes)) = todo {
                    for node in nodes {
                        if stop.load(Ordering::Relaxed) || !prepare_node(&world, &node, step) {
                            break;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), format!("{s}{}", PROBE_SCRIPT)]
    }

    #[test]
    fn counter_steps() {
        let mut c = NodeCpus::default();
        assert_eq!(c.counter_time(12.5), 12.5);
        c.counter_period = 10.0;
        assert_eq!(c.counter_time(12.5), 10.0);
        assert_eq!(c.step(29.9), 2);
    }

    #[test]
    fn stored_outputs_match_command_view_and_generation() {
        let mut c = NodeCpus::default();
        let run = |command: Vec<String>, generation| StoredRun {
            command,
            view: None,
            generation,
            stdout: b"out".to_vec(),
            stderr: Vec::new(),
            code: Some(0),
            took: Duration::ZERO,
        };
        c.store("n1", run(cmd("A=1\n"), 3));
        assert!(c.lookup("n1", &cmd("A=1\n"), &None, 3).is_some());
        assert!(
            c.lookup("n1", &cmd("A=1\n"), &None, 4).is_none(),
            "tree changed"
        );
        assert!(
            c.lookup("n1", &cmd("A=2\n"), &None, 3).is_none(),
            "other command"
        );
        assert!(
            c.lookup("n2", &cmd("A=1\n"), &None, 3).is_none(),
            "other node"
        );
        assert!(c
            .lookup("n1", &cmd("A=1\n"), &Some(("uid".into(), 1)), 3)
            .is_none());
        c.fresh = true;
        assert!(c.lookup("n1", &cmd("A=1\n"), &None, 3).is_none(), "fresh");
        assert!(is_probe(&cmd("")));
        assert!(!is_probe(&["sh".into(), "-c".into(), "date".into()]));
    }

    #[test]
    fn learned_commands_are_the_latest_distinct_ones() {
        let mut c = NodeCpus::default();
        for s in ["a", "b", "a", "c"] {
            c.learn("n", &cmd(s));
        }
        assert_eq!(c.learned["n"], vec![cmd("c"), cmd("a")]);
    }
}
