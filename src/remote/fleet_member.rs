//! One host of a fleet (`mirror a b c`): its connection, kept up by a task of its own on
//! the front end's runtime, and what it showed last. The task connects, watches the
//! connection, and after a loss tries again spaced out by [`Backoff`]; the front end's
//! calls only ever read what the task left here, so a host that is slow or gone never
//! holds up the UI or the other hosts.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::connection::ConnectOptions;
use super::mirror::MirrorEngine;
use super::target::Target;
use crate::engine::wake::{Topic, Wakeups};
use crate::engine::{HostLink, LinkState};
use crate::error::{DeckError, Result};
use crate::sandbox::{SandboxName, SandboxRecord};

/// How often a live connection is looked at for having ended.
const WATCH_EVERY: Duration = Duration::from_millis(250);

pub struct Member {
    /// The host as typed, which qualifies its sandboxes' names (`api@host`).
    pub host: String,
    state: Mutex<MemberState>,
    /// The fleet's wake-ups, which this host's are relayed into.
    wakeups: Wakeups,
}

struct MemberState {
    link: LinkState,
    engine: Option<Arc<MirrorEngine>>,
    /// The host's sandboxes as last seen, names qualified: shown greyed while it is down.
    last: Vec<SandboxRecord>,
}

impl Member {
    /// A member for `target`, and its task started on `runtime`.
    pub fn start(
        target: Target,
        options: ConnectOptions,
        screen_fps: f64,
        wakeups: &Wakeups,
        runtime: &tokio::runtime::Handle,
    ) -> Arc<Member> {
        let member = Arc::new(Member {
            wakeups: wakeups.clone(),
            host: target.to_string(),
            state: Mutex::new(MemberState {
                link: LinkState::Connecting,
                engine: None,
                last: Vec::new(),
            }),
        });
        runtime.spawn(keep_up(Arc::clone(&member), target, options, screen_fps));
        member
    }

    fn lock(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn link(&self) -> HostLink {
        HostLink {
            host: self.host.clone(),
            state: self.lock().link.clone(),
        }
    }

    /// The host's engine while it is up; else why not, naming the host.
    pub fn engine(&self) -> Result<Arc<MirrorEngine>> {
        let state = self.lock();
        match &state.engine {
            Some(engine) if state.link.is_up() => Ok(Arc::clone(engine)),
            _ => Err(DeckError::Remote {
                host: self.host.clone(),
                detail: state.link.to_string(),
            }),
        }
    }

    /// The engine if it is up, without a reason.
    pub fn engine_if_up(&self) -> Option<Arc<MirrorEngine>> {
        self.engine().ok()
    }

    /// The host's sandboxes: read from its engine while it is up (and kept), else as
    /// last seen.
    pub fn records(&self) -> Vec<SandboxRecord> {
        if let Some(engine) = self.engine_if_up() {
            use crate::engine::EngineHandle as _;
            if let Ok(records) = engine.list() {
                let records: Vec<SandboxRecord> =
                    records.into_iter().map(|r| self.qualified(r)).collect();
                self.lock().last = records.clone();
                return records;
            }
        }
        self.lock().last.clone()
    }

    /// Whether the host showed a sandbox of this bare name last.
    pub fn has(&self, bare: &SandboxName) -> bool {
        self.lock()
            .last
            .iter()
            .any(|r| r.name.bare() == bare.as_str())
    }

    /// `record` as the fleet shows it: its name qualified by this host.
    pub fn qualified(&self, mut record: SandboxRecord) -> SandboxRecord {
        record.name = SandboxName::on_host(&record.name, &self.host);
        record
    }

    fn set(&self, link: LinkState, engine: Option<Arc<MirrorEngine>>) {
        let mut state = self.lock();
        let came_or_went = state.link.is_up() != link.is_up();
        state.link = link;
        state.engine = engine;
        drop(state);
        if came_or_went {
            // Its rows grey or come back now, not at the next tick.
            self.wakeups.wake(Topic::Records);
        }
    }
}

/// Connects, watches, waits and connects again, for as long as the runtime runs.
async fn keep_up(member: Arc<Member>, target: Target, options: ConnectOptions, screen_fps: f64) {
    let mut backoff = Backoff::default();
    let mut attempt = 0u32;
    loop {
        let connected = MirrorEngine::connect_once(target.clone(), options.clone(), screen_fps);
        let why = match connected.await {
            Ok(engine) => {
                attempt = 0;
                backoff.succeeded();
                let engine = Arc::new(engine);
                member.set(LinkState::Up, Some(Arc::clone(&engine)));
                tracing::info!("{}: connected", member.host);
                lost(&engine, &member.wakeups).await
            }
            Err(e) => e.to_string(),
        };
        tracing::info!("{}: {why}", member.host);
        let prefix = format!("{}: ", member.host);
        let why = why.strip_prefix(&prefix).unwrap_or(&why).to_owned();
        backoff.failed(Instant::now(), why);
        attempt += 1;
        // Counted down in the header, a second at a time.
        while let Some((wait, why)) = backoff.wait(Instant::now()) {
            let down = LinkState::Down {
                reason: why.to_owned(),
                retry_in_secs: wait.as_secs_f64().ceil() as u64,
            };
            member.set(down, None);
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
        }
        member.set(LinkState::Reconnecting { attempt }, None);
    }
}

/// Why a live connection ended, once it did; meanwhile what the host's engine pushes
/// wakes the fleet's workers.
async fn lost(engine: &MirrorEngine, fleet: &Wakeups) -> String {
    use crate::engine::EngineHandle as _;
    let theirs = engine.wakeups().unwrap_or_default();
    let mut agents = theirs.subscribe(Topic::Agents);
    let mut records = theirs.subscribe(Topic::Records);
    let mut usage = theirs.subscribe(Topic::Usage);
    let mut preview = theirs.subscribe(Topic::Preview);
    // An interval, not a sleep per turn: wake-ups in a row must not put the look off.
    let mut watch = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = watch.tick() => {
                if let Some(why) = engine.closed() {
                    return format!("connection lost: {why}");
                }
            }
            Ok(()) = agents.changed() => fleet.wake(Topic::Agents),
            Ok(()) = records.changed() => fleet.wake(Topic::Records),
            Ok(()) = usage.changed() => fleet.wake(Topic::Usage),
            Ok(()) = preview.changed() => fleet.wake(Topic::Preview),
        }
    }
}
