//! The engine as a service: finding the one engine of this user on this host (its API
//! socket), starting it when none answers (`serve --auto`, detached, as tmux starts its
//! server), and when an auto-started engine may end by itself.
//!
//! "Answers" means a connect on the socket succeeds: a socket file with nobody behind it
//! (an engine that was killed) refuses the connection. The connection that answered is the
//! one handed back, so a probe never costs the engine an extra client.

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::config::{Config, ServeConfig};
use crate::error::{DeckError, IoContext, Result};
use crate::host::placement::{self, Placement};
use crate::paths::Paths;

/// The API socket's name in the runtime dir (`<runtime dir>/sandbox-deck/api.sock`).
pub const SOCKET_NAME: &str = "api.sock";
/// The engine's pid, written once it listens, for whoever must end it by pid (a test, a
/// script); removed when it ends cleanly. The socket, not this file, says whether an engine
/// answers.
pub const PID_FILE_NAME: &str = "serve.pid";
/// Held while a client starts an engine, so two clients starting at once start one.
const START_LOCK_NAME: &str = "serve-start.lock";
/// How long a client waits for the engine it started to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What an engine needs of its starter's environment besides [`crate::host::HOST_ENV`]: the
/// same dirs (so the same registry, config and log), its log level, where a notification
/// reaches the desktop, and where the agent's config lives. The names the user configured
/// for sandboxes (`bubblewrap.pass_env`, `secret_env`) are added by [`engine_env`].
pub const ENGINE_ENV: &[&str] = &[
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    // Without XDG_RUNTIME_DIR, the runtime dir falls back to one in the temp dir.
    "TMPDIR",
    "SANDBOX_DECK_LOG",
    "SANDBOX_DECK_SYSTEM_CONFIG",
    "CLAUDE_CONFIG_DIR",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// Where this user's engine listens.
pub fn api_socket(paths: &Paths) -> PathBuf {
    paths.runtime_dir.join(SOCKET_NAME)
}

/// Where the engine answering on [`api_socket`] wrote its pid.
pub fn pid_file(paths: &Paths) -> PathBuf {
    paths.runtime_dir.join(PID_FILE_NAME)
}

/// Records this process as the engine (0600, replaced atomically).
pub fn write_pid_file(path: &Path) -> Result<()> {
    let temporary = path.with_extension("pid.new");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&temporary)
        .context_io(|| format!("writing {}", temporary.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", std::process::id()).as_bytes())
        .context_io(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).context_io(|| format!("writing {}", path.display()))
}

/// Removes the pid file if it still names this process (a newer engine may have replaced it).
pub fn remove_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours && let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

/// How `serve` was started: `--auto` is what a client adds when it starts the engine for
/// itself; such an engine ends when nobody needs it (see [`IdlePolicy`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct ServeOptions {
    /// Started by a client that found no engine: end after `serve.idle_exit_secs` with no
    /// client and no running sandbox.
    #[arg(long, hide = true)]
    pub auto: bool,
}

impl ServeOptions {
    /// When this engine ends by itself: never when started by hand or by a unit.
    pub fn idle_policy(&self, config: &ServeConfig) -> IdlePolicy {
        IdlePolicy {
            exit_after: (self.auto && config.idle_exit_secs > 0)
                .then(|| Duration::from_secs(config.idle_exit_secs)),
        }
    }
}

/// When an engine may end by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    /// None: never.
    pub exit_after: Option<Duration>,
}

impl IdlePolicy {
    /// True when the engine should end now: it may end by itself, nobody is connected,
    /// no sandbox runs, and that has been so for `idle_for` (see [`IdleClock`]), at least
    /// the configured time. Sandboxes never depend on the engine; this only spares a host
    /// an engine nobody uses.
    pub fn should_exit(&self, idle_for: Duration, clients: usize, running: usize) -> bool {
        self.exit_after
            .is_some_and(|after| clients == 0 && running == 0 && idle_for >= after)
    }

    /// How often the engine looks whether it may end: a tenth of the idle time, between one
    /// and thirty seconds (an idle engine wakes for this alone; ending a little late is
    /// harmless).
    pub fn check_every(&self) -> Duration {
        let tenth = self.exit_after.unwrap_or(Duration::MAX) / 10;
        tenth.clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// How long the engine has been idle (no client, no running sandbox), from what it observes
/// each round; the clock is passed in, so it is tested without waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdleClock {
    since: Option<Instant>,
}

impl IdleClock {
    /// Records one observation and returns how long the engine has been idle (zero while
    /// anybody is connected or anything runs).
    pub fn observe(&mut self, now: Instant, clients: usize, running: usize) -> Duration {
        if clients > 0 || running > 0 {
            self.since = None;
            return Duration::ZERO;
        }
        let since = *self.since.get_or_insert(now);
        now.saturating_duration_since(since)
    }
}

/// The engine's command line: this same binary, `serve --auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl EngineCommand {
    /// `serve --auto` of the running binary.
    pub fn serve_auto() -> Result<EngineCommand> {
        let program = std::env::current_exe()
            .map_err(|e| DeckError::io("finding the sandbox-deck binary", e))?;
        Ok(EngineCommand::serve_auto_of(program))
    }

    pub fn serve_auto_of(program: PathBuf) -> EngineCommand {
        EngineCommand {
            program,
            args: vec!["serve".into(), "--auto".into()],
        }
    }
}

/// The names an engine keeps from its starter's environment: [`ENGINE_ENV`] and the
/// variables the user's config passes to sandboxes.
pub fn engine_env(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = ENGINE_ENV.iter().map(|k| (*k).to_owned()).collect();
    for name in config
        .bubblewrap
        .pass_env
        .iter()
        .chain(&config.bubblewrap.secret_env)
    {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Everything a client needs to find or start the engine.
#[derive(Debug, Clone)]
pub struct Starter {
    pub socket: PathBuf,
    /// Named in errors: the engine writes there why it did not come up.
    pub log_file: PathBuf,
    pub lock: PathBuf,
    pub command: EngineCommand,
    /// Variable names kept from our environment (see [`engine_env`]).
    pub env: Vec<String>,
    /// None: this host's ([`Placement::current`]), observed only when an engine must start.
    pub placement: Option<Placement>,
    pub timeout: Duration,
}

impl Starter {
    /// This user's engine: `serve --auto` of this binary, placed as this host places
    /// long-lived processes.
    pub fn new(paths: &Paths, config: &Config) -> Result<Starter> {
        Ok(Starter {
            socket: api_socket(paths),
            log_file: crate::log::dir(paths).join(crate::log::FILE_NAME),
            lock: paths.runtime_dir.join(START_LOCK_NAME),
            command: EngineCommand::serve_auto()?,
            env: engine_env(config),
            placement: None,
            timeout: START_TIMEOUT,
        })
    }

    fn unavailable(&self, detail: impl Into<String>) -> DeckError {
        DeckError::EngineUnavailable {
            socket: self.socket.clone(),
            detail: detail.into(),
            log: self.log_file.clone(),
        }
    }
}

/// A connection to the engine answering on `socket`, or None when none answers (no socket,
/// or nobody listening behind it).
pub fn connect(socket: &Path) -> Result<Option<UnixStream>> {
    match UnixStream::connect(socket) {
        Ok(stream) => Ok(Some(stream)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            Ok(None)
        }
        Err(e) => Err(DeckError::io(
            format!("connecting to the engine at {}", socket.display()),
            e,
        )),
    }
}

/// A connection to the engine, started first when none answers. Two clients starting at
/// once start one engine: the second waits for the first's and connects to it.
pub fn connect_or_start(starter: &Starter) -> Result<UnixStream> {
    if let Some(stream) = connect(&starter.socket)? {
        return Ok(stream);
    }
    let _lock = lock(&starter.lock)?;
    if let Some(stream) = connect(&starter.socket)? {
        return Ok(stream);
    }
    tracing::info!(socket = %starter.socket.display(), "no engine answers: starting one");
    let child = spawn(starter)?;
    wait_until_answering(starter, child)
}

fn lock(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        crate::host::fs::ensure_private_dir(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .context_io(|| format!("opening {}", path.display()))?;
    // Released when the file is closed, also if this process dies.
    file.lock()
        .context_io(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// The engine's command as it is spawned, placed (`id` names its scope) and with stdio on
/// /dev/null and its environment by allowlist; [`spawn`] adds the new session.
pub fn command(starter: &Starter, placement: &Placement, id: &str) -> std::process::Command {
    let args: Vec<&OsStr> = starter
        .command
        .args
        .iter()
        .map(OsString::as_os_str)
        .collect();
    let env: Vec<&str> = starter.env.iter().map(String::as_str).collect();
    let mut command =
        placement.command_with_env("serve", id, &starter.command.program, &args, &env);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Starts the engine detached: its own session (no SIGHUP from our terminal, no Ctrl-C),
/// stdio on /dev/null (it logs to its file), its environment by allowlist, placed.
pub fn spawn(starter: &Starter) -> Result<Child> {
    let placement = starter
        .placement
        .as_ref()
        .unwrap_or_else(|| Placement::current());
    let mut command = command(starter, placement, &placement::unique_id());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| starter.unavailable(format!("could not run the engine: {e}")))
}

/// Waits for the engine `child` to answer. It failing first ends the wait at once; it ending
/// successfully (another engine won the socket) does not.
fn wait_until_answering(starter: &Starter, mut child: Child) -> Result<UnixStream> {
    let deadline = Instant::now() + starter.timeout;
    let mut ended = None;
    loop {
        if let Some(stream) = connect(&starter.socket)? {
            reap_later(child, ended.is_some());
            return Ok(stream);
        }
        if ended.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            if !status.success() {
                return Err(starter.unavailable(format!("the engine exited ({status})")));
            }
            ended = Some(status);
        }
        if Instant::now() >= deadline {
            if ended.is_none() {
                // It may be stuck: it is ours and unanswered, so it is ended and reaped.
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(starter.unavailable(format!(
                "the engine started did not answer within {:?}",
                starter.timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A long-lived client (the TUI) must not keep the engine as a zombie once it ends.
fn reap_later(mut child: Child, already_reaped: bool) {
    if already_reaped {
        return;
    }
    std::thread::spawn(move || {
        // Its exit status is in the engine's log, not ours to report.
        let _ = child.wait();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServeConfig {
        ServeConfig {
            idle_exit_secs: 600,
        }
    }

    #[test]
    fn an_auto_started_engine_ends_only_when_idle_long_enough() {
        let policy = ServeOptions { auto: true }.idle_policy(&config());
        let ten_min = Duration::from_secs(600);
        assert!(policy.should_exit(ten_min, 0, 0));
        assert!(policy.should_exit(ten_min * 2, 0, 0));
        assert!(!policy.should_exit(ten_min - Duration::from_secs(1), 0, 0));
        assert!(!policy.should_exit(ten_min, 1, 0), "a client is connected");
        assert!(!policy.should_exit(ten_min, 0, 1), "a sandbox runs");
    }

    #[test]
    fn the_idle_check_is_a_tenth_of_the_idle_time_within_bounds() {
        let s = Duration::from_secs;
        let policy = |secs| {
            ServeOptions { auto: true }.idle_policy(&ServeConfig {
                idle_exit_secs: secs,
            })
        };
        assert_eq!(policy(600).check_every(), s(30));
        assert_eq!(policy(100).check_every(), s(10));
        assert_eq!(policy(2).check_every(), s(1));
        assert_eq!(
            ServeOptions::default().idle_policy(&config()).check_every(),
            s(30)
        );
    }

    #[test]
    fn an_engine_started_by_hand_or_with_idle_exit_0_stays() {
        let forever = Duration::from_secs(u64::from(u32::MAX));
        let by_hand = ServeOptions::default().idle_policy(&config());
        assert_eq!(by_hand.exit_after, None);
        assert!(!by_hand.should_exit(forever, 0, 0));
        let never = ServeOptions { auto: true }.idle_policy(&ServeConfig { idle_exit_secs: 0 });
        assert!(!never.should_exit(forever, 0, 0));
    }

    #[test]
    fn the_idle_clock_restarts_whenever_someone_is_there() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut clock = IdleClock::default();
        assert_eq!(clock.observe(t0, 0, 0), Duration::ZERO);
        assert_eq!(clock.observe(t0 + s(5), 0, 0), s(5));
        assert_eq!(clock.observe(t0 + s(6), 1, 0), Duration::ZERO);
        assert_eq!(clock.observe(t0 + s(7), 0, 0), Duration::ZERO);
        assert_eq!(clock.observe(t0 + s(9), 0, 0), s(2));
        assert_eq!(clock.observe(t0 + s(10), 0, 3), Duration::ZERO);
    }

    #[test]
    fn the_engine_is_this_binary_serving_with_auto() {
        let command = EngineCommand::serve_auto_of("/opt/bin/sandbox-deck".into());
        assert_eq!(command.program, Path::new("/opt/bin/sandbox-deck"));
        assert_eq!(command.args, ["serve", "--auto"]);
        let starter = Starter {
            socket: "/run/sd/api.sock".into(),
            log_file: "/state/log".into(),
            lock: "/run/sd/lock".into(),
            command,
            env: vec!["XDG_RUNTIME_DIR".into()],
            placement: Some(Placement::Direct),
            timeout: START_TIMEOUT,
        };
        let argv = |command: &std::process::Command| -> Vec<OsString> {
            std::iter::once(command.get_program())
                .chain(command.get_args())
                .map(OsStr::to_os_string)
                .collect()
        };
        // Nothing added without a user manager; no shell either way.
        assert_eq!(
            argv(&super::command(&starter, &Placement::Direct, "7-0")),
            ["/opt/bin/sandbox-deck", "serve", "--auto"].map(OsString::from)
        );
        let scope = Placement::UserScope {
            systemd_run: "/usr/bin/systemd-run".into(),
        };
        assert_eq!(
            argv(&super::command(&starter, &scope, "7-0")),
            [
                "/usr/bin/systemd-run",
                "--user",
                "--scope",
                "--quiet",
                "--unit=sandbox-deck-serve-7-0",
                "--collect",
                "--",
                "/opt/bin/sandbox-deck",
                "serve",
                "--auto"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn the_engine_keeps_the_dirs_and_the_variables_the_user_passes_to_sandboxes() {
        let mut config = Config::defaults();
        config.bubblewrap.pass_env = vec!["FOO".into(), "XDG_RUNTIME_DIR".into()];
        config.bubblewrap.secret_env = vec!["ANTHROPIC_API_KEY".into()];
        let env = engine_env(&config);
        for key in [
            "XDG_STATE_HOME",
            "XDG_RUNTIME_DIR",
            "FOO",
            "ANTHROPIC_API_KEY",
        ] {
            assert!(env.iter().any(|k| k == key), "{key}");
        }
        assert_eq!(env.iter().filter(|k| *k == "XDG_RUNTIME_DIR").count(), 1);
        assert!(!env.iter().any(|k| k == "GH_TOKEN" || k == "SSH_AUTH_SOCK"));
    }

    #[test]
    fn no_socket_or_nobody_behind_it_means_no_engine() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        assert!(connect(&socket).unwrap().is_none(), "no socket file");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert!(connect(&socket).unwrap().is_some(), "a listener answers");
        drop(listener);
        assert!(socket.exists());
        assert!(connect(&socket).unwrap().is_none(), "a stale socket file");
    }
}
