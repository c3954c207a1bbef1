//! What flows through the TUI: every input and every finished task is an `Action` on one
//! channel; what the reducer wants done in the world is an `Effect`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

use super::graphics::{ImageSupport, ScreenImage};
use crate::engine::CreateRequest;
use crate::engine::host_stats::HostStats;
use crate::engine::status::Assessment;
use crate::engine::usage::UsageSummary;
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};

pub use crate::engine::AgentReading;

/// A sandbox as the TUI asks the engine about it (by name) and keeps what comes back (by
/// id: a name can be reused after `rm`, and a new sandbox must not inherit the old one's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub id: SandboxId,
    pub name: SandboxName,
}

impl From<&SandboxRecord> for Target {
    fn from(record: &SandboxRecord) -> Target {
        Target {
            id: record.id.clone(),
            name: record.name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    /// The terminal's size now; its content was lost (a resize, or a child had it).
    Resize(u16, u16),
    /// What the terminal said it can show, once it answered.
    ImagesDetected(ImageSupport),
    /// The clock, when a figure drawn from it changes (uptimes, flash expiry).
    Tick(DateTime<Utc>),
    /// SIGTERM or SIGHUP: leave as if the user had quit, so the terminal is restored.
    Terminate,
    /// Time to ask the engine for fresh records (`monitor.interval_ms`, or when it says
    /// they changed).
    MonitorTick,
    /// Time to refresh the Agent preview, if it is on screen (`ui.preview_interval_ms`, or
    /// when the engine pushed a new text).
    PreviewTick,
    Loaded(Result<Vec<SandboxRecord>, String>),
    /// What `start` would run in each managed sandbox (by id), for the Info tab.
    StartCommands(HashMap<SandboxId, String>),
    HostSampled(HostStats),
    /// How each host of a mirror of several is reached.
    LinksSampled(Vec<crate::engine::HostLink>),
    Captured {
        target: Target,
        result: Result<String, String>,
    },
    Done {
        op: Op,
        name: SandboxName,
        result: Result<SandboxRecord, String>,
    },
    Created(Result<SandboxRecord, String>),
    /// The form's project directory does not exist (nothing was created).
    ProjectDirMissing(String),
    Completed {
        input: String,
        candidates: Vec<String>,
    },
    Attached {
        name: SandboxName,
        result: Result<(), String>,
    },
    /// A new frame of a watched screen, encoded and ready to draw.
    ScreenFrame {
        id: SandboxId,
        image: ScreenImage,
    },
    /// A watched screen's feed ended: its display went away or refused us.
    ScreenLost {
        id: SandboxId,
        message: String,
    },
    /// The status worker's debounced agent states (sent when one changed).
    AgentsSampled(Vec<AgentReading>),
    /// The metrics worker's per-sandbox sample (none before two samples exist).
    MetricsSampled(HashMap<SandboxId, SandboxMetrics>),
    /// The usage worker's figures, after a refresh of the index that changed them.
    UsageUpdated(Box<UsageSummary>),
    /// `notify.command` could not be run.
    NotifyFailed(String),
    /// The held connections of every sandbox holding any (sent when they changed).
    HeldSampled(HashMap<SandboxId, Vec<crate::egress::held::Held>>),
    /// A held connection was answered (or could not be).
    Answered {
        name: SandboxName,
        target: String,
        reply: crate::egress::held::Reply,
        result: Result<(), String>,
    },
}

/// The screen feed the TUI wants now: whose display, how often, into how many cells.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenWatch {
    pub id: SandboxId,
    pub name: SandboxName,
    pub fps: f64,
    pub cells: (u16, u16),
}

/// A change to one sandbox that runs as a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    /// Start without resuming the agent's conversation.
    StartFresh,
    Stop,
    Restart,
    Remove {
        force: bool,
    },
}

impl Op {
    /// The verb for messages: "stopping api", "stopped api".
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Op::Start => ("starting", "started"),
            Op::StartFresh => ("starting fresh", "started fresh"),
            Op::Stop => ("stopping", "stopped"),
            Op::Restart => ("restarting", "restarted"),
            Op::Remove { .. } => ("deleting", "deleted"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Answers the connections of a sandbox held for `target` (`HOST:PORT`).
    AnswerHeld {
        name: SandboxName,
        target: String,
        reply: crate::egress::held::Reply,
    },
    Refresh,
    Capture(Target),
    Run(Op, SandboxName),
    /// Creates a sandbox; a missing project directory is reported, not made.
    Create(Box<CreateRequest>),
    /// Makes the project directory (the user said yes), then creates the sandbox.
    CreateWithDir(Box<CreateRequest>),
    Attach(SandboxName),
    CompletePath(String),
    CopyToClipboard(String),
    /// The terminal bell (`notify.bell`).
    Bell,
    /// Runs `notify.command` for a sandbox whose agent started waiting (or ended).
    Notify(Box<(SandboxRecord, Assessment)>),
    /// Capture this screen (or change its rate or size, if already captured).
    WatchScreen(ScreenWatch),
    /// Stop capturing this sandbox's screen and let go of its display.
    StopScreen(SandboxId),
    Quit,
}
