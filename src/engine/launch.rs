//! Starting the backend process itself: in a managed sandbox's tmux pane (`run-managed`),
//! or in the caller's terminal (`launch`, what the Nix launchers call), and entering,
//! joining or stopping a running instance.

use std::convert::Infallible;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use serde::Serialize;

use super::lifecycle::{checked_project_dir, find_by_id, read_gh_token};
use super::{Deck, require};
use crate::backend::exposure::{self, ExposureInput};
use crate::backend::{
    self, ClaudeView, EnvInput, Launch, ProjectState, SandboxDisplay, claude_home, git_view,
};
use crate::egress;
use crate::error::{DeckError, IoContext, Result};
use crate::host::fs::make_private_dir;
use crate::host::process::ProcRef;
use crate::host::{capabilities, job, namespace};
use crate::paths::SandboxFiles;
use crate::sandbox::{
    BackendKind, Network, Payload, ProjectDir, SandboxId, SandboxName, SandboxRecord, SandboxState,
};
use crate::spec::Profile;

/// What `launch` does when the project may already have a running sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaunchMode {
    /// Join a running instance of the project (run the payload inside it), else start one.
    #[default]
    JoinOrStart,
    /// Always start a fresh instance.
    New,
    /// A shell inside the running instance.
    Enter,
    /// Stop the running instance.
    Stop,
}

/// A hand-started sandbox in the current terminal: what `create` asks for, on a backend, and
/// what to do when the project already has one running.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRequest {
    pub backend: BackendKind,
    pub sandbox: super::CreateRequest,
    pub mode: LaunchMode,
}

/// Something a launch tells the person who started it. The engine never prints: it returns
/// these and the front end shows them, before the sandbox runs (see [`Prepared`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum LaunchNotice {
    /// `--stop` ended the project's running sandbox.
    Stopped { name: SandboxName },
    /// The project's running sandbox is joined rather than a second one started.
    Joining { name: SandboxName, project: PathBuf },
    /// A caveat of what the sandbox is given. It can name files in the project, which the
    /// sandbox writes: a front end shows it sanitized.
    Exposure { warning: String },
    /// With the host network shared, this kernel cannot keep the sandbox from the host's
    /// abstract sockets (no Landlock scoping).
    NoLandlockScoping,
    /// An agent in a hand-launched sandbox without a display, which Chromium needs.
    NoDisplay,
}

impl std::fmt::Display for LaunchNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchNotice::Stopped { name } => write!(f, "stopped {name}"),
            LaunchNotice::Joining { name, project } => write!(
                f,
                "joining {name} (already running for {}); --new starts another",
                project.display()
            ),
            LaunchNotice::Exposure { warning } => write!(f, "warning: {warning}"),
            LaunchNotice::NoLandlockScoping => f.write_str(
                "warning: this kernel has no Landlock scoping (ABI < 6): with the host network \
                 shared, the sandbox can reach the host's abstract sockets (X11, some D-Bus \
                 buses); use --network none where you can",
            ),
            LaunchNotice::NoDisplay => f.write_str(
                "no display in a hand-launched sandbox; Chromium needs one (`--display host` \
                 on a desktop, or `sandbox-deck create` for its own)",
            ),
        }
    }
}

/// What getting a launch ready found to say, and what it got ready (or why it could not).
/// The notices come with an error too: they were found before it, and say more about it.
#[derive(Debug)]
pub struct Prepared<T> {
    pub notices: Vec<LaunchNotice>,
    pub outcome: Result<T>,
}

impl<T> Prepared<T> {
    fn of(prepare: impl FnOnce(&mut Vec<LaunchNotice>) -> Result<T>) -> Prepared<T> {
        let mut notices = Vec::new();
        let outcome = prepare(&mut notices);
        Prepared { notices, outcome }
    }
}

/// A launch in the caller's terminal, ready for [`Deck::run_foreground`].
#[derive(Debug)]
pub struct Foreground(Step);

#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per launch and moved, never stored"
)]
enum Step {
    /// All done already (`--stop`): the exit status.
    Done(i32),
    /// Run `command` inside the project's running sandbox.
    Enter {
        record: SandboxRecord,
        command: Vec<OsString>,
    },
    New(NewLaunch),
}

/// A new hand-started sandbox: its command built, its runtime dir written, and registered
/// with this process as its launcher (so were it never run, the next reconcile after this
/// process ends unregisters it).
#[derive(Debug)]
struct NewLaunch {
    command: Command,
    registered: SandboxRecord,
    files: SandboxFiles,
    launcher: ProcRef,
}

/// A managed sandbox's backend command, ready for [`Deck::exec_managed`].
#[derive(Debug)]
pub struct ManagedLaunch {
    command: Command,
}

impl Deck {
    /// Gets a managed sandbox's backend ready to run in its tmux pane (`run-managed`); then
    /// [`Deck::exec_managed`] runs it.
    pub fn prepare_managed(&self, id: &SandboxId, resume: bool) -> Prepared<ManagedLaunch> {
        Prepared::of(|notices| self.managed_launch(id, resume, notices))
    }

    /// Replaces this process with the backend, so the pane's exit status is the backend's
    /// and bwrap's parent is the tmux server. Returns only on failure.
    pub fn exec_managed(&self, launch: ManagedLaunch) -> Result<Infallible> {
        let mut command = launch.command;
        let err = command.exec();
        Err(DeckError::io("starting bwrap", err))
    }

    fn managed_launch(
        &self,
        id: &SandboxId,
        resume: bool,
        notices: &mut Vec<LaunchNotice>,
    ) -> Result<ManagedLaunch> {
        let mut records = self.registry.load()?;
        let record = find_by_id(&mut records, id)?.clone();
        let files = self.paths.sandbox_of(&record);
        let gh_token = if record.gh_token {
            let path = files.gh_token();
            let token = std::fs::read_to_string(&path)
                .context_io(|| format!("reading the token {}", path.display()))?;
            Some(token)
        } else {
            None
        };
        let display = record.display.map(|number| SandboxDisplay {
            number,
            xauthority: files.xauthority(),
            size: Some((self.config.display.width, self.config.display.height)),
        });
        let (command, payload_env) =
            self.backend_command(&record, display, gh_token.as_deref(), resume, notices)?;
        namespace::write_join_env(&files.join_env(), &payload_env)?;
        Ok(ManagedLaunch { command })
    }

    /// A sandbox in the caller's terminal, registered (`managed: false`) while it runs, or
    /// joining, entering or stopping the project's running instance: everything before the
    /// terminal is handed over (all of it for `--stop`). Then [`Deck::run_foreground`].
    pub fn launch_foreground(&self, request: LaunchRequest) -> Prepared<Foreground> {
        Prepared::of(|notices| self.foreground_launch(request, notices).map(Foreground))
    }

    /// Runs what [`Deck::launch_foreground`] got ready in this terminal, and cleans up after
    /// a new sandbox. Returns the exit status of what ran (128 + signal when it was killed).
    pub fn run_foreground(&self, launch: Foreground) -> Result<i32> {
        match launch.0 {
            Step::Done(code) => Ok(code),
            Step::Enter { record, command } => self.enter(&record, &command),
            Step::New(new) => self.run_new(new),
        }
    }

    fn foreground_launch(
        &self,
        request: LaunchRequest,
        notices: &mut Vec<LaunchNotice>,
    ) -> Result<Step> {
        if request.backend != BackendKind::Bubblewrap {
            return Err(DeckError::host(
                format!("launch {}", request.backend),
                "this backend is not available in this version; use bubblewrap",
            ));
        }
        let project_dir = checked_project_dir(&request.sandbox.project_dir, &self.paths)?;
        let running = self.live_instance(&project_dir)?;
        match (request.mode, running) {
            (LaunchMode::Stop, Some(record)) => {
                if record.managed {
                    self.stop(record.name.as_str())?;
                } else {
                    self.stop_launcher(&record);
                }
                notices.push(LaunchNotice::Stopped { name: record.name });
                Ok(Step::Done(0))
            }
            (LaunchMode::Stop | LaunchMode::Enter, None) => Err(DeckError::NotFound {
                name: format!(
                    "(a running sandbox for {})",
                    project_dir.as_path().display()
                ),
            }),
            (LaunchMode::Enter, Some(record)) => {
                let command: Vec<OsString> = request
                    .sandbox
                    .payload
                    .arguments()
                    .iter()
                    .map(OsString::from)
                    .collect();
                Ok(Step::Enter { record, command })
            }
            (LaunchMode::JoinOrStart, Some(record)) => {
                notices.push(LaunchNotice::Joining {
                    name: record.name.clone(),
                    project: project_dir.as_path().to_owned(),
                });
                let payload = backend::resolve_payload(
                    &request.sandbox.payload,
                    &self.config.sandbox.agent,
                    false,
                    "",
                )?;
                Ok(Step::Enter {
                    record,
                    command: payload.command,
                })
            }
            (LaunchMode::JoinOrStart | LaunchMode::New, _) => self
                .prepare_new(request, project_dir, notices)
                .map(Step::New),
        }
    }

    fn prepare_new(
        &self,
        request: LaunchRequest,
        project_dir: ProjectDir,
        notices: &mut Vec<LaunchNotice>,
    ) -> Result<NewLaunch> {
        let gh_token = request.sandbox.gh_token.then(read_gh_token).transpose()?;
        let wanted = request
            .sandbox
            .name
            .as_deref()
            .map(SandboxName::parse)
            .transpose()?;
        let me = ProcRef::of(std::process::id())
            .ok_or_else(|| DeckError::host("reading /proc/self", "no such process"))?;
        let name = wanted
            .clone()
            .unwrap_or_else(|| SandboxName::from_dir(project_dir.as_path()));
        let record = SandboxRecord {
            backend: request.backend,
            state: SandboxState::Running,
            started_at: Some(Utc::now()),
            launcher: Some(me),
            ..self.new_record(name, project_dir, request.sandbox)
        };
        // Build the command first so a bad profile or a missing agent registers nothing.
        let (command, payload_env) =
            self.backend_command(&record, None, gh_token.as_deref(), false, notices)?;
        let files = self.paths.sandbox_of(&record);
        if let Err(e) = make_private_dir(files.runtime_dir())
            .and_then(|()| namespace::write_join_env(&files.join_env(), &payload_env))
        {
            self.remove_files(&record);
            return Err(e);
        }
        let registered = match self.register_launched(&record, wanted.is_some()) {
            Ok(registered) => registered,
            Err(e) => {
                self.remove_files(&record);
                return Err(e);
            }
        };
        if matches!(registered.payload, Payload::Agent { .. }) && !registered.options.host_display {
            notices.push(LaunchNotice::NoDisplay);
        }
        Ok(NewLaunch {
            command,
            registered,
            files,
            launcher: me,
        })
    }

    /// Registers a hand-started sandbox under its name; when that is taken, under the name
    /// with a suffix from its id, unless the name was asked for.
    fn register_launched(&self, record: &SandboxRecord, name_asked: bool) -> Result<SandboxRecord> {
        let mut record = record.clone();
        self.registry.update(|records| {
            let taken = |n: &SandboxName| records.iter().any(|r| &r.name == n);
            if taken(&record.name) {
                if name_asked {
                    return Err(DeckError::AlreadyExists {
                        name: record.name.to_string(),
                    });
                }
                record.name = record.name.with_suffix(&record.id.as_str()[..4]);
            }
            records.push(record.clone());
            Ok(record.clone())
        })
    }

    fn run_new(&self, new: NewLaunch) -> Result<i32> {
        let NewLaunch {
            mut command,
            registered,
            files,
            launcher: me,
        } = new;
        let id = registered.id.clone();
        // Its own process group: without Landlock scoping nothing else keeps `kill 0` inside
        // from reaching the rest of the caller's terminal job.
        let had_terminal = job::lead_own_group(&mut command);
        // Once bwrap has made its init, record where it lives: a join checks it. Best effort:
        // without the record a join is refused, never let through.
        let pinned = files.init_namespaces();
        std::thread::spawn(move || namespace::pin_init_namespaces(&pinned, me));
        let status = job::run_forwarding_signals(&mut command, true);
        job::reclaim_terminal(had_terminal);
        let unregistered = self.registry.update(|records| {
            records.retain(|r| r.id != id);
            Ok(())
        });
        if let Err(e) = unregistered {
            // The monitor drops the record later: its launcher (we) will be gone.
            tracing::warn!(%id, "unregistering failed: {}", crate::error::report(&e));
        }
        self.remove_files(&registered);
        status
    }

    /// The running bubblewrap sandbox of a project, if any.
    pub fn live_instance(&self, project: &ProjectDir) -> Result<Option<SandboxRecord>> {
        Ok(self.list()?.into_iter().find(|r| {
            r.state == SandboxState::Running
                && r.backend == BackendKind::Bubblewrap
                && &r.project_dir == project
                && r.launcher.is_some()
        }))
    }

    /// Runs `command` (a shell when empty) inside a running sandbox: its namespaces (its pid
    /// namespace included), the environment its payload was given (from our own record of
    /// the launch, never from the sandbox's processes), its seccomp filter and Landlock scope,
    /// in the project directory. See `host::namespace` for what keeps the host out of reach.
    pub fn enter(&self, record: &SandboxRecord, command: &[OsString]) -> Result<i32> {
        let not_running = || DeckError::WrongState {
            name: record.name.to_string(),
            state: record.state.to_string(),
            hint: "it has no running sandbox to enter".into(),
        };
        let launcher = record
            .launcher
            .filter(ProcRef::is_alive)
            .ok_or_else(not_running)?;
        let init = namespace::sandbox_init(&launcher).ok_or_else(not_running)?;
        let files = self.paths.sandbox_of(record);
        namespace::check_pinned_namespaces(&files.init_namespaces(), &init).map_err(|why| {
            DeckError::WrongState {
                name: record.name.to_string(),
                state: record.state.to_string(),
                hint: format!("{why}; restart it (`sandbox-deck restart {}`)", record.name),
            }
        })?;
        let namespaces = namespace::open_namespaces(&init)?;
        let env = namespace::read_join_env(&files.join_env())?;
        let (program, args) = match command.split_first() {
            Some((program, args)) => (program.clone(), args),
            None => (OsString::from("bash"), &[][..]),
        };
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd.env_clear();
        cmd.envs(env);
        let programs = backend::seccomp::programs()?;
        let last_cap = capabilities::last_cap()
            .map_err(|e| DeckError::io("reading the kernel's last capability", e))?;
        let mut ruleset = backend::landlock::scoped_ruleset();
        namespace::join(
            &mut cmd,
            namespaces,
            record.project_dir.as_path(),
            move || {
                capabilities::drop_all(last_cap)?;
                if let Some(r) = ruleset.take() {
                    backend::landlock::restrict(r)?;
                }
                for program in &programs {
                    seccompiler::apply_filter(program)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                }
                Ok(())
            },
        )?;
        let had_terminal = job::owns_the_terminal();
        // The joined process relays its own stops (through the waiter, which is our child).
        let status = job::run_forwarding_signals(&mut cmd, false);
        job::reclaim_terminal(had_terminal);
        status
    }

    /// What the payload runs inside the sandbox, exactly: the agent with our notice, the
    /// status hooks' settings, `--continue` on resume and the user's arguments; or the shell.
    fn payload_command(
        &self,
        record: &SandboxRecord,
        profile: &Profile,
        resume: bool,
    ) -> Result<backend::ResolvedPayload> {
        let mut payload = backend::resolve_payload(
            &record.payload,
            &self.config.sandbox.agent,
            resume,
            &profile.notice,
        )?;
        if matches!(record.payload, Payload::Agent { .. }) {
            // Status hooks (D9) come through `--settings`, never in the user's files. After
            // our notice, before `--continue` and the user's own arguments.
            let command = &mut payload.command;
            let at = command
                .iter()
                .position(|a| a == "--append-system-prompt")
                .map_or(1, |i| i + 2)
                .min(command.len());
            command.splice(
                at..at,
                ["--settings".into(), backend::AGENT_SETTINGS.into()],
            );
        }
        Ok(payload)
    }

    /// The command `start` (or `start --fresh`) would run inside this managed sandbox, as
    /// a shell would show it: what the control center's Info tab shows.
    pub fn start_command(&self, record: &SandboxRecord, fresh: bool) -> Result<String> {
        let profile = match &record.profile {
            Some(path) => Profile::load(path)?,
            None => Profile::host(),
        };
        let resume = !fresh && self.resumes(record);
        let payload = self.payload_command(record, &profile, resume)?;
        Ok(payload
            .command
            .iter()
            .map(|word| crate::format::shell_word(&word.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// The backend process for a record: profile, payload and environment resolved. Also
    /// returns the environment its payload will have (secrets included), which a join needs.
    fn backend_command(
        &self,
        record: &SandboxRecord,
        display: Option<SandboxDisplay>,
        gh_token: Option<&str>,
        resume: bool,
        notices: &mut Vec<LaunchNotice>,
    ) -> Result<(Command, Vec<(String, String)>)> {
        let bwrap = require("bwrap", "bubblewrap")?;
        let profile = match &record.profile {
            Some(path) => Profile::load(path)?,
            None => Profile::host(),
        };
        let payload = self.payload_command(record, &profile, resume)?;
        let home = home_dir()?;
        let state = self.project_state(&record.project_dir)?;
        let mut claude =
            ClaudeView::resolve(&home, record.project_dir.as_path(), &state.claude_dir())?;
        // The credential never inside: a proxy-mode sandbox gets a placeholder instead, and
        // no credentials file of the host's.
        let api = self.api_placeholder(record)?;
        if api.is_some() {
            claude.credentials = None;
        }
        let agent = payload
            .agent
            .as_deref()
            .map(|found| backend::agent::resolve(found, &home, &profile.ro_paths));
        // Status hooks (D9): the agent gets them through `--settings`, never in the user's files.
        let (status_dir, agent_settings) = self.install_status_hooks(&record.id)?;
        let mut command = payload.command;
        // A per-user install runs through its link in /run/sandbox-deck/bin (see AgentInstall).
        if let (Some(agent), Some(first)) = (&agent, command.first_mut()) {
            *first = agent.command.clone().into_os_string();
        }
        let caller = caller_env();
        let bw = &self.config.bubblewrap;
        let exposure = self.exposure(record, &home, &state.dir, &caller, notices)?;
        let browser = self.sandbox_browser(record, &profile)?;
        let mut env = backend::sandbox_env(&EnvInput {
            backend: record.backend,
            profile: &profile,
            caller: &caller,
            home: &home,
            extra_path: agent.as_ref().map_or(&[], |a| a.path.as_slice()),
            display: display.as_ref(),
            pass_env: &bw.pass_env,
            exposure_env: &exposure.env,
            browser: browser.as_ref().map(|b| b.binary.as_path()),
        });
        let mut secrets = backend::sandbox_secrets(&caller, &bw.secret_env, gh_token);
        network_env(record.network, api.as_ref(), &mut env, &mut secrets);
        refuse_multiline_secrets(&secrets)?;
        let launch = Launch {
            hostname: record.name.to_string(),
            project: record.project_dir.as_path().to_owned(),
            home,
            network: record.network,
            display,
            command,
            agent,
            state: Some(state),
            claude: Some(claude),
            exposure,
            env,
            secrets,
            browser,
            hardening: bw.hardening,
            status_dir: Some(status_dir),
            agent_settings: Some(agent_settings),
        };
        let payload_env = payload_env(&launch);
        // Last: once the proxy runs, nothing here may fail (it would wait for a bwrap that
        // never comes, until the pipes close with this process's Command).
        let pipes = match record.network {
            Network::Proxy => Some(self.start_egress_proxy(record, api)?),
            Network::Host | Network::None => None,
        };
        Ok((
            backend::bubblewrap::command(&bwrap, &profile, &launch, pipes)?,
            payload_env,
        ))
    }

    /// A new placeholder for a proxy-mode agent, when the user handed a credential over.
    fn api_placeholder(
        &self,
        record: &SandboxRecord,
    ) -> Result<Option<(egress::credential::Kind, String)>> {
        if record.network != Network::Proxy {
            return Ok(None);
        }
        let Some(credential) = egress::credential::Credential::load(&self.paths.credential_file())?
        else {
            return Ok(None);
        };
        let placeholder = egress::credential::placeholder(credential.kind)?;
        Ok(Some((credential.kind, placeholder)))
    }

    /// Writes the sandbox's egress spec and starts its proxy (see `egress`).
    fn start_egress_proxy(
        &self,
        record: &SandboxRecord,
        api: Option<(egress::credential::Kind, String)>,
    ) -> Result<egress::BwrapFds> {
        let files = self.paths.sandbox_of(record);
        make_private_dir(files.runtime_dir())?;
        make_private_dir(files.state_dir())?;
        let config = &self.config.egress;
        let mut spec =
            egress::Spec::build(&record.name, config, &record.allow, files.egress_log())?;
        spec.api = api.map(|(_, placeholder)| egress::ApiSpec {
            credential_file: self.paths.credential_file(),
            placeholder,
            upstream: config.api_upstream.clone(),
            extra_ca: Some(PathBuf::from(&config.extra_ca)).filter(|p| !p.as_os_str().is_empty()),
        });
        spec.hold = Some(egress::HoldSpec {
            dir: files.egress_held(),
            seconds: config.hold_seconds,
            max: config.hold_max,
        });
        spec.write(&files.egress_spec())?;
        egress::start_proxy(&files.egress_spec())
    }

    /// What the sandbox is given of the host beyond the profile: the options' exposures,
    /// the project's git dir by allowlist (its sync helper started), and what to tell the
    /// person about them.
    fn exposure(
        &self,
        record: &SandboxRecord,
        home: &Path,
        state_dir: &Path,
        caller: &[(String, String)],
        notices: &mut Vec<LaunchNotice>,
    ) -> Result<exposure::Exposure> {
        let bw = &self.config.bubblewrap;
        let mut exposure = exposure::resolve(&ExposureInput {
            options: &record.options,
            home,
            project: record.project_dir.as_path(),
            uid: nix::unistd::getuid().as_raw(),
            protect: &bw.protect,
            caller_env: caller,
        });
        // The git dir by allowlist; its helper keeps the host's git dir in step while this
        // process (or the bwrap it becomes) runs.
        exposure.git =
            git_view::prepare(record.project_dir.as_path(), state_dir, &exposure.protected)?.mounts;
        git_view::spawn_sync_helper(&git_view::spec_path(state_dir))?;
        notices.extend(
            exposure
                .warnings
                .iter()
                .map(|warning| LaunchNotice::Exposure {
                    warning: warning.clone(),
                }),
        );
        if bw.hardening && record.network.shares_host() && backend::landlock::abi_version() < 6 {
            notices.push(LaunchNotice::NoLandlockScoping);
        }
        Ok(exposure)
    }

    /// The sandbox's browser when the host has Chromium: its own profile dir (created here)
    /// and its managed policy (the profile's extensions, the proxy in proxy mode).
    fn sandbox_browser(
        &self,
        record: &SandboxRecord,
        profile: &Profile,
    ) -> Result<Option<backend::Browser>> {
        let found = self
            .config
            .bubblewrap
            .browser
            .then(|| backend::find_browser(profile));
        let Some(binary) = found.flatten() else {
            return Ok(None);
        };
        let dir = self.paths.sandbox(&record.id).browser_profile();
        if let Some(own) = dir.parent() {
            make_private_dir(own)?;
        }
        make_private_dir(&dir)?;
        Ok(Some(backend::Browser {
            binary,
            profile: dir,
            policy: backend::bubblewrap::chromium_policy(
                &profile.chromium_extensions,
                record.network,
            ),
        }))
    }

    /// The project's persistent state dir (see [`Paths::project_state`]), created on first
    /// use. Its `path` file records the project, so two projects can never share one.
    ///
    /// [`Paths::project_state`]: crate::paths::Paths::project_state
    pub fn project_state(&self, project: &ProjectDir) -> Result<ProjectState> {
        let path_text = ProjectState::recorded_text(project.as_path());
        let state = self.paths.project_state(project)?;
        make_private_dir(&state.dir)?;
        let marker = state.marker();
        match std::fs::read_to_string(&marker) {
            Ok(recorded) if recorded.trim_end_matches('\n') != path_text => {
                return Err(DeckError::host(
                    "using the project state",
                    format!(
                        "{} belongs to {recorded:?}, not {path_text:?}; move it aside",
                        state.dir.display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(_) => std::fs::write(&marker, format!("{path_text}\n"))
                .context_io(|| format!("writing {}", marker.display()))?,
        }
        let mut dirs = vec![state.tmp(), state.claude_dir()];
        dirs.extend(ProjectState::LOCAL_PARTS.iter().map(|p| state.local(p)));
        for dir in dirs {
            make_private_dir(&dir)?;
        }
        let legacy = state.legacy_claude_json();
        if std::fs::symlink_metadata(&legacy).is_ok() {
            std::fs::remove_file(&legacy)
                .context_io(|| format!("removing the old whole copy {}", legacy.display()))?;
        }
        let copy = state.claude_json();
        if std::fs::symlink_metadata(&copy).is_err() {
            claude_home::seed_claude_json(&home_dir()?, project.as_path(), &copy)?;
        }
        Ok(state)
    }
}

/// What the network mode adds inside: the proxy's variables, and with a credential handed
/// over its placeholder in place of any credential variable the config would pass.
fn network_env(
    network: Network,
    api: Option<&(egress::credential::Kind, String)>,
    env: &mut Vec<(String, String)>,
    secrets: &mut Vec<(String, String)>,
) {
    if network == Network::Proxy {
        env.extend(egress::proxy_env());
    }
    if let Some((kind, placeholder)) = api {
        let credential_var = |k: &str| k == "ANTHROPIC_API_KEY" || k == "CLAUDE_CODE_OAUTH_TOKEN";
        env.retain(|(k, _)| !credential_var(k));
        secrets.retain(|(k, _)| !credential_var(k));
        env.extend(egress::credential::inside_env(*kind, placeholder));
    }
}

/// The secrets reach bwrap as `KEY=VALUE` lines: a value with a newline cannot be passed.
fn refuse_multiline_secrets(secrets: &[(String, String)]) -> Result<()> {
    match secrets.iter().find(|(_, v)| v.contains('\n')) {
        Some((key, _)) => Err(DeckError::host(
            "passing secrets",
            format!("{key} contains a newline, which the secrets file cannot carry"),
        )),
        None => Ok(()),
    }
}

/// The environment the payload will have: the sandbox's, each secret in place of any
/// variable of the same name (what a join needs to give a joining process).
fn payload_env(launch: &Launch) -> Vec<(String, String)> {
    let mut env = launch.env.clone();
    for (key, value) in &launch.secrets {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// This process's environment, for the sandbox's to be built from (never passed whole).
fn caller_env() -> Vec<(String, String)> {
    let mut caller: Vec<(String, String)> = std::env::vars().collect();
    if !caller.iter().any(|(k, _)| k == "USER") {
        // tmux hands the pane a minimal environment; the account name is still ours.
        if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
            caller.push(("USER".into(), user.name));
        }
    }
    caller
}

fn home_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute() && h != Path::new("/"))
        .ok_or_else(|| DeckError::host("finding the home directory", "HOME is unset or `/`"))?;
    Ok(home.canonicalize().unwrap_or(home))
}
