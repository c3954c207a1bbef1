//! A private world for each integration test: its own HOME and XDG dirs (so its own registry
//! and tmux server), the real sandbox-deck binary, and cleanup of everything it started.
#![allow(dead_code)]

pub mod guards;
pub use guards::{CanaryProcess, Guarded, HostX, SpawnGuarded};
pub mod sshd;
pub mod tui;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");

/// Returns false (and says why) when a host tool is missing; under CI=true it panics instead,
/// so CI can never pass by skipping.
pub fn prerequisites(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and these prerequisites are missing: {missing:?}");
    }
    eprintln!("SKIPPED: missing {missing:?} (install them to run this test)");
    false
}

/// Whether we can run a test as `nobody` (through setpriv, which needs root); says why not.
pub fn can_drop_to_nobody() -> bool {
    if !prerequisites(&["setpriv"]) {
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("runs as root only (it drops to nobody itself); we are already unprivileged");
        return false;
    }
    true
}

/// `own` (program, arguments, environment, working dir) run as `nobody` through setpriv.
pub fn nobody_command(own: &Command) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(own.get_program())
        .args(own.get_args())
        .env_clear()
        .envs(
            own.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        );
    if let Some(dir) = own.get_current_dir() {
        c.current_dir(dir);
    }
    c
}

/// A start failure's message names the exit status `code`, or says it is unknown: tmux 3.3
/// does not always record a dead pane's status. The pane's last lines are checked apart.
pub fn says_exit_status(text: &str, code: i32) -> bool {
    text.contains(&format!("exit status {code}")) || text.contains("exit status unknown")
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

pub struct World {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub runtime: PathBuf,
    /// Extra environment for every command (e.g. a PATH override).
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new() -> World {
        // Short paths: the tmux socket lives under the runtime dir and sun_path holds 108 bytes.
        let root = tempfile::Builder::new()
            .prefix("sd-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let home = root.path().join("home");
        let runtime = root.path().join("run");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        World {
            home,
            runtime,
            root,
            env: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// A fresh project directory.
    pub fn project(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join("projects").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    pub fn tmux_socket(&self) -> PathBuf {
        self.runtime.join("sandbox-deck").join("tmux.sock")
    }

    pub fn registry(&self) -> PathBuf {
        self.root.path().join("state/sandbox-deck/registry.json")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear();
        c.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        c.env("HOME", &self.home);
        c.env("XDG_STATE_HOME", self.root.path().join("state"));
        c.env("XDG_CONFIG_HOME", self.root.path().join("config"));
        c.env("XDG_RUNTIME_DIR", &self.runtime);
        c.env("LANG", "C.UTF-8");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Hands this world to `nobody` and returns a builder for sandbox-deck commands run as
    /// that user (through setpriv): the unprivileged path real users take, while CI is root.
    pub fn as_nobody(&self) -> impl Fn(&[&str]) -> Command + '_ {
        const NOBODY: u32 = 65534;
        let chown = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(self.root.path())
            .status()
            .expect("chown");
        assert!(chown.success());
        move |args: &[&str]| {
            let own = self.command();
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--",
            ])
            .arg(own.get_program())
            .args(args)
            .env_clear()
            .envs(
                own.get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            );
            c
        }
    }

    /// Installs the real Claude Code CLI (prepared by `scripts/test-fixtures`) the way a user
    /// without root does: an npm user prefix under this world's home, `~/.npm-global/bin` put
    /// first on PATH. Returns the `claude` path, or None (having said why) when the prepared
    /// copy is missing; under CI=true that panics instead.
    pub fn install_real_claude(&mut self) -> Option<PathBuf> {
        let cache = std::env::var_os("SANDBOX_DECK_TEST_CLAUDE_PREFIX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/sandbox-deck-tests/npm-global"));
        if !cache.join("bin/claude").exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and the real claude is missing: run scripts/test-fixtures");
            }
            eprintln!("SKIPPED: the real claude is missing (run scripts/test-fixtures)");
            return None;
        }
        let prefix = self.home.join(".npm-global");
        // Hard links: a 240 MB binary copied in a blink; a plain copy where they can't be made.
        let linked = Command::new("cp")
            .arg("-al")
            .arg(&cache)
            .arg(&prefix)
            .status()
            .is_ok_and(|s| s.success());
        if !linked {
            let _ = std::fs::remove_dir_all(&prefix);
            succeed(Command::new("cp").arg("-a").arg(&cache).arg(&prefix));
        }
        let bin = prefix.join("bin");
        let path = std::env::var("PATH").unwrap_or_default();
        self.env.retain(|(k, _)| k != "PATH");
        self.env
            .push(("PATH".into(), format!("{}:{path}", bin.display())));
        Some(bin.join("claude"))
    }

    /// A conversation Claude Code can resume in `project`: a transcript with one exchange,
    /// in the format and place Claude writes it (`~/.claude/projects/<encoded dir>/<id>.jsonl`).
    /// The assistant's answer contains `word`, to recognise it on screen.
    pub fn lay_down_conversation(&self, project: &Path, word: &str) -> PathBuf {
        let encoded = sandbox_deck::usage::encode_project_dir(project);
        let dir = self.home.join(".claude/projects").join(encoded);
        std::fs::create_dir_all(&dir).unwrap();
        let session = "3f0c8a2e-1b7d-4c55-9a61-2d4e8f7b9c10";
        let cwd = project.display().to_string();
        let user = serde_json::json!({
            "parentUuid": null, "isSidechain": false, "userType": "external", "cwd": cwd,
            "sessionId": session, "version": "2.1.197", "gitBranch": "", "type": "user",
            "message": {"role": "user", "content": format!("remember the word {word}")},
            "uuid": "a1b2c3d4-0000-4000-8000-000000000001",
            "timestamp": "2026-01-05T10:00:00.000Z"
        });
        let assistant = serde_json::json!({
            "parentUuid": "a1b2c3d4-0000-4000-8000-000000000001", "isSidechain": false,
            "userType": "external", "cwd": cwd, "sessionId": session, "version": "2.1.197",
            "gitBranch": "", "type": "assistant", "requestId": "req_01",
            "message": {"id": "msg_01", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": format!("Noted: {word}.")}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 5}},
            "uuid": "a1b2c3d4-0000-4000-8000-000000000002",
            "timestamp": "2026-01-05T10:00:01.000Z"
        });
        let path = dir.join(format!("{session}.jsonl"));
        std::fs::write(&path, format!("{user}\n{assistant}\n")).unwrap();
        path
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("running sandbox-deck")
    }

    /// Runs with `--json`, expects success, and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert!(
            out.status.success(),
            "sandbox-deck {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bad JSON from {args:?}: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs with `--json`, expects failure, and returns the error kind from stderr.
    pub fn error_kind(&self, args: &[&str]) -> (String, String) {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert!(
            !out.status.success(),
            "sandbox-deck {args:?} should have failed"
        );
        let err: Value = serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
            panic!(
                "stderr is not a JSON error ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (
            err["error"]["kind"].as_str().expect("kind").to_owned(),
            err["error"]["message"]
                .as_str()
                .expect("message")
                .to_owned(),
        )
    }

    /// A managed shell sandbox for a fresh project named `name`, idling in `sleep 600`.
    pub fn create_idle(&self, name: &str) -> Value {
        self.create_idle_at(&self.project(name))
    }

    /// A managed shell sandbox for `project`, idling in `sleep 600`.
    pub fn create_idle_at(&self, project: &Path) -> Value {
        self.json(&[
            "create",
            project.to_str().unwrap(),
            "--shell",
            "--",
            "sleep",
            "600",
        ])
    }

    pub fn list(&self) -> Vec<Value> {
        self.json(&["list"])
            .as_array()
            .expect("list is an array")
            .clone()
    }

    pub fn show(&self, name: &str) -> Value {
        self.json(&["show", name])
    }

    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.tmux_socket())
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// Every process that belongs to this world: anything whose command line or environment
    /// names our temp dir (Xvfb's -auth, the tmux server's socket, bwrap's binds).
    pub fn processes(&self) -> Vec<u32> {
        let me = std::process::id();
        with_marker(&self.root.path().to_string_lossy())
            .into_iter()
            .filter(|pid| *pid != me)
            .collect()
    }
}

impl World {
    /// The pid of the engine (`serve`) of this world, from the pid file it writes once it
    /// listens; None when none runs (or the pid is another program's by now).
    pub fn engine_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.runtime.join("sandbox-deck/serve.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let serves = cmdline.split(|b| *b == 0).any(|arg| arg == b"serve");
        (serves && is_running(pid as u32)).then_some(pid)
    }

    /// Ends this world's engine by its pid: SIGTERM, then SIGKILL after 3 s.
    pub fn end_engine(&self) {
        let Some(pid) = self.engine_pid() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while is_running(pid.as_raw() as u32) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

impl Drop for World {
    /// Ends everything this world started, by pid: the engine a TUI started (its pid file),
    /// sandboxes through the CLI, then our tmux server, then any process still naming our
    /// temp dir.
    fn drop(&mut self) {
        self.end_engine();
        if let Ok(text) = std::fs::read(self.registry())
            && let Ok(v) = serde_json::from_slice::<Value>(&text)
        {
            for r in v["sandboxes"].as_array().cloned().unwrap_or_default() {
                if let Some(name) = r["name"].as_str() {
                    let _ = self.run(&["rm", "--force", name]);
                }
            }
        }
        let _ = self.tmux(&["kill-server"]);
        // SIGTERM first, so an Xvfb removes its lock file and socket; SIGKILL what remains.
        let signal = |pids: &[u32], signal| {
            for pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), signal);
            }
        };
        let left = self.processes();
        signal(&left, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(1);
        while left.iter().any(|p| is_running(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal(&self.processes(), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Runs `command`, expects success (showing its stderr otherwise) and returns its output.
pub fn succeed(command: &mut Command) -> Output {
    let out = command.output().expect("running a command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What tests know of processes comes from the crate's one reader of `/proc/<pid>/stat` and
/// `/proc/<pid>/comm`.
pub use sandbox_deck::host::process;

pub fn all_pids() -> Vec<u32> {
    process::pids()
}

/// Alive and not a zombie (a zombie has finished; only its parent's bookkeeping remains).
pub fn is_running(pid: u32) -> bool {
    process::is_running(pid)
}

/// The kernel's name for `pid` (`/proc/<pid>/comm`), empty when it is gone.
pub fn comm(pid: u32) -> String {
    process::name(pid).unwrap_or_default()
}

/// Every running descendant of `pid`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let Some(root) = process::ProcRef::of(pid) else {
        return Vec::new();
    };
    process::ProcessTree::read()
        .descendants(&root)
        .into_iter()
        .filter(process::ProcRef::is_alive)
        .map(|p| p.pid)
        .collect()
}

pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stand-in agent that only shows a screen: it prints `screen.txt` from its project dir
/// (a real capture from `tests/fixtures/claude-screens` fits) and waits. Its path goes into
/// `sandbox.agent` in the test's config.
pub fn screen_agent(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("creating the agent's dir");
    let agent = dir.join("show-screen");
    std::fs::write(
        &agent,
        "#!/bin/sh
cat \"$PWD/screen.txt\"
exec sleep 600
",
    )
    .expect("writing the agent");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))
        .expect("making the agent executable");
    agent
}

/// A real screen of Claude Code (`tests/fixtures/claude-screens/<version>/<name>.txt`).
pub fn claude_screen(version: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude-screens")
        .join(version)
        .join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A string no other call in this run returns (pid, time, counter).
pub fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}{nanos}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The value of `field` in a `/proc/<pid>/status` text.
pub fn status_field(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

pub fn parent(pid: u32) -> Option<u32> {
    process::parent(pid)
}

pub fn state(pid: u32) -> Option<char> {
    process::stat(pid).map(|s| s.state)
}

/// Direct children of `pid` from `/proc/PID/task/*/children`, zombies included.
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            for c in read(&task.path().join("children")).split_whitespace() {
                if let Ok(c) = c.parse() {
                    found.push(c);
                }
            }
        }
    }
    found
}

/// Every zombie in the tree under `pid`.
pub fn zombies_under(pid: u32) -> Vec<u32> {
    let mut zombies = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in children(p) {
            if state(c) == Some('Z') {
                zombies.push(c);
            }
            frontier.push(c);
        }
    }
    zombies
}

/// Pids of running processes whose command line contains `marker`.
pub fn with_marker(marker: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| is_running(*p))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether X display `n` listens on its abstract socket.
pub fn abstract_x_socket_listed(n: u32) -> bool {
    let wanted = format!(" @/tmp/.X11-unix/X{n}");
    read(Path::new("/proc/net/unix"))
        .lines()
        .any(|l| l.ends_with(&wanted))
}

/// The Python the independent API clients run under.
pub const PYTHON: &str = "/usr/bin/python3";

/// Whether Python with `websockets` is there (`scripts/deps` installs it); says why not, and
/// under CI=true a missing one fails instead.
pub fn python_websockets() -> bool {
    if !prerequisites(&[PYTHON]) {
        return false;
    }
    let has_websockets = Command::new(PYTHON)
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_websockets {
        assert!(
            std::env::var("CI").ok().as_deref() != Some("true"),
            "CI=true and python3-websockets is missing"
        );
        eprintln!("SKIPPED: python3-websockets is missing (scripts/deps installs it)");
    }
    has_websockets
}

/// Runs a Python client with `args`; expects success (showing both streams otherwise) and
/// returns its stdout.
pub fn run_python<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(PYTHON)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(args)
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
