//! The real `kubectl-vmmem` binary as a child process: stdin on a pseudo-terminal (so `fix`
//! asks before applying, as it does for a person), stdout and stderr collected as they arrive,
//! signals sent by PID.

pub mod gate;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Proc {
    pub child: Child,
    /// The terminal's controller side: what is written here is typed on the child's stdin.
    tty: File,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

/// Start `kubectl-vmmem ARGS` with stdin on a new pseudo-terminal.
pub fn spawn(args: &[&str]) -> Proc {
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two fresh file descriptors we then own.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty failed: {}", std::io::Error::last_os_error());
    // Other tests of this process start children at the same time: they must not inherit the
    // terminal (std opens its own descriptors close-on-exec; openpty does not).
    for fd in [controller, terminal] {
        // SAFETY: fcntl on descriptors we own; F_SETFD only changes the close-on-exec flag.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just returned by openpty and are owned by nobody else.
    let (controller, terminal) = unsafe {
        (
            File::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"));
    // Start it as a non-interactive shell starts a background job, with SIGINT ignored: the
    // plugin must still answer Ctrl-C (it listens for it itself). Before it did, a test run in
    // the background waited 60 s for a child that never heard the signal.
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl-vmmem");
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    Proc {
        child,
        tty: controller,
        out,
        err,
    }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }
    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Wait until stdout or stderr holds `text`; panics with both after `timeout`.
    pub fn wait_for(&self, text: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.stdout().contains(text) || self.stderr().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "no {text:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Type a line on the child's terminal.
    pub fn type_line(&mut self, line: &str) {
        self.tty
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the terminal");
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the PID of our own child.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Wait for the exit (killing the child if it has not exited after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                // Let the readers drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return s;
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "kubectl-vmmem did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run to completion with stdin on a terminal that nobody types on.
pub fn run(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let mut p = spawn(args);
    let s = p.wait(timeout);
    (s, p.stdout(), p.stderr())
}
