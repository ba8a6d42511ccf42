//! Which agent sessions this machine started, kept on this machine (not in the pods' labels,
//! which anyone who can list pods reads): one file per session in
//! `$XDG_STATE_HOME/kubectl-vmmem/agents/` (the directory of the peak store), named by the
//! session id and holding the creating process's id and start time. A later run's sweep deletes
//! the agents of a session recorded here whose process is gone; another machine's agents (no
//! record here) are left alone until their deadline, even when both machines share a host name.

use std::path::{Path, PathBuf};

use super::agent_spec::Session;

/// The session records of one state directory.
#[derive(Debug, Clone)]
pub struct Owners {
    /// `None`: no state directory (no HOME): nothing is recorded, nothing is known to be ours.
    dir: Option<PathBuf>,
}

/// The process that made a session: its id and its start time in clock ticks after boot
/// (`/proc/PID/stat` field 22), so a reused pid is not taken for the creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Creator {
    pid: u32,
    start: Option<u64>,
}

impl Owners {
    /// The records in the user's state directory (`agents/` below the peak store's).
    pub fn in_state_dir() -> Owners {
        Owners {
            dir: crate::history::store::state_dir()
                .ok()
                .map(|d| d.join("agents")),
        }
    }

    /// The records in `dir` (tests).
    pub fn at(dir: PathBuf) -> Owners {
        Owners { dir: Some(dir) }
    }

    /// A session id as written by [`Session::new`]: digits, a dash, hex digits. Anything else
    /// (a label someone else wrote) never names a file.
    fn valid_id(id: &str) -> bool {
        id.split_once('-').is_some_and(|(t, r)| {
            !t.is_empty()
                && !r.is_empty()
                && t.len() <= 20
                && r.len() <= 32
                && t.bytes().all(|b| b.is_ascii_digit())
                && r.bytes().all(|b| b.is_ascii_hexdigit())
        })
    }

    fn file(&self, id: &str) -> Option<PathBuf> {
        match &self.dir {
            Some(d) if Self::valid_id(id) => Some(d.join(id)),
            _ => None,
        }
    }

    /// Record that this process runs `session` (before its first agent is created). The
    /// directory is made private to the user.
    pub fn record(&self, session: &Session) -> std::io::Result<()> {
        let Some(path) = self.file(&session.id) else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let me = Creator {
            pid: std::process::id(),
            start: start_time(std::process::id()),
        };
        let start = me.start.map_or("-".to_string(), |s| s.to_string());
        std::fs::write(&path, format!("{} {start}\n", me.pid))
    }

    /// Forget `id` (its agents are deleted).
    pub fn forget(&self, id: &str) {
        if let Some(path) = self.file(id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Whether `id` is a session this machine recorded whose process is gone (killed before it
    /// could delete its agents).
    pub fn ours_and_gone(&self, id: &str) -> bool {
        let Some(text) = self.file(id).and_then(|p| std::fs::read_to_string(p).ok()) else {
            return false;
        };
        let mut fields = text.split_whitespace();
        let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
            // A record this tool did not write: ours, and no process to wait for.
            return true;
        };
        let start = fields.next().and_then(|s| s.parse::<u64>().ok());
        !alive(Creator { pid, start })
    }
}

/// Whether the creator still runs: its pid exists with the recorded start time.
fn alive(c: Creator) -> bool {
    if !Path::new("/proc/self").exists() {
        // No procfs: nothing can be known, so the process is taken to run.
        return true;
    }
    match (start_time(c.pid), c.start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold spaces and parens).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_session_is_ours_once_its_process_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let owners = Owners::at(dir.path().join("agents"));
        let s = Session::new(1_700_000_000);
        owners.record(&s).unwrap();
        // This process runs: not gone.
        assert!(!owners.ours_and_gone(&s.id));
        // Another machine's session (no record here): not ours.
        assert!(!owners.ours_and_gone("1700000000-00000000deadbeef"));
        // A record whose process has ended (a child that exited).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        std::fs::write(dir.path().join("agents/5-ab"), format!("{pid} 1\n")).unwrap();
        assert!(owners.ours_and_gone("5-ab"));
        // Our own pid with another start time: the pid was reused, the creator is gone.
        let me = std::process::id();
        std::fs::write(dir.path().join("agents/6-ab"), format!("{me} 1\n")).unwrap();
        assert!(owners.ours_and_gone("6-ab"));
        owners.forget(&s.id);
        assert!(!dir.path().join("agents").join(&s.id).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("agents"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn labels_never_name_a_file_outside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("victim"), "1 1\n").unwrap();
        let owners = Owners::at(dir.path().join("agents"));
        for id in [
            "../victim",
            "1-../../victim",
            "",
            "1-",
            "-ab",
            "1-xyz",
            "1/2-ab",
        ] {
            assert!(!owners.ours_and_gone(id), "{id}");
            owners.forget(id);
        }
        assert!(dir.path().join("victim").exists());
    }
}
