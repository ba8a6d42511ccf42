//! Entering and leaving the full-screen terminal. The terminal is restored when the guard drops
//! (quit, error, SIGTERM ends the loop) and by ratatui's panic hook on a panic.

use std::io::IsTerminal;

use anyhow::{bail, Context};
use ratatui::DefaultTerminal;

pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Raw mode + alternate screen, with a panic hook that restores both first.
    pub fn enter() -> anyhow::Result<TerminalGuard> {
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            bail!("the dashboard needs a terminal; for plain output use `kubectl vmmem list`");
        }
        let terminal = ratatui::try_init().context("setting up the terminal")?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
