//! Typed errors of the engine. The CLI maps each to a stable `kind` for `--json` output.

use std::path::PathBuf;

use thiserror::Error;

pub type Result<T, E = DeckError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum DeckError {
    #[error(
        "invalid sandbox name {name:?}: use 1 to 32 characters of a-z, 0-9 and '-', starting with a letter or digit"
    )]
    InvalidName { name: String },

    #[error("invalid project directory {path:?}: {why}")]
    InvalidProjectDir { path: PathBuf, why: String },

    #[error("no sandbox named {name:?} (see `sandbox-deck list`)")]
    NotFound { name: String },

    #[error("a sandbox named {name:?} already exists")]
    AlreadyExists { name: String },

    #[error("sandbox {name:?} is {state}: {hint}")]
    WrongState {
        name: String,
        state: String,
        hint: String,
    },

    #[error(
        "the registry {path:?} is corrupt ({detail}); it was left untouched: fix or move it aside"
    )]
    CorruptRegistry { path: PathBuf, detail: String },

    #[error(
        "the registry {path:?} has schema version {found}, newer than this sandbox-deck understands ({supported}); it was left untouched: upgrade sandbox-deck"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("configuration {path}: {message}")]
    Config { path: String, message: String },

    #[error("profile {path:?}: {message}")]
    Profile { path: PathBuf, message: String },

    #[error("`{binary}` was not found on PATH: {install}")]
    MissingBinary { binary: String, install: String },

    /// The first line says it all for a one-line display (the TUI's flash); the pane's last
    /// lines follow.
    #[error(
        "sandbox {name:?} ended as soon as it started ({status}): {last_line}\nits last lines:\n{last_lines}"
    )]
    StartFailed {
        name: String,
        status: String,
        /// The last non-empty line of its pane, usually the error.
        last_line: String,
        last_lines: String,
    },

    /// No engine answers on the API socket, and starting one failed or timed out.
    #[error("no engine answers on {}: {detail}; its log: {}", socket.display(), log.display())]
    EngineUnavailable {
        socket: PathBuf,
        detail: String,
        log: PathBuf,
    },

    /// A host step failed for a reason that is only a message (no foreign error behind it).
    #[error("{what} failed: {detail}")]
    Host { what: String, detail: String },

    /// A sandbox's screen could not be reached, captured or saved.
    #[error("{what} failed: {source}")]
    Capture {
        what: String,
        #[source]
        source: CaptureError,
    },

    /// seccompiler refused to build one of our filters (a bug in our rule tables).
    #[error("building the seccomp filter failed: {source}")]
    Seccomp {
        #[source]
        source: seccompiler::BackendError,
    },

    /// tmux refused a command or its server did not answer; `detail` is what it said.
    #[error("{what} failed: {detail}")]
    Tmux { what: String, detail: String },

    /// Xvfb did not come up; `detail` says how far it got (with its log's tail).
    #[error("starting Xvfb failed: {detail}")]
    Xvfb { detail: String },

    /// Finding, recording or entering a running sandbox's namespaces. `detail` already names
    /// the cause, if any, for a one-line display; `source` keeps it for the chain.
    #[error("{what} failed: {detail}")]
    Namespace {
        what: String,
        detail: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The read-only git view or its sync helper; `detail` is what git said.
    #[error("{what} failed: {detail}")]
    GitView { what: String, detail: String },

    /// One of our own JSON files could not be encoded or decoded.
    #[error("{what} failed: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A system facility (a pipe, descriptors, randomness) refused us.
    #[error("{what} failed: {source}")]
    Os {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// TLS to an upstream could not be set up: its trusted roots or its configuration.
    #[error("{what} failed: {source}")]
    Tls {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A task of the engine's runtime ended without its answer (it panicked or was cancelled).
    #[error("{what} failed: {source}")]
    Task {
        what: String,
        #[source]
        source: tokio::task::JoinError,
    },

    #[error("{what}: {why}")]
    InvalidArgument { what: String, why: String },

    /// Reaching another host's engine (over ssh) failed; `detail` says how, with what ssh
    /// said when it said anything.
    #[error("{host}: {detail}")]
    Remote { host: String, detail: String },

    /// The command that reaches another host (ssh) could not be started.
    #[error("{host}: starting {command:?} failed: {source}")]
    RemoteStart {
        host: String,
        command: String,
        #[source]
        source: std::io::Error,
    },

    /// Another host's engine speaks another protocol version (`docs/protocol.md`, Versions).
    #[error(
        "{host}: its engine speaks protocol version {theirs} and this sandbox-deck speaks {ours}; install the same sandbox-deck on both ends (and restart the engine there: `sandbox-deck serve`)"
    )]
    ProtocolMismatch {
        host: String,
        theirs: u32,
        ours: u32,
    },

    /// Another host's engine refused a command: its error kind (one of ours) and message.
    #[error("{host}: {message}")]
    Refused {
        host: String,
        kind: &'static str,
        message: String,
    },

    /// The engine, reached over its API, refused or failed a command (or could not be
    /// reached): `kind` as the engine named it, `message` as it said it.
    #[error("{message}")]
    Api { kind: &'static str, message: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Every error kind a client of the API may be answered with (`docs/protocol.md`).
pub const API_KINDS: &[&str] = &[
    "invalid_name",
    "invalid_project_dir",
    "not_found",
    "already_exists",
    "wrong_state",
    "corrupt_registry",
    "newer_schema",
    "config",
    "profile",
    "missing_binary",
    "start_failed",
    "engine_unavailable",
    "host",
    "invalid_argument",
    "io",
    "internal",
    "bad_request",
    "unknown_command",
    "forbidden",
    "busy",
    "protocol_version",
];

impl DeckError {
    /// The stable machine-readable name of this error, used in `{"error":{"kind":…}}`.
    pub fn kind(&self) -> &'static str {
        match self {
            DeckError::InvalidName { .. } => "invalid_name",
            DeckError::InvalidProjectDir { .. } => "invalid_project_dir",
            DeckError::NotFound { .. } => "not_found",
            DeckError::AlreadyExists { .. } => "already_exists",
            DeckError::WrongState { .. } => "wrong_state",
            DeckError::CorruptRegistry { .. } => "corrupt_registry",
            DeckError::NewerSchema { .. } => "newer_schema",
            DeckError::Config { .. } => "config",
            DeckError::Profile { .. } => "profile",
            DeckError::MissingBinary { .. } => "missing_binary",
            DeckError::StartFailed { .. } => "start_failed",
            DeckError::EngineUnavailable { .. } => "engine_unavailable",
            // The causes split out of `Host` keep its kind: `--json` users parse it.
            DeckError::Host { .. }
            | DeckError::Capture { .. }
            | DeckError::Seccomp { .. }
            | DeckError::Tmux { .. }
            | DeckError::Xvfb { .. }
            | DeckError::Namespace { .. }
            | DeckError::GitView { .. }
            | DeckError::Json { .. }
            | DeckError::Os { .. }
            | DeckError::Task { .. }
            | DeckError::Tls { .. } => "host",
            DeckError::InvalidArgument { .. } => "invalid_argument",
            DeckError::Io { .. } => "io",
            DeckError::Remote { .. } | DeckError::RemoteStart { .. } => "remote",
            DeckError::ProtocolMismatch { .. } => "protocol_version",
            DeckError::Refused { kind, .. } => kind,
            DeckError::Api { kind, .. } => kind,
        }
    }

    /// An error the engine reported over the API, its kind kept when it is one we know
    /// (`internal` otherwise: a newer engine's kind has no meaning here).
    pub fn api(kind: &str, message: impl Into<String>) -> Self {
        DeckError::Api {
            kind: API_KINDS
                .iter()
                .find(|k| **k == kind)
                .copied()
                .unwrap_or("internal"),
            message: message.into(),
        }
    }

    /// A remote engine's error kind as one of ours (the API sends them as strings); a kind
    /// this version does not know is `remote`.
    pub fn known_kind(kind: &str) -> &'static str {
        API_KINDS
            .iter()
            .find(|k| **k == kind)
            .copied()
            .unwrap_or("remote")
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DeckError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn host(what: impl Into<String>, detail: impl Into<String>) -> Self {
        DeckError::Host {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn tmux(what: impl Into<String>, detail: impl Into<String>) -> Self {
        DeckError::Tmux {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn xvfb(detail: impl Into<String>) -> Self {
        DeckError::Xvfb {
            detail: detail.into(),
        }
    }

    /// A namespace step that failed with no foreign error behind it.
    pub fn namespace(what: impl Into<String>, detail: impl Into<String>) -> Self {
        DeckError::Namespace {
            what: what.into(),
            detail: detail.into(),
            source: None,
        }
    }

    /// A namespace step that failed because of `source`, which `detail` already mentions.
    pub fn namespace_because(
        what: impl Into<String>,
        detail: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        DeckError::Namespace {
            what: what.into(),
            detail: detail.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn git_view(what: impl Into<String>, detail: impl Into<String>) -> Self {
        DeckError::GitView {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub fn capture(what: impl Into<String>, source: CaptureError) -> Self {
        DeckError::Capture {
            what: what.into(),
            source,
        }
    }

    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        DeckError::Json {
            what: what.into(),
            source,
        }
    }

    pub fn os(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        DeckError::Os {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The kernel's randomness refused us. getrandom's error (without its `std` feature) is
    /// no `std::error::Error`: its errno is kept as the cause.
    pub fn randomness(what: impl Into<String>, error: getrandom::Error) -> Self {
        let source = error.raw_os_error().map_or_else(
            || std::io::Error::other(error.to_string()),
            std::io::Error::from_raw_os_error,
        );
        DeckError::os(what, source)
    }

    pub fn task(what: impl Into<String>, source: tokio::task::JoinError) -> Self {
        DeckError::Task {
            what: what.into(),
            source,
        }
    }
}

impl From<seccompiler::BackendError> for DeckError {
    fn from(source: seccompiler::BackendError) -> Self {
        DeckError::Seccomp { source }
    }
}

/// One line for an error and its causes, like anyhow's `{:#}`, but a cause whose text the
/// line already holds is not repeated: our variants show their cause in their own message
/// (so a bare `to_string()`, as the TUI's flash uses, says it all) and keep it as `source`.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

/// Adds a context line to an `io::Result`, turning it into a `DeckError`.
pub trait IoContext<T> {
    fn context_io(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context_io(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| DeckError::io(context(), source))
    }
}

/// Why a screen could not be captured (see `capture`).
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("display :{display} is gone ({detail})")]
    DisplayGone { display: u32, detail: String },
    /// The server did not answer in time: a client of the sandbox may hold a server grab.
    #[error(
        "screen busy: display :{display} did not answer within {waited_ms} ms (a program in the sandbox may be holding the X server)"
    )]
    Busy { display: u32, waited_ms: u64 },
    #[error("the X server refused us: {0}")]
    X11(String),
    #[error("depth {0} is not supported (24 and 32 are)")]
    UnsupportedDepth(u8),
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn io_error() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOENT)
    }

    /// A task that was cancelled before it answered.
    fn join_error() -> tokio::task::JoinError {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let task = tokio::spawn(std::future::pending::<()>());
            task.abort();
            task.await.unwrap_err()
        })
    }

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<u32>("not json").unwrap_err()
    }

    /// Every variant with the `kind` users parse; one sample each, so a new variant without
    /// a row here is a visible gap.
    // A table, one row a variant: it grows with the enum and reads best whole.
    #[allow(clippy::too_many_lines)]
    fn samples() -> Vec<(DeckError, &'static str)> {
        let path = PathBuf::from("/x");
        let s = String::from;
        vec![
            (DeckError::InvalidName { name: s("A") }, "invalid_name"),
            (
                DeckError::InvalidProjectDir {
                    path: path.clone(),
                    why: s("gone"),
                },
                "invalid_project_dir",
            ),
            (DeckError::NotFound { name: s("a") }, "not_found"),
            (DeckError::AlreadyExists { name: s("a") }, "already_exists"),
            (
                DeckError::WrongState {
                    name: s("a"),
                    state: s("dead"),
                    hint: s("restart it"),
                },
                "wrong_state",
            ),
            (
                DeckError::CorruptRegistry {
                    path: path.clone(),
                    detail: s("eof"),
                },
                "corrupt_registry",
            ),
            (
                DeckError::NewerSchema {
                    path: path.clone(),
                    found: 9,
                    supported: 1,
                },
                "newer_schema",
            ),
            (
                DeckError::Config {
                    path: s("c.toml"),
                    message: s("bad"),
                },
                "config",
            ),
            (
                DeckError::Profile {
                    path: path.clone(),
                    message: s("bad"),
                },
                "profile",
            ),
            (
                DeckError::EngineUnavailable {
                    socket: path.clone(),
                    detail: s("it exited"),
                    log: path,
                },
                "engine_unavailable",
            ),
            (
                DeckError::MissingBinary {
                    binary: s("bwrap"),
                    install: s("install it"),
                },
                "missing_binary",
            ),
            (
                DeckError::StartFailed {
                    name: s("a"),
                    status: s("exit 1"),
                    last_line: s("boom"),
                    last_lines: s("boom"),
                },
                "start_failed",
            ),
            (DeckError::host("x", "y"), "host"),
            (
                DeckError::capture(
                    "taking a screenshot",
                    crate::capture::CaptureError::X11(s("no")),
                ),
                "host",
            ),
            (
                seccompiler::BackendError::InvalidArgumentNumber.into(),
                "host",
            ),
            (DeckError::tmux("tmux new-session", "no server"), "host"),
            (DeckError::xvfb("it vanished"), "host"),
            (DeckError::namespace("joining the sandbox", "gone"), "host"),
            (DeckError::git_view("reading a git index", "bad"), "host"),
            (
                DeckError::json("encoding the registry", json_error()),
                "host",
            ),
            (DeckError::os("creating a pipe", io_error()), "host"),
            (DeckError::task("finding the sandbox", join_error()), "host"),
            (
                DeckError::Tls {
                    what: s("setting up TLS for the API"),
                    source: Box::new(io_error()),
                },
                "host",
            ),
            (
                DeckError::Remote {
                    host: s("box"),
                    detail: s("ssh: connection refused"),
                },
                "remote",
            ),
            (
                DeckError::RemoteStart {
                    host: s("box"),
                    command: s("ssh"),
                    source: io_error(),
                },
                "remote",
            ),
            (
                DeckError::InvalidArgument {
                    what: s("--since"),
                    why: s("bad"),
                },
                "invalid_argument",
            ),
            (DeckError::io("reading /x", io_error()), "io"),
        ]
    }

    #[test]
    fn every_variant_keeps_its_stable_kind() {
        for (error, kind) in samples() {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }

    #[test]
    fn the_causes_split_out_of_host_keep_its_message_shape() {
        let e = DeckError::capture(
            "taking a screenshot",
            crate::capture::CaptureError::X11("no".into()),
        );
        assert_eq!(
            e.to_string(),
            "taking a screenshot failed: the X server refused us: no"
        );
        assert_eq!(
            DeckError::xvfb("it vanished").to_string(),
            "starting Xvfb failed: it vanished"
        );
        assert_eq!(
            DeckError::tmux("tmux kill-session", "denied").to_string(),
            "tmux kill-session failed: denied"
        );
    }

    #[test]
    fn a_foreign_cause_survives_as_the_source() {
        let e = DeckError::os("creating a pipe", io_error());
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.and_then(std::io::Error::raw_os_error),
            Some(libc::ENOENT)
        );

        let e = DeckError::json("encoding the registry", json_error());
        assert!(e.source().unwrap().is::<serde_json::Error>());

        let e: DeckError = seccompiler::BackendError::InvalidArgumentNumber.into();
        assert!(e.source().unwrap().is::<seccompiler::BackendError>());

        let e = DeckError::namespace_because("joining the sandbox", "unreadable", io_error());
        assert!(e.source().unwrap().is::<std::io::Error>());
        assert!(
            DeckError::namespace("joining the sandbox", "gone")
                .source()
                .is_none()
        );
    }

    #[test]
    fn a_chain_two_deep_survives_through_the_capture_error() {
        let inner = crate::capture::CaptureError::Io {
            context: "writing shot.png".into(),
            source: io_error(),
        };
        let e = DeckError::capture("writing the screenshot", inner);
        let capture = e.source().expect("the capture error");
        assert!(capture.is::<crate::capture::CaptureError>());
        assert!(capture.source().unwrap().is::<std::io::Error>());
    }

    #[test]
    fn a_report_names_each_cause_once() {
        let e = DeckError::io("reading /x", io_error());
        let shown = io_error().to_string();
        assert_eq!(report(&e), format!("reading /x: {shown}"));
        let wrapped = anyhow::Error::new(e).context("loading the registry");
        assert_eq!(
            report(wrapped.as_ref()),
            format!("loading the registry: reading /x: {shown}")
        );
        // A cause the message does not mention yet is appended, as anyhow's `{:#}` does.
        let bare = anyhow::Error::new(io_error()).context("outer");
        assert_eq!(report(bare.as_ref()), format!("outer: {shown}"));
    }
}
