//! The sandbox record and the validated types it is made of.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DeckError, Result};
use crate::host::process::ProcRef;

/// A sandbox name: `[a-z0-9][a-z0-9-]{0,31}`. It doubles as the tmux session name,
/// so it must never contain tmux target syntax (`:` `.` `=`) or anything a shell reads,
/// and can never be the engine's own session on that server
/// ([`crate::host::tmux::WATCH_SESSION`], which starts with `_`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SandboxName(String);

impl SandboxName {
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self> {
        let bytes = raw.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if first_ok && rest_ok && bytes.len() <= Self::MAX_LEN {
            Ok(SandboxName(raw.to_owned()))
        } else {
            Err(DeckError::InvalidName {
                name: raw.to_owned(),
            })
        }
    }

    /// A valid name derived from a directory's last component (`My_App.v2` → `my-app-v2`).
    pub fn from_dir(dir: &Path) -> Self {
        let base = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let mut name = String::new();
        for c in base.chars() {
            let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            };
            if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
                name.push(c);
            }
        }
        name.truncate(Self::MAX_LEN);
        let name = name.trim_end_matches('-');
        if name.is_empty() {
            SandboxName("sandbox".into())
        } else {
            SandboxName(name.to_owned())
        }
    }

    /// This name with `-suffix` appended, shortened so the result stays valid.
    pub fn with_suffix(&self, suffix: &str) -> Self {
        let keep = Self::MAX_LEN.saturating_sub(suffix.len() + 1);
        let base = self.0[..self.0.len().min(keep)].trim_end_matches('-');
        SandboxName(format!("{base}-{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `name` on `host`, as a front end of several hosts knows it (`name@host`): never
    /// parsed back nor sent to an engine, which knows its own sandboxes by the bare name.
    pub fn on_host(name: &SandboxName, host: &str) -> Self {
        SandboxName(format!("{}@{host}", name.0))
    }

    /// The bare name and the host of a name made by [`SandboxName::on_host`] (a name has
    /// no `@`, a destination may: `api@me@box` is `api` on `me@box`).
    pub fn split_host(&self) -> (SandboxName, Option<&str>) {
        match self.0.split_once('@') {
            Some((bare, host)) => (SandboxName(bare.to_owned()), Some(host)),
            None => (self.clone(), None),
        }
    }

    /// The name without its host: what the table's NAME column shows.
    pub fn bare(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(bare, _)| bare)
    }
}

impl TryFrom<String> for SandboxName {
    type Error = DeckError;
    fn try_from(value: String) -> Result<Self> {
        SandboxName::parse(&value)
    }
}

impl From<SandboxName> for String {
    fn from(value: SandboxName) -> Self {
        value.0
    }
}

/// A map keyed by name is looked up with a name read off the wire (a frame's), before it
/// is known to be valid: the hash and equality are the inner string's.
impl std::borrow::Borrow<str> for SandboxName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SandboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A random id, fixed for the life of a record (names can be reused after `rm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SandboxId(String);

impl SandboxId {
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        // The id only has to be unique among our own records; fall back to time and pid.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
            bytes = (nanos ^ u64::from(std::process::id())).to_be_bytes();
        }
        SandboxId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SandboxId {
    type Error = DeckError;
    fn try_from(value: String) -> Result<Self> {
        if !value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(SandboxId(value))
        } else {
            Err(DeckError::host(
                "reading a sandbox id",
                format!("{value:?} is not an id"),
            ))
        }
    }
}

impl From<SandboxId> for String {
    fn from(value: SandboxId) -> Self {
        value.0
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An existing directory, canonicalised (absolute, no symlinks, no `..`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectDir(PathBuf);

impl ProjectDir {
    pub fn parse(raw: &Path) -> Result<Self> {
        let invalid = |why: &str| DeckError::InvalidProjectDir {
            path: raw.to_owned(),
            why: why.to_owned(),
        };
        if raw.as_os_str().is_empty() {
            return Err(invalid("the path is empty"));
        }
        let canonical = raw.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => invalid("it does not exist"),
            _ => invalid(&e.to_string()),
        })?;
        if !canonical.is_dir() {
            return Err(invalid("it is not a directory"));
        }
        if canonical == Path::new("/") {
            return Err(invalid("the root directory cannot be a project"));
        }
        if canonical.to_str().is_none() {
            return Err(invalid("the path is not valid UTF-8"));
        }
        Ok(ProjectDir(canonical))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

/// How a sandbox reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Its own network namespace with only `lo`, and a proxy the host owns at
    /// 127.0.0.1:3128 that lets through only what the allowlist names.
    #[default]
    Proxy,
    /// The host's network namespace, shared as it is.
    Host,
    /// Its own network namespace with only `lo`, and nothing else.
    None,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Proxy => "proxy",
            Network::Host => "host",
            Network::None => "none",
        }
    }

    /// Whether the sandbox shares the host's network namespace.
    pub fn shares_host(self) -> bool {
        self == Network::Host
    }

    /// The next mode, for a switch that cycles through them.
    pub fn next(self) -> Network {
        match self {
            Network::Proxy => Network::Host,
            Network::Host => Network::None,
            Network::None => Network::Proxy,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records (and configs) from before the modes stored a bool: `true` was the host's
/// network, `false` none. Both spellings are read; the name is written.
impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Old(bool),
            Named(String),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Old(true) => Ok(Network::Host),
            Stored::Old(false) => Ok(Network::None),
            Stored::Named(name) => match name.as_str() {
                "proxy" => Ok(Network::Proxy),
                "host" => Ok(Network::Host),
                "none" => Ok(Network::None),
                other => Err(serde::de::Error::custom(format!(
                    "unknown network {other:?}: expected \"proxy\", \"host\" or \"none\""
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Bubblewrap,
    /// Not in this version: kept out of the command line's choices until it exists.
    #[value(skip)]
    Container,
    #[value(skip)]
    Vm,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Bubblewrap => "bubblewrap",
            BackendKind::Container => "container",
            BackendKind::Vm => "vm",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Starting,
    Running,
    Stopped,
    Exited,
    Dead,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Starting => "starting",
            SandboxState::Running => "running",
            SandboxState::Stopped => "stopped",
            SandboxState::Exited => "exited",
            SandboxState::Dead => "dead",
        }
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What runs inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Payload {
    /// The agent (`claude`) with extra arguments.
    Agent { args: Vec<String> },
    /// `bash`, or the given command line (argv, never a shell string).
    Shell { command: Vec<String> },
}

impl Payload {
    /// The agent's arguments, or the shell command line.
    pub fn arguments(&self) -> &[String] {
        match self {
            Payload::Agent { args } => args,
            Payload::Shell { command } => command,
        }
    }

    pub fn new(shell: bool, args: Vec<String>) -> Self {
        if shell {
            Payload::Shell { command: args }
        } else {
            Payload::Agent { args }
        }
    }
}

/// Opt-ins that widen a sandbox, each off by default (flag and config key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// The host's X11 or Wayland display (standalone use on a desktop).
    pub host_display: bool,
    /// The D-Bus session bus (which can run commands on the host through systemd --user).
    pub dbus: bool,
    /// The SSH agent socket.
    pub ssh_agent: bool,
    /// PipeWire / PulseAudio sockets.
    pub audio: bool,
    /// `/dev/dri`.
    pub gpu: bool,
}

/// One sandbox, as the registry stores it and `--json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub name: SandboxName,
    pub id: SandboxId,
    pub backend: BackendKind,
    pub state: SandboxState,
    pub project_dir: ProjectDir,
    pub display: Option<u32>,
    pub tmux_session: Option<String>,
    pub network: Network,
    /// Hosts this sandbox may reach through its proxy beyond the shared allowlist
    /// (`HOST[:PORT]` or `*.SUFFIX[:PORT]`), asked for at create time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    pub managed: bool,
    pub created_at: DateTime<Utc>,
    pub exit_status: Option<i32>,
    pub reason: Option<String>,
    pub payload: Payload,
    #[serde(default)]
    pub gh_token: bool,
    /// When the state last changed to `running`.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// Whether the agent has run here before. `start` does not go by it: it resumes only
    /// when the project has a conversation (see `engine::resume`).
    #[serde(default)]
    pub agent_ran: bool,
    /// The Xvfb server of a managed sandbox.
    #[serde(default)]
    pub xvfb: Option<ProcRef>,
    /// The process that owns the backend: the tmux pane process (managed) or the launcher.
    #[serde(default)]
    pub launcher: Option<ProcRef>,
    /// The profile file the sandbox was made with (None: the built-in host profile).
    #[serde(default)]
    pub profile: Option<PathBuf>,
    /// What it may see of the host beyond the defaults (opt-ins).
    #[serde(default)]
    pub options: Options,
    /// The runtime dir it was made under (its tmux server's socket, its cookie and secrets):
    /// another session of the same user may resolve another one (no `XDG_RUNTIME_DIR` under
    /// `su` or cron), and must still find this sandbox where it lives. None: an older record,
    /// which lives in the caller's runtime dir.
    #[serde(default)]
    pub runtime_dir: Option<PathBuf>,
    /// Why the monitor could not see this sandbox just now (its tmux server did not answer);
    /// never stored, and the state is left as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

impl SandboxRecord {
    /// A new record, made now: a hand-launched (unmanaged) bubblewrap sandbox that is
    /// starting, without network, display or opt-ins. Callers set what differs with `..`.
    pub fn new(name: SandboxName, project_dir: ProjectDir, payload: Payload) -> SandboxRecord {
        SandboxRecord {
            name,
            id: SandboxId::random(),
            backend: BackendKind::Bubblewrap,
            state: SandboxState::Starting,
            project_dir,
            display: None,
            tmux_session: None,
            network: Network::None,
            allow: Vec::new(),
            managed: false,
            created_at: Utc::now(),
            exit_status: None,
            reason: None,
            payload,
            gh_token: false,
            started_at: None,
            agent_ran: false,
            xvfb: None,
            launcher: None,
            profile: None,
            options: Options::default(),
            runtime_dir: None,
            unreachable: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == SandboxState::Running || self.state == SandboxState::Starting
    }

    /// Whether an agent runs inside: a `--shell` sandbox has none, so it has no agent state
    /// (its screen could show anything, "Do you want to proceed?" included).
    pub fn runs_agent(&self) -> bool {
        matches!(self.payload, Payload::Agent { .. })
    }
}

#[cfg(test)]
impl SandboxRecord {
    /// A running managed agent sandbox for unit tests; override fields with `..`.
    pub fn example(name: &str, project: &Path) -> SandboxRecord {
        let record = SandboxRecord::new(
            SandboxName::parse(name).expect("a valid test name"),
            ProjectDir(project.to_owned()),
            Payload::Agent { args: vec![] },
        );
        SandboxRecord {
            state: SandboxState::Running,
            tmux_session: Some(name.into()),
            network: Network::Host,
            managed: true,
            ..record
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_on_a_host_splits_back_into_name_and_host() {
        let api = SandboxName::parse("api").unwrap();
        let there = SandboxName::on_host(&api, "me@box");
        assert_eq!(there.as_str(), "api@me@box");
        assert_eq!(there.bare(), "api");
        assert_eq!(there.split_host(), (api.clone(), Some("me@box")));
        assert_eq!(api.split_host(), (api.clone(), None));
        assert!(
            SandboxName::parse(there.as_str()).is_err(),
            "never a name by itself"
        );
    }

    #[test]
    fn no_sandbox_can_be_named_like_the_watch_session() {
        let watch = crate::host::tmux::WATCH_SESSION;
        assert!(SandboxName::parse(watch).is_err());
        // Nor can a name derived from a directory called so.
        assert_ne!(SandboxName::from_dir(Path::new(watch)).as_str(), watch);
    }

    #[test]
    fn names_follow_the_documented_pattern() {
        for good in ["a", "api", "0", "a-b-c", "x1-2", &"a".repeat(32)] {
            assert!(SandboxName::parse(good).is_ok(), "{good} should be valid");
        }
        for bad in [
            "",
            "-rf",
            "A",
            "a_b",
            "a b",
            "a.b",
            "a:b",
            "=a",
            "../../etc",
            "a/b",
            ".",
            "..",
            "a;id",
            "$(id)",
            "`id`",
            "a\nb",
            "a\0b",
            "аpi", // Cyrillic а
            &"a".repeat(33),
        ] {
            assert!(
                SandboxName::parse(bad).is_err(),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn names_derived_from_dirs_are_valid() {
        for dir in [
            "/x/My_App.v2",
            "/x/---",
            "/x/Ünïcode",
            "/",
            "/x/a b  c",
            &format!("/x/{}", "z".repeat(80)),
        ] {
            let name = SandboxName::from_dir(Path::new(dir));
            assert!(
                SandboxName::parse(name.as_str()).is_ok(),
                "{dir} gave {name}"
            );
        }
        assert_eq!(
            SandboxName::from_dir(Path::new("/x/My_App.v2")).as_str(),
            "my-app-v2"
        );
        let long = SandboxName::from_dir(Path::new(&format!("/x/{}", "z".repeat(80))));
        let suffixed = long.with_suffix("ab12");
        assert!(SandboxName::parse(suffixed.as_str()).is_ok());
        assert!(suffixed.as_str().ends_with("-ab12"));
    }

    #[test]
    fn project_dirs_must_be_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(ProjectDir::parse(dir.path()).is_ok());
        assert_eq!(
            ProjectDir::parse(&file).unwrap_err().kind(),
            "invalid_project_dir"
        );
        assert_eq!(
            ProjectDir::parse(&dir.path().join("missing"))
                .unwrap_err()
                .kind(),
            "invalid_project_dir"
        );
        assert!(ProjectDir::parse(Path::new("/")).is_err());
        let dotted = dir.path().join("sub");
        std::fs::create_dir(&dotted).unwrap();
        let via_dots = dotted.join("..").join("sub");
        assert_eq!(
            ProjectDir::parse(&via_dots).unwrap().as_path(),
            dotted.canonicalize().unwrap()
        );
    }

    #[test]
    fn records_keep_the_documented_json_field_names() {
        let record = SandboxRecord {
            display: Some(12),
            ..SandboxRecord::example("api", Path::new("/src/api"))
        };
        let json = serde_json::to_value(&record).unwrap();
        for key in [
            "name",
            "id",
            "backend",
            "state",
            "project_dir",
            "display",
            "tmux_session",
            "network",
            "managed",
            "created_at",
            "exit_status",
            "reason",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["state"], "running");
        assert_eq!(json["backend"], "bubblewrap");
        assert_eq!(json["display"], 12);
        assert!(json["created_at"].as_str().unwrap().contains('T'));
    }
}
