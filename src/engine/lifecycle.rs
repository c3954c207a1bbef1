//! The life of a managed sandbox: Xvfb → private tmux session → backend, and back down.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;

use super::{CreateRequest, Deck, require};
use crate::error::{DeckError, Result};
use crate::host::process::{ProcRef, wait_until};
use crate::host::tmux::NewSession;
use crate::host::xvfb::{self, XvfbSpec};
use crate::paths::make_private_dir;
use crate::sandbox::{
    BackendKind, Payload, ProjectDir, SandboxId, SandboxName, SandboxRecord, SandboxState,
};
use crate::spec::Profile;

/// What the pane's `run-managed` needs to resolve the same paths as the caller.
const PANE_ENV: &[&str] = &[
    "HOME",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_RUNTIME_DIR",
    // Without XDG_RUNTIME_DIR, the runtime dir falls back to one in the temp dir.
    "TMPDIR",
];

/// How long `create`/`start` wait for the pane to exec the backend.
const BACKEND_START_TIMEOUT: Duration = Duration::from_secs(5);

/// The processes of a running managed sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub display: u32,
    pub xvfb: ProcRef,
    pub launcher: Option<ProcRef>,
}

impl Deck {
    pub fn create(&self, request: CreateRequest) -> Result<SandboxRecord> {
        let project_dir = checked_project_dir(&request.project_dir)?;
        let name = match &request.name {
            Some(name) => SandboxName::parse(name)?,
            None => SandboxName::from_dir(project_dir.as_path()),
        };
        if let Some(profile) = &request.profile {
            Profile::load(profile)?;
        }
        self.check_prerequisites(&request.payload)?;
        let gh_token = request.gh_token.then(read_gh_token).transpose()?;
        let record = SandboxRecord {
            name: name.clone(),
            id: SandboxId::random(),
            backend: BackendKind::Bubblewrap,
            state: SandboxState::Starting,
            project_dir,
            display: None,
            tmux_session: Some(name.to_string()),
            network: request.network.unwrap_or(self.config.sandbox.network),
            managed: true,
            created_at: Utc::now(),
            exit_status: None,
            reason: None,
            payload: request.payload,
            gh_token: request.gh_token,
            started_at: None,
            agent_ran: false,
            xvfb: None,
            launcher: None,
            profile: request.profile.map(|p| p.canonicalize().unwrap_or(p)),
            options: request.options,
            runtime_dir: Some(self.paths.runtime_dir.clone()),
            unreachable: None,
        };
        self.registry.update(|records| {
            if records.iter().any(|r| r.name == name) {
                return Err(DeckError::AlreadyExists {
                    name: name.to_string(),
                });
            }
            records.push(record.clone());
            Ok(())
        })?;
        match self.bring_up(&record, gh_token.as_deref()) {
            Ok(parts) => self.mark_running(&record, parts),
            Err(e) => {
                self.registry
                    .update(|records| {
                        records.retain(|r| r.id != record.id);
                        Ok(())
                    })
                    .ok();
                self.remove_files(&record);
                Err(e)
            }
        }
    }

    pub fn start(&self, name: &str) -> Result<SandboxRecord> {
        let record = self.show(name)?;
        if record.is_running() {
            return Err(wrong_state(&record, "use `sandbox-deck attach` to see it"));
        }
        if !record.managed {
            return Err(wrong_state(
                &record,
                "it was launched by hand and ends with its launcher",
            ));
        }
        if let Some(profile) = &record.profile {
            Profile::load(profile)?;
        }
        self.check_prerequisites(&record.payload)?;
        let gh_token = record.gh_token.then(read_gh_token).transpose()?;
        self.teardown(&record, false);
        // It comes back up under our runtime dir: the one it was made under may be gone.
        let record = SandboxRecord {
            runtime_dir: Some(self.paths.runtime_dir.clone()),
            ..record
        };
        let previous = record.state;
        self.registry.update(|records| {
            let r = find_by_id(records, &record.id)?;
            if r.state != previous {
                return Err(wrong_state(r, "it changed meanwhile; try again"));
            }
            r.state = SandboxState::Starting;
            r.runtime_dir = record.runtime_dir.clone();
            r.reason = None;
            r.exit_status = None;
            r.display = None;
            r.xvfb = None;
            r.launcher = None;
            Ok(())
        })?;
        match self.bring_up(&record, gh_token.as_deref()) {
            Ok(parts) => self.mark_running(&record, parts),
            Err(e) => {
                let reason = format!("start failed: {e}");
                self.registry
                    .update(|records| {
                        let r = find_by_id(records, &record.id)?;
                        r.state = SandboxState::Dead;
                        r.reason = Some(reason);
                        Ok(())
                    })
                    .ok();
                Err(e)
            }
        }
    }

    /// Ends the sandbox gracefully: the agent is interrupted, killed after
    /// `sandbox.stop_timeout_ms`, and no tmux session or Xvfb is left. Stopping twice is fine.
    pub fn stop(&self, name: &str) -> Result<SandboxRecord> {
        let record = self.show(name)?;
        if record.state == SandboxState::Starting {
            return Err(wrong_state(&record, "wait until it has started"));
        }
        if !record.managed {
            self.stop_launcher(&record);
            return Ok(SandboxRecord {
                state: SandboxState::Stopped,
                ..record
            });
        }
        let exit_status = self.teardown(&record, true);
        self.registry.update(|records| {
            let r = find_by_id(records, &record.id)?;
            r.state = SandboxState::Stopped;
            r.exit_status = exit_status.or(r.exit_status);
            r.reason = None;
            r.display = None;
            r.xvfb = None;
            r.launcher = None;
            Ok(r.clone())
        })
    }

    /// Deletes the record and the sandbox's files. A running sandbox needs `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<SandboxRecord> {
        let record = self.show(name)?;
        if record.is_running() && !force {
            return Err(wrong_state(&record, "stop it first, or pass --force"));
        }
        if record.managed {
            self.teardown(&record, true);
        } else {
            self.stop_launcher(&record);
        }
        self.registry.update(|records| {
            records.retain(|r| r.id != record.id);
            Ok(())
        })?;
        self.remove_files(&record);
        Ok(record)
    }

    fn check_prerequisites(&self, payload: &Payload) -> Result<()> {
        require("bwrap", "bubblewrap")?;
        require("Xvfb", "xvfb")?;
        require("tmux", "tmux")?;
        if matches!(payload, Payload::Agent { .. }) {
            crate::backend::resolve_payload(payload, &self.config.sandbox.agent, false, "")?;
        }
        Ok(())
    }

    /// Starts the display and the tmux session whose pane runs the backend. On failure
    /// nothing it started is left running.
    fn bring_up(&self, record: &SandboxRecord, gh_token: Option<&str>) -> Result<Parts> {
        let xvfb_binary = require("Xvfb", "xvfb")?;
        let runtime = self.paths.sandbox_runtime_dir_of(record);
        make_private_dir(&runtime)?;
        let spec = XvfbSpec {
            first_display: self.config.display.first_number,
            width: self.config.display.width,
            height: self.config.display.height,
            depth: self.config.display.depth,
            auth_file: runtime.join("Xauthority"),
            log_file: runtime.join("xvfb.log"),
        };
        xvfb::write_cookie(&spec.auth_file)?;
        if let Some(token) = gh_token {
            crate::paths::write_private(&runtime.join("gh-token"), token.as_bytes())?;
        }
        let display = xvfb::start(&xvfb_binary, &spec)?;
        let xvfb = display.process;
        let number = display.number;
        let result = self
            .registry
            .update(|records| {
                let r = find_by_id(records, &record.id)?;
                r.display = Some(number);
                r.xvfb = Some(xvfb);
                Ok(())
            })
            .and_then(|()| self.start_session(record));
        match result {
            Ok(launcher) => Ok(Parts {
                display: number,
                xvfb,
                launcher,
            }),
            Err(e) => {
                self.tmux_of(record).kill_session(record.name.as_str()).ok();
                xvfb.terminate(Duration::from_secs(2));
                Err(e)
            }
        }
    }

    /// Creates the session whose pane execs the backend through `run-managed`, and waits
    /// until the backend runs (or has already ended).
    fn start_session(&self, record: &SandboxRecord) -> Result<Option<ProcRef>> {
        let resume = record.agent_ran && matches!(record.payload, Payload::Agent { .. });
        let mut argv: Vec<&OsStr> = vec![
            self.exe.as_os_str(),
            "run-managed".as_ref(),
            "--id".as_ref(),
            record.id.as_str().as_ref(),
        ];
        if resume {
            argv.push("--continue".as_ref());
        }
        // The pane must find the same registry as we do, whoever started the tmux server.
        let env: Vec<(&str, std::ffi::OsString)> = PANE_ENV
            .iter()
            .filter_map(|key| Some((*key, std::env::var_os(key)?)))
            .collect();
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let tmux = self.tmux_of(record);
        tmux.new_session(&NewSession {
            name: record.name.as_str(),
            width: self.config.tmux.width,
            height: self.config.tmux.height,
            cwd: record.project_dir.as_path(),
            env: &env,
            argv: &argv,
        })?;
        let pane = tmux.pane(record.name.as_str())?.ok_or_else(|| {
            DeckError::host("starting the tmux session", "the session vanished at once")
        })?;
        // None: already gone; the monitor reads its exit status from tmux.
        let launcher = ProcRef::of(pane.pid).filter(|_| pane.exit_status.is_none());
        if let Some(launcher) = launcher {
            wait_until(BACKEND_START_TIMEOUT, || {
                !launcher.is_alive() || process_name(launcher.pid).as_deref() == Some("bwrap")
            });
        }
        Ok(launcher)
    }

    fn mark_running(&self, record: &SandboxRecord, parts: Parts) -> Result<SandboxRecord> {
        self.registry.update(|records| {
            let r = find_by_id(records, &record.id)?;
            r.state = SandboxState::Running;
            r.display = Some(parts.display);
            r.xvfb = Some(parts.xvfb);
            r.launcher = parts.launcher;
            r.started_at = Some(Utc::now());
            r.exit_status = None;
            r.reason = None;
            if matches!(r.payload, Payload::Agent { .. }) {
                r.agent_ran = true;
            }
            Ok(())
        })?;
        // The backend may have ended during start-up; let the monitor say so.
        self.show(record.name.as_str())
    }

    /// Ends every process of a managed sandbox: first the payload (SIGHUP + SIGTERM, as a
    /// closing terminal would) when `graceful`, then whatever is left, the tmux session and the
    /// display. Returns the backend's exit status when tmux recorded one.
    pub(crate) fn teardown(&self, record: &SandboxRecord, graceful: bool) -> Option<i32> {
        let session = record.name.as_str();
        let tmux = self.tmux_of(record);
        if let Some(launcher) = record.launcher.filter(ProcRef::is_alive) {
            if graceful {
                // Processes can still be starting: whatever appears is signalled too.
                let timeout = Duration::from_millis(self.config.sandbox.stop_timeout_ms);
                let mut signalled: Vec<ProcRef> = Vec::new();
                wait_until(timeout, || {
                    for p in launcher.descendants() {
                        let is_bwrap = process_name(p.pid).as_deref() == Some("bwrap");
                        if !is_bwrap && !signalled.contains(&p) {
                            p.signal(Signal::SIGHUP);
                            p.signal(Signal::SIGTERM);
                            signalled.push(p);
                        }
                    }
                    !launcher.is_alive()
                });
            }
            for p in launcher.descendants() {
                p.signal(Signal::SIGKILL);
            }
            launcher.signal(Signal::SIGKILL);
            wait_until(Duration::from_secs(2), || !launcher.is_alive());
        }
        let exit_status = tmux
            .pane(session)
            .ok()
            .flatten()
            .and_then(|p| p.exit_status);
        if record.tmux_session.is_some() {
            tmux.kill_session(session).ok();
        }
        if let Some(xvfb) = record.xvfb {
            xvfb.terminate(Duration::from_secs(2));
        }
        self.remove_files(record);
        exit_status
    }

    /// Asks the launcher of a hand-started sandbox to end it; the launcher unregisters it.
    /// Returns once the launcher and every process under it have ended.
    pub(crate) fn stop_launcher(&self, record: &SandboxRecord) {
        if let Some(launcher) = record.launcher {
            let tree = launcher.descendants();
            launcher.terminate(Duration::from_millis(self.config.sandbox.stop_timeout_ms));
            // The sandbox's own processes end a moment after bwrap (the kernel kills a pid
            // namespace once its init is gone): wait for that, and make sure of it.
            if !wait_until(Duration::from_secs(2), || {
                tree.iter().all(|p| !p.is_alive())
            }) {
                for p in &tree {
                    p.signal(Signal::SIGKILL);
                }
            }
        }
        let _ = self.registry.update(|records| {
            records.retain(|r| r.id != record.id || r.launcher.is_some_and(|l| l.is_alive()));
            Ok(())
        });
    }

    pub(crate) fn remove_files(&self, record: &SandboxRecord) {
        let _ = std::fs::remove_dir_all(self.paths.sandbox_runtime_dir_of(record));
    }
}

/// Validates a project dir and refuses ones that would expose the user's whole home.
pub(crate) fn checked_project_dir(raw: &Path) -> Result<ProjectDir> {
    let project = ProjectDir::parse(raw)?;
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        let home = home.canonicalize().unwrap_or(home);
        let invalid = |why: &str| DeckError::InvalidProjectDir {
            path: raw.to_owned(),
            why: why.to_owned(),
        };
        if home.starts_with(project.as_path()) {
            return Err(invalid(
                "it is your home directory or contains it; pick a project inside it",
            ));
        }
        for secret in [".ssh", ".gnupg", ".aws", ".config/gh", ".claude"] {
            if project.as_path().starts_with(home.join(secret)) {
                return Err(invalid(&format!("it is inside ~/{secret}")));
            }
        }
    }
    Ok(project)
}

pub(crate) fn find_by_id<'a>(
    records: &'a mut [SandboxRecord],
    id: &SandboxId,
) -> Result<&'a mut SandboxRecord> {
    records
        .iter_mut()
        .find(|r| &r.id == id)
        .ok_or_else(|| DeckError::NotFound {
            name: format!("(id {id}, removed meanwhile)"),
        })
}

fn wrong_state(record: &SandboxRecord, hint: &str) -> DeckError {
    DeckError::WrongState {
        name: record.name.to_string(),
        state: record.state.to_string(),
        hint: hint.to_owned(),
    }
}

pub(crate) fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// The GitHub token the user asked to pass: `GH_TOKEN`, `GITHUB_TOKEN`, or `gh auth token`.
pub(crate) fn read_gh_token() -> Result<String> {
    for key in ["GH_TOKEN", "GITHUB_TOKEN"] {
        if let Ok(token) = std::env::var(key)
            && !token.trim().is_empty()
        {
            return Ok(token.trim().to_owned());
        }
    }
    if let Some(gh) = crate::host::which("gh")
        && let Ok(out) = std::process::Command::new(gh)
            .args(["auth", "token"])
            .output()
        && out.status.success()
    {
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    Err(DeckError::host(
        "--gh-token",
        "no token found: set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login`",
    ))
}

impl Deck {
    /// The command that puts the user's terminal on a sandbox's session. Only a sandbox with
    /// a session (running, or exited with its last screen kept) can be attached.
    pub fn attach_command(&self, name: &str) -> Result<std::process::Command> {
        let record = self.show(name)?;
        let has_session = record.managed
            && matches!(record.state, SandboxState::Running | SandboxState::Exited)
            && self.tmux_of(&record).pane(record.name.as_str())?.is_some();
        if !has_session {
            let hint = if record.managed {
                format!("start it with `sandbox-deck start {}`", record.name)
            } else {
                "it runs in the terminal that launched it".to_string()
            };
            return Err(wrong_state(&record, &hint));
        }
        Ok(self.tmux_of(&record).attach_command(record.name.as_str()))
    }
}
