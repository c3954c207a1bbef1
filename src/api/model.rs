//! The engine's truth as a client keeps it: the snapshot it got on connecting, with every
//! pushed event applied in order (`docs/protocol.md`: records and readings are replaced
//! whole, metrics and usage replace the old value).

use super::protocol::{Event, Snapshot};

impl Snapshot {
    /// Applies one event, as the engine applied it to its own truth.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::SandboxAdded { sandbox } | Event::SandboxChanged { sandbox } => {
                match self.sandboxes.iter_mut().find(|r| r.id == sandbox.id) {
                    Some(record) => *record = sandbox,
                    None => self.sandboxes.push(sandbox),
                }
            }
            Event::SandboxRemoved { id, .. } => {
                self.sandboxes.retain(|r| r.id != id);
                self.agents.retain(|a| a.id != id);
                self.metrics.remove(&id);
                self.held.remove(&id);
            }
            Event::AgentState { reading } => {
                match self.agents.iter_mut().find(|a| a.id == reading.id) {
                    Some(known) => *known = reading,
                    None => self.agents.push(reading),
                }
            }
            Event::Metrics { metrics } => self.metrics = metrics,
            Event::Usage { usage } => self.usage = Some(usage),
            Event::HostStats { host } => self.host = Some(host),
            Event::Held { id, held } => {
                if held.is_empty() {
                    self.held.remove(&id);
                } else {
                    self.held.insert(id, held);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sandbox::{SandboxRecord, SandboxState};

    #[test]
    fn events_add_replace_and_remove_records() {
        let mut model = Snapshot::default();
        let api = SandboxRecord::example("api", Path::new("/tmp/api"));
        model.apply(Event::SandboxAdded {
            sandbox: api.clone(),
        });
        let mut stopped = api.clone();
        stopped.state = SandboxState::Stopped;
        model.apply(Event::SandboxChanged {
            sandbox: stopped.clone(),
        });
        assert_eq!(model.sandboxes, vec![stopped]);
        model.apply(Event::SandboxRemoved {
            id: api.id.clone(),
            name: api.name.clone(),
        });
        assert!(model.sandboxes.is_empty());
    }
}
