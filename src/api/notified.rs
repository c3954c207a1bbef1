//! What the engine last ran `notify.command` for, per sandbox, kept in the runtime dir: an
//! engine started after another (killed, crashed, ended when idle) does not tell again about
//! an agent that was already waiting when the old one told. Forgotten as soon as the agent's
//! state moves on, so the next time it waits is news again.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::engine::AgentReading;
use crate::engine::status::AgentState;
use crate::sandbox::SandboxId;

/// The file's name in the runtime dir.
pub const FILE_NAME: &str = "notified.json";

pub struct Ledger {
    path: PathBuf,
    told: HashMap<SandboxId, AgentState>,
}

impl Ledger {
    /// The ledger at `path`; a missing or unreadable one is empty (at worst one notice is
    /// repeated).
    pub fn open(path: PathBuf) -> Ledger {
        let told = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ledger { path, told }
    }

    /// The notices that are news, given every current agent reading; records them.
    pub fn news(
        &mut self,
        agents: &[AgentReading],
        notices: Vec<AgentReading>,
    ) -> Vec<AgentReading> {
        let before = self.told.clone();
        self.told.retain(|id, state| {
            agents
                .iter()
                .any(|a| &a.id == id && a.assessment.state == *state)
        });
        let fresh: Vec<AgentReading> = notices
            .into_iter()
            .filter(|n| self.told.get(&n.id) != Some(&n.assessment.state))
            .collect();
        for notice in &fresh {
            self.told.insert(notice.id.clone(), notice.assessment.state);
        }
        if self.told != before {
            self.save();
        }
        fresh
    }

    fn save(&self) {
        let Ok(text) = serde_json::to_vec(&self.told) else {
            return;
        };
        let temporary = self.path.with_extension("json.new");
        let written = crate::host::fs::write_private(&temporary, &text).and_then(|()| {
            std::fs::rename(&temporary, &self.path).map_err(|e| {
                crate::error::DeckError::io(format!("writing {}", self.path.display()), e)
            })
        });
        if let Err(e) = written {
            tracing::warn!("recording what was notified: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::{Assessment, Source};
    use crate::sandbox::{SandboxName, SandboxState};

    fn reading(state: AgentState) -> AgentReading {
        AgentReading {
            id: serde_json::from_str("\"00000000deadbeef\"").unwrap(),
            name: SandboxName::parse("q").unwrap(),
            sandbox: SandboxState::Running,
            assessment: Assessment::new(state, Source::Pane, "asks"),
        }
    }

    #[test]
    fn a_new_engine_does_not_tell_again_but_a_new_wait_is_news() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let waiting = reading(AgentState::Waiting);
        let mut first = Ledger::open(path.clone());
        let told = first.news(std::slice::from_ref(&waiting), vec![waiting.clone()]);
        assert_eq!(told.len(), 1);
        // The engine is killed; the next one reads the ledger.
        let mut second = Ledger::open(path.clone());
        assert!(
            second
                .news(std::slice::from_ref(&waiting), vec![waiting.clone()])
                .is_empty()
        );
        // The agent works, then waits again: news.
        let working = reading(AgentState::Working);
        assert!(second.news(&[working], vec![]).is_empty());
        assert_eq!(
            second
                .news(std::slice::from_ref(&waiting), vec![waiting.clone()])
                .len(),
            1
        );
    }
}
