//! What the engine last saw, and the events that take a client from one reading to the next.
//! Pure: the publisher feeds it readings and sends what it returns.

use std::collections::HashMap;

use super::protocol::{Event, Snapshot};
use crate::egress::held::Held;
use crate::engine::AgentReading;
use crate::engine::host_stats::HostStats;
use crate::engine::status::{AgentState, should_notify};
use crate::engine::usage::UsageSummary;
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord};

/// The engine's current truth, which every new client gets as its snapshot.
#[derive(Debug, Default)]
pub struct Live {
    snapshot: Snapshot,
    /// Whether agent states were read once: a state found at the first reading is no
    /// news, except waiting (the TUI's rule).
    agents_read: bool,
}

impl Live {
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// New records: added, changed and removed sandboxes.
    pub fn records(&mut self, records: Vec<SandboxRecord>) -> Vec<Event> {
        let before: HashMap<&SandboxId, &SandboxRecord> =
            self.snapshot.sandboxes.iter().map(|r| (&r.id, r)).collect();
        let mut events = Vec::new();
        for record in &records {
            match before.get(&record.id) {
                None => events.push(Event::SandboxAdded {
                    sandbox: record.clone(),
                }),
                Some(old) if *old != record => events.push(Event::SandboxChanged {
                    sandbox: record.clone(),
                }),
                Some(_) => {}
            }
        }
        for old in &self.snapshot.sandboxes {
            if !records.iter().any(|r| r.id == old.id) {
                events.push(Event::SandboxRemoved {
                    id: old.id.clone(),
                    name: old.name.clone(),
                });
            }
        }
        self.snapshot.sandboxes = records;
        // A removed sandbox's agent and metrics go with it.
        let ids: Vec<SandboxId> = self
            .snapshot
            .sandboxes
            .iter()
            .map(|r| r.id.clone())
            .collect();
        self.snapshot.agents.retain(|a| ids.contains(&a.id));
        self.snapshot.metrics.retain(|id, _| ids.contains(id));
        events
    }

    /// New agent readings: an event per changed one, and the readings that deserve a
    /// notification (`notify.command`).
    pub fn agents(&mut self, readings: Vec<AgentReading>) -> (Vec<Event>, Vec<AgentReading>) {
        let mut events = Vec::new();
        let mut notices = Vec::new();
        for reading in &readings {
            let before = self.snapshot.agents.iter().find(|a| a.id == reading.id);
            if before == Some(reading) {
                continue;
            }
            let was = before.map(|b| b.assessment.state);
            let now = reading.assessment.state;
            let news = if self.agents_read && was.is_some() {
                should_notify(was, now)
            } else {
                now == AgentState::Waiting && was != Some(now)
            };
            if news {
                notices.push(reading.clone());
            }
            events.push(Event::AgentState {
                reading: reading.clone(),
            });
        }
        self.snapshot.agents = readings;
        self.agents_read = true;
        (events, notices)
    }

    pub fn metrics(&mut self, metrics: HashMap<SandboxId, SandboxMetrics>) -> Vec<Event> {
        if metrics == self.snapshot.metrics {
            return Vec::new();
        }
        self.snapshot.metrics = metrics.clone();
        vec![Event::Metrics { metrics }]
    }

    pub fn usage(&mut self, usage: UsageSummary) -> Vec<Event> {
        if self.snapshot.usage.as_ref() == Some(&usage) {
            return Vec::new();
        }
        self.snapshot.usage = Some(usage.clone());
        vec![Event::Usage { usage }]
    }

    /// New held connections (only sandboxes holding any): an event per sandbox whose list
    /// changed, and the connections held since the last reading (each told once).
    pub fn held(
        &mut self,
        now: HashMap<SandboxId, Vec<Held>>,
    ) -> (Vec<Event>, Vec<(SandboxId, Held)>) {
        let mut events = Vec::new();
        let mut news = Vec::new();
        for (id, held) in &now {
            let before = self.snapshot.held.get(id);
            if before == Some(held) {
                continue;
            }
            let known = |h: &Held| before.is_some_and(|b| b.iter().any(|k| k.id == h.id));
            news.extend(
                held.iter()
                    .filter(|h| !known(h))
                    .map(|h| (id.clone(), h.clone())),
            );
            events.push(Event::Held {
                id: id.clone(),
                held: held.clone(),
            });
        }
        for id in self
            .snapshot
            .held
            .keys()
            .filter(|id| !now.contains_key(*id))
        {
            events.push(Event::Held {
                id: id.clone(),
                held: Vec::new(),
            });
        }
        self.snapshot.held = now;
        (events, news)
    }

    pub fn host(&mut self, host: HostStats) -> Vec<Event> {
        if self.snapshot.host.as_ref() == Some(&host) {
            return Vec::new();
        }
        self.snapshot.host = Some(host.clone());
        vec![Event::HostStats { host }]
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::status::{Assessment, Source};
    use crate::sandbox::SandboxState;

    fn reading(record: &SandboxRecord, state: AgentState) -> AgentReading {
        AgentReading {
            id: record.id.clone(),
            name: record.name.clone(),
            sandbox: record.state,
            assessment: Assessment::new(state, Source::Pane, "test"),
        }
    }

    #[test]
    fn records_become_added_changed_and_removed_events_only_when_they_change() {
        let mut live = Live::default();
        let a = SandboxRecord::example("a", Path::new("/tmp/a"));
        let b = SandboxRecord::example("b", Path::new("/tmp/b"));
        let events = live.records(vec![a.clone(), b.clone()]);
        assert_eq!(events.len(), 2);
        assert!(matches!(events[0], Event::SandboxAdded { .. }));
        assert!(live.records(vec![a.clone(), b.clone()]).is_empty());
        let stopped = SandboxRecord {
            state: SandboxState::Stopped,
            ..a.clone()
        };
        let events = live.records(vec![stopped]);
        assert!(matches!(&events[0], Event::SandboxChanged { sandbox } if sandbox.name == a.name));
        assert!(matches!(&events[1], Event::SandboxRemoved { name, .. } if *name == b.name));
        assert_eq!(live.snapshot().sandboxes.len(), 1);
    }

    #[test]
    fn an_agent_entering_waiting_is_notified_once() {
        let mut live = Live::default();
        let a = SandboxRecord::example("a", Path::new("/tmp/a"));
        let (events, notices) = live.agents(vec![reading(&a, AgentState::Working)]);
        assert_eq!((events.len(), notices.len()), (1, 0));
        let (_, notices) = live.agents(vec![reading(&a, AgentState::Waiting)]);
        assert_eq!(notices.len(), 1);
        let (events, notices) = live.agents(vec![reading(&a, AgentState::Waiting)]);
        assert_eq!((events.len(), notices.len()), (0, 0));
    }

    #[test]
    fn a_sandbox_found_dead_at_start_is_no_news_but_one_found_waiting_is() {
        let mut live = Live::default();
        let a = SandboxRecord::example("a", Path::new("/tmp/a"));
        let b = SandboxRecord::example("b", Path::new("/tmp/b"));
        let (_, notices) = live.agents(vec![
            reading(&a, AgentState::Dead),
            reading(&b, AgentState::Waiting),
        ]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].name, b.name);
    }

    #[test]
    fn a_held_connection_is_news_once_and_its_end_is_an_event() {
        let api = SandboxRecord::example("api", Path::new("/tmp/api"));
        let held = |id: &str| Held {
            id: id.into(),
            kind: "connect".into(),
            host: "evil.example".into(),
            port: 443,
            since: chrono::Utc::now(),
        };
        let mut live = Live::default();
        let mut model = Snapshot::default();
        let one = HashMap::from([(api.id.clone(), vec![held("h1")])]);
        let (events, news) = live.held(one.clone());
        assert_eq!((events.len(), news.len()), (1, 1));
        events.into_iter().for_each(|e| model.apply(e));
        assert_eq!(model.held, one);
        // The same again: nothing; a second one: only it is news.
        assert_eq!(live.held(one), (Vec::new(), Vec::new()));
        let two = HashMap::from([(api.id.clone(), vec![held("h1"), held("h2")])]);
        let (_, news) = live.held(two);
        assert_eq!(
            news.iter().map(|(_, h)| h.id.as_str()).collect::<Vec<_>>(),
            ["h2"]
        );
        // None held any more: an empty list for the client to drop.
        let (events, news) = live.held(HashMap::new());
        assert!(news.is_empty());
        events.into_iter().for_each(|e| model.apply(e));
        assert!(model.held.is_empty());
    }
}
