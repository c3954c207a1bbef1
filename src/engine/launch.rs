//! Starting the backend process itself: in a managed sandbox's tmux pane (`run-managed`),
//! or in the caller's terminal (`launch`, what the Nix launchers call), and entering,
//! joining or stopping a running instance.

use std::convert::Infallible;
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use nix::sched::{CloneFlags, setns};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::lifecycle::{checked_project_dir, find_by_id, process_name, read_gh_token};
use super::{Deck, require};
use crate::backend::exposure::{self, ExposureInput};
use crate::backend::{
    self, ClaudeView, EnvInput, Launch, Options, ProjectState, SandboxDisplay, claude_home,
    git_view,
};
use crate::error::{DeckError, IoContext, Result};
use crate::host::process::ProcRef;
use crate::paths::make_private_dir;
use crate::sandbox::{
    BackendKind, Payload, ProjectDir, SandboxId, SandboxName, SandboxRecord, SandboxState,
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
    pub options: Options,
    pub mode: LaunchMode,
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
            size: Some((self.config.display.width, self.config.display.height)),
        });
        let mut command = self.backend_command(&record, display, gh_token.as_deref(), resume)?;
        let err = command.exec();
        Err(DeckError::io("starting bwrap", err))
    }

    /// Runs a sandbox in the caller's terminal, registered (`managed: false`) while it runs,
    /// or joins, enters or stops the project's running instance. Returns the exit status of
    /// what ran (128 + signal when it was killed).
    pub fn launch_foreground(&self, request: LaunchRequest) -> Result<i32> {
        if request.backend != BackendKind::Bubblewrap {
            return Err(DeckError::host(
                format!("launch {}", request.backend),
                "this backend is not available in this version; use bubblewrap",
            ));
        }
        let project_dir = checked_project_dir(&request.project_dir, &self.paths)?;
        let running = self.live_instance(&project_dir)?;
        match (request.mode, running) {
            (LaunchMode::Stop, Some(record)) => {
                if record.managed {
                    self.stop(record.name.as_str())?;
                } else {
                    self.stop_launcher(&record);
                }
                eprintln!("sandbox-deck: stopped {}", record.name);
                Ok(0)
            }
            (LaunchMode::Stop | LaunchMode::Enter, None) => Err(DeckError::NotFound {
                name: format!(
                    "(a running sandbox for {})",
                    project_dir.as_path().display()
                ),
            }),
            (LaunchMode::Enter, Some(record)) => self.enter(&record, &[]),
            (LaunchMode::JoinOrStart, Some(record)) => {
                eprintln!(
                    "sandbox-deck: joining {} (already running for {}); --new starts another",
                    record.name,
                    project_dir.as_path().display()
                );
                let payload = backend::resolve_payload(
                    &request.payload,
                    &self.config.sandbox.agent,
                    false,
                    "",
                )?;
                self.enter(&record, &payload.command)
            }
            (LaunchMode::JoinOrStart | LaunchMode::New, _) => self.launch_new(request, project_dir),
        }
    }

    fn launch_new(&self, request: LaunchRequest, project_dir: ProjectDir) -> Result<i32> {
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
            options: request.options,
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
        if matches!(registered.payload, Payload::Agent { .. }) && !registered.options.host_display {
            eprintln!(
                "sandbox-deck: no display in a hand-launched sandbox; Chromium needs one \
                 (`--display host` on a desktop, or `sandbox-deck create` for its own)"
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

    /// The running bubblewrap sandbox of a project, if any.
    pub fn live_instance(&self, project: &ProjectDir) -> Result<Option<SandboxRecord>> {
        Ok(self.list()?.into_iter().find(|r| {
            r.state == SandboxState::Running
                && r.backend == BackendKind::Bubblewrap
                && &r.project_dir == project
                && r.launcher.is_some()
        }))
    }

    /// Runs `command` (a shell when empty) inside a running sandbox: its namespaces, its
    /// environment, its seccomp filter and Landlock scope, in the project directory.
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
        let init = sandbox_init(&launcher).ok_or_else(not_running)?;
        let namespaces = open_namespaces(&init)?;
        // The script stays constant; the project and argv follow as "$@". It does not `exec`:
        // joining a pid namespace applies to children only, so the command runs as a child.
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "cd -- \"$1\" || exit 1; shift; \"$@\"", "sh"]);
        cmd.arg(record.project_dir.as_path());
        if command.is_empty() {
            cmd.arg("bash");
        } else {
            cmd.args(command);
        }
        cmd.env_clear();
        cmd.envs(sandbox_environment(&init));
        join_and_confine(&mut cmd, namespaces)?;
        run_forwarding_signals(&mut cmd)
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
        let payload = self.payload_command(record, &profile, resume)?;
        let home = home_dir()?;
        let state = self.project_state(&record.project_dir)?;
        let claude = ClaudeView::resolve(&home, record.project_dir.as_path(), &state.claude_dir())?;
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
        let mut caller: Vec<(String, String)> = std::env::vars().collect();
        if !caller.iter().any(|(k, _)| k == "USER") {
            // tmux hands the pane a minimal environment; the account name is still ours.
            if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
                caller.push(("USER".into(), user.name));
            }
        }
        let bw = &self.config.bubblewrap;
        let mut exposure = exposure::resolve(&ExposureInput {
            options: &record.options,
            home: &home,
            project: record.project_dir.as_path(),
            uid: nix::unistd::getuid().as_raw(),
            protect: &bw.protect,
            caller_env: &caller,
        });
        // The git dir by allowlist; its helper keeps the host's git dir in step while this
        // process (or the bwrap it becomes) runs.
        exposure.git = git_view::prepare(record.project_dir.as_path(), &state.dir)?.mounts;
        git_view::spawn_sync_helper(&git_view::spec_path(&state.dir))?;
        for warning in &exposure.warnings {
            // Warnings can name files in the project, which the sandbox writes.
            eprintln!(
                "sandbox-deck: warning: {}",
                crate::format::printable(warning)
            );
        }
        if bw.hardening && record.network && backend::landlock::abi_version() < 6 {
            eprintln!(
                "sandbox-deck: warning: this kernel has no Landlock scoping (ABI < 6): with the \
                 host network shared, the sandbox can reach the host's abstract sockets (X11, \
                 some D-Bus buses); use --network none where you can"
            );
        }
        let browser = self.sandbox_browser(record, &profile)?;
        let env = backend::sandbox_env(&EnvInput {
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
        let secrets = backend::sandbox_secrets(&caller, &bw.secret_env, gh_token);
        if let Some((key, _)) = secrets.iter().find(|(_, v)| v.contains('\n')) {
            return Err(DeckError::host(
                "passing secrets",
                format!("{key} contains a newline, which the secrets file cannot carry"),
            ));
        }
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
        backend::bubblewrap::command(&bwrap, &profile, &launch)
    }

    /// The sandbox's browser when the host has Chromium: its own profile dir (created here)
    /// and the profile's extension policy.
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
        let dir = self.paths.sandbox_browser_profile(&record.id);
        if let Some(own) = dir.parent() {
            make_private_dir(own)?;
        }
        make_private_dir(&dir)?;
        Ok(Some(backend::Browser {
            binary,
            profile: dir,
            policy: backend::bubblewrap::chromium_policy(&profile.chromium_extensions),
        }))
    }

    /// Where the project's persistent state lives (`projects/<name>-<hash>/` under the state
    /// dir), whether or not it exists yet.
    pub fn project_state_dir(&self, project: &ProjectDir) -> PathBuf {
        use sha2::Digest;
        let path_text = project.as_path().display().to_string();
        let hash = sha2::Sha256::digest(path_text.as_bytes());
        let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let name = SandboxName::from_dir(project.as_path());
        self.paths
            .state_dir
            .join("projects")
            .join(format!("{name}-{short}"))
    }

    /// The project's persistent state dir (`projects/<name>-<hash>/`), created on first use.
    /// Its `path` file records the project, so two projects can never share one.
    pub fn project_state(&self, project: &ProjectDir) -> Result<ProjectState> {
        let path_text = project.as_path().display().to_string();
        let state = ProjectState {
            dir: self.project_state_dir(project),
        };
        make_private_dir(&state.dir)?;
        let marker = state.dir.join("path");
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

/// The sandbox's init: with `--unshare-pid`, bwrap forks itself as pid 1 of the new
/// namespace, so it is the `bwrap` whose parent is also `bwrap`.
fn sandbox_init(launcher: &ProcRef) -> Option<ProcRef> {
    let mut tree = vec![*launcher];
    tree.extend(launcher.descendants());
    let is_bwrap = |pid: u32| process_name(pid).as_deref() == Some("bwrap");
    tree.iter()
        .copied()
        .find(|p| is_bwrap(p.pid) && parent_of(p.pid).is_some_and(is_bwrap))
        .or_else(|| tree.iter().copied().rfind(|p| is_bwrap(p.pid)))
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn namespace_of(pid: u32, ns: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()
}

/// The environment of the sandbox's payload (its first process under init), which already
/// holds the allowlist and any secrets loaded inside.
fn sandbox_environment(init: &ProcRef) -> Vec<(String, String)> {
    let payload = init.descendants().into_iter().next().unwrap_or(*init);
    let raw = std::fs::read(format!("/proc/{}/environ", payload.pid)).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let text = std::str::from_utf8(kv).ok()?;
            let (k, v) = text.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The namespaces to join, in the order that works: the user namespace that owns the
/// others (for an unprivileged bwrap, the sandbox's; as root, ours, so nothing to join),
/// then the others, then the sandbox's own user namespace when it is nested below that
/// owner (`--disable-userns` runs the sandbox in a second, nested user namespace).
struct Namespaces {
    owner: Option<std::fs::File>,
    others: Vec<(std::fs::File, CloneFlags)>,
    inner: Option<std::fs::File>,
}

/// Opened now, from outside any Landlock domain: once confined, a process may not even
/// look at another domain's /proc entries.
fn open_namespaces(init: &ProcRef) -> Result<Namespaces> {
    let open = |pid: u32, name: &str| {
        let path = format!("/proc/{pid}/ns/{name}");
        std::fs::File::open(&path).context_io(|| format!("opening {path}"))
    };
    let mut others = Vec::new();
    for (name, flag) in [
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("pid", CloneFlags::CLONE_NEWPID),
    ] {
        if namespace_of(init.pid, name) != namespace_of(std::process::id(), name) {
            others.push((open(init.pid, name)?, flag));
        }
    }
    let ours = identity(&open(std::process::id(), "user")?)?;
    let inner = open(init.pid, "user")?;
    let owner = match others.first() {
        Some((mnt, _)) => owning_user_namespace(mnt)?,
        None => open(init.pid, "user")?,
    };
    let owner_id = identity(&owner)?;
    let inner_id = identity(&inner)?;
    Ok(Namespaces {
        owner: (owner_id != ours).then_some(owner),
        others,
        inner: (inner_id != owner_id && inner_id != ours).then_some(inner),
    })
}

/// NS_GET_USERNS: the user namespace that owns a namespace.
fn owning_user_namespace(ns: &std::fs::File) -> Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    // SAFETY: the ioctl takes no argument and returns a new file descriptor or -1.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS as _) };
    if fd < 0 {
        return Err(DeckError::io(
            "finding the owner of the sandbox's namespaces",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn identity(ns: &std::fs::File) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = ns
        .metadata()
        .map_err(|e| DeckError::io("reading a namespace", e))?;
    Ok((meta.dev(), meta.ino()))
}

/// In the child: join the namespaces, drop every capability the user-namespace join gave,
/// then take on the sandbox's Landlock scope and seccomp filter.
fn join_and_confine(cmd: &mut Command, namespaces: Namespaces) -> Result<()> {
    let programs = backend::seccomp::programs()?;
    let mut ruleset = backend::landlock::scoped_ruleset();
    // SAFETY: only syscalls (setns, prctl, capset, landlock, seccomp) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(owner) = &namespaces.owner {
                setns(owner, CloneFlags::CLONE_NEWUSER)?;
            }
            for (file, flag) in &namespaces.others {
                setns(file, *flag)?;
            }
            if let Some(inner) = &namespaces.inner {
                setns(inner, CloneFlags::CLONE_NEWUSER)?;
            }
            drop_capabilities()?;
            if let Some(r) = ruleset.take() {
                backend::landlock::restrict(r)?;
            }
            for program in &programs {
                seccompiler::apply_filter(program)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Empties the bounding, effective, permitted and inheritable sets, like bwrap's
/// `--cap-drop ALL` does for the sandbox itself.
fn drop_capabilities() -> std::io::Result<()> {
    for cap in 0..=63 {
        // SAFETY: PR_CAPBSET_DROP takes a capability number; unknown ones fail with EINVAL.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            break;
        }
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: capset with a v3 header and two data words, as the ABI requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
        .context_io(|| "starting the sandbox".to_string())?;
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
    let status = child
        .wait()
        .context_io(|| "waiting for the sandbox".to_string());
    handle.close();
    let _ = forwarder.join();
    let status = status?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
