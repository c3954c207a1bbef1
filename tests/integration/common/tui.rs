//! The control center's world: a `World` plus a tmux server of the test's own that the TUI
//! runs in (driven with send-keys, read with capture-pane). On drop the TUI is ended by its
//! pid and the test server through its socket; the `World` underneath ends the rest.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{BIN, World, prerequisites};

pub const WAIT: Duration = Duration::from_secs(20);
/// The tmux session the (first) TUI runs in.
const TUI: &str = "tui";

/// The host tools the control center's tests need (see [`prerequisites`]).
pub fn tui_prerequisites() -> bool {
    prerequisites(&["tmux", "Xvfb", "bwrap"])
}

pub struct TuiWorld {
    world: World,
}

impl Deref for TuiWorld {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl TuiWorld {
    pub fn new() -> TuiWorld {
        let world = World::new();
        for dir in ["state", "config", "projects"] {
            std::fs::create_dir_all(world.path(dir)).expect("creating a dir");
        }
        // The test server keeps a dead pane so the TUI's exit status can be read, and stays
        // up with no session (a test that kills its only session and starts another must
        // not race the server's exit; drop ends it by kill-server).
        std::fs::write(
            world.path("test-tmux.conf"),
            "set -g remain-on-exit on\nset -s exit-empty off\n",
        )
        .expect("writing the test tmux config");
        TuiWorld { world }
    }

    /// The environment of the test tmux server and of what it runs.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("PATH", std::env::var_os("PATH").unwrap_or_default().into()),
            ("HOME", self.path("home")),
            ("XDG_STATE_HOME", self.path("state")),
            ("XDG_CONFIG_HOME", self.path("config")),
            ("XDG_RUNTIME_DIR", self.path("run")),
            ("LANG", "C.UTF-8".into()),
            ("TERM", "xterm-256color".into()),
        ]
    }

    /// The deck's CLI in this world.
    pub fn deck(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .env_clear()
            .envs(self.env())
            .args(args)
            .output()
            .expect("running sandbox-deck")
    }

    /// The project directory `name` (made if missing), as the TUI's form sees it.
    pub fn project(&self, name: &str) -> PathBuf {
        let dir = self.path("projects").join(name);
        std::fs::create_dir_all(&dir).expect("creating a project");
        dir
    }

    /// tmux on the test server (the one the TUI runs in), never the deck's own.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .env_clear()
            .envs(self.env())
            .arg("-S")
            .arg(self.path("test.sock"))
            .arg("-f")
            .arg(self.path("test-tmux.conf"))
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// Starts the TUI in a 90x30 window (narrow: the detail pane goes under the table).
    /// A shell around it writes its exit status to a file: tmux 3.3 sometimes marks a pane
    /// dead without ever reaping its process, so `pane_dead_status` cannot be relied on.
    pub fn start_tui(&self) {
        self.start_tui_with(&[]);
    }

    /// Starts the TUI with extra arguments.
    pub fn start_tui_with(&self, args: &[&str]) {
        self.start_tui_in((90, 30), &[], args);
    }

    /// Starts the TUI in a window of `size`, through `env` with `env_args` (`-u TMUX`,
    /// `TERM=…`) in front of it.
    pub fn start_tui_in(&self, size: (u16, u16), env_args: &[&str], args: &[&str]) {
        self.start_tui_session(TUI, size, env_args, args);
    }

    /// Another TUI, in tmux session `session` of the test server (its exit status in
    /// `<session>-status`); drive it with the `*_on` methods.
    pub fn start_another_tui(&self, session: &str) {
        self.start_tui_session(session, (90, 30), &[], &[]);
    }

    fn start_tui_session(&self, session: &str, size: (u16, u16), env_args: &[&str], args: &[&str]) {
        let cwd = self.path("projects");
        let status = self.path(&format!("{session}-status"));
        let _ = std::fs::remove_file(&status);
        let (width, height) = (size.0.to_string(), size.1.to_string());
        let mut command = vec![
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            &width,
            "-y",
            &height,
            "-c",
        ];
        let cwd = cwd.to_string_lossy();
        let status = status.to_string_lossy();
        command.push(&cwd);
        command.extend([
            "sh",
            "-c",
            "status=$1; shift; \"$@\"; echo $? > \"$status\"",
            "sh",
            &status,
            "env",
        ]);
        command.extend_from_slice(env_args);
        command.push(BIN);
        command.extend_from_slice(args);
        let out = self.tmux(&command);
        assert!(out.status.success(), "tmux new-session: {}", stderr(&out));
    }

    /// q ends the TUI, with status 0.
    pub fn quit(&self) {
        self.keys(&["q"]);
        assert_eq!(self.wait_for_exit(), 0, "the TUI's exit status");
    }

    /// Writes the deck's config.toml.
    pub fn write_config(&self, text: &str) {
        let dir = self.path("config/sandbox-deck");
        std::fs::create_dir_all(&dir).expect("creating the config dir");
        std::fs::write(dir.join("config.toml"), text).expect("writing the config");
    }

    /// The TUI's exit status, once it has ended.
    pub fn wait_for_exit(&self) -> i32 {
        self.wait_for_exit_on(TUI)
    }

    /// The exit status of the TUI of `session`, once it has ended.
    pub fn wait_for_exit_on(&self, session: &str) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.path(&format!("{session}-status"));
            let text = std::fs::read_to_string(status).unwrap_or_default();
            if let Ok(code) = text.trim().parse() {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "the TUI did not end; the screen:\n{}",
                self.screen_on(session)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The TUI process: the child of the pane's shell.
    pub fn tui_pid(&self) -> Option<i32> {
        let shell = self.pane("#{pane_pid}");
        std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    pub fn screen(&self) -> String {
        self.screen_on(TUI)
    }

    pub fn screen_on(&self, session: &str) -> String {
        let target = format!("={session}:");
        let out = self.tmux(&["capture-pane", "-p", "-t", &target]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        self.keys_on(TUI, keys);
    }

    pub fn keys_on(&self, session: &str, keys: &[&str]) {
        let target = format!("={session}:");
        let mut args = vec!["send-keys", "-t", &target];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {}", stderr(&out));
    }

    /// Raw bytes into the TUI's terminal, as a terminal would send them (mouse reports).
    pub fn send_bytes(&self, bytes: &[u8]) {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", "=tui:", "-H"];
        args.extend(hex.iter().map(String::as_str));
        let out = self.tmux(&args);
        assert!(out.status.success(), "send-keys -H: {}", stderr(&out));
    }

    pub fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", "=tui:", "-l", text]);
        assert!(
            out.status.success(),
            "send-keys -l {text}: {}",
            stderr(&out)
        );
    }

    /// Waits until `done` holds for the screen; fails showing the last screen otherwise.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for_on(TUI, what, done)
    }

    /// [`TuiWorld::wait_for`] on the TUI of `session`.
    pub fn wait_for_on(&self, session: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen_on(session);
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pane(&self, format: &str) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "=tui:", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn registered(&self) -> Vec<String> {
        let out = self.deck(&["--json", "list"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.as_array()
            .map(|records| {
                records
                    .iter()
                    .filter_map(|r| r["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for TuiWorld {
    /// Ends the TUI by its pid and the test tmux server through its socket; dropping the
    /// `World` then removes the sandboxes and ends the deck's tmux server and the rest.
    fn drop(&mut self) {
        if let Some(pid) = self.tui_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.tmux(&["kill-server"]);
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The table line of sandbox `name` (the name column follows the one-character state glyph).
pub fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|line| {
        let mut words = line.trim_start_matches('│').split_whitespace();
        words.next().is_some_and(|glyph| glyph.chars().count() == 1) && words.next() == Some(name)
    })
}

pub fn row_says(screen: &str, name: &str, state: &str) -> bool {
    row(screen, name).is_some_and(|line| line.contains(state))
}
