//! The engine and its local `Deck` handle (D6): every front end (CLI, TUI, API) reads
//! snapshots and executes actions through it, never touching the registry or tmux itself.

pub mod agent_round;
pub mod dir_completion;
pub mod egress;
pub mod gc;
pub mod handle;
pub mod hook_watch;
pub mod host_link;
pub mod host_stats;
pub mod launch;
pub mod lifecycle;
pub mod monitor;
pub mod pane_output;
pub mod preview;
pub mod resume;
pub mod screen;
pub mod service;
pub mod status;
pub mod status_gate;
pub mod status_report;
pub mod tmux_link;
pub mod transcript_watch;
pub mod usage;
pub mod wake;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{DeckError, Result};
use crate::host::tmux::Tmux;
use crate::host::which;
use crate::paths::Paths;
use crate::registry::Registry;
use crate::sandbox::{Payload, ProjectDir, SandboxName, SandboxRecord};

pub use handle::{AgentReading, AttachCommand, EngineHandle, EngineInfo, ScreenSource};
pub use host_link::{HostLink, LinkState};

/// A request to make a managed sandbox; a hand-started one ([`launch::LaunchRequest`]) asks
/// for the same and more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    pub project_dir: PathBuf,
    /// Defaults to a name derived from the project directory.
    pub name: Option<String>,
    pub payload: Payload,
    /// Defaults to `sandbox.network` from the config.
    pub network: Option<crate::sandbox::Network>,
    /// Hosts its proxy lets through beyond the shared allowlist (`HOST[:PORT]`).
    #[serde(default)]
    pub allow: Vec<String>,
    pub gh_token: bool,
    /// A profile JSON file; the built-in host profile when absent.
    pub profile: Option<PathBuf>,
    /// Opt-ins beyond the defaults (D-Bus, SSH agent, audio, GPU).
    #[serde(default)]
    pub options: crate::sandbox::Options,
}

/// Everything that changes a sandbox, as one type shared by the CLI, the TUI and the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Create(CreateRequest),
    Start {
        name: SandboxName,
        /// Start the agent without resuming its conversation.
        #[serde(default)]
        fresh: bool,
    },
    Stop {
        name: SandboxName,
    },
    Remove {
        name: SandboxName,
        force: bool,
    },
}

pub struct Deck {
    pub paths: Paths,
    pub config: Config,
    registry: Registry,
    tmux: Tmux,
    /// This binary, which tmux runs as the pane command (`run-managed`).
    exe: PathBuf,
    status_patterns: status::Patterns,
    /// What the handle keeps between a front end's calls (see [`EngineHandle`]).
    trackers: handle::Trackers,
    /// Measures the host's CPU use between two [`Deck::host_stats`] calls; made on first use.
    host_sampler: std::sync::Mutex<Option<crate::metrics::HostSampler>>,
    /// What wakes a long-lived front end's workers before their timer (issue 15).
    wakeups: wake::Wakeups,
    /// One control connection a tmux server: the watched panes' output, and the survey
    /// without a process.
    tmux_links: tmux_link::TmuxLinks,
}

impl Deck {
    /// The handle for this user's XDG dirs and config.
    pub fn open() -> Result<Deck> {
        let paths = Paths::from_env()?;
        let config =
            Config::load_system_and_user(&Paths::system_config_file(), &paths.config_file())?;
        Deck::with(paths, config)
    }

    pub fn with(paths: Paths, config: Config) -> Result<Deck> {
        paths.ensure_state_dir()?;
        paths.ensure_runtime_dir()?;
        let tmux = Tmux::new(
            which("tmux").unwrap_or_else(|| "tmux".into()),
            paths.tmux_socket(),
            paths.tmux_conf(),
        );
        let exe = std::env::current_exe()
            .map_err(|e| DeckError::io("finding the sandbox-deck binary", e))?;
        let wakeups = wake::Wakeups::default();
        Ok(Deck {
            tmux_links: tmux_link::TmuxLinks::new(wakeups.clone()),
            wakeups,
            registry: Registry::new(&paths),
            paths,
            config,
            tmux,
            exe,
            status_patterns: status::Patterns::builtin(),
            trackers: handle::Trackers::default(),
            host_sampler: std::sync::Mutex::new(None),
        })
    }

    /// The tmux server a sandbox's session lives on: the one of the runtime dir it was made
    /// under, which need not be ours (see [`SandboxRecord::runtime_dir`]).
    pub fn tmux_of(&self, record: &SandboxRecord) -> Tmux {
        let dir = self.paths.runtime_dir_of(record);
        self.tmux.at(
            crate::paths::tmux_socket_in(dir),
            crate::paths::tmux_conf_in(dir),
        )
    }

    /// Every pane on `tmux`'s server, over a kept control connection when one is up.
    pub fn survey(&self, tmux: &Tmux) -> crate::host::tmux::Survey {
        self.tmux_links.survey(tmux)
    }

    /// Every command this engine sent over its tmux control connections, by kind (tests,
    /// benches: what an idle engine asks of the server).
    pub fn tmux_commands_sent(&self) -> std::collections::BTreeMap<String, u64> {
        self.tmux_links.sent()
    }

    /// A long-running engine keeps a control connection to each server it surveys.
    pub fn keep_tmux_links(&self) {
        self.tmux_links.keep();
    }

    /// The engine's wake-ups: a worker waits on them beside its timer.
    pub fn wakeups(&self) -> &wake::Wakeups {
        &self.wakeups
    }

    /// All sandboxes, reconciled with what really runs.
    pub fn list(&self) -> Result<Vec<SandboxRecord>> {
        self.reconcile()
    }

    pub fn show(&self, name: &str) -> Result<SandboxRecord> {
        let name = crate::sandbox::SandboxName::parse(name)?;
        self.list()?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| DeckError::NotFound {
                name: name.to_string(),
            })
    }

    /// The record of a sandbox made from `request` (registered by the caller): under our
    /// runtime dir, with the network asked for or configured, the profile by its real path.
    fn new_record(
        &self,
        name: SandboxName,
        project_dir: ProjectDir,
        request: CreateRequest,
    ) -> SandboxRecord {
        SandboxRecord {
            network: request.network.unwrap_or(self.config.sandbox.network),
            allow: request.allow,
            gh_token: request.gh_token,
            profile: request.profile.map(|p| p.canonicalize().unwrap_or(p)),
            options: request.options,
            runtime_dir: Some(self.paths.runtime_dir.clone()),
            ..SandboxRecord::new(name, project_dir, request.payload)
        }
    }

    pub fn execute(&self, action: Action) -> Result<SandboxRecord> {
        match action {
            Action::Create(request) => self.create(request),
            Action::Start { name, fresh } => self.start(name.as_str(), fresh),
            Action::Stop { name } => self.stop(name.as_str()),
            Action::Remove { name, force } => self.remove(name.as_str(), force),
        }
    }
}

/// Finds a host binary the engine needs, or says how to install it.
pub(crate) fn require(binary: &str, package: &str) -> Result<PathBuf> {
    which(binary).ok_or_else(|| DeckError::MissingBinary {
        binary: binary.to_owned(),
        install: format!("install it with `sudo apt-get install {package}` (Debian/Ubuntu)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_json_shape_and_refuse_a_bad_name() {
        let name = SandboxName::parse("api").expect("a valid name");
        let json = |action: &Action| serde_json::to_value(action).expect("serializable");
        assert_eq!(
            json(&Action::Start {
                name: name.clone(),
                fresh: false
            }),
            serde_json::json!({"action": "start", "name": "api", "fresh": false})
        );
        assert_eq!(
            json(&Action::Stop { name: name.clone() }),
            serde_json::json!({"action": "stop", "name": "api"})
        );
        assert_eq!(
            json(&Action::Remove { name, force: true }),
            serde_json::json!({"action": "remove", "name": "api", "force": true})
        );
        let parsed: Action =
            serde_json::from_value(serde_json::json!({"action": "start", "name": "api"}))
                .expect("fresh defaults to false");
        assert!(matches!(parsed, Action::Start { fresh: false, .. }));
        let bad =
            serde_json::from_value::<Action>(serde_json::json!({"action": "stop", "name": "a:b"}));
        assert!(bad.is_err(), "a tmux target is not a name");
    }
}
