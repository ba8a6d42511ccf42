//! A detached tmux session driven like a user at a terminal: start a shell command line in it,
//! send keys, read the screen, wait for text. Panics when tmux is missing, so a terminal test
//! fails loudly rather than pass without a terminal.

use std::process::Command;
use std::time::{Duration, Instant};

/// One tmux server (its own socket) running one session; killed on drop.
pub struct Tmux {
    socket: String,
    patience: Duration,
    poll: Duration,
}

impl Tmux {
    /// Run `script` (a `sh` command line) in a detached `cols`x`rows` session on the socket
    /// `socket`, with `env` set for it; `wait_for` then waits up to `patience`, reading the
    /// screen every `poll`.
    pub fn start(
        socket: String,
        script: &str,
        (cols, rows): (u16, u16),
        env: &[(&str, &str)],
        (patience, poll): (Duration, Duration),
    ) -> Tmux {
        if Command::new("tmux").arg("-V").output().is_err() {
            panic!("tmux is not installed: the terminal test needs it (`apt-get install tmux`; .ci/run installs it) and fails rather than pass without it");
        }
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &cols, "-y", &rows])
            .arg(script)
            .envs(env.iter().copied())
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        let t = Tmux {
            socket,
            patience,
            poll,
        };
        t.tmux(&["set-option", "-g", "escape-time", "0"]);
        t
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0"])
    }

    /// Send each of `keys` (tmux key names) with a pause after each, as a user types.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "0", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Type `text` into the dashboard's filter (`/`) and submit it.
    pub fn filter(&self, text: &str) {
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let mut keys = vec!["/"];
        keys.extend(chars.iter().map(String::as_str));
        keys.push("Enter");
        self.keys(&keys);
    }

    /// `filter` by `text`, then wait for a table of one VM.
    pub fn filter_to_one(&self, text: &str) {
        self.filter(text);
        self.wait_for("the filtered table", |s| s.contains("VMs: 1 "));
    }

    /// Open the selected VM `ns/name` and wait for its detail view.
    pub fn open_details(&self, vm: &str) {
        self.keys(&["Enter"]);
        let title = format!("{vm}  node");
        self.wait_for(&format!("{vm}'s details"), |s| s.contains(&title));
    }

    /// Wait until the screen satisfies `pred`, else fail with the screen.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_up_to(self.patience, what, pred)
    }

    pub fn wait_up_to(&self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > limit {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(self.poll);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The table row whose second column is `name`.
pub fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
}
