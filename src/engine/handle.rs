//! The one door from a front end into the engine (D6). The TUI holds an
//! `Arc<dyn EngineHandle>` and nothing else of the engine: every call takes and returns plain
//! serde data (records, names, snapshots), so a remote handle speaking the websocket protocol
//! can stand where the local [`Deck`] stands today. The front end's own settings (theme,
//! mouse, keys, notifications) are its own; what it needs to know about the engine comes from
//! [`EngineHandle::info`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::agent_round::{AgentRound, Changed};
use super::hook_watch::HookWatch;
use super::host_link::HostLink;
use super::host_stats::HostStats;
use super::preview::PaneWatch;
use super::screen::ScreenCapturer;
use super::status::{Assessment, StatusTracker};
use super::usage::{UsageSummary, UsageTracker};
use super::wake::Wakeups;
use super::{Action, Deck};
use crate::backend::Options;
use crate::capture::Frame;
use crate::error::Result;
use crate::metrics::{MetricsSampler, SandboxMetrics};
use crate::paths::Paths;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord, SandboxState};

/// What a front end needs to know about the engine it talks to, as a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    pub state_dir: PathBuf,
    pub config_dir: PathBuf,
    pub runtime_dir: PathBuf,
    /// `sandbox.agent`: what a new sandbox runs.
    pub agent: String,
    /// `sandbox.network`: the network mode of a new sandbox.
    pub default_network: crate::sandbox::Network,
    /// The opt-ins `[bubblewrap]` turns on, which a new sandbox gets.
    pub default_options: Options,
    /// `monitor.interval_ms`: how often the records are worth asking for.
    pub monitor_interval_ms: u64,
    /// How often agent states are worth sampling: two readings at least
    /// `status.idle_debounce_ms` apart make working → idle (or the monitor's pace, if faster).
    pub status_interval_ms: u64,
    /// `metrics.interval_ms`.
    pub metrics_interval_ms: u64,
}

impl EngineInfo {
    /// What an engine with these dirs and this config says of itself (a fleet's front end
    /// says it of its own config: its hosts answer later, each its own way).
    pub fn of(paths: &Paths, config: &crate::config::Config) -> EngineInfo {
        let monitor = config.monitor.interval_ms;
        EngineInfo {
            state_dir: paths.state_dir.clone(),
            config_dir: paths.config_dir.clone(),
            runtime_dir: paths.runtime_dir.clone(),
            agent: config.sandbox.agent.clone(),
            default_network: config.sandbox.network,
            default_options: config.bubblewrap.options(),
            monitor_interval_ms: monitor,
            status_interval_ms: monitor.min(config.status.idle_debounce_ms).max(250),
            metrics_interval_ms: config.metrics.interval_ms.max(250),
        }
    }

    pub fn paths(&self) -> Paths {
        Paths {
            state_dir: self.state_dir.clone(),
            config_dir: self.config_dir.clone(),
            runtime_dir: self.runtime_dir.clone(),
        }
    }
}

/// One sandbox's debounced agent state, with the sandbox state it was read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReading {
    pub id: SandboxId,
    pub name: SandboxName,
    pub sandbox: SandboxState,
    pub assessment: Assessment,
}

impl AgentReading {
    /// `record`'s reading `reading` after `tracker`'s debounce (what clients are sent).
    fn debounced(
        tracker: &mut StatusTracker,
        deck: &Deck,
        record: &SandboxRecord,
        reading: Assessment,
    ) -> AgentReading {
        AgentReading {
            id: record.id.clone(),
            name: record.name.clone(),
            sandbox: record.state,
            assessment: tracker.debounce(deck, record, reading).1,
        }
    }
}

/// The command that puts a terminal on a sandbox's session, as data: the front end runs it
/// in the terminal it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachCommand {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables to unset first.
    pub env_remove: Vec<OsString>,
}

impl AttachCommand {
    fn of(command: &Command) -> AttachCommand {
        AttachCommand {
            program: command.get_program().to_owned(),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            env_remove: command
                .get_envs()
                .filter(|(_, value)| value.is_none())
                .map(|(key, _)| key.to_owned())
                .collect(),
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for key in &self.env_remove {
            command.env_remove(key);
        }
        command
    }
}

/// Everything a front end asks of the engine. Blocking calls: front ends run them off their
/// UI task. Implemented by the local [`Deck`]; a remote handle comes with the API.
pub trait EngineHandle: Send + Sync {
    fn info(&self) -> EngineInfo;
    /// All sandboxes, reconciled with what really runs.
    fn list(&self) -> Result<Vec<SandboxRecord>>;
    fn execute(&self, action: Action) -> Result<SandboxRecord>;
    fn restart(&self, name: &SandboxName, fresh: bool) -> Result<SandboxRecord>;
    /// What `start` would run in each managed sandbox (or why it cannot start), by id.
    fn start_commands(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, String>;
    /// The host's CPU use (since the previous call) and memory, for the header.
    fn host_stats(&self) -> HostStats;
    /// The visible screen of a sandbox's pane, with ANSI colours.
    fn preview(&self, name: &SandboxName) -> Result<String>;
    /// The debounced agent state of each of `records` that runs an agent.
    fn agent_states(&self, records: &[SandboxRecord]) -> Vec<AgentReading>;
    /// CPU and memory per running sandbox; None until two samples exist.
    fn metrics(&self, records: &[SandboxRecord]) -> Option<HashMap<SandboxId, SandboxMetrics>>;
    /// Usage from the Claude logs, read up to now.
    fn usage_summary(&self) -> UsageSummary;
    fn attach_command(&self, name: &SandboxName) -> Result<AttachCommand>;
    /// A sandbox's screen, to take frames from while it is watched.
    fn subscribe_screen(&self, name: &SandboxName) -> Result<Box<dyn ScreenSource>>;
    /// The dirs that complete `input` (a project dir being typed), listed where the engine's
    /// files are.
    fn complete_dir(&self, input: &str) -> Vec<String> {
        super::dir_completion::complete_dir(input)
    }
    /// The connections each proxy-mode sandbox of `records` holds for an answer, by id
    /// (only those holding any).
    fn egress_held(
        &self,
        _records: &[SandboxRecord],
    ) -> HashMap<SandboxId, Vec<crate::egress::held::Held>> {
        HashMap::new()
    }
    /// Answers a sandbox's connections held for `rule` (see `Deck::egress_answer`).
    fn egress_answer(
        &self,
        name: &SandboxName,
        _rule: &str,
        _reply: crate::egress::held::Reply,
    ) -> Result<SandboxRecord> {
        Err(crate::error::DeckError::WrongState {
            name: name.to_string(),
            state: "behind this engine".into(),
            hint: "this engine does not answer held connections".into(),
        })
    }
    /// Whether the engine's files are this host's: the front end may then make a missing
    /// project dir itself. A mirror's are on another host.
    fn files_are_here(&self) -> bool {
        true
    }
    /// What wakes the front end's workers before their timer: the engine's own wake-ups, or
    /// for a client of `serve` what the engine pushes. None: the timers alone.
    fn wakeups(&self) -> Option<Wakeups> {
        None
    }
    /// Whether the agent states, held connections and usage this handle answers change
    /// only with what the engine pushes, each push waking its topic in
    /// [`EngineHandle::wakeups`] (a client of `serve`): a worker's timer is then only a
    /// safety net, not a poll. False for a handle that reads them itself.
    fn pushes_readings(&self) -> bool {
        false
    }
    /// The hosts behind this handle and how each is reached, for a front end of several
    /// (`mirror a b`); none for one engine, whose handle reports its own errors.
    fn links(&self) -> Vec<HostLink> {
        Vec::new()
    }
}

/// A watched screen, frame by frame. Locally a display connection kept open (x11rb, QMP);
/// a remote handle would hand out the frames the engine sends. Blocking, like the handle.
pub trait ScreenSource: Send {
    /// The current screen if it changed since the last call, else None.
    fn next_if_changed(&mut self) -> std::result::Result<Option<Frame>, String>;
}

impl ScreenSource for ScreenCapturer {
    fn next_if_changed(&mut self) -> std::result::Result<Option<Frame>, String> {
        self.capture_if_changed().map_err(|e| e.to_string())
    }
}

/// What the local handle keeps between calls of a long-lived front end: the status
/// debouncer, the metrics sampler, the usage index and the watched panes (over one tmux
/// control client per server). Each is made on first use, so a one-shot CLI command pays for none.
#[derive(Default)]
pub(super) struct Trackers {
    status: Mutex<Option<StatusTracker>>,
    metrics: Mutex<Option<MetricsSampler>>,
    usage: Mutex<Option<UsageTracker>>,
    panes: Mutex<PaneWatch>,
    hooks: Mutex<HookWatch>,
    /// The agents' last readings, kept while nothing they were read from changed.
    round: Mutex<AgentRound>,
    /// The output of watched panes, for subscribers.
    pub(super) output: super::pane_output::SharedPaneOutput,
    /// The `stat` files of the processes the monitor checks (displays, launchers).
    processes: Mutex<crate::host::process::StatReader>,
}

impl Trackers {
    /// The monitor's reader of `stat` files, kept between reconciles.
    pub(super) fn processes(&self) -> std::sync::MutexGuard<'_, crate::host::process::StatReader> {
        lock(&self.processes)
    }
}

impl EngineHandle for Deck {
    fn info(&self) -> EngineInfo {
        EngineInfo::of(&self.paths, &self.config)
    }

    fn list(&self) -> Result<Vec<SandboxRecord>> {
        Deck::list(self)
    }

    fn execute(&self, action: Action) -> Result<SandboxRecord> {
        Deck::execute(self, action)
    }

    fn restart(&self, name: &SandboxName, fresh: bool) -> Result<SandboxRecord> {
        Deck::restart(self, name.as_str(), fresh)
    }

    fn start_commands(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, String> {
        // Resuming or not is decided now, from the project's conversations, exactly as
        // `start` decides it.
        records
            .iter()
            .filter(|r| r.managed)
            .map(|r| {
                let command = self
                    .start_command(r, false)
                    .unwrap_or_else(|e| format!("(cannot start: {e})"));
                (r.id.clone(), command)
            })
            .collect()
    }

    fn host_stats(&self) -> HostStats {
        Deck::host_stats(self)
    }

    fn egress_held(
        &self,
        records: &[SandboxRecord],
    ) -> HashMap<SandboxId, Vec<crate::egress::held::Held>> {
        records
            .iter()
            .filter(|r| r.state == SandboxState::Running)
            .map(|r| (r.id.clone(), self.held_of(r)))
            .filter(|(_, held)| !held.is_empty())
            .collect()
    }

    fn egress_answer(
        &self,
        name: &SandboxName,
        rule: &str,
        reply: crate::egress::held::Reply,
    ) -> Result<SandboxRecord> {
        Ok(Deck::egress_answer(self, name.as_str(), rule, reply.scope())?.record)
    }

    fn preview(&self, name: &SandboxName) -> Result<String> {
        match self.stored_record(name)? {
            Some(record) => lock(&self.trackers.panes).text(self, &record, true),
            None => self.capture_pane(name.as_str()),
        }
    }

    fn agent_states(&self, records: &[SandboxRecord]) -> Vec<AgentReading> {
        let mut guard = lock(&self.trackers.status);
        let tracker = guard.get_or_insert_with(StatusTracker::new);
        let mut panes = lock(&self.trackers.panes);
        // Every running pane is watched (and logged), not only the agents'.
        panes.keep(self, records);
        let mut hooks = lock(&self.trackers.hooks);
        hooks.keep(self, records);
        // Before any file is read: a hook written after this is in the next round's.
        let written = hooks.take_changes();
        let mut round = lock(&self.trackers.round);
        round.retain(records);
        records
            .iter()
            .filter(|r| r.runs_agent())
            .map(|r| {
                let pane = (r.state == SandboxState::Running && r.tmux_session.is_some())
                    .then(|| panes.text(self, r, false).ok())
                    .flatten();
                let changed = Changed {
                    hook: hooks.may_have_changed(&written, &r.id),
                    transcripts: hooks.transcripts_may_have_changed(&written, &r.id),
                };
                if changed.transcripts {
                    hooks.forget_missing_transcripts(&r.id);
                }
                let reading = round.reading(self, r, pane, changed);
                AgentReading::debounced(tracker, self, r, reading)
            })
            .collect()
    }

    fn metrics(&self, records: &[SandboxRecord]) -> Option<HashMap<SandboxId, SandboxMetrics>> {
        let mut guard = lock(&self.trackers.metrics);
        let sampler = guard.get_or_insert_with(|| self.metrics_sampler());
        sampler.sample_sandboxes(records)
    }

    fn usage_summary(&self) -> UsageSummary {
        let mut guard = lock(&self.trackers.usage);
        let tracker = guard.get_or_insert_with(|| UsageTracker::new(self));
        tracker.refresh(self).clone()
    }

    fn attach_command(&self, name: &SandboxName) -> Result<AttachCommand> {
        Deck::attach_command(self, name.as_str()).map(|c| AttachCommand::of(&c))
    }

    fn subscribe_screen(&self, name: &SandboxName) -> Result<Box<dyn ScreenSource>> {
        let capturer = self.screen_capturer(name.as_str())?;
        Ok(Box::new(capturer))
    }

    fn wakeups(&self) -> Option<Wakeups> {
        Some(self.wakeups.clone())
    }
}

impl Deck {
    /// The engine's first reading of the agent states: as [`EngineHandle::agent_states`],
    /// but the panes are read by one `capture-pane` process per tmux server, with no control
    /// client attached yet (attaching one per session takes a process and a round trip
    /// each: the next reading does it). A front end that just started the engine shows
    /// every agent's state that much sooner.
    pub fn first_agent_states(&self, records: &[SandboxRecord]) -> Vec<AgentReading> {
        let agents: Vec<&SandboxRecord> = records
            .iter()
            .filter(|r| r.runs_agent() && r.state == SandboxState::Running)
            .filter(|r| r.tmux_session.is_some())
            .collect();
        let mut panes: HashMap<&SandboxId, String> = HashMap::new();
        let mut servers: HashMap<PathBuf, Vec<&SandboxRecord>> = HashMap::new();
        for record in agents {
            let socket = self.tmux_of(record).socket().to_path_buf();
            servers.entry(socket).or_default().push(record);
        }
        for on_server in servers.values() {
            let sessions: Vec<&str> = on_server
                .iter()
                .filter_map(|r| r.tmux_session.as_deref())
                .collect();
            let texts = self.tmux_of(on_server[0]).capture_many(&sessions);
            for (record, text) in on_server.iter().zip(texts) {
                if let Some(text) = text {
                    panes.insert(&record.id, text);
                }
            }
        }
        let mut guard = lock(&self.trackers.status);
        let tracker = guard.get_or_insert_with(StatusTracker::new);
        lock(&self.trackers.hooks).keep(self, records);
        let mut round = lock(&self.trackers.round);
        records
            .iter()
            .filter(|r| r.runs_agent())
            .map(|r| {
                let pane = panes.remove(&r.id);
                let reading = round.reading(self, r, pane, Changed::ALL);
                AgentReading::debounced(tracker, self, r, reading)
            })
            .collect()
    }

    /// [`EngineHandle::preview`] for a reader that asks many times a second (the engine's
    /// preview watches): the registry is parsed again only when it changed.
    pub fn preview_often(&self, name: &SandboxName) -> Result<String> {
        let stored = self
            .registry
            .read_cached(|records| records.iter().find(|r| &r.name == name).cloned())?;
        match stored {
            Some(record) => lock(&self.trackers.panes).text(self, &record, true),
            None => self.capture_pane(name.as_str()),
        }
    }

    /// How many plain captures the status round took so far (tests, benches).
    pub fn status_captures(&self) -> u64 {
        lock(&self.trackers.panes).status_captures
    }

    /// `usage`'s report from the index the engine keeps current (made on first use), not
    /// from a fresh one: see [`UsageTracker::report`].
    pub fn usage_report_kept(&self, query: &crate::usage::Query) -> Result<crate::usage::Report> {
        let mut guard = lock(&self.trackers.usage);
        let tracker = guard.get_or_insert_with(|| UsageTracker::new(self));
        tracker.report(self, query)
    }
}

/// A tracker whose last user panicked is still a tracker: at worst one reading is off.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_reading_survives_the_wire() {
        let reading = AgentReading {
            id: serde_json::from_str("\"00000000deadbeef\"").unwrap(),
            name: SandboxName::parse("api").unwrap(),
            sandbox: SandboxState::Running,
            assessment: Assessment::new(
                super::super::status::AgentState::Waiting,
                super::super::status::Source::Hook,
                "asks for permission",
            ),
        };
        let wire = serde_json::to_string(&reading).unwrap();
        assert_eq!(
            serde_json::from_str::<AgentReading>(&wire).unwrap(),
            reading
        );
    }

    #[test]
    fn an_attach_command_survives_the_wire() {
        let mut command = Command::new("tmux");
        command
            .env_remove("TMUX")
            .args(["-S", "/run/x", "attach-session", "-t", "=api"]);
        let attach = AttachCommand::of(&command);
        let wire = serde_json::to_string(&attach).expect("serializable");
        let back: AttachCommand = serde_json::from_str(&wire).expect("deserializable");
        assert_eq!(back, attach);
        let rebuilt = back.command();
        assert_eq!(rebuilt.get_program(), "tmux");
        assert_eq!(rebuilt.get_args().count(), 5);
        assert!(rebuilt.get_envs().any(|(k, v)| k == "TMUX" && v.is_none()));
    }
}
