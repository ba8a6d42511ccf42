//! The signals that end a session: Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed).
//! Whoever waits for them deletes its agent pods before the process ends: `list`, `fix` and
//! `oom --node` through [`interrupted`], the dashboard through [`StopSignals`].
//!
//! Once a handler is installed the process no longer dies of these signals by itself, so a
//! command that goes on after its agents are gone hands its [`StopSignals`] to
//! [`exit_on_signal`]: any later signal ends it at once, as an unhandled one would have.

/// The terminating signals, listened for from creation on: one that arrives while its owner is
/// busy elsewhere is kept until [`StopSignals::recv`] is called.
pub struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Start listening (in a Tokio runtime).
    pub fn new() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// The exit status a shell gives a process killed by the signal named `why`.
    pub fn exit_status(why: &str) -> i32 {
        match why {
            "hung up" => 128 + 1,
            "terminated" => 128 + 15,
            _ => 128 + 2,
        }
    }

    /// The next terminating signal, in words for the message that follows ("interrupted; the
    /// agent pods were deleted").
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "interrupted",
                _ = self.term.recv() => "terminated",
                _ = self.hup.recv() => "hung up",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

/// From now on, end the process at the next terminating signal (including one that arrived since
/// `stops` was created), saying which on stderr. For a command with nothing left to clean up
/// that may be blocked (a prompt, a long wait) where it cannot listen itself.
pub fn exit_on_signal(mut stops: StopSignals) {
    tokio::spawn(async move {
        let why = stops.recv().await;
        eprintln!("error: {why}");
        std::process::exit(StopSignals::exit_status(why));
    });
}

/// Resolves when the process is asked to stop: Ctrl-C, or on Unix SIGTERM or SIGHUP.
pub async fn interrupted() -> &'static str {
    match StopSignals::new() {
        Ok(mut s) => s.recv().await,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::{interrupted, StopSignals};

    /// SIGHUP (the terminal closing) ends a session like Ctrl-C does, and a signal that arrives
    /// while nobody waits is not lost.
    #[tokio::test]
    async fn hangup_interrupts() {
        let waiting = tokio::spawn(interrupted());
        // Let the handlers be installed before the signal is sent.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // SAFETY: raise only sends a signal to this process, whose SIGHUP handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        let why = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("SIGHUP was not seen")
            .unwrap();
        assert_eq!(why, "hung up");

        let mut stops = StopSignals::new().unwrap();
        // SAFETY: as above; the handler was installed by `new`.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let why = tokio::time::timeout(std::time::Duration::from_secs(5), stops.recv())
            .await
            .expect("a SIGHUP sent before recv was lost");
        assert_eq!(why, "hung up");
    }
}
