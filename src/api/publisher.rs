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
    let mut known: Vec<SandboxRecord> = Vec::new();
    // The usage index is not read in the first round: clients wait for that one (a TUI that
    // just started the engine among them), and a first read of the Claude logs can take
    // seconds. It is read in the next round instead.
    let mut usage_next_round = false;
    let wakeups = deck.wakeups().clone();
    let mut agents_woken = wakeups.subscribe(Topic::Agents);
    let mut records_woken = wakeups.subscribe(Topic::Records);
    let mut usage_woken = wakeups.subscribe(Topic::Usage);
    loop {
        let mut due = schedule.due(Instant::now());
        due.usage |= std::mem::take(&mut usage_next_round);
        if ready.is_some() && due.usage {
            due.usage = false;
            usage_next_round = true;
        }
        if due.any() {
            let engine = Arc::clone(&deck);
            let last = known.clone();
            match tokio::task::spawn_blocking(move || read(&engine, due, last)).await {
                Ok(Ok(reading)) => {
                    if let Some(records) = &reading.records {
                        known.clone_from(records);
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

/// What `due` asks for; between two reconciles the others read the `known` records.
fn read(deck: &Deck, due: Due, known: Vec<SandboxRecord>) -> crate::error::Result<Reading> {
    let fresh = if due.records {
        Some(deck.list()?)
    } else {
        None
    };
    let records = fresh.as_deref().unwrap_or(&known);
    let agents = due.agents.then(|| deck.agent_states(records));
    let held = due.agents.then(|| EngineHandle::egress_held(deck, records));
    let metrics = if due.metrics {
        EngineHandle::metrics(deck, records)
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
