//! The live read-only view of a sandbox's pane for the dashboard (D4): the visible screen
//! with its colours (`capture-pane -e`), never the scrollback.

use std::process::{Command, Stdio};

use super::Deck;
use crate::error::{DeckError, IoContext, Result};
use crate::host::which;
use crate::sandbox::SandboxName;

impl Deck {
    /// The visible screen of `name`'s pane as text with ANSI colour escapes.
    pub fn capture_pane(&self, name: &str) -> Result<String> {
        let name = SandboxName::parse(name)?;
        // Exact target: a bare name would be a prefix match in tmux.
        let target = format!("={name}:");
        let binary = which("tmux").unwrap_or_else(|| "tmux".into());
        // No `-f`: capturing must never start a server, so an absent one is simply an error.
        let out = Command::new(binary)
            .arg("-S")
            .arg(self.tmux().socket())
            .args(["capture-pane", "-p", "-e", "-t", &target])
            .stdin(Stdio::null())
            .output()
            .context_io(|| "running tmux capture-pane".to_string())?;
        if !out.status.success() {
            return Err(DeckError::host(
                "tmux capture-pane",
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
