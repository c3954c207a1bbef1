//! What flows through the TUI: every input and every finished task is an `Action` on one
//! channel; what the reducer wants done in the world is an `Effect`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

use super::graphics::ScreenImage;
use super::state::ScreenWatch;
use crate::engine::CreateRequest;
use crate::engine::host_stats::HostStats;
use crate::engine::status::Assessment;
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxRecord, SandboxState};
use crate::tui::live::UsageSummary;

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    /// The clock, about once a second (uptimes, flash expiry).
    Tick(DateTime<Utc>),
    /// SIGTERM or SIGHUP: leave as if the user had quit, so the terminal is restored.
    Terminate,
    /// Time to ask the engine for fresh records (`monitor.interval_ms`).
    MonitorTick,
    /// Time to refresh the Agent preview, if it is on screen (`ui.preview_interval_ms`).
    PreviewTick,
    Loaded(Result<Vec<SandboxRecord>, String>),
    /// What `start` would run in each managed sandbox (by name), for the Info tab.
    StartCommands(HashMap<String, String>),
    HostSampled(HostStats),
    Captured {
        name: String,
        result: Result<String, String>,
    },
    Done {
        op: Op,
        name: String,
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
        name: String,
        result: Result<(), String>,
    },
    /// A new frame of a watched screen, encoded and ready to draw.
    ScreenFrame {
        name: String,
        image: ScreenImage,
    },
    /// A watched screen's feed ended: its display went away or refused us.
    ScreenLost {
        name: String,
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
}

/// One sandbox's agent state, with the sandbox state it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReading {
    pub name: String,
    pub sandbox: SandboxState,
    pub assessment: Assessment,
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
    Refresh,
    SampleHost,
    Capture(String),
    Run(Op, String),
    /// Creates a sandbox; a missing project directory is reported, not made.
    Create(Box<CreateRequest>),
    /// Makes the project directory (the user said yes), then creates the sandbox.
    CreateWithDir(Box<CreateRequest>),
    Attach(String),
    CompletePath(String),
    CopyToClipboard(String),
    /// The terminal bell (`notify.bell`).
    Bell,
    /// Runs `notify.command` for a sandbox whose agent started waiting (or ended).
    Notify(Box<(SandboxRecord, Assessment)>),
    /// Capture this screen (or change its rate or size, if already captured).
    WatchScreen(ScreenWatch),
    /// Stop capturing this sandbox's screen and let go of its display.
    StopScreen(String),
    Quit,
}
