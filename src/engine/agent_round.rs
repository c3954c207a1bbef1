//! The status round over every agent (issue 15), reading again only what changed: an agent
//! whose record, pane text, hook events file (inotify says, [`super::hook_watch`]) and
//! transcript are as at its last reading, and for which no threshold of time in
//! [`assess`] has passed since (the start-up grace, a hook or transcript growing stale),
//! keeps that reading without a file opened or a pattern matched; every
//! [`READ_EVERY_MS`] each agent is read anew all the same. What it reads when something
//! changed is what [`Deck::agent_status_with`] reads.

use std::collections::HashMap;

use chrono::Utc;

use super::Deck;
use super::status::{
    Assessment, HookEvent, STARTUP_MS, Signals, assess, newest_transcript_ms, read_last_event,
};
use crate::sandbox::{SandboxId, SandboxRecord, SandboxState};

/// The slow safety net: every agent is read anew at least this often (a watch that went
/// away with its dir, say, cannot keep a reading forever).
pub const READ_EVERY_MS: i64 = 15_000;

/// What may have changed since an agent's last reading, as the inotify watches say
/// ([`super::hook_watch::HookWatch`]).
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    /// Its hooks' events file.
    pub hook: bool,
    /// A transcript of its project (a write changes how fresh the newest one is).
    pub transcripts: bool,
}

impl Changed {
    /// Nothing is known: everything is read.
    pub const ALL: Changed = Changed {
        hook: true,
        transcripts: true,
    };
}

/// What one agent's last reading was made from.
struct Inputs {
    record: SandboxRecord,
    pane: Option<String>,
    event: Option<HookEvent>,
    transcript_ms: Option<i64>,
    reading: Assessment,
    /// The reading holds until then (unix ms): the first threshold of time it depends on.
    until_ms: i64,
}

/// The last readings of the running agents, by sandbox.
#[derive(Default)]
pub struct AgentRound {
    kept: HashMap<SandboxId, Inputs>,
    /// How many readings were taken anew, and kept (for tests and benchmarks).
    pub assessed: u64,
    pub kept_count: u64,
}

impl AgentRound {
    /// One undebounced reading of `record` from `pane`; `changed` says whether its events
    /// file and its transcripts may have been written since its last reading.
    pub fn reading(
        &mut self,
        deck: &Deck,
        record: &SandboxRecord,
        pane: Option<String>,
        changed: Changed,
    ) -> Assessment {
        let hook_changed = changed.hook;
        if record.state != SandboxState::Running {
            // Read from the registry alone: nothing to keep.
            self.kept.remove(&record.id);
            self.assessed += 1;
            return deck.agent_status_with(record, pane.as_deref());
        }
        let now = Utc::now().timestamp_millis();
        let transcript_ms = match self.kept.get(&record.id) {
            Some(kept) if !changed.transcripts => kept.transcript_ms,
            _ => newest_transcript_ms(record.project_dir.as_path()),
        };
        if let Some(kept) = self.kept.get(&record.id)
            && !hook_changed
            && now < kept.until_ms
            && kept.transcript_ms == transcript_ms
            && kept.pane == pane
            && kept.record == *record
        {
            self.kept_count += 1;
            return kept.reading.clone();
        }
        self.assessed += 1;
        let event = match self.kept.remove(&record.id) {
            Some(kept) if !hook_changed => kept.event,
            _ => read_last_event(&deck.paths.sandbox(&record.id).status_events()),
        };
        let fresh_ms = deck.config.status.transcript_fresh_ms as i64;
        let signals = Signals::of(
            record,
            now,
            event.as_ref(),
            pane.as_deref(),
            transcript_ms,
            fresh_ms,
        );
        let reading = assess(&signals, &deck.status_patterns);
        // Where a comparison with the clock in `assess` flips: running for less than the
        // start-up grace, a hook older than `fresh_ms`, a transcript younger than it.
        let until_ms = [
            record.started_at.map(|t| t.timestamp_millis() + STARTUP_MS),
            event.as_ref().map(|e| e.seen_ms + fresh_ms + 1),
            transcript_ms.map(|t| t + fresh_ms),
            Some(now + READ_EVERY_MS),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .min()
        .unwrap_or(i64::MAX);
        self.kept.insert(
            record.id.clone(),
            Inputs {
                record: record.clone(),
                pane,
                event,
                transcript_ms,
                reading: reading.clone(),
                until_ms,
            },
        );
        reading
    }

    /// Forgets the agents not among `records` (removed, or no longer asked about).
    pub fn retain(&mut self, records: &[SandboxRecord]) {
        self.kept
            .retain(|id, _| records.iter().any(|r| &r.id == id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::status::AgentState;
    use crate::paths::Paths;

    fn deck(dir: &std::path::Path) -> Deck {
        let paths = Paths {
            state_dir: dir.join("state"),
            config_dir: dir.join("config"),
            runtime_dir: dir.join("run"),
        };
        Deck::with(paths, Config::defaults()).unwrap()
    }

    const NOTHING: Changed = Changed {
        hook: false,
        transcripts: false,
    };

    /// A running agent that started `ago_ms` ago.
    fn agent(dir: &std::path::Path, name: &str, ago_ms: i64) -> SandboxRecord {
        SandboxRecord {
            started_at: Some(Utc::now() - chrono::TimeDelta::milliseconds(ago_ms)),
            ..SandboxRecord::example(name, dir)
        }
    }

    #[test]
    fn a_reading_is_kept_until_its_pane_its_hook_or_the_clock_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let deck = deck(dir.path());
        let mut round = AgentRound::default();
        let api = agent(dir.path(), "api", 1_000);
        let pane = || Some("$ ".to_owned());
        let first = round.reading(&deck, &api, pane(), Changed::ALL);
        assert_eq!(first.state, AgentState::Starting);
        assert_eq!((round.assessed, round.kept_count), (1, 0));
        // Nothing changed: kept, nothing read.
        assert_eq!(round.reading(&deck, &api, pane(), NOTHING), first);
        assert_eq!((round.assessed, round.kept_count), (1, 1));
        // The pane changed: read again.
        round.reading(&deck, &api, Some("$ ls".into()), NOTHING);
        assert_eq!(round.assessed, 2);
        // A hook written: read when the watch says so.
        let events = deck.paths.sandbox(&api.id).status_events();
        std::fs::create_dir_all(events.parent().unwrap()).unwrap();
        std::fs::write(&events, "{\"event\":\"UserPromptSubmit\"}\n").unwrap();
        let told = round.reading(&deck, &api, Some("$ ls".into()), Changed::ALL);
        assert_eq!(told.state, AgentState::Working, "{told:?}");
        assert_eq!(round.assessed, 3);
        // The clock: the start-up grace ends with no signal, and the reading follows it.
        let web = agent(dir.path(), "web", STARTUP_MS - 150);
        let starting = round.reading(&deck, &web, pane(), Changed::ALL);
        assert_eq!(starting.state, AgentState::Starting);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let later = round.reading(&deck, &web, pane(), NOTHING);
        assert_eq!(later.state, AgentState::Idle, "{later:?}");
        // A record that changed (stopped) is read again too.
        let stopped = SandboxRecord {
            state: SandboxState::Stopped,
            ..web.clone()
        };
        assert_eq!(
            round.reading(&deck, &stopped, None, NOTHING).state,
            AgentState::Exited
        );
    }
}
