//! The wire format of the API (`docs/protocol.md`), versioned. What a client sends is parsed
//! strictly (tagged enums, `deny_unknown_fields`, duplicate keys refused by serde's derive,
//! serde_json's recursion limit); what the engine sends is built from the same serde types
//! the CLI prints with `--json` (records, agent readings, metrics, usage, host stats).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::AgentReading;
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::metrics::SandboxMetrics;
use crate::sandbox::{Options, SandboxId, SandboxName, SandboxRecord};

/// Bumped on any change a client of the previous version would misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// What this engine offers, announced in the hello. `reports`: the CLI's own reports
/// (`status_report`, `usage_report`, `purge_project`), which `--host` asks for.
pub const CAPABILITIES: &[&str] = &[
    "commands",
    "events",
    "screens",
    "screen_stats",
    "previews",
    "output",
    "reports",
    "paths",
    "egress_held",
];

/// Every command's `cmd`, to tell an unknown command from a malformed known one.
pub const COMMANDS: &[&str] = &[
    "list",
    "show",
    "create",
    "start",
    "stop",
    "restart",
    "rm",
    "status",
    "usage",
    "host_stats",
    "preview",
    "snapshot",
    "screen_stats",
    "subscribe_screen",
    "unsubscribe_screen",
    "info",
    "start_commands",
    "attach_command",
    "subscribe_preview",
    "unsubscribe_preview",
    "subscribe_output",
    "unsubscribe_output",
    "status_report",
    "usage_report",
    "purge_project",
    "complete_dir",
    "egress_answer",
];

/// The one message a client sends: a command with the id its reply will carry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub id: u64,
    pub command: Command,
}

/// Every action the engine handle offers. Names travel as strings and are parsed by the
/// engine, so a bad one is answered `invalid_name` (as the CLI says it), not `bad_request`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    List {},
    Show {
        name: String,
    },
    Create {
        project_dir: PathBuf,
        #[serde(default)]
        name: Option<String>,
        /// A shell sandbox running `args` (or bash); otherwise the agent with `args`.
        #[serde(default)]
        shell: bool,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        network: Option<crate::sandbox::Network>,
        /// Rules its proxy lets through beyond the shared allowlist (`HOST[:PORT]`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allow: Vec<String>,
        /// Pass a GitHub token (`gh auth token` as the engine's user) to the sandbox.
        #[serde(default)]
        gh_token: bool,
        /// Opt-ins beyond the defaults (`[bubblewrap]` keys of the same names).
        #[serde(default)]
        options: Options,
    },
    Start {
        name: String,
        #[serde(default)]
        fresh: bool,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
        #[serde(default)]
        fresh: bool,
    },
    Rm {
        name: String,
        #[serde(default)]
        force: bool,
    },
    /// The debounced agent states the engine keeps.
    Status {
        #[serde(default)]
        name: Option<String>,
    },
    Usage {},
    HostStats {},
    /// The visible text of a sandbox's pane, with ANSI colours.
    Preview {
        name: String,
    },
    /// The full snapshot again (after a client lost track).
    Snapshot {},
    /// Every watched screen: subscribers, rate, captures taken and frames sent.
    ScreenStats {},
    /// Binary frames of the sandbox's screen, when it changed, at most `fps` a second.
    SubscribeScreen {
        name: String,
        #[serde(default)]
        fps: Option<f64>,
    },
    UnsubscribeScreen {
        name: String,
    },
    /// What a front end needs to know of the engine (dirs, defaults, intervals).
    Info {},
    /// What `start` would run in each managed sandbox, by id.
    StartCommands {},
    /// The command that puts a terminal on the sandbox's session (run on the engine's host).
    AttachCommand {
        name: String,
    },
    /// `preview` messages with the pane's visible text, when it changed.
    SubscribePreview {
        name: String,
    },
    UnsubscribePreview {
        name: String,
    },
    /// Binary `SDO1` frames with the pane's output as it is written.
    SubscribeOutput {
        name: String,
    },
    UnsubscribeOutput {
        name: String,
    },
    /// What `status --json` prints: one reading per sandbox (or NAME), not debounced.
    StatusReport {
        #[serde(default)]
        name: Option<String>,
        /// Also CPU and memory, sampled twice a second apart.
        #[serde(default)]
        metrics: bool,
    },
    /// What `usage --json` prints, for NAME's project or all, from a day on, grouped.
    UsageReport {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        since: Option<String>,
        #[serde(default)]
        by: Option<crate::usage::GroupBy>,
    },
    /// What `rm --purge` does after the `rm`: the project's state removed when no sandbox
    /// uses the project any more.
    PurgeProject {
        project_dir: PathBuf,
    },
    /// The dirs on the engine's host that complete `input` (a project dir being typed).
    CompleteDir {
        input: String,
    },
    /// Answers the connections of a proxy-mode sandbox held for `rule` (`HOST[:PORT]`,
    /// `*.SUFFIX`): what `sandbox-deck net NAME allow|deny RULE` does.
    EgressAnswer {
        name: String,
        rule: String,
        answer: crate::egress::held::Reply,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::List {} => "list",
            Command::Show { .. } => "show",
            Command::Create { .. } => "create",
            Command::Start { .. } => "start",
            Command::Stop { .. } => "stop",
            Command::Restart { .. } => "restart",
            Command::Rm { .. } => "rm",
            Command::Status { .. } => "status",
            Command::Usage {} => "usage",
            Command::HostStats {} => "host_stats",
            Command::Preview { .. } => "preview",
            Command::Snapshot {} => "snapshot",
            Command::ScreenStats {} => "screen_stats",
            Command::SubscribeScreen { .. } => "subscribe_screen",
            Command::UnsubscribeScreen { .. } => "unsubscribe_screen",
            Command::Info {} => "info",
            Command::StartCommands {} => "start_commands",
            Command::AttachCommand { .. } => "attach_command",
            Command::SubscribePreview { .. } => "subscribe_preview",
            Command::UnsubscribePreview { .. } => "unsubscribe_preview",
            Command::SubscribeOutput { .. } => "subscribe_output",
            Command::UnsubscribeOutput { .. } => "unsubscribe_output",
            Command::StatusReport { .. } => "status_report",
            Command::UsageReport { .. } => "usage_report",
            Command::PurgeProject { .. } => "purge_project",
            Command::CompleteDir { .. } => "complete_dir",
            Command::EgressAnswer { .. } => "egress_answer",
        }
    }

    /// Whether it makes or ends a subscription of the connection (run in order).
    pub fn is_subscription(&self) -> bool {
        matches!(
            self,
            Command::SubscribeScreen { .. }
                | Command::UnsubscribeScreen { .. }
                | Command::SubscribePreview { .. }
                | Command::UnsubscribePreview { .. }
                | Command::SubscribeOutput { .. }
                | Command::UnsubscribeOutput { .. }
        )
    }

    /// Whether it changes something (and so goes to the audit log).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Command::Create { .. }
                | Command::Start { .. }
                | Command::Stop { .. }
                | Command::Restart { .. }
                | Command::Rm { .. }
                | Command::PurgeProject { .. }
                | Command::EgressAnswer { .. }
        )
    }
}

/// Why a client's text was not a request: the error kind it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The request's id when it could be read.
    pub id: Option<u64>,
    pub kind: &'static str,
    pub message: String,
}

/// Parses one text message. A `cmd` this engine does not know is `unknown_command`;
/// anything else that does not fit is `bad_request`.
pub fn parse_request(text: &str) -> Result<Request, Rejection> {
    let error = match serde_json::from_str::<Request>(text) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    // A second, lenient look only to classify the error and find the id.
    let loose = serde_json::from_str::<serde_json::Value>(text).ok();
    let id = loose
        .as_ref()
        .and_then(|v| v.get("id"))
        .and_then(serde_json::Value::as_u64);
    let cmd = loose
        .as_ref()
        .and_then(|v| v.get("command"))
        .and_then(|c| c.get("cmd"))
        .and_then(serde_json::Value::as_str);
    match cmd {
        Some(cmd) if !COMMANDS.contains(&cmd) => Err(Rejection {
            id,
            kind: "unknown_command",
            message: format!("this engine knows no command {cmd:?}"),
        }),
        _ => Err(Rejection {
            id,
            kind: "bad_request",
            message: error.to_string(),
        }),
    }
}

/// Everything the engine sends, as text frames. Deserialize is the client's (`client`),
/// which reads messages leniently: a newer engine may add fields and event kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First, on every connection.
    Hello {
        protocol: u32,
        capabilities: Vec<String>,
        /// The engine's version (sandbox-deck's).
        engine: String,
        /// This connection's number, as the audit log names it.
        connection: u64,
    },
    /// Second, on every connection: everything a client shows.
    Snapshot(Snapshot),
    /// A change, pushed when it happens.
    Event { event: Event },
    /// A command's result.
    Ok { id: u64, result: serde_json::Value },
    /// A command's failure, or a message that was no command (`id` null then).
    Error {
        id: Option<u64>,
        kind: String,
        message: String,
    },
    /// A watched pane's visible text (with ANSI colours), sent when it changed; or why it
    /// cannot be read now (`error`, e.g. the sandbox stopped).
    Preview {
        name: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        error: Option<PreviewError>,
    },
}

/// Why a watched pane has no text now: an error kind and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewError {
    pub kind: String,
    pub message: String,
}

/// What the engine knows, whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub sandboxes: Vec<SandboxRecord>,
    /// The debounced agent state of each sandbox that runs an agent.
    pub agents: Vec<AgentReading>,
    /// CPU and memory per running sandbox, by id (empty until two samples exist).
    pub metrics: HashMap<SandboxId, SandboxMetrics>,
    pub usage: Option<UsageSummary>,
    pub host: Option<HostStats>,
    /// The connections each proxy-mode sandbox holds for an answer, by id (only those
    /// holding any; capability `egress_held`).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub held: HashMap<SandboxId, Vec<crate::egress::held::Held>>,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    SandboxAdded {
        sandbox: SandboxRecord,
    },
    SandboxChanged {
        sandbox: SandboxRecord,
    },
    SandboxRemoved {
        id: SandboxId,
        name: SandboxName,
    },
    AgentState {
        reading: AgentReading,
    },
    Metrics {
        metrics: HashMap<SandboxId, SandboxMetrics>,
    },
    Usage {
        usage: UsageSummary,
    },
    HostStats {
        host: HostStats,
    },
    /// A sandbox's held connections changed; all of them now (empty: none held any more).
    Held {
        id: SandboxId,
        held: Vec<crate::egress::held::Held>,
    },
}

impl ServerMessage {
    pub fn hello(connection: u64) -> ServerMessage {
        ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
            engine: env!("CARGO_PKG_VERSION").to_owned(),
            connection,
        }
    }

    pub fn error(id: Option<u64>, kind: &str, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            id,
            kind: kind.to_owned(),
            message: message.into(),
        }
    }

    /// The text frame. Every field is plain data with string keys, so this does not fail;
    /// should it, the client gets an `internal` error instead of nothing.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({"type": "error", "id": null, "kind": "internal", "message": e.to_string()})
                .to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> &'static str {
        parse_request(text).expect_err("rejected").kind
    }

    #[test]
    fn a_well_formed_command_parses() {
        let request =
            parse_request(r#"{"id":7,"command":{"cmd":"stop","name":"api"}}"#).expect("a stop");
        assert_eq!(request.id, 7);
        assert_eq!(request.command, Command::Stop { name: "api".into() });
        let list = parse_request(r#"{"id":1,"command":{"cmd":"list"}}"#).expect("a list");
        assert_eq!(list.command, Command::List {});
    }

    #[test]
    fn every_listed_command_is_a_variant() {
        for cmd in COMMANDS {
            let text = format!(r#"{{"id":1,"command":{{"cmd":"{cmd}"}}}}"#);
            assert_ne!(
                parse_request(&text).err().map(|r| r.kind),
                Some("unknown_command"),
                "{cmd}"
            );
        }
    }

    #[test]
    fn malformed_requests_are_bad_requests_and_unknown_commands_are_named() {
        assert_eq!(kind("{"), "bad_request");
        assert_eq!(kind("[]"), "bad_request");
        assert_eq!(
            kind(r#"{"id":"1","command":{"cmd":"list"}}"#),
            "bad_request"
        );
        assert_eq!(kind(r#"{"command":{"cmd":"list"}}"#), "bad_request");
        assert_eq!(
            kind(r#"{"id":1,"id":2,"command":{"cmd":"list"}}"#),
            "bad_request"
        );
        assert_eq!(
            kind(r#"{"id":1,"command":{"cmd":"stop","name":"a","name":"b"}}"#),
            "bad_request"
        );
        assert_eq!(
            kind(r#"{"id":1,"command":{"cmd":"list"},"extra":1}"#),
            "bad_request"
        );
        assert_eq!(
            kind(r#"{"id":1,"command":{"cmd":"list","all":true}}"#),
            "bad_request"
        );
        assert_eq!(
            kind(r#"{"id":1,"command":{"cmd":"stop","name":"a","force":1}}"#),
            "bad_request"
        );
        assert_eq!(
            kind(r#"{"id":3,"command":{"cmd":"rm_rf"}}"#),
            "unknown_command"
        );
        assert_eq!(
            parse_request(r#"{"id":3,"command":{"cmd":"rm_rf"}}"#)
                .expect_err("unknown")
                .id,
            Some(3)
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(kind(&deep), "bad_request");
    }

    #[test]
    fn server_messages_are_tagged() {
        let hello = serde_json::to_value(ServerMessage::hello(4)).expect("json");
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["protocol"], PROTOCOL_VERSION);
        assert_eq!(hello["connection"], 4);
        let snapshot =
            serde_json::to_value(ServerMessage::Snapshot(Snapshot::default())).expect("json");
        assert_eq!(snapshot["type"], "snapshot");
        assert!(snapshot["sandboxes"].is_array());
        let error = ServerMessage::error(Some(2), "busy", "later").to_text();
        assert_eq!(
            error,
            r#"{"type":"error","id":2,"kind":"busy","message":"later"}"#
        );
    }
}
