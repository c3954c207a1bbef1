//! How a request to the engine, or the connection to it, failed (the client's errors).

/// Why a request or the connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The stream or the websocket failed (connecting, reading or writing).
    #[error("talking to the engine failed: {0}")]
    Transport(String),
    /// The engine speaks another protocol version; nothing else was read.
    #[error(
        "the engine speaks protocol version {engine} (sandbox-deck {engine_version}) and this client speaks version {client} (sandbox-deck {client_version}): stop that engine and start `sandbox-deck serve` from the same sandbox-deck as this client"
    )]
    VersionMismatch {
        engine: u32,
        engine_version: String,
        client: u32,
        client_version: String,
    },
    /// The connection is gone; every request waiting on it fails with this.
    #[error("the connection to the engine ended: {reason}")]
    Closed { reason: String },
    /// The engine answered the command with an error: `kind` is the `--json` error kind
    /// (`not_found`, `wrong_state`, …) or the API's own (`bad_request`, `forbidden`, `busy`).
    #[error("{message}")]
    Engine { kind: String, message: String },
    /// The engine sent something this client cannot read.
    #[error("the engine sent a message this client cannot read: {0}")]
    Malformed(String),
}

impl ClientError {
    /// The machine-readable kind: the engine's for [`ClientError::Engine`], else
    /// `engine_unavailable` (transport, closed), `protocol_version` or `internal`.
    pub fn kind(&self) -> &str {
        match self {
            ClientError::Engine { kind, .. } => kind,
            ClientError::Transport(_) | ClientError::Closed { .. } => "engine_unavailable",
            ClientError::VersionMismatch { .. } => "protocol_version",
            ClientError::Malformed(_) => "internal",
        }
    }
}
