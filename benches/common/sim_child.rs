//! The simulator as a child process of a bench (`kubectl-vmmem sim …`), stopped when dropped.
//! Shared by `scale` and `history`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `kubectl-vmmem sim` and the kubeconfig it wrote.
pub struct SimChild {
    pub child: Child,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl SimChild {
    /// Start `plugin sim ARGS --write-kubeconfig … --host-root …` and wait until it serves. The
    /// nodes' cgroup and proc files the simulator writes stand in for the kernel's in-memory
    /// cgroupfs and procfs: they are kept in memory too (tmpfs) where there is one, so the disk
    /// does not time the simulator. `prepare` may write files (a scenario) into the temp dir
    /// first and returns the arguments that name them.
    pub fn start(
        plugin: &str,
        args: &[String],
        prepare: impl FnOnce(&Path) -> Vec<String>,
    ) -> SimChild {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("vmmem-bench-")
                .tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("temp dir");
        let extra = prepare(dir.path());
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(plugin)
            .arg("sim")
            .args(args)
            .args(extra)
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .arg("--host-root")
            .arg(dir.path().join("hosts"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl-vmmem sim");
        let mut lines = BufReader::new(child.stderr.take().expect("sim stderr")).lines();
        // Serving: the API's URL (with its secret path), CA and token are in the kubeconfig only.
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("kubectl-vmmem sim exited before serving");
            };
            if line.contains(" serving at ") {
                break;
            }
        }
        // Keep draining its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        SimChild {
            child,
            kubeconfig,
            _dir: dir,
        }
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        // SAFETY: signals the child this struct started, by its PID.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
