//! The engine's one monitor loop: records, agent states, metrics, usage and host stats read
//! once per interval however many clients listen, compared with the last reading, and only
//! the changes pushed. `notify.command` runs here, once per event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::wake::Topic;
use crate::engine::{AgentReading, Deck, EngineHandle};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord};

/// How often the Claude logs are read again (they can be large; a new line is no hurry).
const USAGE_EVERY: Duration = Duration::from_secs(10);
/// The usage is read at most this often when transcripts growing wake it.
const USAGE_WAKE_GAP: Duration = Duration::from_secs(1);
/// Woken rounds are at least this far apart: a burst of events is one round.
const WAKE_GAP: Duration = Duration::from_millis(20);

/// One reading of everything (of the agents only, after a hook event).
struct Reading {
    records: Vec<SandboxRecord>,
    agents: Vec<AgentReading>,
    metrics: Option<std::collections::HashMap<SandboxId, SandboxMetrics>>,
    host: Option<HostStats>,
    usage: Option<UsageSummary>,
}

/// What a round reads.
#[derive(Clone, Copy)]
struct Round {
    /// The records again (reconciled), metrics and host stats; else the agents only.
    full: bool,
    usage: bool,
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
    let info = deck.info();
    let interval = Duration::from_millis(info.status_interval_ms.max(250));
    let mut usage_due = Instant::now();
    let mut usage_read = Instant::now();
    let wakeups = deck.wakeups().clone();
    let mut agents_woken = wakeups.subscribe(Topic::Agents);
    let mut records_woken = wakeups.subscribe(Topic::Records);
    let mut usage_woken = wakeups.subscribe(Topic::Usage);
    let mut full = true;
    let mut full_due = Instant::now();
    let mut records = Vec::new();
    loop {
        let started = Instant::now();
        if full {
            // Agents-only rounds in between do not put the next whole one off.
            full_due = started + interval;
        }
        let usage = started >= usage_due;
        if usage {
            usage_due = started + USAGE_EVERY;
            usage_read = started;
        }
        let engine = Arc::clone(&deck);
        let last = std::mem::take(&mut records);
        let round = Round { full, usage };
        match tokio::task::spawn_blocking(move || read(&engine, round, last)).await {
            Ok(Ok(reading)) => {
                records.clone_from(&reading.records);
                publish(&deck, &hub, reading);
            }
            Ok(Err(e)) => tracing::warn!("the engine could not read the sandboxes: {e}"),
            Err(e) => tracing::warn!("the engine's reading task failed: {e}"),
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        loop {
            // A transcript that grew brings the usage's turn forward, not a round now.
            let wake_at = full_due.min(usage_due);
            tokio::select! {
                () = tokio::time::sleep_until(wake_at.into()) => {
                    full = wake_at == full_due || records.is_empty();
                    break;
                }
                () = changed.notified() => full = true,
                Ok(()) = records_woken.changed() => full = true,
                Ok(()) = agents_woken.changed() => full = records.is_empty(),
                Ok(()) = usage_woken.changed() => {
                    usage_due = usage_due.min(usage_read + USAGE_WAKE_GAP);
                    continue;
                }
                () = stop.cancelled() => return,
            }
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until((started + WAKE_GAP).into()) => {}
            () = stop.cancelled() => return,
        }
    }
}

fn read(deck: &Deck, round: Round, last: Vec<SandboxRecord>) -> crate::error::Result<Reading> {
    let records = if round.full { deck.list()? } else { last };
    let agents = deck.agent_states(&records);
    let metrics = round
        .full
        .then(|| EngineHandle::metrics(deck, &records))
        .flatten();
    let host = round.full.then(|| EngineHandle::host_stats(deck));
    let usage = round.usage.then(|| deck.usage_summary());
    Ok(Reading {
        records,
        agents,
        metrics,
        host,
        usage,
    })
}

fn publish(deck: &Deck, hub: &Hub, reading: Reading) {
    let Reading {
        records,
        agents,
        metrics,
        host,
        usage,
    } = reading;
    let notices = hub.update(|live| {
        let mut events = live.records(records);
        let (agent_events, notices) = live.agents(agents);
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
        let notices: Vec<(SandboxRecord, AgentReading)> = notices
            .into_iter()
            .filter_map(|n| {
                let record = live.snapshot().sandboxes.iter().find(|r| r.id == n.id)?;
                Some((record.clone(), n))
            })
            .collect();
        (events, notices)
    });
    for (record, reading) in notices {
        notify(deck, &record, &reading);
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
