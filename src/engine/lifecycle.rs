//! The life of a managed sandbox: Xvfb → private tmux session → backend, and back down.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use super::{CreateRequest, Deck, require};
use crate::error::{DeckError, Result};
use crate::host::fs::make_private_dir;
use crate::host::process::{self, ProcRef, wait_until};
use crate::host::tmux::NewSession;
use crate::host::xvfb::{self, XvfbSpec};
use crate::sandbox::{Payload, ProjectDir, SandboxId, SandboxName, SandboxRecord, SandboxState};
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

/// How long an agent gets to draw its first screen before `create`/`start` call it started
/// anyway (it may simply be slow, or print nothing).
const AGENT_FIRST_SCREEN: Duration = Duration::from_secs(10);

/// How long a new sandbox's payload must have waited quietly to count as started.
const SETTLED_FOR: Duration = Duration::from_millis(100);

/// How many of a dead pane's last lines a start failure shows.
const EARLY_END_LINES: usize = 15;

/// A backend that ended while `create`/`start` watched it.
#[derive(Debug, Clone)]
pub(crate) struct EarlyEnd {
    pub status: Option<i32>,
    pub last_lines: String,
}

impl EarlyEnd {
    fn describe_status(&self) -> String {
        match self.status {
            Some(s) if s > 128 => format!("killed by signal {}", s - 128),
            Some(s) => format!("exit status {s}"),
            None => "exit status unknown".into(),
        }
    }

    fn into_error(self, record: &SandboxRecord) -> DeckError {
        let last_line = self
            .last_lines
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(its pane was empty)")
            .to_owned();
        DeckError::StartFailed {
            name: record.name.to_string(),
            status: self.describe_status(),
            last_line,
            last_lines: self.last_lines,
        }
    }
}

/// The processes of a running managed sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub display: u32,
    pub xvfb: ProcRef,
    pub launcher: Option<ProcRef>,
}

impl Deck {
    pub fn create(&self, request: CreateRequest) -> Result<SandboxRecord> {
        let project_dir = checked_project_dir(&request.project_dir, &self.paths)?;
        let name = match &request.name {
            Some(name) => SandboxName::parse(name)?,
            None => SandboxName::from_dir(project_dir.as_path()),
        };
        if let Some(profile) = &request.profile {
            Profile::load(profile)?;
        }
        self.check_prerequisites(&request.payload)?;
        // A bad --allow rule is an error now, not a sandbox that fails to start.
        crate::egress::Spec::build(&name, &self.config.egress, &request.allow, "".into())?;
        let gh_token = request.gh_token.then(read_gh_token).transpose()?;
        let record = SandboxRecord {
            tmux_session: Some(name.to_string()),
            managed: true,
            ..self.new_record(name.clone(), project_dir, request)
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
        let started =
            self.bring_up(&record, gh_token.as_deref(), false)
                .and_then(|parts| match self.early_end(&record, parts.launcher) {
                    // Nothing was made: the error carries the last lines.
                    Some(end) => {
                        self.tmux.kill_session(record.name.as_str()).ok();
                        parts.xvfb.terminate(Duration::from_secs(2));
                        Err(end.into_error(&record))
                    }
                    None => Ok(parts),
                });
        match started {
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

    /// `stop` then `start`: the same sandbox (same id, project and options) comes back.
    pub fn restart(&self, name: &str, fresh: bool) -> Result<SandboxRecord> {
        self.stop(name)?;
        self.start(name, fresh)
    }

    /// Starts a stopped, exited or dead sandbox. The agent resumes its last conversation when
    /// the project has one (see [`Deck::resumes`]), unless `fresh`.
    pub fn start(&self, name: &str, fresh: bool) -> Result<SandboxRecord> {
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
        let resume = !fresh && self.resumes(&record);
        match self.bring_up(&record, gh_token.as_deref(), resume) {
            Ok(parts) => match self.early_end(&record, parts.launcher) {
                Some(end) => {
                    self.mark_ended_at_once(&record, parts, &end);
                    Err(end.into_error(&record))
                }
                None => self.mark_running(&record, parts),
            },
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
    fn bring_up(
        &self,
        record: &SandboxRecord,
        gh_token: Option<&str>,
        resume: bool,
    ) -> Result<Parts> {
        let xvfb_binary = require("Xvfb", "xvfb")?;
        let files = self.paths.sandbox_of(record);
        make_private_dir(files.runtime_dir())?;
        let spec = XvfbSpec {
            first_display: self.config.display.first_number,
            width: self.config.display.width,
            height: self.config.display.height,
            depth: self.config.display.depth,
            auth_file: files.xauthority(),
            log_file: files.xvfb_log(),
        };
        xvfb::write_cookie(&spec.auth_file)?;
        if let Some(token) = gh_token {
            crate::host::fs::write_private(&files.gh_token(), token.as_bytes())?;
        }
        let placement = crate::host::placement::Placement::current();
        let display = xvfb::start_placed(&xvfb_binary, &spec, placement, record.id.as_str())?;
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
            .and_then(|()| self.start_session(record, resume));
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
    fn start_session(&self, record: &SandboxRecord, resume: bool) -> Result<Option<ProcRef>> {
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
            DeckError::tmux("starting the tmux session", "the session vanished at once")
        })?;
        // None: already gone; the monitor reads its exit status from tmux.
        let launcher = ProcRef::of(pane.pid).filter(|_| pane.exit_status.is_none());
        if let Some(launcher) = launcher {
            wait_until(BACKEND_START_TIMEOUT, || {
                !launcher.is_alive() || process::name(launcher.pid).as_deref() == Some("bwrap")
            });
        }
        Ok(launcher)
    }

    /// Whether `start` would resume the agent's conversation: an agent sandbox whose project
    /// has one. Claude exits at once on `--continue` without one.
    pub fn resumes(&self, record: &SandboxRecord) -> bool {
        matches!(record.payload, Payload::Agent { .. })
            && super::resume::has_conversation(record.project_dir.as_path())
    }

    /// Watches a sandbox that was just brought up for up to `sandbox.start_settle_ms` (less
    /// once it is clearly alive, see [`settle`]), and an agent until it has drawn its first
    /// screen: a backend that ends unsuccessfully in that time failed to start.
    fn early_end(&self, record: &SandboxRecord, launcher: Option<ProcRef>) -> Option<EarlyEnd> {
        let window = Duration::from_millis(self.config.sandbox.start_settle_ms);
        let session = record.name.as_str();
        let ended = || launcher.is_none_or(|l| !l.is_alive());
        if let Some(launcher) = launcher {
            settle(launcher, window);
        }
        if !ended() && window > Duration::ZERO && matches!(record.payload, Payload::Agent { .. }) {
            // Claude checks its arguments (and that there is a conversation to continue)
            // before it draws anything, and exits when they are wrong.
            let deadline = Instant::now() + AGENT_FIRST_SCREEN;
            while !ended() && !self.pane_shows_text(session) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            // One that prints its error and exits does both at once.
            wait_until(Duration::from_millis(300), ended);
        }
        if ended() {
            self.how_it_ended(session)
        } else {
            None
        }
    }

    /// What a pane that has just died says: its exit status (tmux records it a moment after
    /// the process ends) and its last lines. None when it ended successfully. The wait is
    /// only spent on a failure, and a busy host can take seconds to get there.
    fn how_it_ended(&self, session: &str) -> Option<EarlyEnd> {
        let mut status = None;
        wait_until(Duration::from_secs(5), || {
            status = self
                .tmux
                .pane(session)
                .ok()
                .flatten()
                .and_then(|p| p.exit_status);
            status.is_some()
        });
        if status == Some(0) {
            return None;
        }
        // remain-on-exit keeps the dead pane, so its last lines can still be read.
        let screen = self.tmux.capture(session, 200, false).unwrap_or_default();
        Some(EarlyEnd {
            status,
            last_lines: last_lines(&screen, EARLY_END_LINES),
        })
    }

    fn pane_shows_text(&self, session: &str) -> bool {
        self.tmux
            .capture(session, 0, false)
            .is_ok_and(|screen| !last_lines(&screen, 1).trim().is_empty())
    }

    /// A restarted sandbox whose backend ended at once reads exited, its last screen kept
    /// (for `attach`) and its display stopped.
    fn mark_ended_at_once(&self, record: &SandboxRecord, parts: Parts, end: &EarlyEnd) {
        let marked = self.registry.update(|records| {
            let r = find_by_id(records, &record.id)?;
            r.state = SandboxState::Exited;
            r.exit_status = end.status;
            r.reason = Some(format!("it ended at once ({})", end.describe_status()));
            r.started_at = Some(Utc::now());
            r.display = None;
            r.xvfb = None;
            r.launcher = None;
            Ok(())
        });
        if let Err(e) = marked {
            // The caller reports the early end anyway; the monitor marks it at its next look.
            let why = crate::error::report(&e);
            tracing::warn!(sandbox = %record.name, "marking it exited failed: {why}");
        }
        parts.xvfb.terminate(Duration::from_secs(2));
    }

    fn mark_running(&self, record: &SandboxRecord, parts: Parts) -> Result<SandboxRecord> {
        if let Some(launcher) = parts.launcher {
            // Where its init lives now, for joins to check. Best effort: without the record a
            // join is refused, never let through.
            let pinned = self.paths.sandbox_of(record).init_namespaces();
            if let Err(e) = crate::host::namespace::pin_init_namespaces(&pinned, launcher) {
                let why = crate::error::report(&e);
                tracing::warn!(sandbox = %record.name, "joins will be refused: {why}");
            }
        }
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
                        let is_bwrap = process::name(p.pid).as_deref() == Some("bwrap");
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
        // Its cookie and recorded environment go; the browser profile stays for `start`.
        self.remove_runtime_files(record);
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
        let unregistered = self.registry.update(|records| {
            records.retain(|r| r.id != record.id || r.launcher.is_some_and(|l| l.is_alive()));
            Ok(())
        });
        if let Err(e) = unregistered {
            let why = crate::error::report(&e);
            tracing::warn!(sandbox = %record.name, "unregistering failed: {why}");
        }
    }

    /// What dies with the run: the runtime dir (X cookie, Xvfb log, hook settings, the
    /// environment a join takes).
    pub(crate) fn remove_runtime_files(&self, record: &SandboxRecord) {
        remove_dir_logged(self.paths.sandbox_of(record).runtime_dir());
    }

    /// Everything of the sandbox's own, for `rm`.
    pub(crate) fn remove_files(&self, record: &SandboxRecord) {
        self.remove_runtime_files(record);
        // The status dir and the browser profile.
        remove_dir_logged(self.paths.sandbox_of(record).state_dir());
    }
}

/// Best effort (the sandbox is gone either way), but a dir left behind is worth a line.
fn remove_dir_logged(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("removing {} failed: {e}", dir.display());
        }
        _ => {}
    }
}

/// The user's secret and config dirs under HOME that no project may be, be inside, or contain.
const SECRET_HOME_DIRS: &[&str] = &[
    ".ssh", ".gnupg", ".config", ".local", ".aws", ".kube", ".docker", ".claude",
];

/// Validates a project dir and refuses one that is, is inside, or contains the user's home,
/// secret or config dirs, or the deck's own config, state and runtime dirs: the sandbox can
/// read and write all of its project.
pub(crate) fn checked_project_dir(raw: &Path, paths: &crate::paths::Paths) -> Result<ProjectDir> {
    let project = ProjectDir::parse(raw)?;
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        crate::backend::git_view::check_project(project.as_path())?;
        return Ok(project);
    };
    let mut guarded: Vec<(String, PathBuf)> = SECRET_HOME_DIRS
        .iter()
        .map(|rel| (format!("~/{rel}"), home.join(rel)))
        .collect();
    for (what, dir) in [
        ("the sandbox-deck config dir", &paths.config_dir),
        ("the sandbox-deck state dir", &paths.state_dir),
        ("the sandbox-deck runtime dir", &paths.runtime_dir),
    ] {
        guarded.push((format!("{what} {}", dir.display()), dir.clone()));
    }
    // Both spellings: a guarded dir may be a symlink (a dotfiles checkout) or not exist yet.
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let mut guarded_both = Vec::new();
    for (what, dir) in guarded {
        guarded_both.push((what.clone(), canonical(&dir)));
        guarded_both.push((what, dir));
    }
    match project_overlap(project.as_path(), &canonical(&home), &guarded_both) {
        Some(why) => Err(DeckError::InvalidProjectDir {
            path: raw.to_owned(),
            why,
        }),
        None => {
            // Last: it runs the host's git in the project, which is fine only for a project.
            crate::backend::git_view::check_project(project.as_path())?;
            Ok(project)
        }
    }
}

/// Why `project` may not be a project: it is HOME or an ancestor of it, or it is, is inside or
/// contains one of the `guarded` dirs (named in the reason). Pure and lexical: the caller
/// passes canonical paths.
fn project_overlap(project: &Path, home: &Path, guarded: &[(String, PathBuf)]) -> Option<String> {
    if home.starts_with(project) {
        return Some(
            "it is your home directory or contains it; pick a project inside it".to_owned(),
        );
    }
    for (what, dir) in guarded {
        if project.starts_with(dir) {
            return Some(format!(
                "it is inside {what}, which holds secrets or config"
            ));
        }
        if dir.starts_with(project) {
            return Some(format!(
                "it contains {what}, which holds secrets or config; pick a directory that does not"
            ));
        }
    }
    None
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

/// Waits until the sandbox has ended, or is clearly alive, or `window` has passed. Clearly
/// alive: its payload has been exec'd and all of it has been waiting in the kernel (a
/// `sleep`, a shell at its prompt) for [`SETTLED_FOR`]. What fails at once (bwrap's own
/// errors, a command not found, a script's first check) ends well within that.
fn settle(launcher: ProcRef, window: Duration) {
    let deadline = Instant::now() + window;
    let mut waiting_since: Option<Instant> = None;
    while launcher.is_alive() && Instant::now() < deadline {
        if payload_waiting(launcher) {
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SETTLED_FOR {
                return;
            }
        } else {
            waiting_since = None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The processes inside the sandbox (bwrap's own aside) exist and all wait.
fn payload_waiting(launcher: ProcRef) -> bool {
    let payload: Vec<ProcRef> = launcher
        .descendants()
        .into_iter()
        .filter(|p| process::name(p.pid).as_deref() != Some("bwrap"))
        .collect();
    !payload.is_empty() && payload.iter().all(ProcRef::is_waiting)
}

/// The last `count` lines a pane printed: without the blank rows below them and the note
/// tmux adds under a dead pane.
fn last_lines(screen: &str, count: usize) -> String {
    let mut lines: Vec<&str> = screen
        .lines()
        .filter(|l| !l.starts_with("Pane is dead"))
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines[lines.len().saturating_sub(count)..].join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_skip_the_blank_rows_and_the_dead_pane_note() {
        let screen = "one\ntwo\n\nthree\n\n\n\nPane is dead (status 1, Mon Nov 30 04:28:03 2026)\n";
        assert_eq!(last_lines(screen, 2), "\nthree");
        assert_eq!(last_lines(screen, 10), "one\ntwo\n\nthree");
        assert_eq!(last_lines("\n\n", 3), "");
    }

    #[test]
    fn a_start_failure_says_how_it_ended_in_its_first_line() {
        let record = SandboxRecord::example("api", &std::env::temp_dir());
        let end = |status, lines: &str| EarlyEnd {
            status,
            last_lines: lines.into(),
        };
        let message = end(Some(1), "starting\nNo conversation found to continue\n")
            .into_error(&record)
            .to_string();
        assert_eq!(
            message.lines().next(),
            Some(
                "sandbox \"api\" ended as soon as it started (exit status 1): \
                 No conversation found to continue"
            )
        );
        assert!(message.ends_with("starting\nNo conversation found to continue\n"));
        assert!(
            end(Some(137), "")
                .into_error(&record)
                .to_string()
                .contains("(killed by signal 9): (its pane was empty)")
        );
        assert!(
            end(None, "x")
                .into_error(&record)
                .to_string()
                .contains("exit status unknown")
        );
    }

    fn guarded(home: &Path) -> Vec<(String, PathBuf)> {
        let mut dirs: Vec<(String, PathBuf)> = SECRET_HOME_DIRS
            .iter()
            .map(|rel| (format!("~/{rel}"), home.join(rel)))
            .collect();
        dirs.push(("the state dir".into(), "/var/lib/deck-state".into()));
        dirs
    }

    #[test]
    fn home_its_ancestors_and_dirs_holding_secrets_are_refused_by_name() {
        let home = Path::new("/home/dev");
        let dirs = guarded(home);
        let refused = |p: &str| project_overlap(Path::new(p), home, &dirs);
        for p in ["/home/dev", "/home", "/"] {
            let why = refused(p).unwrap_or_else(|| panic!("{p} accepted"));
            assert!(why.contains("home directory"), "{p}: {why}");
        }
        for (p, named) in [
            ("/home/dev/.config", "~/.config"),
            ("/home/dev/.config/gh", "~/.config"),
            ("/home/dev/.ssh", "~/.ssh"),
            ("/home/dev/.local/share/x", "~/.local"),
            ("/home/dev/.claude", "~/.claude"),
            ("/var/lib/deck-state/projects", "the state dir"),
            ("/var/lib", "the state dir"),
        ] {
            let why = refused(p).unwrap_or_else(|| panic!("{p} accepted"));
            assert!(why.contains(named), "{p}: {why}");
        }
        assert_eq!(refused("/home/dev/code/api"), None);
        assert_eq!(refused("/home/dev/.configs-are-not-config"), None);
        assert_eq!(refused("/srv/work"), None);
    }
}
