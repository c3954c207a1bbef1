//! Starting the backend process itself: in a managed sandbox's tmux pane (`run-managed`),
//! or in the caller's terminal (`launch`, what the Nix launchers call).

use std::convert::Infallible;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::lifecycle::{checked_project_dir, find_by_id, read_gh_token};
use super::{Deck, require};
use crate::backend::{self, Launch, SandboxDisplay};
use crate::error::{DeckError, IoContext, Result};
use crate::host::process::ProcRef;
use crate::paths::make_private_dir;
use crate::sandbox::{BackendKind, Payload, SandboxId, SandboxName, SandboxRecord, SandboxState};
use crate::spec::Profile;

/// A hand-started sandbox in the current terminal.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub backend: BackendKind,
    pub project_dir: PathBuf,
    pub name: Option<String>,
    pub payload: Payload,
    pub network: Option<bool>,
    pub gh_token: bool,
    pub profile: Option<PathBuf>,
}

impl Deck {
    /// Runs in a managed sandbox's tmux pane: replaces this process with the backend, so the
    /// pane's exit status is the backend's and bwrap's parent is the tmux server.
    pub fn run_managed(&self, id: &SandboxId, resume: bool) -> Result<Infallible> {
        let mut records = self.registry.load()?;
        let record = find_by_id(&mut records, id)?.clone();
        let gh_token = if record.gh_token {
            let path = self.paths.sandbox_runtime_dir(&record.id).join("gh-token");
            let token = std::fs::read_to_string(&path)
                .context_io(|| format!("reading the token {}", path.display()))?;
            Some(token)
        } else {
            None
        };
        let display = record.display.map(|number| SandboxDisplay {
            number,
            xauthority: self
                .paths
                .sandbox_runtime_dir(&record.id)
                .join("Xauthority"),
        });
        let mut command = self.backend_command(&record, display, gh_token.as_deref(), resume)?;
        let err = command.exec();
        Err(DeckError::io("starting bwrap", err))
    }

    /// Runs a sandbox in the caller's terminal, registered (`managed: false`) while it runs.
    /// Returns the payload's exit status (128 + signal when it was killed).
    pub fn launch_foreground(&self, request: LaunchRequest) -> Result<i32> {
        if request.backend != BackendKind::Bubblewrap {
            return Err(DeckError::host(
                format!("launch {}", request.backend),
                "this backend is not available in this version; use bubblewrap",
            ));
        }
        let project_dir = checked_project_dir(&request.project_dir)?;
        let profile_path = request.profile.map(|p| p.canonicalize().unwrap_or(p));
        let gh_token = request.gh_token.then(read_gh_token).transpose()?;
        let id = SandboxId::random();
        let wanted = request
            .name
            .as_deref()
            .map(SandboxName::parse)
            .transpose()?;
        let me = ProcRef::of(std::process::id())
            .ok_or_else(|| DeckError::host("reading /proc/self", "no such process"))?;
        let mut record = SandboxRecord {
            name: wanted
                .clone()
                .unwrap_or_else(|| SandboxName::from_dir(project_dir.as_path())),
            id: id.clone(),
            backend: request.backend,
            state: SandboxState::Running,
            project_dir,
            display: None,
            tmux_session: None,
            network: request.network.unwrap_or(self.config.sandbox.network),
            managed: false,
            created_at: Utc::now(),
            exit_status: None,
            reason: None,
            payload: request.payload,
            gh_token: request.gh_token,
            started_at: Some(Utc::now()),
            agent_ran: false,
            xvfb: None,
            launcher: Some(me),
            profile: profile_path,
        };
        // Build the command first so a bad profile or a missing agent registers nothing.
        let mut command = self.backend_command(&record, None, gh_token.as_deref(), false)?;
        let registered = self.registry.update(|records| {
            let taken = |n: &SandboxName| records.iter().any(|r| &r.name == n);
            if taken(&record.name) {
                if wanted.is_some() {
                    return Err(DeckError::AlreadyExists {
                        name: record.name.to_string(),
                    });
                }
                record.name = record.name.with_suffix(&id.as_str()[..4]);
            }
            records.push(record.clone());
            Ok(record.clone())
        })?;
        if matches!(registered.payload, Payload::Agent { .. }) {
            eprintln!(
                "sandbox-deck: no display in a hand-launched sandbox; Chromium needs one \
                 (`sandbox-deck create` gives each sandbox its own)"
            );
        }
        let status = run_forwarding_signals(&mut command);
        let _ = self.registry.update(|records| {
            records.retain(|r| r.id != id);
            Ok(())
        });
        self.remove_files(&id);
        status
    }

    /// The backend process for a record: profile, payload and environment resolved.
    fn backend_command(
        &self,
        record: &SandboxRecord,
        display: Option<SandboxDisplay>,
        gh_token: Option<&str>,
        resume: bool,
    ) -> Result<Command> {
        let bwrap = require("bwrap", "bubblewrap")?;
        let profile = match &record.profile {
            Some(path) => Profile::load(path)?,
            None => Profile::host(),
        };
        let payload =
            backend::resolve_payload(&record.payload, &self.config.sandbox.agent, resume)?;
        let home = home_dir()?;
        let (claude_dir, claude_json) = self.claude_state(&record.id, &home)?;
        // Status hooks (D9): the agent gets them through `--settings`, never in the user's files.
        let (status_dir, agent_settings) = self.install_status_hooks(&record.id)?;
        let mut command = payload.command;
        if matches!(record.payload, Payload::Agent { .. }) {
            command.splice(
                1..1,
                ["--settings".into(), agent_settings.clone().into_os_string()],
            );
        }
        let mut caller: Vec<(String, String)> = std::env::vars().collect();
        if !caller.iter().any(|(k, _)| k == "USER") {
            // tmux hands the pane a minimal environment; the account name is still ours.
            if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
                caller.push(("USER".into(), user.name));
            }
        }
        let env = backend::sandbox_env(
            record.backend,
            &profile,
            &caller,
            &home,
            &payload.extra_path,
            display.as_ref(),
            gh_token,
        );
        let launch = Launch {
            hostname: record.name.to_string(),
            project: record.project_dir.as_path().to_owned(),
            home,
            network: record.network,
            display,
            command,
            extra_ro: payload.extra_ro,
            extra_path: payload.extra_path,
            claude_dir,
            claude_json,
            env,
            status_dir: Some(status_dir),
            agent_settings: Some(agent_settings),
        };
        Ok(backend::bubblewrap::command(&bwrap, &profile, &launch))
    }

    /// `~/.claude` (created if missing, so a login inside persists) and a per-sandbox copy of
    /// `~/.claude.json`, seeded from the host's on first use.
    fn claude_state(
        &self,
        id: &SandboxId,
        home: &Path,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
        let claude_dir = home.join(".claude");
        if !claude_dir.exists() {
            make_private_dir(&claude_dir)?;
        }
        let state = self.paths.sandbox_state_dir(id);
        make_private_dir(&state)?;
        let copy = state.join("claude.json");
        if !copy.exists() {
            match std::fs::read(home.join(".claude.json")) {
                Ok(bytes) => std::fs::write(&copy, bytes),
                Err(_) => std::fs::write(&copy, b"{}\n"),
            }
            .context_io(|| format!("seeding {}", copy.display()))?;
        }
        Ok((Some(claude_dir), Some(copy)))
    }
}

fn home_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute() && h != Path::new("/"))
        .ok_or_else(|| DeckError::host("finding the home directory", "HOME is unset or `/`"))?;
    Ok(home.canonicalize().unwrap_or(home))
}

/// Spawns `command` in this terminal and waits for it. SIGTERM/SIGHUP sent to us go on to
/// the sandbox; Ctrl-C reaches it through the terminal, so we only survive it.
fn run_forwarding_signals(command: &mut Command) -> Result<i32> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])
        .map_err(|e| DeckError::io("installing signal handlers", e))?;
    let handle = signals.handle();
    let mut child = command
        .spawn()
        .context_io(|| "starting bwrap".to_string())?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            if (signal == SIGTERM || signal == SIGHUP)
                && let Ok(sig) = nix::sys::signal::Signal::try_from(signal)
            {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    });
    let status = child.wait().context_io(|| "waiting for bwrap".to_string());
    handle.close();
    let _ = forwarder.join();
    let status = status?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
