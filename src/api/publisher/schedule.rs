//! When the monitor loop reads what: each reading at its own configured interval, as the
//! TUI's workers had them (agent states at the status interval, records and host stats at
//! `monitor.interval_ms`, metrics at `metrics.interval_ms`, usage every 10 s), so nothing is
//! read more often than asked for. A command makes records and agent states due at once,
//! so clients see its effect without waiting; so does an engine wake-up (issue 15), kept
//! [`WAKE_GAP`] after the last reading of the same thing ([`USAGE_WAKE_GAP`] for the usage),
//! so a burst of events is one reading. The clock is passed in: tested without waiting.

use std::time::{Duration, Instant};

use crate::engine::EngineInfo;
use crate::engine::wake::Topic;

/// How often the Claude logs are read again (they can be large; a new line is no hurry).
pub const USAGE_EVERY: Duration = Duration::from_secs(10);
/// Readings due this close together are taken in one wake-up.
const SLACK: Duration = Duration::from_millis(20);
/// A woken reading comes at least this long after the last one of the same thing.
pub const WAKE_GAP: Duration = Duration::from_millis(20);
/// Transcripts grow all the time a turn runs: a woken usage reading at most once a second.
pub const USAGE_WAKE_GAP: Duration = Duration::from_secs(1);

/// What to read in one wake-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// The registry reconciled with what runs (and the host's figures, on the same beat).
    pub records: bool,
    pub agents: bool,
    pub metrics: bool,
    pub usage: bool,
}

impl Due {
    pub fn any(&self) -> bool {
        self.records || self.agents || self.metrics || self.usage
    }
}

/// The interval of each reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub records: Duration,
    pub agents: Duration,
    pub metrics: Duration,
    pub usage: Duration,
}

impl Periods {
    /// From the engine's configuration (each at least 250 ms).
    pub fn of(info: &EngineInfo) -> Periods {
        let ms = |ms: u64| Duration::from_millis(ms.max(250));
        Periods {
            records: ms(info.monitor_interval_ms),
            agents: ms(info.status_interval_ms),
            metrics: ms(info.metrics_interval_ms),
            usage: USAGE_EVERY,
        }
    }
}

/// When each reading is next due.
#[derive(Debug, Clone)]
pub struct Schedule {
    periods: Periods,
    records: Instant,
    agents: Instant,
    metrics: Instant,
    usage: Instant,
    /// When each woken reading was last taken.
    records_read: Instant,
    agents_read: Instant,
    usage_read: Instant,
}

impl Schedule {
    /// Everything due at `now`: the first reading is whole.
    pub fn new(periods: Periods, now: Instant) -> Schedule {
        Schedule {
            periods,
            records: now,
            agents: now,
            metrics: now,
            usage: now,
            records_read: now,
            agents_read: now,
            usage_read: now,
        }
    }

    /// What is due at `now`; each due reading's next time is one period from now.
    pub fn due(&mut self, now: Instant) -> Due {
        let take = |next: &mut Instant, period: Duration| {
            let due = *next <= now + SLACK;
            if due {
                *next = now + period;
            }
            due
        };
        let due = Due {
            records: take(&mut self.records, self.periods.records),
            agents: take(&mut self.agents, self.periods.agents),
            metrics: take(&mut self.metrics, self.periods.metrics),
            usage: take(&mut self.usage, self.periods.usage),
        };
        for (taken, read) in [
            (due.records, &mut self.records_read),
            (due.agents, &mut self.agents_read),
            (due.usage, &mut self.usage_read),
        ] {
            if taken {
                *read = now;
            }
        }
        due
    }

    /// The engine said `topic` changed: its reading is due as soon as its gap allows (a
    /// session made or killed brings the agent states along, as a command does).
    pub fn wake(&mut self, topic: Topic, now: Instant) {
        let soon = |next: &mut Instant, read: Instant, gap: Duration| {
            *next = (*next).min((read + gap).max(now));
        };
        match topic {
            Topic::Agents => soon(&mut self.agents, self.agents_read, WAKE_GAP),
            Topic::Records => {
                soon(&mut self.records, self.records_read, WAKE_GAP);
                soon(&mut self.agents, self.agents_read, WAKE_GAP);
            }
            Topic::Usage => soon(&mut self.usage, self.usage_read, USAGE_WAKE_GAP),
            // The previews have their own readers (`api::previews`); figures wake only a
            // client of the engine, which got them.
            Topic::Preview | Topic::Figures => {}
        }
    }

    /// A command changed something: records and agent states are due now.
    pub fn hurry(&mut self, now: Instant) {
        self.records = now;
        self.agents = now;
    }

    /// The next time anything is due.
    pub fn next(&self) -> Instant {
        self.records
            .min(self.agents)
            .min(self.metrics)
            .min(self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn periods() -> Periods {
        Periods {
            records: Duration::from_millis(2000),
            agents: Duration::from_millis(1500),
            metrics: Duration::from_millis(2000),
            usage: USAGE_EVERY,
        }
    }

    fn all() -> Due {
        Due {
            records: true,
            agents: true,
            metrics: true,
            usage: true,
        }
    }

    #[test]
    fn a_wake_up_brings_its_reading_forward_but_keeps_it_apart_from_the_last() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut schedule = Schedule::new(periods(), t0);
        schedule.due(t0);
        // A hook event 5 ms after the first reading: the agents, 20 ms after it.
        schedule.wake(Topic::Agents, t0 + ms(5));
        assert_eq!(schedule.next(), t0 + WAKE_GAP);
        let agents_only = Due {
            agents: true,
            ..Due::default()
        };
        assert_eq!(schedule.due(t0 + WAKE_GAP), agents_only);
        // Much later: at once.
        schedule.wake(Topic::Agents, t0 + ms(700));
        assert_eq!(schedule.next(), t0 + ms(700));
        assert_eq!(schedule.due(t0 + ms(700)), agents_only);
        // A transcript: the usage a second after its last reading, not before.
        schedule.wake(Topic::Usage, t0 + ms(710));
        assert_eq!(schedule.next(), t0 + USAGE_WAKE_GAP);
        // A session killed: the records and the agents.
        schedule.wake(Topic::Records, t0 + ms(720));
        let due = schedule.due(t0 + ms(720));
        assert!(due.records && due.agents && !due.usage, "{due:?}");
        // A wake-up never puts a reading off.
        let next = schedule.next();
        schedule.wake(Topic::Usage, next + ms(5000));
        assert_eq!(schedule.next(), next);
    }

    #[test]
    fn everything_is_read_first_then_each_reading_at_its_own_interval() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut schedule = Schedule::new(periods(), t0);
        assert_eq!(schedule.due(t0), all());
        assert_eq!(schedule.next(), t0 + ms(1500));
        let agents_only = Due {
            agents: true,
            ..Due::default()
        };
        assert_eq!(schedule.due(t0 + ms(1500)), agents_only);
        assert_eq!(schedule.next(), t0 + ms(2000));
        let records_and_metrics = Due {
            records: true,
            metrics: true,
            ..Due::default()
        };
        assert_eq!(schedule.due(t0 + ms(2000)), records_and_metrics);
        assert_eq!(schedule.due(t0 + ms(2100)), Due::default());
        assert!(!schedule.due(t0 + ms(2100)).any());
    }

    #[test]
    fn over_ten_seconds_records_and_metrics_are_read_at_their_interval_not_the_status_one() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(periods(), t0);
        let (mut records, mut agents, mut metrics, mut usage) = (0, 0, 0, 0);
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            let due = schedule.due(now);
            records += u32::from(due.records);
            agents += u32::from(due.agents);
            metrics += u32::from(due.metrics);
            usage += u32::from(due.usage);
            now = schedule.next();
        }
        // At 0, 2, 4, 6, 8 s; at 0, 1.5, … 9 s; the logs once.
        assert_eq!((records, agents, metrics, usage), (5, 7, 5, 1));
    }

    #[test]
    fn a_command_makes_records_and_agents_due_at_once_and_nothing_else() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut schedule = Schedule::new(periods(), t0);
        schedule.due(t0);
        schedule.hurry(t0 + ms(300));
        assert_eq!(schedule.next(), t0 + ms(300));
        let due = schedule.due(t0 + ms(300));
        assert_eq!(
            due,
            Due {
                records: true,
                agents: true,
                ..Due::default()
            }
        );
        // The next reading of records is a whole interval after the command's.
        assert_eq!(schedule.next(), t0 + ms(1800));
    }

    #[test]
    fn readings_due_within_the_slack_are_taken_together() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(
            Periods {
                records: Duration::from_millis(2000),
                agents: Duration::from_millis(1990),
                metrics: Duration::from_millis(2000),
                usage: USAGE_EVERY,
            },
            t0,
        );
        schedule.due(t0);
        let due = schedule.due(schedule.next());
        assert!(due.agents && due.records && due.metrics, "{due:?}");
    }
}
