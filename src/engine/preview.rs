//! The live read-only view of a sandbox's pane for the dashboard (D4): the visible screen
//! with its colours (`capture-pane -e`), never the scrollback.

use super::Deck;
use crate::error::Result;
use crate::sandbox::SandboxName;

impl Deck {
    /// The visible screen of `name`'s pane as text with ANSI colour escapes.
    pub fn capture_pane(&self, name: &str) -> Result<String> {
        let name = SandboxName::parse(name)?;
        // The registry as stored (no reconcile: this runs on every frame) says which server.
        let record = self.registry.load()?.into_iter().find(|r| r.name == name);
        match record {
            Some(record) => self.tmux_of(&record).capture(name.as_str(), 0, true),
            None => self.tmux.capture(name.as_str(), 0, true),
        }
    }
}
