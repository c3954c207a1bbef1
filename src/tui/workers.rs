//! The workers (D10): agent status, the figures (metrics and the host's) and usage, each a task that asks the engine
//! handle at its own pace, off the UI task (each round on a thread of its own). They read
//! the records the refresh task last published, report back as actions only when they have
//! news, and end with the TUI's cancellation token.
//!
//! The handle's wake-ups ([`crate::engine::wake`]; for a client of `serve`, bumped by what
//! the engine pushes) start a round before the timer: new agent states the status round, a transcript that grew the usage round
//! (at most once per [`USAGE_WAKE_GAP`]), a session that came or went a records refresh, a
//! new preview text a preview tick.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::action::Action;
use crate::engine::wake::Topic;
use crate::engine::{EngineHandle, EngineInfo};
use crate::sandbox::SandboxRecord;

/// How often the usage index reads what was appended to the logs.
const USAGE_REFRESH: Duration = Duration::from_secs(5);
/// Woken usage rounds are at least this far apart (transcripts grow all the time a turn runs).
const USAGE_WAKE_GAP: Duration = Duration::from_secs(1);
/// Woken status rounds are at least this far apart: a burst of hook events is one round.
const STATUS_WAKE_GAP: Duration = Duration::from_millis(20);
/// Woken figures rounds are at least this far apart (the engine's metrics interval is
/// seconds), and wait this long after the wake-up: the metrics and the host's stats come
/// as two events of one push, read in one round.
const FIGURES_WAKE_GAP: Duration = Duration::from_millis(500);
const FIGURES_SETTLE: Duration = Duration::from_millis(5);
/// The timer of a worker whose readings the engine pushes (each push wakes it): only a
/// safety net, so an idle TUI does no round at all between pushes.
pub const PUSHED_SAFETY_NET: Duration = Duration::from_secs(30);

/// Whether `engine` pushes what the workers read, each push waking its topic (a client of
/// `serve`): their timers are then only a safety net.
pub fn pushed(engine: &dyn EngineHandle) -> bool {
    engine.pushes_readings() && engine.wakeups().is_some()
}

/// Starts the workers (the fourth: held connections, on the agents' beat).
pub fn start(
    engine: &Arc<dyn EngineHandle>,
    info: &EngineInfo,
    records: &watch::Receiver<Vec<SandboxRecord>>,
    tx: &UnboundedSender<Action>,
    cancel: &CancellationToken,
) {
    let pushed = pushed(engine.as_ref());
    let timer = |period: Duration| if pushed { PUSHED_SAFETY_NET } else { period };
    let status_every = timer(Duration::from_millis(info.status_interval_ms));
    let figures_every = Duration::from_millis(info.metrics_interval_ms);
    let wakeups = engine.wakeups();
    let woken = |topic| wakeups.as_ref().map(|w| w.subscribe(topic));
    let worker = |period, wake: Option<watch::Receiver<u64>>, gap| Worker {
        period,
        // A worker woken by the engine also looks as soon as the records change: its timer
        // may be long, and a new sandbox's first state is no reason to wait for it.
        follow_records: wake.is_some(),
        wake,
        gap,
        settle: Duration::ZERO,
        // A round may take seconds (the first read of the usage logs, a reconnect): a
        // thread of its own, which quitting does not wait for.
        own_thread: true,
        engine: Arc::clone(engine),
        records: records.clone(),
        tx: tx.clone(),
        cancel: cancel.clone(),
    };
    let mut last = None;
    tokio::spawn(
        worker(status_every, woken(Topic::Agents), STATUS_WAKE_GAP).run(move |engine, records| {
            let readings = engine.agent_states(records);
            if last.as_ref() == Some(&readings) {
                return Vec::new();
            }
            last = Some(readings.clone());
            vec![Action::AgentsSampled(readings)]
        }),
    );
    let mut last = None;
    tokio::spawn(
        worker(status_every, woken(Topic::Agents), STATUS_WAKE_GAP).run(move |engine, records| {
            let held = engine.egress_held(records);
            if last.as_ref() == Some(&held) {
                return Vec::new();
            }
            last = Some(held.clone());
            vec![Action::HeldSampled(held)]
        }),
    );
    // The figures that move all the time, in one round (one wake-up for the lot): when the
    // engine pushes them (issue 15: its metrics round, not a timer of ours beside it), or
    // every few seconds from an engine that does not push; on the runtime's pool, whose
    // thread stays, not a new thread each time.
    let figures_worker = Worker {
        own_thread: false,
        follow_records: false,
        settle: FIGURES_SETTLE,
        ..worker(
            timer(figures_every),
            woken(Topic::Figures),
            FIGURES_WAKE_GAP,
        )
    };
    let mut last = Figures::default();
    tokio::spawn(figures_worker.run(move |engine, records| last.news(engine, records)));
    let mut last = None;
    tokio::spawn(
        worker(timer(USAGE_REFRESH), woken(Topic::Usage), USAGE_WAKE_GAP).run(move |engine, _| {
            let summary = engine.usage_summary();
            if last.as_ref() == Some(&summary) {
                return Vec::new();
            }
            last = Some(summary.clone());
            vec![Action::UsageUpdated(Box::new(summary))]
        }),
    );
    forward_wakes(wakeups.as_ref(), tx, cancel);
}

/// What the engine's wake-ups ask of the main loop itself: the records, the preview.
fn forward_wakes(
    wakeups: Option<&crate::engine::wake::Wakeups>,
    tx: &UnboundedSender<Action>,
    cancel: &CancellationToken,
) {
    let Some(wakeups) = wakeups else {
        return;
    };
    let forward = |topic, gap, act: fn() -> Action| {
        let woken = wakeups.subscribe(topic);
        tokio::spawn(act_on_change(woken, gap, tx.clone(), cancel.clone(), act));
    };
    // A sandbox that came, changed or went: the records at once, as the monitor's timer
    // would load them.
    forward(Topic::Records, STATUS_WAKE_GAP, || Action::MonitorTick);
    // A new preview text: drawn now, not at the preview's next tick.
    forward(Topic::Preview, STATUS_WAKE_GAP, || Action::PreviewTick);
}

/// The figures the last round sent.
#[derive(Default)]
struct Figures {
    links: Vec<crate::engine::HostLink>,
    host: Option<crate::engine::host_stats::HostStats>,
    metrics: Option<
        std::collections::HashMap<crate::sandbox::SandboxId, crate::metrics::SandboxMetrics>,
    >,
}

impl Figures {
    /// Each sandbox's CPU and memory, the host's, and how each host is reached (a mirror of
    /// several): what the table's figures and the header show; only those that changed
    /// since the last round (the reducer compares the screen for each action it gets).
    fn news(&mut self, engine: &dyn EngineHandle, records: &[SandboxRecord]) -> Vec<Action> {
        let mut actions = Vec::new();
        let links = engine.links();
        if !links.is_empty() && links != self.links {
            self.links.clone_from(&links);
            actions.push(Action::LinksSampled(links));
        }
        let host = engine.host_stats();
        if self.host.as_ref() != Some(&host) {
            self.host = Some(host.clone());
            actions.push(Action::HostSampled(host));
        }
        let metrics = engine.metrics(records);
        if metrics.is_some() && metrics != self.metrics {
            self.metrics.clone_from(&metrics);
            actions.extend(metrics.map(Action::MetricsSampled));
        }
        actions
    }
}

/// Sends `act()` each time `woken` changes, at most once per `gap`.
async fn act_on_change(
    mut woken: watch::Receiver<u64>,
    gap: Duration,
    tx: UnboundedSender<Action>,
    cancel: CancellationToken,
    act: impl Fn() -> Action,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = woken.changed() => if changed.is_err() { return },
        }
        if tx.send(act()).is_err() {
            return;
        }
        // A burst (a hundred sandboxes ending) is one action per gap.
        tokio::time::sleep(gap).await;
    }
}

struct Worker {
    period: Duration,
    /// Starts a round before the timer; rounds stay `gap` apart.
    wake: Option<watch::Receiver<u64>>,
    follow_records: bool,
    gap: Duration,
    /// How long a woken round waits for what comes with the wake-up.
    settle: Duration,
    /// Rounds on a thread of their own rather than the runtime's blocking pool.
    own_thread: bool,
    engine: Arc<dyn EngineHandle>,
    records: watch::Receiver<Vec<SandboxRecord>>,
    tx: UnboundedSender<Action>,
    cancel: CancellationToken,
}

impl Worker {
    /// Runs `step` off the UI task now and then every `period`, sending what it returns
    /// (one batch), until the token is cancelled or nobody listens any more.
    async fn run<F>(mut self, mut step: F)
    where
        F: FnMut(&dyn EngineHandle, &[SandboxRecord]) -> Vec<Action> + Send + 'static,
    {
        let mut ticks = tokio::time::interval(self.period);
        // A slow round is followed by one round, not a burst.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_round: Option<tokio::time::Instant> = None;
        let mut wake = self.wake.take();
        let mut seen: Vec<SandboxRecord> = Vec::new();
        loop {
            let woken = async {
                let Some(wake) = wake.as_mut() else {
                    return std::future::pending().await;
                };
                if wake.changed().await.is_err() {
                    // The engine is gone: the timer alone, as without wake-ups.
                    std::future::pending::<()>().await;
                }
            };
            let follow = self.follow_records;
            let records_changed = async {
                if !follow {
                    std::future::pending::<()>().await;
                }
                // The refresh republishes the records every time: only a change counts.
                loop {
                    if self.records.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    if *self.records.borrow_and_update() != seen {
                        return;
                    }
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                _ = ticks.tick() => {}
                () = records_changed => {}
                () = woken => {
                    let settled = tokio::time::Instant::now() + self.settle;
                    let apart = last_round.map_or(settled, |at| at + self.gap);
                    tokio::time::sleep_until(settled.max(apart)).await;
                    // The timer's next round counts from this one.
                    ticks.reset();
                }
            }
            last_round = Some(tokio::time::Instant::now());
            let records = self.records.borrow_and_update().clone();
            if self.follow_records {
                seen.clone_from(&records);
            }
            let engine = Arc::clone(&self.engine);
            let work = move || {
                let actions = step(engine.as_ref(), &records);
                (step, actions)
            };
            let round = if self.own_thread {
                detached(work).await
            } else {
                tokio::task::spawn_blocking(work).await.ok()
            };
            let Some((back, actions)) = round else {
                tracing::warn!("a worker ended: its round could not run or panicked");
                return;
            };
            step = back;
            for action in actions {
                if self.tx.send(action).is_err() {
                    return;
                }
            }
            if self.tx.is_closed() {
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
