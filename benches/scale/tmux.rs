//! The real dashboard (`kubectl-vmmem top -A --refresh 2s`) in a 200x50 tmux pane against the
//! simulator, its RSS read from `/proc/PID/status` while it runs: what a user who leaves it open
//! sees, beside the headless refresh path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::PLUGIN;

/// The dashboard in its own tmux server; the server is killed (by its socket) when dropped.
pub struct TmuxDashboard {
    socket: String,
    pub pid: u32,
    _dir: tempfile::TempDir,
}

/// Fields of a process's `/proc/PID/status` (the number: KiB for the memory ones), 0 when
/// missing.
pub fn status_fields<const N: usize>(pid: u32, keys: [&str; N]) -> [i64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    keys.map(|key| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    })
}

/// VmRSS and VmHWM of a process, in KiB.
pub fn rss_hwm(pid: u32) -> (i64, i64) {
    let [rss, hwm] = status_fields(pid, ["VmRSS", "VmHWM"]);
    (rss, hwm)
}

impl TmuxDashboard {
    /// Start `top -A` against `kubeconfig` (with `extra` flags) and wait until it runs.
    pub fn start(kubeconfig: &Path, extra: &[&str]) -> TmuxDashboard {
        if Command::new("tmux").arg("-V").output().is_err() {
            panic!("tmux is not installed: the benchmark measures the real dashboard in it (`apt-get install tmux`)");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile: PathBuf = dir.path().join("pid");
        let socket = format!("vmmem-scale-{}", std::process::id());
        let script = format!(
            "sh -c 'echo $$ > \"{}\"; exec \"{PLUGIN}\" --kubeconfig \"{}\" top -A --refresh 2s {} 2>\"{}\"'",
            pidfile.display(),
            kubeconfig.display(),
            extra.join(" "),
            dir.path().join("stderr").display(),
        );
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "50"]);
        // The benchmark's own state directory (set in main) reaches the dashboard.
        if let Some(state) = std::env::var_os("XDG_STATE_HOME") {
            cmd.arg("-e")
                .arg(format!("XDG_STATE_HOME={}", state.to_string_lossy()));
        }
        let ok = cmd.arg(&script).status().expect("tmux").success();
        assert!(ok, "tmux new-session failed");
        let until = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            assert!(
                Instant::now() < until,
                "the dashboard did not start in tmux"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        TmuxDashboard {
            socket,
            pid,
            _dir: dir,
        }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the dashboard process is still there.
    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Wait until the table shows rows (a VM name on screen), up to `within`.
    pub fn wait_for_rows(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.screen().contains("vm-0") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    }
}

impl Drop for TmuxDashboard {
    fn drop(&mut self) {
        // `q` lets the dashboard delete its agent pods; then the server goes.
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0", "q"])
            .status();
        let until = Instant::now() + Duration::from_secs(30);
        while self.alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// What the real dashboard held over a run.
#[derive(Debug, Clone, Default)]
pub struct TmuxResult {
    pub seconds: f64,
    /// Peak RSS (VmHWM) at the end, KiB.
    pub hwm_kib: i64,
    /// RSS at the end, KiB.
    pub rss_kib: i64,
    /// CPU (user+sys) over the run, seconds.
    pub cpu: f64,
}

/// Run the dashboard in tmux for `seconds` after its first screen of rows.
pub fn measure(kubeconfig: &Path, seconds: u64) -> TmuxResult {
    let d = TmuxDashboard::start(kubeconfig, &[]);
    assert!(
        d.wait_for_rows(Duration::from_secs(300)),
        "the dashboard in tmux showed no rows within 300 s; its screen:\n{}",
        d.screen()
    );
    let cpu0 = super::proc_cpu(d.pid);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(seconds) {
        assert!(d.alive(), "the dashboard in tmux exited");
        std::thread::sleep(Duration::from_secs(1));
    }
    let (rss_kib, hwm_kib) = rss_hwm(d.pid);
    let screen = d.screen();
    if screen.contains("STALE") {
        eprintln!("warning: the dashboard in tmux showed STALE data (machine too busy?)");
    }
    TmuxResult {
        seconds: t0.elapsed().as_secs_f64(),
        hwm_kib,
        rss_kib,
        cpu: super::proc_cpu(d.pid) - cpu0,
    }
}
