//! Agent state (D9): [`assess`] is the one function that says whether an agent is starting,
//! working, waiting for its user, idle, exited or dead. The TUI, the CLI and the API all call
//! it (through [`Deck::agent_status`] and [`StatusTracker`]).
//!
//! Signals, in order of trust:
//! 1. Claude Code hooks. Each sandbox gets a generated settings file passed with
//!    `claude --settings <file>` (the user's own settings are never edited). Its hooks append
//!    `{"event":…,"ts":…}` lines to `status/events.jsonl` in the sandbox's state dir, which is
//!    bound read-write into the sandbox; the host reads the last line.
//! 2. The pane text, with patterns from `assets/status-patterns.toml`, matched everywhere but
//!    in the prompt box (what the user types there never counts).
//! 3. How recently the project's transcript was written.
//!
//! Everything from inside (hook lines, pane text, the transcript) is advisory: the sandbox
//! writes it and can write anything. It can make a running agent read starting, working,
//! waiting or idle, never exited or dead: those come only from the host's own view of the
//! process (the registry and tmux).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::Deck;
use crate::config::NotifyConfig;
use crate::error::{DeckError, IoContext, Result};
use crate::host::fs::make_private_dir;
use crate::paths::STATUS_EVENTS;
use crate::sandbox::{SandboxId, SandboxRecord, SandboxState};

pub const PATTERNS: &str = include_str!("../../assets/status-patterns.toml");

/// The hook events the generated settings install.
pub const HOOK_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Notification",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
];

/// A sandbox that has been running for less than this, with no signal yet, is starting.
pub(crate) const STARTUP_MS: i64 = 10_000;
/// How much of the end of the events file is read.
const EVENTS_TAIL: u64 = 8192;
/// Past this size the host trims the events file to its last line when it reads it, so
/// the file stays small however much a sandbox appends between two reads.
pub const EVENTS_CAP: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Starting,
    Working,
    /// Needs the user: a permission prompt or a question.
    Waiting,
    /// The turn is finished.
    Idle,
    Exited,
    Dead,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Working => "working",
            AgentState::Waiting => "waiting",
            AgentState::Idle => "idle",
            AgentState::Exited => "exited",
            AgentState::Dead => "dead",
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signal decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Registry,
    Hook,
    Pane,
    Transcript,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub state: AgentState,
    pub reason: String,
    pub source: Source,
}

impl Assessment {
    pub fn new(state: AgentState, source: Source, reason: impl Into<String>) -> Self {
        Assessment {
            state,
            reason: reason.into(),
            source,
        }
    }
}

/// The last event a hook wrote.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookEvent {
    pub event: String,
    /// Unix seconds from inside the sandbox (`date +%s`), when it had `date`.
    #[serde(default)]
    pub ts: Option<i64>,
    /// The hook's input, kept for `Notification` (its message says what it wants).
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// When the host saw it written (the file's mtime), unix milliseconds.
    #[serde(skip)]
    pub seen_ms: i64,
}

impl HookEvent {
    fn message(&self) -> &str {
        self.input
            .as_ref()
            .and_then(|i| i.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("")
    }

    /// What this event says about the agent.
    pub fn state(&self) -> Option<(AgentState, String)> {
        let s = match self.event.as_str() {
            "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "SubagentStop" | "PreCompact" => {
                (AgentState::Working, format!("hook {}", self.event))
            }
            "SessionStart" | "Stop" => (AgentState::Idle, format!("hook {}", self.event)),
            // Advisory like every hook line: only the host's view of the process says exited.
            "SessionEnd" => (
                AgentState::Idle,
                "hook SessionEnd (the process still runs)".into(),
            ),
            "Notification" => {
                let message = self.message();
                let lower = message.to_lowercase();
                let state = if lower.contains("waiting for your input") {
                    AgentState::Idle
                } else {
                    AgentState::Waiting
                };
                let reason = if message.is_empty() {
                    "it asked for attention".to_owned()
                } else {
                    message.to_owned()
                };
                (state, reason)
            }
            _ => return None,
        };
        Some(s)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternFile {
    prompt: PromptSpec,
    spinner: SpinnerSpec,
    pattern: Vec<Pattern>,
}

/// Claude's spinner line while it works: a glyph, a verb ending in an ellipsis, maybe a
/// timer (`✶ Tempering…`, `✻ Spinning… (45s)`). Its status line says "esc to interrupt"
/// too, but not while the user types: then the spinner is the only sign of work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpinnerSpec {
    pub glyphs: Vec<String>,
    pub verb_ends_with: String,
}

impl SpinnerSpec {
    /// The spinner starts at the first column; Claude's answers are indented under their
    /// `●`, so a list item "  * Loading…" in an answer is not it.
    fn is_spinner(&self, line: &str) -> bool {
        self.glyphs.iter().any(|glyph| {
            line.strip_prefix(glyph.as_str())
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|verb| {
                    verb.len() > self.verb_ends_with.len() && verb.ends_with(&self.verb_ends_with)
                })
        })
    }
}

/// How a spinner match is named in a reason.
pub const SPINNER: &str = "a spinner line";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    pub input_prefixes: Vec<String>,
    pub box_top_prefixes: Vec<String>,
    pub box_bottom_prefixes: Vec<String>,
    /// The input line is this close to the bottom of the pane; a line further up that looks
    /// like one (a quoted "> " in the output) is not the prompt box.
    pub within_last_lines: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    pub state: AgentState,
    pub text: String,
}

/// The pane patterns (`assets/status-patterns.toml`).
#[derive(Debug, Clone)]
pub struct Patterns {
    prompt: PromptSpec,
    spinner: SpinnerSpec,
    patterns: Vec<Pattern>,
}

/// Whether `line` starts, after spaces, with one of `prefixes`.
fn starts_with_any(line: &str, prefixes: &[String]) -> bool {
    let line = line.trim_start_matches(' ');
    prefixes.iter().any(|p| line.starts_with(p.as_str()))
}

impl Patterns {
    pub fn builtin() -> Patterns {
        Patterns::parse(PATTERNS).expect("the shipped status patterns are valid")
    }

    pub fn parse(text: &str) -> Result<Patterns> {
        let file: PatternFile = toml::from_str(text).map_err(|e| DeckError::Config {
            path: "status-patterns.toml".into(),
            message: e.message().to_owned(),
        })?;
        let mut patterns = file.pattern;
        for p in &mut patterns {
            p.text = p.text.to_lowercase();
        }
        Ok(Patterns {
            prompt: file.prompt,
            spinner: file.spinner,
            patterns,
        })
    }

    /// The pattern texts, lowercased.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.text.as_str())
    }

    /// What a spinner line's verb ends with.
    pub fn spinner_ending(&self) -> &str {
        &self.spinner.verb_ends_with
    }

    /// Where the prompt box is, as a range of line indexes (top border to bottom border).
    /// Its input line sits right under its top border: a menu's `❯ 1. Yes` or a quoted
    /// `> ` in the output has text above it, not a border.
    fn prompt_box(&self, lines: &[&str]) -> Option<std::ops::Range<usize>> {
        let spec = &self.prompt;
        let near_bottom = lines.len().saturating_sub(spec.within_last_lines).max(1);
        let input = (near_bottom..lines.len()).rev().find(|&i| {
            starts_with_any(lines[i], &spec.input_prefixes)
                && starts_with_any(lines[i - 1], &spec.box_top_prefixes)
        })?;
        // The input can wrap over several lines; the box ends at its bottom border. Without
        // one it is no box: a menu whose last choice is selected (`❯ 4. …` under a rule).
        let bottom = (input + 1..lines.len())
            .find(|&i| starts_with_any(lines[i], &spec.box_bottom_prefixes))?;
        Some(input - 1..bottom + 1)
    }

    /// The pane's lines without the prompt box: the output above it and Claude's status
    /// lines under it (the whole pane when a dialog has replaced the box). Blank rows at the
    /// bottom are dropped first, so a pane that is not full still has its box "near the bottom".
    pub fn outside_prompt_box<'a>(&self, pane: &'a str) -> Vec<&'a str> {
        let mut lines: Vec<&str> = pane.trim_end().lines().collect();
        if let Some(prompt_box) = self.prompt_box(&lines) {
            lines.drain(prompt_box);
        }
        lines
    }

    /// The state the pane text shows, with the pattern that matched: the text patterns in
    /// their order, then the spinner (which only ever says working).
    pub fn match_pane(&self, pane: &str) -> Option<(AgentState, &str)> {
        let lines = self.outside_prompt_box(pane);
        let region = lines.join("\n").to_lowercase();
        self.patterns
            .iter()
            .find(|p| region.contains(&p.text))
            .map(|p| (p.state, p.text.as_str()))
            .or_else(|| {
                lines
                    .iter()
                    .any(|l| self.spinner.is_spinner(l))
                    .then_some((AgentState::Working, SPINNER))
            })
    }
}

/// Everything [`assess`] looks at, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Signals<'a> {
    pub sandbox: SandboxState,
    pub sandbox_reason: Option<&'a str>,
    pub exit_status: Option<i32>,
    /// Milliseconds since the sandbox was started.
    pub running_for_ms: Option<i64>,
    /// The last hook event and how old it is (milliseconds).
    pub hook: Option<(&'a HookEvent, i64)>,
    pub pane: Option<&'a str>,
    /// Milliseconds since the project's transcript was last written.
    pub transcript_age_ms: Option<i64>,
    /// Younger than this counts as fresh.
    pub fresh_ms: i64,
}

impl<'a> Signals<'a> {
    /// The signals of `record` at `now` (unix ms), from what the caller read: its last hook
    /// event, its pane's plain text and when its newest transcript was written.
    pub fn of(
        record: &'a SandboxRecord,
        now: i64,
        event: Option<&'a HookEvent>,
        pane: Option<&'a str>,
        transcript_ms: Option<i64>,
        fresh_ms: i64,
    ) -> Signals<'a> {
        Signals {
            sandbox: record.state,
            sandbox_reason: record.reason.as_deref(),
            exit_status: record.exit_status,
            running_for_ms: record.started_at.map(|t| now - t.timestamp_millis()),
            hook: event.map(|e| (e, now - e.seen_ms)),
            pane,
            transcript_age_ms: transcript_ms.map(|t| now - t),
            fresh_ms,
        }
    }
}

/// The agent's state from one sample of its signals. Pure. While the sandbox runs, what
/// its inside says can never make it read exited or dead (see the module doc).
pub fn assess(s: &Signals<'_>, patterns: &Patterns) -> Assessment {
    let a = assess_signals(s, patterns);
    let from_inside = matches!(a.source, Source::Hook | Source::Pane | Source::Transcript);
    if s.sandbox == SandboxState::Running
        && from_inside
        && matches!(a.state, AgentState::Exited | AgentState::Dead)
    {
        return Assessment::new(
            AgentState::Idle,
            a.source,
            format!("{} (its process still runs)", a.reason),
        );
    }
    a
}

fn assess_signals(s: &Signals<'_>, patterns: &Patterns) -> Assessment {
    use AgentState::*;
    match s.sandbox {
        SandboxState::Starting => return Assessment::new(Starting, Source::Registry, "starting"),
        SandboxState::Stopped => return Assessment::new(Exited, Source::Registry, "stopped"),
        SandboxState::Exited => {
            let reason = s.sandbox_reason.map(str::to_owned).unwrap_or_else(|| {
                s.exit_status
                    .map_or("exited".into(), |c| format!("exited with status {c}"))
            });
            return Assessment::new(Exited, Source::Registry, reason);
        }
        SandboxState::Dead => {
            let reason = s.sandbox_reason.unwrap_or("dead");
            return Assessment::new(Dead, Source::Registry, reason);
        }
        SandboxState::Running => {}
    }
    let pane = s.pane.and_then(|p| patterns.match_pane(p));
    let fresh = s.transcript_age_ms.is_some_and(|a| a < s.fresh_ms);
    let pane_says = |state| pane.is_some_and(|(st, _)| st == state);
    let from_pane = |(state, text): (AgentState, &str)| {
        Assessment::new(state, Source::Pane, format!("the screen shows {text:?}"))
    };
    if let Some((event, age_ms)) = s.hook
        && let Some((state, reason)) = event.state()
    {
        let hook = Assessment::new(state, Source::Hook, reason);
        return match state {
            // A dialog on screen outranks an older hook (a question has no hook of its own).
            Working | Idle if pane_says(Waiting) => from_pane(pane.expect("matched")),
            Idle if pane_says(Working) => from_pane(pane.expect("matched")),
            // No Stop hook runs when the user interrupts: a working hook that is no longer
            // backed by the screen or the transcript has ended.
            Working if age_ms > s.fresh_ms && s.pane.is_some() && !pane_says(Working) && !fresh => {
                Assessment::new(Idle, Source::Pane, "no sign of work since the last hook")
            }
            Waiting if pane_says(Working) => from_pane(pane.expect("matched")),
            _ => hook,
        };
    }
    if let Some(found) = pane {
        return from_pane(found);
    }
    if fresh {
        return Assessment::new(
            Working,
            Source::Transcript,
            "its transcript was just written",
        );
    }
    if s.running_for_ms.is_some_and(|ms| ms < STARTUP_MS) {
        return Assessment::new(Starting, Source::None, "no signal yet");
    }
    Assessment::new(Idle, Source::None, "no sign of activity")
}

/// Debounces one sandbox's readings: working → idle needs two idle readings at least
/// `min_ms` apart; every other change shows at once.
#[derive(Debug, Clone)]
pub struct Debouncer {
    shown: Option<Assessment>,
    idle_since_ms: Option<i64>,
    min_ms: i64,
}

impl Debouncer {
    pub fn new(min_ms: u64) -> Debouncer {
        Debouncer {
            shown: None,
            idle_since_ms: None,
            min_ms: min_ms as i64,
        }
    }

    pub fn update(&mut self, reading: Assessment, now_ms: i64) -> Assessment {
        let holding = self
            .shown
            .as_ref()
            .is_some_and(|s| s.state == AgentState::Working)
            && reading.state == AgentState::Idle;
        if holding {
            match self.idle_since_ms {
                None => {
                    self.idle_since_ms = Some(now_ms);
                    return self.shown.clone().expect("holding implies shown");
                }
                Some(since) if now_ms - since < self.min_ms => {
                    return self.shown.clone().expect("holding implies shown");
                }
                Some(_) => {}
            }
        }
        self.idle_since_ms = None;
        self.shown = Some(reading.clone());
        reading
    }
}

/// Whether moving from `before` to `after` deserves the user's attention.
pub fn should_notify(before: Option<AgentState>, after: AgentState) -> bool {
    matches!(
        after,
        AgentState::Waiting | AgentState::Exited | AgentState::Dead
    ) && before != Some(after)
}

/// What a notify command gets on top of [`crate::host::HOST_ENV`]: where the desktop is.
const NOTIFY_ENV: &[&str] = &[
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "TERM",
];

/// The configured notification command for a change, or None when none is configured.
/// Sandbox data goes only into the environment, never into the argv or a shell string.
pub fn notify_command(
    config: &NotifyConfig,
    record: &SandboxRecord,
    assessment: &Assessment,
) -> Option<Command> {
    notice_command(
        config,
        record,
        assessment.state.as_str(),
        &assessment.reason,
    )
}

/// The notify command for any notice: `state` and `reason` as its environment says them.
fn notice_command(
    config: &NotifyConfig,
    record: &SandboxRecord,
    state: &str,
    reason: &str,
) -> Option<Command> {
    let (program, args) = config.command.split_first()?;
    let mut command = Command::new(program);
    // A desktop notifier needs to find the desktop; nothing else of the caller's.
    crate::host::allowlisted_env(&mut command, NOTIFY_ENV);
    command
        .args(args)
        .env("SANDBOX_NAME", record.name.as_str())
        .env("SANDBOX_STATE", state)
        .env("SANDBOX_REASON", reason)
        .env("SANDBOX_PROJECT", record.project_dir.as_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Some(command)
}

/// Runs the notification command (if any) without waiting for it. The caller reaps it.
pub fn notify(
    config: &NotifyConfig,
    record: &SandboxRecord,
    assessment: &Assessment,
) -> Result<Option<Child>> {
    let Some(mut command) = notify_command(config, record, assessment) else {
        return Ok(None);
    };
    command
        .spawn()
        .map(Some)
        .context_io(|| format!("running notify.command {:?}", config.command))
}

/// Runs the notification command for a connection of `record` held for an answer
/// (`SANDBOX_STATE=egress-held`, the reason naming `host:port`). The caller reaps it.
pub fn notify_held(
    config: &NotifyConfig,
    record: &SandboxRecord,
    held: &crate::egress::held::Held,
) -> Result<Option<Child>> {
    let reason = format!(
        "{} waits for an answer (sandbox-deck net {} allow|deny {})",
        held.target(),
        record.name,
        held.target()
    );
    let Some(mut command) = notice_command(config, record, "egress-held", &reason) else {
        return Ok(None);
    };
    command
        .spawn()
        .map(Some)
        .context_io(|| format!("running notify.command {:?}", config.command))
}

/// The shell command a hook runs inside the sandbox. It needs only `sh` and `printf`
/// (`date` and `tr` when present): one `printf` appends one line, so concurrent hooks do
/// not interleave.
pub fn hook_command(event: &str, events_file: &Path) -> String {
    let file = crate::format::shell_quote(&events_file.to_string_lossy());
    let ts = r#""$(date +%s 2>/dev/null || echo null)""#;
    if event == "Notification" {
        format!(
            r#"line=$(printf '{{"event":"Notification","ts":%s,"input":' {ts}; tr -d '\n\r' 2>/dev/null; printf '}}'); printf '%s\n' "$line" >> {file}"#
        )
    } else {
        format!(r#"printf '{{"event":"{event}","ts":%s}}\n' {ts} >> {file}"#)
    }
}

/// The settings file given to `claude --settings`: one hook per event, all appending to
/// `events_file`.
pub fn hook_settings(events_file: &Path) -> serde_json::Value {
    let mut hooks = serde_json::Map::new();
    for event in HOOK_EVENTS {
        let handler = serde_json::json!({
            "type": "command",
            "command": hook_command(event, events_file),
        });
        let mut group = serde_json::json!({ "hooks": [handler] });
        if matches!(*event, "PreToolUse" | "PostToolUse") {
            group["matcher"] = "*".into();
        }
        hooks.insert((*event).to_owned(), serde_json::json!([group]));
    }
    serde_json::json!({ "hooks": hooks })
}

/// The last complete event in the events file. Opened through [`crate::untrusted`]: no
/// symlink followed, no blocking on a FIFO, regular files only; only the last
/// [`EVENTS_TAIL`] bytes are read, and a file over [`EVENTS_CAP`] is trimmed to its last
/// line (the sandbox can write to its status dir, and must not be able to make the host
/// block, read something else, or keep a file of any size).
pub fn read_last_event(events_file: &Path) -> Option<HookEvent> {
    // Read-only when the sandbox made it so (it can chmod its own file): read, not trimmed.
    let (mut file, meta) = crate::untrusted::open_regular_rw(events_file)
        .or_else(|_| crate::untrusted::open_regular(events_file))
        .ok()?;
    let len = meta.len();
    let from = len.saturating_sub(EVENTS_TAIL);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::new();
    (&mut file).take(EVENTS_TAIL).read_to_end(&mut tail).ok()?;
    let seen_ms = meta
        .modified()
        .ok()
        .map(chrono::DateTime::<Utc>::from)
        .map_or(0, |t| t.timestamp_millis());
    let (event, line) = last_event(&tail)?;
    if len > EVENTS_CAP {
        trim_to(&file, line);
    }
    Some(HookEvent { seen_ms, ..event })
}

/// The last complete line of `tail` that names an event, and that line's bytes.
fn last_event(tail: &[u8]) -> Option<(HookEvent, &[u8])> {
    // Only complete lines: a hook may be writing the last one right now.
    let end = tail.iter().rposition(|b| *b == b'\n')?;
    tail[..end].split(|b| *b == b'\n').rev().find_map(|line| {
        let text = String::from_utf8_lossy(line);
        let event = serde_json::from_str::<HookEvent>(&text)
            .ok()
            .or_else(|| salvage_event(&text))?;
        Some((event, line))
    })
}

/// Empties the events file and appends `last_line` (the file is open for appending): best
/// effort, as a hook may append at the same moment (its line then comes first, which costs
/// one reading at most).
fn trim_to(file: &std::fs::File, last_line: &[u8]) {
    use std::io::Write;
    if file.set_len(0).is_ok() {
        let mut line = last_line.to_vec();
        line.push(b'\n');
        let mut writer = file;
        if let Err(e) = writer.write_all(&line) {
            tracing::debug!("trimming an events file failed: {e}");
        }
    }
}

/// A line whose hook input could not be captured still names its event.
fn salvage_event(line: &str) -> Option<HookEvent> {
    let rest = &line[line.find(r#""event":""#)? + 9..];
    let name = &rest[..rest.find('"')?];
    Some(HookEvent {
        event: name.to_owned(),
        ts: None,
        input: None,
        seen_ms: 0,
    })
}

/// Keeps the debounced state of every sandbox between samples (the TUI and `--watch` own one).
#[derive(Debug, Default)]
pub struct StatusTracker {
    debouncers: HashMap<SandboxId, Debouncer>,
}

impl StatusTracker {
    pub fn new() -> StatusTracker {
        StatusTracker::default()
    }

    /// One debounced reading of `record`, and the state it had before.
    pub fn sample(
        &mut self,
        deck: &Deck,
        record: &SandboxRecord,
    ) -> (Option<AgentState>, Assessment) {
        self.debounce(deck, record, deck.agent_status(record))
    }

    /// Debounces `reading`, one reading of `record` (from [`Deck::agent_status_with`]).
    pub fn debounce(
        &mut self,
        deck: &Deck,
        record: &SandboxRecord,
        reading: Assessment,
    ) -> (Option<AgentState>, Assessment) {
        let min_ms = deck.config.status.idle_debounce_ms;
        let debouncer = self
            .debouncers
            .entry(record.id.clone())
            .or_insert_with(|| Debouncer::new(min_ms));
        let before = debouncer.shown.as_ref().map(|a| a.state);
        let now = Utc::now().timestamp_millis();
        (before, debouncer.update(reading, now))
    }
}

impl Deck {
    /// Creates the status dir (see [`crate::paths::SandboxFiles::status_dir`]) and writes the hook
    /// settings for a sandbox; returns both.
    pub(crate) fn install_status_hooks(&self, id: &SandboxId) -> Result<(PathBuf, PathBuf)> {
        let files = self.paths.sandbox(id);
        make_private_dir(files.runtime_dir())?;
        make_private_dir(files.state_dir())?;
        let dir = files.status_dir();
        make_private_dir(&dir)?;
        // Events of an earlier run say nothing about this one (usually there are none).
        let _ = std::fs::remove_file(files.status_events());
        let settings = files.hook_settings();
        // The hooks run inside, where the status dir is at a fixed path.
        let inside = Path::new(crate::backend::STATUS_DIR).join(STATUS_EVENTS);
        let body = serde_json::to_vec_pretty(&hook_settings(&inside))
            .map_err(|e| DeckError::json("writing the hook settings", e))?;
        std::fs::write(&settings, body).context_io(|| format!("writing {}", settings.display()))?;
        Ok((dir, settings))
    }

    /// One reading of a sandbox's agent state (not debounced). Only for a sandbox that
    /// [runs an agent](SandboxRecord::runs_agent): callers show none for a shell.
    pub fn agent_status(&self, record: &SandboxRecord) -> Assessment {
        let running = record.state == SandboxState::Running;
        let pane = match (&record.tmux_session, running) {
            (Some(session), true) => self.tmux_of(record).capture(session, 0, false).ok(),
            _ => None,
        };
        self.agent_status_with(record, pane.as_deref())
    }

    /// One reading of a sandbox's agent state from `pane`, its pane's plain text as the
    /// caller captured it (None when it does not run or could not be read).
    pub fn agent_status_with(&self, record: &SandboxRecord, pane: Option<&str>) -> Assessment {
        let now = Utc::now().timestamp_millis();
        let event = read_last_event(&self.paths.sandbox(&record.id).status_events());
        let running = record.state == SandboxState::Running;
        let transcript_ms = running
            .then(|| newest_transcript_ms(record.project_dir.as_path()))
            .flatten();
        let fresh_ms = self.config.status.transcript_fresh_ms as i64;
        let signals = Signals::of(record, now, event.as_ref(), pane, transcript_ms, fresh_ms);
        assess(&signals, &self.status_patterns)
    }
}

/// When any transcript of the project was last written (unix milliseconds).
pub(crate) fn newest_transcript_ms(project: &Path) -> Option<i64> {
    let encoded = crate::usage::encode_project_dir(project);
    usage_roots()
        .iter()
        .map(|root| root.join(&encoded))
        // The project's transcript dir is the sandbox's to write: never followed elsewhere.
        .filter(|dir| std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()))
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .map(|t| chrono::DateTime::<Utc>::from(t).timestamp_millis())
        .max()
}

/// How long the usage roots found from the environment are kept (see [`usage_roots`]).
const ROOTS_KEPT: std::time::Duration = std::time::Duration::from_secs(30);

/// The usage roots for [`newest_transcript_ms`], which runs for every agent in every status
/// round: found again (each one's real path resolved) only when the environment they come
/// from changed or after [`ROOTS_KEPT`], not once per agent (issue 15).
pub(super) fn usage_roots() -> std::sync::Arc<Vec<PathBuf>> {
    use std::ffi::OsString;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    type Env = [Option<OsString>; 3];
    /// The environment the roots came from, when, and the roots.
    type Kept = (Env, Instant, Arc<Vec<PathBuf>>);
    static KEPT: Mutex<Option<Kept>> = Mutex::new(None);
    let env: Env = ["CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME", "HOME"].map(std::env::var_os);
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((seen, at, roots)) = kept.as_ref()
        && *seen == env
        && at.elapsed() < ROOTS_KEPT
    {
        return Arc::clone(roots);
    }
    let roots = Arc::new(crate::usage::roots_from_env());
    *kept = Some((env, Instant::now(), Arc::clone(&roots)));
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_roots_are_found_once_not_per_agent() {
        let first = usage_roots();
        assert_eq!(*first, crate::usage::roots_from_env());
        let again = usage_roots();
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "the same environment: the roots kept"
        );
    }

    fn running<'a>() -> Signals<'a> {
        Signals {
            sandbox: SandboxState::Running,
            sandbox_reason: None,
            exit_status: None,
            running_for_ms: Some(60_000),
            hook: None,
            pane: None,
            transcript_age_ms: None,
            fresh_ms: 5_000,
        }
    }

    fn event(name: &str, message: Option<&str>) -> HookEvent {
        HookEvent {
            event: name.into(),
            ts: None,
            input: message.map(|m| serde_json::json!({ "message": m })),
            seen_ms: 0,
        }
    }

    const BOX: &str = "╭──────────────╮\n│ > Do you want to proceed? esc to interrupt │\n╰──────────────╯\n  ? for shortcuts";

    #[test]
    fn text_typed_in_the_prompt_box_never_counts() {
        let p = Patterns::builtin();
        assert_eq!(p.match_pane(&format!("some output\n{BOX}")), None);
        let working = format!("✻ Thinking… (12s · esc to interrupt)\n{BOX}");
        assert_eq!(p.match_pane(&working).unwrap().0, AgentState::Working);
        let v2 = "✻ Working… (esc to interrupt)\n──────────\n> Do you want to proceed?\n──────────";
        assert_eq!(p.match_pane(v2).unwrap().0, AgentState::Working);
        let dialog =
            "╭──────╮\n│ Bash command │\n│ Do you want to proceed? │\n│ ❯ 1. Yes │\n╰──────╯";
        assert_eq!(p.match_pane(dialog).unwrap().0, AgentState::Waiting);
        // A quoted line far above a dialog is not the prompt box.
        let quoted = format!(
            "> a quote in the answer\n{}{dialog}\n\n\n",
            "output\n".repeat(10)
        );
        assert_eq!(p.match_pane(&quoted).unwrap().0, AgentState::Waiting);
    }

    #[test]
    fn hooks_decide_and_the_screen_corrects_them() {
        let p = Patterns::builtin();
        let prompt = event("UserPromptSubmit", None);
        let s = Signals {
            hook: Some((&prompt, 100)),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Working);
        assert_eq!(assess(&s, &p).source, Source::Hook);
        let stop = event("Stop", None);
        let s = Signals {
            hook: Some((&stop, 100)),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Idle);
        let ask = event(
            "Notification",
            Some("Claude needs your permission to use Bash"),
        );
        let s = Signals {
            hook: Some((&ask, 100)),
            ..running()
        };
        let a = assess(&s, &p);
        assert_eq!(a.state, AgentState::Waiting);
        assert!(a.reason.contains("permission"));
        let idle = event("Notification", Some("Claude is waiting for your input"));
        let s = Signals {
            hook: Some((&idle, 100)),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Idle);
        // A question on screen while the last hook said working.
        let dialog = "│ Which approach? │\n│ Enter to select · Esc to cancel │";
        let s = Signals {
            hook: Some((&prompt, 100)),
            pane: Some(dialog),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Waiting);
        // Interrupted: the working hook is old, the screen and the transcript are quiet.
        let s = Signals {
            hook: Some((&prompt, 60_000)),
            pane: Some(BOX),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Idle);
        // Advisory: a SessionEnd line cannot make a live process read exited.
        let end = event("SessionEnd", None);
        let s = Signals {
            hook: Some((&end, 10)),
            ..running()
        };
        let a = assess(&s, &p);
        assert_eq!((a.state, a.source), (AgentState::Idle, Source::Hook));
        assert!(a.reason.contains("still runs"), "{a:?}");
        // Only the host's view of the process says exited.
        let s = Signals {
            sandbox: SandboxState::Exited,
            hook: Some((&end, 10)),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Exited);
    }

    #[test]
    fn no_signal_from_inside_makes_a_running_sandbox_read_exited_or_dead() {
        // Even a pattern that would say so (the shipped ones never do) is overruled.
        let p = Patterns::parse(
            "[prompt]\ninput_prefixes = [\"> \"]\nbox_top_prefixes = [\"╭\"]\n\
             box_bottom_prefixes = [\"╰\"]\nwithin_last_lines = 3\n\
             [spinner]\nglyphs = [\"*\"]\nverb_ends_with = \"…\"\n\
             [[pattern]]\nstate = \"dead\"\ntext = \"segfault\"\n\
             [[pattern]]\nstate = \"exited\"\ntext = \"bye\"\n",
        )
        .unwrap();
        for pane in ["segfault", "bye"] {
            let s = Signals {
                pane: Some(pane),
                ..running()
            };
            let a = assess(&s, &p);
            assert_eq!(a.state, AgentState::Idle, "{pane}: {a:?}");
        }
    }

    #[test]
    fn a_huge_events_file_is_read_from_its_tail_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        let mut body = "{\"event\":\"PreToolUse\"}\n".repeat(10_000);
        body.push_str("{\"event\":\"Stop\",\"ts\":1}\n");
        std::fs::write(&file, &body).unwrap();
        assert!(body.len() as u64 > EVENTS_CAP);
        assert_eq!(read_last_event(&file).unwrap().event, "Stop");
        let left = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            left, "{\"event\":\"Stop\",\"ts\":1}\n",
            "trimmed to its last line"
        );
        assert_eq!(read_last_event(&file).unwrap().event, "Stop");
        // A last line without its newline is still being written: the one before counts.
        std::fs::write(&file, "{\"event\":\"Stop\"}\n{\"event\":\"PreTo").unwrap();
        assert_eq!(read_last_event(&file).unwrap().event, "Stop");
    }

    #[test]
    fn without_hooks_the_pane_then_the_transcript_decide() {
        let p = Patterns::builtin();
        let s = Signals {
            transcript_age_ms: Some(1_000),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Working);
        assert_eq!(assess(&s, &p).source, Source::Transcript);
        let s = Signals {
            transcript_age_ms: Some(60_000),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Idle);
        let s = Signals {
            running_for_ms: Some(500),
            ..running()
        };
        assert_eq!(assess(&s, &p).state, AgentState::Starting);
        let s = Signals {
            sandbox: SandboxState::Dead,
            sandbox_reason: Some("Xvfb died"),
            ..running()
        };
        let a = assess(&s, &p);
        assert_eq!(
            (a.state, a.reason.as_str()),
            (AgentState::Dead, "Xvfb died")
        );
        let s = Signals {
            sandbox: SandboxState::Exited,
            exit_status: Some(3),
            ..running()
        };
        assert_eq!(assess(&s, &p).reason, "exited with status 3");
    }

    #[test]
    fn working_to_idle_needs_two_idle_readings_apart() {
        let work = Assessment::new(AgentState::Working, Source::Hook, "w");
        let idle = Assessment::new(AgentState::Idle, Source::Hook, "i");
        let wait = Assessment::new(AgentState::Waiting, Source::Hook, "q");
        let mut d = Debouncer::new(1500);
        assert_eq!(d.update(work.clone(), 0).state, AgentState::Working);
        assert_eq!(d.update(idle.clone(), 1000).state, AgentState::Working);
        assert_eq!(d.update(idle.clone(), 2000).state, AgentState::Working);
        assert_eq!(d.update(idle.clone(), 2500).state, AgentState::Idle);
        // A working reading in between starts the count again.
        let mut d = Debouncer::new(1500);
        d.update(work.clone(), 0);
        d.update(idle.clone(), 100);
        d.update(work.clone(), 1000);
        assert_eq!(d.update(idle.clone(), 1700).state, AgentState::Working);
        assert_eq!(d.update(idle.clone(), 3000).state, AgentState::Working);
        assert_eq!(d.update(idle, 3300).state, AgentState::Idle);
        // Other changes show at once.
        assert_eq!(d.update(wait, 3301).state, AgentState::Waiting);
        assert_eq!(d.update(work, 3302).state, AgentState::Working);
    }

    #[test]
    fn only_waiting_exited_and_dead_notify_and_only_on_entry() {
        assert!(should_notify(
            Some(AgentState::Working),
            AgentState::Waiting
        ));
        assert!(!should_notify(
            Some(AgentState::Waiting),
            AgentState::Waiting
        ));
        assert!(should_notify(None, AgentState::Dead));
        assert!(!should_notify(Some(AgentState::Working), AgentState::Idle));
    }

    #[test]
    fn hook_commands_append_one_json_line_with_only_sh() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's here").join("events.jsonl");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let settings = hook_settings(&file);
        for event in ["Stop", "Notification"] {
            let command = settings["hooks"][event][0]["hooks"][0]["command"]
                .as_str()
                .unwrap();
            let mut child = Command::new("sh")
                .args(["-c", command])
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"{\"hook_event_name\":\"Notification\",\n\"message\":\"Claude needs your permission to use Bash\"}")
                .ok();
            assert!(child.wait().unwrap().success());
            let last = read_last_event(&file).unwrap();
            assert_eq!(last.event, event);
            assert!(last.ts.unwrap() > 1_700_000_000);
        }
        let last = read_last_event(&file).unwrap();
        assert_eq!(last.state().unwrap().0, AgentState::Waiting);
        assert!(last.message().contains("permission"));
        assert_eq!(settings["hooks"]["PreToolUse"][0]["matcher"], "*");
        // Without `date` or `tr` the line still names its event.
        let bare = dir.path().join("bare.jsonl");
        let command = hook_command("Notification", &bare);
        let status = Command::new("/bin/sh")
            .args(["-c", &command])
            .env_clear()
            .env("PATH", "/nonexistent")
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(read_last_event(&bare).unwrap().event, "Notification");
    }

    #[test]
    fn the_events_file_is_never_followed_through_a_symlink_or_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, "{\"event\":\"Stop\"}\n").unwrap();
        let link = dir.path().join("events.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read_last_event(&link).is_none());
        let fifo = dir.path().join("fifo.jsonl");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_last_event(&fifo).is_none(), "and did not block");
    }

    #[test]
    fn the_notify_command_gets_sandbox_data_only_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("proj");
        std::fs::create_dir(&project).unwrap();
        let out = dir.path().join("env.txt");
        let env_dump = dir.path().join("full-env.txt");
        let canary = dir.path().join("pwned");
        let script = dir.path().join("notify.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s|%s|%s|%s|%s\\n' \"$SANDBOX_NAME\" \"$SANDBOX_STATE\" \
                 \"$SANDBOX_REASON\" \"$SANDBOX_PROJECT\" \"$#\" > '{}'\nenv > '{}'\n",
                out.display(),
                env_dump.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let record = SandboxRecord::example("api", &project.canonicalize().unwrap());
        // A reason an agent could have written: it must stay data.
        let reason = format!(
            "$(touch {}); `touch {}`",
            canary.display(),
            canary.display()
        );
        let a = Assessment::new(AgentState::Waiting, Source::Hook, reason.clone());
        let none = NotifyConfig {
            bell: true,
            command: vec![],
        };
        assert!(notify(&none, &record, &a).unwrap().is_none());
        let config = NotifyConfig {
            bell: false,
            command: vec![script.to_string_lossy().into_owned(), "--urgent".into()],
        };
        let mut child = notify(&config, &record, &a).unwrap().unwrap();
        assert!(child.wait().unwrap().success());
        let line = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            line.trim_end(),
            format!(
                "api|waiting|{reason}|{}|1",
                project.canonicalize().unwrap().display()
            )
        );
        assert!(!canary.exists(), "the reason was run as a command");
        // The helper's environment is an allowlist: cargo's variables, which this test
        // process has, do not reach it.
        let env = std::fs::read_to_string(&env_dump).unwrap();
        assert!(
            std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
            "the control"
        );
        assert!(!env.contains("CARGO_MANIFEST_DIR"), "{env}");
        assert!(env.contains("SANDBOX_NAME=api"), "{env}");
    }
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever a sandbox appends, the reader neither panics nor reads past the tail,
        /// and a well-formed last line is always the one found.
        #[test]
        fn the_events_reader_takes_any_bytes(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            event in "[A-Za-z]{1,20}",
        ) {
            // Whatever it answers, it must not panic.
            let _ = last_event(&junk);
            let mut bytes = junk.clone();
            bytes.extend_from_slice(format!("\n{{\"event\":\"{event}\",\"ts\":1}}\n").as_bytes());
            let (found, line) = last_event(&bytes).expect("the last line");
            proptest::prop_assert_eq!(found.event, event);
            proptest::prop_assert!(!line.contains(&b'\n'));
            // The same bytes through a real file, as the host reads them.
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("events.jsonl");
            std::fs::write(&file, &bytes).unwrap();
            let read = read_last_event(&file).expect("read back");
            proptest::prop_assert!(read.state().is_none_or(|(s, _)| s != AgentState::Exited));
        }
    }
}
