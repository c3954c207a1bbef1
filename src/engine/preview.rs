//! The live read-only view of a sandbox's pane for the dashboard (D4): the visible screen
//! with its colours (`capture-pane -e`), never the scrollback.

use super::Deck;
use crate::error::Result;
use crate::sandbox::SandboxName;

impl Deck {
    /// The visible screen of `name`'s pane as text with ANSI colour escapes.
    pub fn capture_pane(&self, name: &str) -> Result<String> {
        let name = SandboxName::parse(name)?;
        self.tmux.capture(name.as_str(), 0, true)
    }
}
