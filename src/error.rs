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

    #[error("{what} failed: {detail}")]
    Host { what: String, detail: String },

    #[error("{what}: {why}")]
    InvalidArgument { what: String, why: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

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
            DeckError::Host { .. } => "host",
            DeckError::InvalidArgument { .. } => "invalid_argument",
            DeckError::Io { .. } => "io",
        }
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
