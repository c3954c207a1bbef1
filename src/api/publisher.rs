//! The engine's one monitor loop: records, agent states, metrics, usage and host stats read
//! once per interval however many clients listen, each at its own configured interval
//! (`schedule`), compared with the last reading, and only the changes pushed.
//! `notify.command` runs here, once per event.
//!
//! The engine's wake-ups (issue 15, [`crate::engine::wake`]) bring a reading forward: a hook
//! event the agent states, a session made or killed the records and agent states, a
//! transcript that grew the usage (see [`Schedule::wake`] for how far apart they stay).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::notified::Ledger;
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::wake::Topic;
use crate::engine::{AgentReading, Deck, EngineHandle};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord};

mod schedule;

use schedule::{Due, Periods, Schedule};

/// One reading of what was due (None: not read this time).
struct Reading {
    records: Option<Vec<SandboxRecord>>,
    agents: Option<Vec<AgentReading>>,
    metrics: Option<std::collections::HashMap<SandboxId, SandboxMetrics>>,
    host: Option<HostStats>,
    usage: Option<UsageSummary>,
    /// Held connections, on the agents' beat.
    held: Option<std::collections::HashMap<SandboxId, Vec<crate::egress::held::Held>>>,
}

/// Runs until `stop`; `changed` wakes it early (after a command). `ready` is told after the
/// first reading, so no client is greeted with an empty snapshot.
pub async fn run(
    deck: Arc<Deck>,
    hub: Arc<Hub>,
    changed: Arc<Notify>,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut ledger = Ledger::open(deck.paths.runtime_dir.join(super::notified::FILE_NAME));
    let mut schedule = Schedule::new(Periods::of(&deck.info()), Instant::now());
    // The records of the last reconcile, for the readings between two of them.
    // Shared with each round's reading task, not copied into it (issue 15).
    let mut known: Arc<Vec<SandboxRecord>> = Arc::default();
    // Clients wait for the first round (a TUI that just started the engine among them): it
    // reads the registry reconciled and nothing else, so the table is there at once. The
    // agent states and metrics come in the round right after (pushed as events), and the
    // usage index in the one after that: a first read of the Claude logs can take seconds.
    let mut deferred = Deferred::default();
    let mut metrics = MetricsWatch::default();
    let mut agents_read = false;
    let wakeups = deck.wakeups().clone();
    let mut agents_woken = wakeups.subscribe(Topic::Agents);
    let mut records_woken = wakeups.subscribe(Topic::Records);
    let mut usage_woken = wakeups.subscribe(Topic::Usage);
    loop {
        let mut due = deferred.take(schedule.due(Instant::now()), ready.is_some());
        let (read_metrics, prime) = metrics.wanted(due.metrics, &hub);
        due.metrics = read_metrics;
        if due.any() {
            let engine = Arc::clone(&deck);
            let last = Arc::clone(&known);
            let first_agents = due.agents && !std::mem::replace(&mut agents_read, true);
            let how = How {
                prime,
                first_agents,
            };
            match tokio::task::spawn_blocking(move || read(&engine, due, how, last)).await {
                Ok(Ok(reading)) => {
                    if let Some(records) = &reading.records {
                        known = Arc::new(records.clone());
                    }
                    publish(&deck, &hub, &mut ledger, reading);
                }
                Ok(Err(e)) => tracing::warn!("the engine could not read the sandboxes: {e}"),
                Err(e) => tracing::warn!("the engine's reading task failed: {e}"),
            }
        }
        if let Some(ready) = ready.take() {
            // Nobody waits for the first round only when serve is already ending.
            let _ = ready.send(());
        }
        if deferred.pending() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep_until(schedule.next().into()) => {}
            () = changed.notified() => schedule.hurry(Instant::now()),
            Ok(()) = agents_woken.changed() => schedule.wake(Topic::Agents, Instant::now()),
            Ok(()) = records_woken.changed() => schedule.wake(Topic::Records, Instant::now()),
            Ok(()) = usage_woken.changed() => schedule.wake(Topic::Usage, Instant::now()),
            () = stop.cancelled() => return,
        }
    }
}

/// What the first round leaves for the next: the first reads only the records, the second
/// (at once) the agent states and metrics; the usage comes with the round after, when it is
/// due anyway (as before the first round was split: a first read of the logs can take
/// seconds, and a client's first request is answered before it).
#[derive(Default)]
struct Deferred {
    now: Option<Due>,
    usage_later: bool,
}

impl Deferred {
    /// `due` with what was put off added; at the first round, all but the records put off.
    fn take(&mut self, mut due: Due, first: bool) -> Due {
        if first {
            self.now = Some(Due {
                agents: due.agents,
                metrics: due.metrics,
                ..Due::default()
            });
            self.usage_later = due.usage;
            return Due {
                records: due.records,
                ..Due::default()
            };
        }
        if let Some(put_off) = self.now.take() {
            due.agents |= put_off.agents;
            due.metrics |= put_off.metrics;
            // Not in the same round as the first agent states.
            self.usage_later |= std::mem::take(&mut due.usage);
            return due;
        }
        due.usage |= std::mem::take(&mut self.usage_later);
        due
    }

    /// Whether a round put off waits to be read at once.
    fn pending(&self) -> bool {
        self.now.is_some_and(|d| d.any())
    }
}

/// Metrics are read only while a client is connected to see them: with nobody there the
/// engine takes no sample, and the figures it last pushed are dropped, so a client that
/// comes later never sees stale ones. The first sample after a pause only primes the
/// sampler (a CPU figure is over the interval since the previous sample).
#[derive(Default)]
struct MetricsWatch {
    paused: bool,
    /// The first sample is taken whoever is there: it only primes the sampler, and a client
    /// that connects with the engine's start then sees figures one interval later.
    started: bool,
}

impl MetricsWatch {
    /// Whether the metrics due are read, and whether only to prime the sampler.
    fn wanted(&mut self, due: bool, hub: &Hub) -> (bool, bool) {
        if !due {
            return (false, false);
        }
        if !std::mem::replace(&mut self.started, true) {
            return (true, false);
        }
        if hub.clients() == 0 {
            if !self.paused {
                self.paused = true;
                hub.update(|live| (live.metrics(Default::default()), ()));
            }
            return (false, false);
        }
        (true, std::mem::take(&mut self.paused))
    }
}

/// How a round reads what is due.
#[derive(Debug, Clone, Copy)]
struct How {
    /// The metrics sample only starts an interval (nothing is published of it).
    prime: bool,
    /// The agents' first reading: their panes read at once ([`Deck::first_agent_states`]).
    first_agents: bool,
}

/// What `due` asks for; between two reconciles the others read the `known` records.
fn read(
    deck: &Deck,
    due: Due,
    how: How,
    known: Arc<Vec<SandboxRecord>>,
) -> crate::error::Result<Reading> {
    let fresh = if due.records {
        Some(deck.list()?)
    } else {
        None
    };
    let records = fresh.as_deref().unwrap_or(known.as_slice());
    let agents = due.agents.then(|| {
        if how.first_agents {
            deck.first_agent_states(records)
        } else {
            deck.agent_states(records)
        }
    });
    let held = due.agents.then(|| EngineHandle::egress_held(deck, records));
    let metrics = if due.metrics {
        EngineHandle::metrics(deck, records).filter(|_| !how.prime)
    } else {
        None
    };
    // The host's figures on the records' beat, as the TUI's monitor tick had them.
    let host = due.records.then(|| EngineHandle::host_stats(deck));
    let usage = due.usage.then(|| deck.usage_summary());
    Ok(Reading {
        records: fresh,
        agents,
        metrics,
        host,
        usage,
        held,
    })
}

/// Pushes what changed; runs `notify.command` for the notices that are news (see
/// [`Ledger`]: not already told by an engine before this one).
fn publish(deck: &Deck, hub: &Hub, ledger: &mut Ledger, reading: Reading) {
    let Reading {
        records,
        agents,
        metrics,
        host,
        usage,
        held,
    } = reading;
    let current = agents.clone();
    let notices = hub.update(|live| {
        let mut events = records.map(|r| live.records(r)).unwrap_or_default();
        let (agent_events, notices) = agents.map(|a| live.agents(a)).unwrap_or_default();
        // Notices come only with agent readings.
        let notices = match &current {
            Some(current) => ledger.news(current, notices),
            None => notices,
        };
        events.extend(agent_events);
        if let Some(metrics) = metrics {
            events.extend(live.metrics(metrics));
        }
        if let Some(host) = host {
            events.extend(live.host(host));
        }
        if let Some(usage) = usage {
            events.extend(live.usage(usage));
        }
        let held_news = held.map(|h| {
            let (held_events, news) = live.held(h);
            events.extend(held_events);
            news
        });
        let notices: Vec<(SandboxRecord, AgentReading)> = notices
            .into_iter()
            .filter_map(|n| {
                let record = live.snapshot().sandboxes.iter().find(|r| r.id == n.id)?;
                Some((record.clone(), n))
            })
            .collect();
        let held_notices: Vec<_> = held_news
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, h)| {
                let record = live.snapshot().sandboxes.iter().find(|r| r.id == id)?;
                Some((record.clone(), h))
            })
            .collect();
        (events, (notices, held_notices))
    });
    let (notices, held_notices) = notices;
    for (record, reading) in notices {
        notify(deck, &record, &reading);
    }
    for (record, held) in held_notices {
        reap(crate::engine::status::notify_held(
            &deck.config.notify,
            &record,
            &held,
        ));
    }
}

/// Reaps a notify command off the loop, or says why it could not run.
fn reap(started: crate::error::Result<Option<std::process::Child>>) {
    match started {
        Ok(Some(mut child)) => {
            std::thread::spawn(move || child.wait());
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("the notify command failed: {e}"),
    }
}

/// Runs `notify.command` for one event and reaps it off the loop.
fn notify(deck: &Deck, record: &SandboxRecord, reading: &AgentReading) {
    match crate::engine::status::notify(&deck.config.notify, record, &reading.assessment) {
        Ok(Some(mut child)) => {
            std::thread::spawn(move || child.wait());
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("the notify command failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_round_is_the_records_then_agents_and_metrics_then_usage() {
        let all = Due {
            records: true,
            agents: true,
            metrics: true,
            usage: true,
        };
        let mut deferred = Deferred::default();
        let first = deferred.take(all, true);
        assert_eq!(
            first,
            Due {
                records: true,
                ..Due::default()
            }
        );
        assert!(deferred.pending(), "the next round is read at once");
        let second = deferred.take(Due::default(), false);
        assert!(second.agents && second.metrics && !second.usage && !second.records);
        assert!(
            !deferred.pending(),
            "the usage waits for the next round due"
        );
        let agents = Due {
            agents: true,
            ..Due::default()
        };
        let third = deferred.take(agents, false);
        assert_eq!(
            third,
            Due {
                agents: true,
                usage: true,
                ..Due::default()
            }
        );
        // From then on, what is due is read as it comes.
        assert_eq!(deferred.take(agents, false), agents);
        assert_eq!(deferred.take(all, false), all);
    }
}
