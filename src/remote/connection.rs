//! One host's engine, connected: the ssh [`Tunnel`] and the API [`Client`] over it. Every
//! failure becomes a [`DeckError`] that names the host: the engine's own refusals keep
//! their kind (`not_found` stays `not_found`, so `--json` and exit statuses are the same
//! as on the host), a different protocol version names both, and a tunnel that breaks is
//! explained from how ssh ended.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Destination, SshCommand, Tunnel};
use crate::api::client::{Client, ClientError, decode};
use crate::api::protocol::{Command, PROTOCOL_VERSION};
use crate::capture::Frame;
use crate::error::{DeckError, Result};
use crate::sandbox::SandboxName;

/// How long one command may take on the other host before we give up on it: longer than
/// any create or stop takes, short of a hang.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a screenshot waits for the first frame of a screen.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(20);

pub struct HostConnection {
    tunnel: Tunnel,
    client: Client,
}

/// How a connection is made.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub ssh: SshCommand,
    /// For ssh, the handshake and the engine's greeting together.
    pub timeout: Duration,
    /// ssh in a session of its own, away from our terminal (see [`Tunnel::open`]).
    pub detach: bool,
}

impl HostConnection {
    /// Starts ssh and greets the engine behind it, within `options.timeout`.
    pub async fn open(destination: &Destination, options: &ConnectOptions) -> Result<Self> {
        let (mut tunnel, stream) = Tunnel::open(&options.ssh, destination, options.detach)?;
        match tokio::time::timeout(options.timeout, Client::connect(stream)).await {
            Ok(Ok(client)) => Ok(HostConnection { tunnel, client }),
            Ok(Err(ClientError::VersionMismatch { engine, .. })) => {
                Err(DeckError::ProtocolMismatch {
                    host: destination.to_string(),
                    theirs: engine,
                    ours: PROTOCOL_VERSION,
                })
            }
            Ok(Err(e)) => Err(tunnel.explain(&e.to_string()).await),
            Err(_) => {
                let what = format!(
                    "no answer from the engine within {}s",
                    options.timeout.as_secs()
                );
                Err(tunnel.explain(&what).await)
            }
        }
    }

    pub fn destination(&self) -> &Destination {
        self.tunnel.destination()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `command` there and reads its result as `T`.
    pub async fn call<T: DeserializeOwned>(&mut self, command: Command) -> Result<T> {
        let what = command.name();
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, self.client.send(command)).await;
        match reply {
            Ok(result) => match result.and_then(decode) {
                Ok(value) => Ok(value),
                Err(e) => Err(self.failure(e).await),
            },
            Err(_) => Err(DeckError::Remote {
                host: self.destination().to_string(),
                detail: format!(
                    "its engine did not answer `{what}` within {}s",
                    COMMAND_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// The current picture of `name`'s screen, as the engine sends it to a watcher.
    pub async fn screenshot(&mut self, name: &SandboxName) -> Result<Frame> {
        let (mut frames, reply) = self.client.subscribe_screen(name, 1.0);
        if let Err(e) = reply.await {
            return Err(self.failure(e).await);
        }
        match tokio::time::timeout(FIRST_FRAME_TIMEOUT, frames.next()).await {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(e)) => Err(self.failure(e).await),
            Err(_) => Err(DeckError::Remote {
                host: self.destination().to_string(),
                detail: format!(
                    "no frame of {name}'s screen arrived within {}s",
                    FIRST_FRAME_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// A client error in our terms: the engine's refusal with its kind, anything else
    /// explained by the tunnel.
    async fn failure(&mut self, error: ClientError) -> DeckError {
        match error {
            ClientError::Engine { kind, message } => DeckError::Refused {
                host: self.destination().to_string(),
                kind: DeckError::known_kind(&kind),
                message,
            },
            other => self.tunnel.explain(&other.to_string()).await,
        }
    }

    /// The client alone, for as long as the connection lasts: ssh is kept by a task of
    /// its own until it exits (the client's end closes its stdin), or the runtime ends.
    pub fn into_client(self) -> Client {
        let HostConnection { tunnel, client } = self;
        tokio::spawn(tunnel.wait());
        client
    }

    /// Ends the connection and ssh.
    pub async fn close(self) {
        drop(self.client);
        self.tunnel.close().await;
    }
}
