//! The workers (D10): agent status, metrics and usage, each a task that asks the engine
//! handle at its own pace, off the UI task (each round on a thread of its own). They read
//! the records the refresh task last published, report back as actions only when they have
//! news, and end with the TUI's cancellation token.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::action::Action;
use crate::engine::{EngineHandle, EngineInfo};
use crate::sandbox::SandboxRecord;

/// How often the usage index reads what was appended to the logs.
const USAGE_REFRESH: Duration = Duration::from_secs(5);

/// Starts the workers (the fourth: held connections, on the agents' beat).
pub fn start(
    engine: &Arc<dyn EngineHandle>,
    info: &EngineInfo,
    records: &watch::Receiver<Vec<SandboxRecord>>,
    tx: &UnboundedSender<Action>,
    cancel: &CancellationToken,
) {
    let status_every = Duration::from_millis(info.status_interval_ms);
    let metrics_every = Duration::from_millis(info.metrics_interval_ms);
    let worker = |period| Worker {
        period,
        engine: Arc::clone(engine),
        records: records.clone(),
        tx: tx.clone(),
        cancel: cancel.clone(),
    };
    let mut last = None;
    tokio::spawn(worker(status_every).run(move |engine, records| {
        let readings = engine.agent_states(records);
        if last.as_ref() == Some(&readings) {
            return None;
        }
        last = Some(readings.clone());
        Some(Action::AgentsSampled(readings))
    }));
    let mut last = None;
    tokio::spawn(worker(status_every).run(move |engine, records| {
        let held = engine.egress_held(records);
        if last.as_ref() == Some(&held) {
            return None;
        }
        last = Some(held.clone());
        Some(Action::HeldSampled(held))
    }));
    tokio::spawn(
        worker(metrics_every)
            .run(|engine, records| engine.metrics(records).map(Action::MetricsSampled)),
    );
    let mut last = None;
    tokio::spawn(worker(USAGE_REFRESH).run(move |engine, _| {
        let summary = engine.usage_summary();
        if last.as_ref() == Some(&summary) {
            return None;
        }
        last = Some(summary.clone());
        Some(Action::UsageUpdated(Box::new(summary)))
    }));
}

struct Worker {
    period: Duration,
    engine: Arc<dyn EngineHandle>,
    records: watch::Receiver<Vec<SandboxRecord>>,
    tx: UnboundedSender<Action>,
    cancel: CancellationToken,
}

impl Worker {
    /// Runs `step` on the blocking pool now and then every `period`, sending what it
    /// returns, until the token is cancelled or nobody listens any more.
    async fn run<F>(self, mut step: F)
    where
        F: FnMut(&dyn EngineHandle, &[SandboxRecord]) -> Option<Action> + Send + 'static,
    {
        let mut ticks = tokio::time::interval(self.period);
        // A slow round is followed by one round, not a burst.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let records = self.records.borrow().clone();
            let engine = Arc::clone(&self.engine);
            let round = detached(move || {
                let action = step(engine.as_ref(), &records);
                (step, action)
            })
            .await;
            let Some((back, action)) = round else {
                tracing::warn!("a worker ended: its round could not run or panicked");
                return;
            };
            step = back;
            let sent = match action {
                Some(action) => self.tx.send(action).is_ok(),
                None => !self.tx.is_closed(),
            };
            if !sent {
                return;
            }
        }
    }
}

/// Runs `work` on a thread of its own and waits for it without holding up the runtime.
/// Not the blocking pool: quitting waits for the pool, and a worker's round (the first read
/// of the usage logs can take seconds) is not worth waiting for. None if it panicked.
async fn detached<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("deck-worker".into())
        .spawn(move || {
            // Nobody waits any more only when the TUI is quitting.
            let _ = done.send(work());
        });
    if let Err(e) = spawned {
        tracing::warn!("starting a worker round failed: {e}");
        return None;
    }
    result.await.ok()
}
