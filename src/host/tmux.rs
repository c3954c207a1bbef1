//! Our private tmux server (D4): its own socket under the runtime dir and its own config.
//! Targets are always exact (`=name`), because a bare name is a prefix match in tmux.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use super::placement::Placement;
use crate::error::{DeckError, IoContext, Result};

pub const CONFIG: &str = include_str!("../../assets/tmux.conf");

/// How many tmux processes this process has started (commands and control clients), for
/// tests and benchmarks that check an idle path starts none.
static SPAWNED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SPAWNED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many tmux processes this process has started so far.
pub fn spawned_processes() -> u64 {
    SPAWNED.load(Ordering::SeqCst)
}

/// How many tmux processes the calling thread has started so far (a test's own count,
/// whatever other tests in the same process do meanwhile).
pub fn spawned_by_this_thread() -> u64 {
    SPAWNED_HERE.with(std::cell::Cell::get)
}

#[derive(Debug, Clone)]
pub struct Tmux {
    binary: PathBuf,
    socket: PathBuf,
    conf: PathBuf,
}

/// One pane of a session, as `list-panes` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pane {
    pub session: String,
    pub pid: u32,
    /// tmux says the pane's process has ended (its pty closed).
    pub closed: bool,
    /// The exit status, or 128 + signal number when the process was killed; tmux learns it
    /// only once it has reaped the process, which can come later than `closed`.
    pub exit_status: Option<i32>,
}

/// tmux's words for "nothing listens at that socket" (as opposed to any other failure).
fn no_server(stderr: &str) -> bool {
    stderr.contains("no server running") || stderr.contains("error connecting")
}

/// The command that lists every pane of a server, as [`parse_survey`] reads its output;
/// spawned or sent over a control connection. tmux leaves the watch session's panes out
/// itself (`-f`, tmux 3.2): each is a sandbox's pane linked there, listed once more.
pub const SURVEY_ARGS: [&str; 6] = [
    "list-panes",
    "-a",
    "-f",
    "#{!=:#{session_name},_deck_watch}",
    "-F",
    "#{session_name}\t#{pane_pid}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}",
];

/// The panes in the output of [`SURVEY_ARGS`], without the watch session's (should a tmux
/// list them all the same): every pane of a watched server is in its own session and in
/// the watch session.
pub fn parse_survey(out: &[u8]) -> Vec<Pane> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(parse_pane)
        .filter(|p| p.session != WATCH_SESSION)
        .collect()
}

/// The session on our server that a watching engine keeps for its one control client
/// (issue 15): every other session's windows are linked into it (`link-window`), because
/// tmux sends a control client `%output` only for the panes of its own session. A sandbox
/// name cannot start with `_`, so no sandbox is ever called this.
pub const WATCH_SESSION: &str = "_deck_watch";

/// The window option that marks the watch session's own window (a dead pane that prints
/// nothing), so it is told apart from a sandbox window that outlived its session there.
pub const WATCH_MARK: &str = "@deck_watch";

/// What a watch session is tended from: every pane with its session, window, whether the
/// window is linked into more than one session, and the watch session's mark.
pub const WATCH_LIST_ARGS: [&str; 4] = [
    "list-panes",
    "-a",
    "-F",
    "#{session_name}\t#{window_id}\t#{pane_id}\t#{window_linked_sessions}\t#{@deck_watch}",
];

/// What tending the watch session does, from the output of [`WATCH_LIST_ARGS`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    /// Windows (`@id`) of other sessions not yet linked into the watch session.
    pub link: Vec<String>,
    /// Windows left only in the watch session: their own session is gone, so they go too
    /// (as they would have with it, their pane's process hung up).
    pub kill: Vec<String>,
    /// Every pane of the other sessions (`%id` without the `%`) and its session.
    pub panes: std::collections::HashMap<u32, String>,
    /// Whether the watch session exists.
    pub exists: bool,
    /// No other session is left: the watch session goes too, so the server can exit.
    pub idle: bool,
}

/// Reads the output of [`WATCH_LIST_ARGS`].
pub fn plan_watch(out: &[u8]) -> WatchPlan {
    let mut plan = WatchPlan {
        idle: true,
        ..WatchPlan::default()
    };
    let text = String::from_utf8_lossy(out);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let watched: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| r.first() == Some(&WATCH_SESSION))
        .filter_map(|r| r.get(1).copied())
        .collect();
    for row in &rows {
        let [session, window, pane, linked, mark, ..] = row[..] else {
            continue;
        };
        if session == WATCH_SESSION {
            plan.exists = true;
            let orphan = linked == "1" && mark.is_empty();
            if orphan && !plan.kill.iter().any(|w| w == window) {
                plan.kill.push(window.to_owned());
            }
            continue;
        }
        plan.idle = false;
        if let Some(pane) = pane.strip_prefix('%').and_then(|p| p.parse().ok()) {
            plan.panes.insert(pane, session.to_owned());
        }
        if !watched.contains(window) && !plan.link.iter().any(|w| w == window) {
            plan.link.push(window.to_owned());
        }
    }
    plan
}

/// What one server said when asked for its panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Survey {
    /// It answered: these are all its panes (none when it has no sessions).
    Answered(Vec<Pane>),
    /// It did not answer (no server at the socket, or the socket cannot be reached): why.
    /// This says nothing about whether its sessions still run.
    Unreachable(String),
}

pub struct NewSession<'a> {
    pub name: &'a str,
    pub width: u16,
    pub height: u16,
    pub cwd: &'a Path,
    /// Variables set for the pane on top of the server's (never secrets: tmux keeps them).
    pub env: &'a [(&'a str, &'a OsStr)],
    /// The pane's command as argv; tmux runs more than one argument without a shell.
    pub argv: &'a [&'a OsStr],
}

impl Tmux {
    pub fn new(binary: PathBuf, socket: PathBuf, conf: PathBuf) -> Tmux {
        Tmux {
            binary,
            socket,
            conf,
        }
    }

    /// The same tmux, talking to the server at another socket.
    pub fn at(&self, socket: PathBuf, conf: PathBuf) -> Tmux {
        Tmux {
            binary: self.binary.clone(),
            socket,
            conf,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A tmux command, run where `placement` says: a command that may start the server
    /// runs placed, since the server it forks stays in the same scope (see
    /// [`super::placement`]); every other command runs directly.
    fn command(&self, placement: &Placement, args: &[&OsStr]) -> Command {
        SPAWNED.fetch_add(1, Ordering::SeqCst);
        SPAWNED_HERE.with(|n| n.set(n.get() + 1));
        let mut argv: Vec<&OsStr> = vec![
            "-S".as_ref(),
            self.socket.as_os_str(),
            "-f".as_ref(),
            self.conf.as_os_str(),
        ];
        argv.extend_from_slice(args);
        // The server inherits this environment: tokens and agent sockets stay out of it.
        let mut command =
            placement.command("tmux", &super::placement::unique_id(), &self.binary, &argv);
        command.stdin(Stdio::null());
        command
    }

    fn run(&self, what: &str, args: &[&OsStr]) -> Result<Output> {
        self.run_placed(&Placement::Direct, what, args)
    }

    fn run_placed(&self, placement: &Placement, what: &str, args: &[&OsStr]) -> Result<Output> {
        self.command(placement, args)
            .output()
            .context_io(|| format!("running tmux {what}"))
    }

    fn run_checked(&self, what: &str, args: &[&OsStr]) -> Result<Output> {
        self.check(what, self.run(what, args)?)
    }

    fn check(&self, what: &str, out: Output) -> Result<Output> {
        if out.status.success() {
            Ok(out)
        } else {
            Err(DeckError::tmux(
                format!("tmux {what}"),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }

    /// Writes our config where `-f` points, so a server started now loads it.
    fn write_config(&self) -> Result<()> {
        std::fs::write(&self.conf, CONFIG).context_io(|| format!("writing {}", self.conf.display()))
    }

    pub fn new_session(&self, spec: &NewSession<'_>) -> Result<()> {
        self.write_config()?;
        let width = spec.width.to_string();
        let height = spec.height.to_string();
        let env: Vec<std::ffi::OsString> = spec
            .env
            .iter()
            .map(|(k, v)| {
                let mut kv = std::ffi::OsString::from(k);
                kv.push("=");
                kv.push(v);
                kv
            })
            .collect();
        let mut args: Vec<&OsStr> = vec![
            "new-session".as_ref(),
            "-d".as_ref(),
            "-s".as_ref(),
            spec.name.as_ref(),
            // The window is named after the sandbox for good: `automatic-rename` is off
            // (see assets/tmux.conf), and -n turns it off for this window anyway.
            "-n".as_ref(),
            spec.name.as_ref(),
            "-x".as_ref(),
            width.as_ref(),
            "-y".as_ref(),
            height.as_ref(),
            "-c".as_ref(),
            spec.cwd.as_os_str(),
        ];
        for kv in &env {
            args.push("-e".as_ref());
            args.push(kv);
        }
        args.push("--".as_ref());
        args.extend_from_slice(spec.argv);
        let args: Vec<std::ffi::OsString> = args.iter().map(|a| literal(a)).collect();
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        // Only the command that starts the server needs placing; with a server up, the new
        // pane is its child and in its scope anyway.
        let placement = match self.survey() {
            Survey::Answered(_) => &Placement::Direct,
            Survey::Unreachable(_) => Placement::current(),
        };
        let out = self.run_placed(placement, "new-session", &args)?;
        self.check("new-session", out).map(drop)
    }

    /// Every pane on our server; no server running means no panes.
    pub fn panes(&self) -> Result<Vec<Pane>> {
        match self.survey() {
            Survey::Answered(panes) => Ok(panes),
            Survey::Unreachable(why) if no_server(&why) => Ok(Vec::new()),
            Survey::Unreachable(why) => Err(DeckError::tmux("tmux list-panes", why)),
        }
    }

    /// Every pane on our server, or why the server did not answer.
    pub fn survey(&self) -> Survey {
        let args = SURVEY_ARGS.map(OsStr::new);
        let out = self.run("list-panes", &args);
        let out = match out {
            Ok(out) => out,
            Err(e) => return Survey::Unreachable(e.to_string()),
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Survey::Unreachable(format!(
                "its tmux server ({}) did not answer: {}",
                self.socket.display(),
                err.trim()
            ));
        }
        Survey::Answered(parse_survey(&out.stdout))
    }

    pub fn pane(&self, session: &str) -> Result<Option<Pane>> {
        Ok(self.panes()?.into_iter().find(|p| p.session == session))
    }

    /// Kills the session and its windows; a session that is already gone is not an error.
    ///
    /// `kill-session` alone would leave a window that is also linked into the watch session
    /// (see [`WATCH_SESSION`]) alive there, its pane still running: so every window of the
    /// session is killed instead (which kills it wherever it is linked, and the session with
    /// its last window), and then the watch session is tended (see [`Tmux::tend_watch`]).
    pub fn kill_session(&self, session: &str) -> Result<()> {
        let target = format!("={session}:");
        // One tmux command list: the session's other windows, then its current one.
        let args = [
            "kill-window",
            "-a",
            "-t",
            &target,
            ";",
            "kill-window",
            "-t",
            &target,
        ];
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.run("kill-window", &args)?;
        let err = String::from_utf8_lossy(&out.stderr);
        if no_server(&err) {
            return Ok(());
        }
        if !out.status.success() && !err.contains("can't find session") {
            return Err(DeckError::tmux("tmux kill-window", err.trim().to_string()));
        }
        self.tend_watch();
        Ok(())
    }

    /// Ends what is left in the watch session of sessions that are gone, and the watch
    /// session itself when no other session is left (so the server exits as it did before
    /// there was one). Best effort: a failure is logged. Links nothing: that is the watching
    /// engine's business.
    pub fn tend_watch(&self) {
        let args = WATCH_LIST_ARGS.map(OsStr::new);
        let Ok(out) = self.run("list-panes", &args) else {
            return;
        };
        let plan = plan_watch(&out.stdout);
        let mut commands: Vec<Vec<&str>> = plan
            .kill
            .iter()
            .map(|w| vec!["kill-window", "-t", w.as_str()])
            .collect();
        let watch = format!("={WATCH_SESSION}");
        if plan.exists && plan.idle {
            commands.push(vec!["kill-session", "-t", &watch]);
        }
        for command in commands {
            let args: Vec<&OsStr> = command.iter().map(OsStr::new).collect();
            if let Err(e) = self.run_checked(command[0], &args) {
                tracing::debug!("tending the watch session: {e}");
            }
        }
    }

    /// The session's pane as text: the visible screen plus `history` lines of scrollback,
    /// with ANSI colour escapes when `colours` (the live preview) or plain (pattern matching).
    pub fn capture(&self, session: &str, history: usize, colours: bool) -> Result<String> {
        let target = format!("={session}:");
        let start = format!("-{history}");
        let mut args: Vec<&OsStr> = vec!["capture-pane".as_ref(), "-p".as_ref()];
        if colours {
            args.push("-e".as_ref());
        }
        let rest: [&OsStr; 4] = [
            "-t".as_ref(),
            target.as_ref(),
            "-S".as_ref(),
            start.as_ref(),
        ];
        args.extend(rest);
        let out = self.run_checked("capture-pane", &args)?;
        let text = String::from_utf8_lossy(&out.stdout);
        // Plain text is for reading what the pane says: the blank rows below it are noise.
        Ok(if colours {
            text.into_owned()
        } else {
            text.trim_end().to_owned()
        })
    }

    /// The plain visible text of the pane of each of `sessions`, read by one tmux process
    /// (a marker line, then `capture-pane`, for each): a first look at many panes costs one
    /// process, not one each. A pane that could not be read is None.
    pub fn capture_many(&self, sessions: &[&str]) -> Vec<Option<String>> {
        let mut texts = vec![None; sessions.len()];
        if sessions.is_empty() {
            return texts;
        }
        // A marker no pane can print by chance: random each call.
        let token = format!("sdk-{:016x}", getrandom::u64().unwrap_or(0x5d5d_0001));
        let mut words: Vec<String> = Vec::with_capacity(sessions.len() * 9);
        for (i, session) in sessions.iter().enumerate() {
            words.extend([
                "display-message".into(),
                "-p".into(),
                format!("{token}:{i}"),
                ";".into(),
                "capture-pane".into(),
                "-p".into(),
                "-t".into(),
                format!("={session}:"),
                ";".into(),
            ]);
        }
        words.pop();
        let args: Vec<&OsStr> = words.iter().map(OsStr::new).collect();
        // Not checked: a session that ended fails its capture, the others are read.
        let Ok(out) = self.run("capture-pane", &args) else {
            return texts;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut current: Option<(usize, String)> = None;
        let finish = |current: Option<(usize, String)>, texts: &mut Vec<Option<String>>| {
            if let Some((i, text)) = current {
                texts[i] = Some(text.trim_end().to_owned());
            }
        };
        for line in stdout.split_inclusive('\n') {
            let bare = line.trim_end_matches('\n');
            let marker = bare
                .strip_prefix(token.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| *i < sessions.len());
            match (marker, current.as_mut()) {
                (Some(i), _) => {
                    finish(current.take(), &mut texts);
                    current = Some((i, String::new()));
                }
                (None, Some((_, text))) => text.push_str(line),
                (None, None) => {}
            }
        }
        finish(current, &mut texts);
        texts
    }

    /// A control-mode client (`tmux -C`) attached to `session`, for
    /// [`super::tmux_control::Control`]: it never sizes the session's windows.
    pub(super) fn control_command(&self, session: &str) -> Command {
        let target = format!("={session}");
        let args = ["-C", "attach-session", "-f", "ignore-size", "-t", &target];
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        // Attaching never starts a server: no placement needed.
        self.command(&Placement::Direct, &args)
    }

    /// The command that puts the user's terminal on the session: `switch-client` when we run
    /// inside our own server already, `attach` otherwise (nested inside another tmux if need be).
    pub fn attach_command(&self, session: &str) -> Command {
        let target = format!("={session}");
        let mut command = Command::new(&self.binary);
        command.arg("-S").arg(&self.socket);
        if self.inside_our_server() {
            command.args(["switch-client", "-t", &target]);
        } else {
            // tmux refuses to nest unless TMUX is unset; nesting in the user's own tmux is intended.
            command.env_remove("TMUX");
            command.args(["attach-session", "-t", &target]);
        }
        command
    }

    fn inside_our_server(&self) -> bool {
        // $TMUX is "<socket path>,<server pid>,<session index>".
        std::env::var("TMUX")
            .ok()
            .and_then(|v| v.split(',').next().map(PathBuf::from))
            .is_some_and(|socket| socket == self.socket)
    }
}

/// tmux splits its command line at any argument that ends in `;`; `\\;` keeps it literal.
fn literal(arg: &OsStr) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = arg.as_bytes();
    match bytes.split_last() {
        Some((b';', head)) => {
            let mut escaped = head.to_vec();
            escaped.extend_from_slice(b"\\;");
            std::ffi::OsString::from_vec(escaped)
        }
        _ => arg.to_os_string(),
    }
}

fn parse_pane(line: &str) -> Option<Pane> {
    let mut fields = line.split('\t');
    let session = fields.next()?.to_string();
    let pid = fields.next()?.parse().ok()?;
    let closed = fields.next()? == "1";
    let status = fields.next().and_then(|s| s.parse::<i32>().ok());
    let signal = fields.next().and_then(|s| s.parse::<i32>().ok());
    // tmux marks a pane dead when its pty closes, which can come before it has reaped the
    // process; only a known status means the backend has really ended.
    let exit_status = if closed {
        status.or(signal.map(|s| 128 + s))
    } else {
        None
    };
    Some(Pane {
        session,
        pid,
        closed,
        exit_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_semicolon_cannot_split_the_tmux_command() {
        assert_eq!(literal(OsStr::new("/p/x;")), "/p/x\\;");
        assert_eq!(literal(OsStr::new("/p/x\\;")), "/p/x\\\\;");
        assert_eq!(literal(OsStr::new("a;b")), "a;b");
        assert_eq!(literal(OsStr::new("")), "");
    }

    #[test]
    fn a_command_that_may_start_the_server_runs_placed_and_others_directly() {
        let tmux = Tmux::new(
            "/bin/tmux".into(),
            "/run/t.sock".into(),
            "/run/t.conf".into(),
        );
        let argv = |command: &Command| -> Vec<String> {
            std::iter::once(command.get_program())
                .chain(command.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let ours = [
            "/bin/tmux",
            "-S",
            "/run/t.sock",
            "-f",
            "/run/t.conf",
            "new-session",
        ];
        let direct = tmux.command(&Placement::Direct, &["new-session".as_ref()]);
        assert_eq!(argv(&direct), ours);
        let scope = Placement::UserScope {
            systemd_run: "/usr/bin/systemd-run".into(),
        };
        let placed = argv(&tmux.command(&scope, &["new-session".as_ref()]));
        assert_eq!(
            &placed[..4],
            ["/usr/bin/systemd-run", "--user", "--scope", "--quiet"]
        );
        assert!(
            placed[4].starts_with("--unit=sandbox-deck-tmux-"),
            "{placed:?}"
        );
        assert_eq!(&placed[5..7], ["--collect", "--"]);
        assert_eq!(&placed[7..], ours);
    }

    #[test]
    fn the_watch_session_is_tended_from_one_listing() {
        let out = b"_deck_watch\t@9\t%9\t1\t1\n\
            _deck_watch\t@0\t%0\t2\t\n\
            _deck_watch\t@3\t%3\t1\t\n\
            _deck_watch\t@3\t%4\t1\t\n\
            api\t@0\t%0\t2\t\n\
            web\t@1\t%1\t1\t\n\
            web\t@1\t%2\t1\t\n";
        let plan = plan_watch(out);
        assert!(plan.exists && !plan.idle);
        assert_eq!(
            plan.link,
            ["@1"],
            "web's window is not linked yet, api's is"
        );
        assert_eq!(
            plan.kill,
            ["@3"],
            "left there alone, once; its own window stays"
        );
        let mut panes: Vec<(u32, String)> = plan.panes.into_iter().collect();
        panes.sort();
        assert_eq!(
            panes,
            [(0, "api".into()), (1, "web".into()), (2, "web".into())],
            "the watch session's panes are nobody's"
        );
        let alone = plan_watch(b"_deck_watch\t@9\t%9\t1\t1\n_deck_watch\t@3\t%3\t1\t\n");
        assert!(alone.exists && alone.idle);
        assert_eq!(alone.kill, ["@3"]);
        let none = plan_watch(b"api\t@0\t%0\t1\t\n");
        assert!(!none.exists && !none.idle);
        assert_eq!(none.link, ["@0"]);
    }

    #[test]
    fn the_survey_leaves_out_the_watch_session() {
        assert_eq!(
            SURVEY_ARGS[3],
            format!("#{{!=:#{{session_name}},{WATCH_SESSION}}}")
        );
        let panes = parse_survey(b"_deck_watch\t1\t1\t0\t\napi\t1\t0\t\t\n");
        assert_eq!(panes.len(), 1);
        assert_eq!(panes[0].session, "api");
    }

    #[test]
    fn pane_lines_parse() {
        assert_eq!(
            parse_pane("api\t123\t0\t\t"),
            Some(Pane {
                session: "api".into(),
                pid: 123,
                closed: false,
                exit_status: None
            })
        );
        assert_eq!(parse_pane("api\t123\t1\t7\t").unwrap().exit_status, Some(7));
        assert_eq!(
            parse_pane("api\t123\t1\t\t9").unwrap().exit_status,
            Some(137)
        );
        assert!(
            parse_pane("api\t123\t1\t\t").unwrap().exit_status.is_none(),
            "no status yet: not ended"
        );
        assert_eq!(parse_pane("garbage"), None);
    }
}
