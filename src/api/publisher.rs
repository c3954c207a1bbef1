//! The engine's one monitor loop: records, agent states, metrics, usage and host stats read
//! once per interval however many clients listen, compared with the last reading, and only
//! the changes pushed. `notify.command` runs here, once per event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::notified::Ledger;
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::{AgentReading, Deck, EngineHandle};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord};

/// How often the Claude logs are read again (they can be large; a new line is no hurry).
const USAGE_EVERY: Duration = Duration::from_secs(10);

/// One reading of everything.
struct Reading {
    records: Vec<SandboxRecord>,
    agents: Vec<AgentReading>,
    metrics: Option<std::collections::HashMap<SandboxId, SandboxMetrics>>,
    host: HostStats,
    usage: Option<UsageSummary>,
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
    let info = deck.info();
    let interval = Duration::from_millis(info.status_interval_ms.max(250));
    let mut usage_due = Instant::now();
    loop {
        // Not in the first round: clients wait for it (a TUI that just started the engine
        // among them), and the first read of the Claude logs can take seconds.
        let with_usage = ready.is_none() && Instant::now() >= usage_due;
        if with_usage {
            usage_due = Instant::now() + USAGE_EVERY;
        }
        let engine = Arc::clone(&deck);
        match tokio::task::spawn_blocking(move || read(&engine, with_usage)).await {
            Ok(Ok(reading)) => publish(&deck, &hub, &mut ledger, reading),
            Ok(Err(e)) => tracing::warn!("the engine could not read the sandboxes: {e}"),
            Err(e) => tracing::warn!("the engine's reading task failed: {e}"),
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = changed.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

fn read(deck: &Deck, with_usage: bool) -> crate::error::Result<Reading> {
    let records = deck.list()?;
    let agents = deck.agent_states(&records);
    let metrics = EngineHandle::metrics(deck, &records);
    let host = EngineHandle::host_stats(deck);
    let usage = with_usage.then(|| deck.usage_summary());
    Ok(Reading {
        records,
        agents,
        metrics,
        host,
        usage,
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
    } = reading;
    let current = agents.clone();
    let notices = hub.update(|live| {
        let mut events = live.records(records);
        let (agent_events, notices) = live.agents(agents);
        let notices = ledger.news(&current, notices);
        events.extend(agent_events);
        if let Some(metrics) = metrics {
            events.extend(live.metrics(metrics));
        }
        events.extend(live.host(host));
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
