//! The engine handle of `sandbox-deck mirror HOST`: the API's [`RemoteEngine`] over an ssh
//! tunnel (or the TCP end of a tunnel the user made to `serve --listen`), reconnecting
//! through a new one when the old one ends (the host rebooted, the laptop slept; tries
//! spaced out while it stays down, see [`Backoff`]), and
//! attaching with `ssh -t HOST sandbox-deck attach NAME` in this terminal: the engine's own
//! attach command is a tmux client on its host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::backoff::Backoff;
use super::connection::{ConnectOptions, HostConnection};
use super::target::Target;
use crate::api::client::{Client, ClientError, IntoClientRequest};
use crate::api::protocol::PROTOCOL_VERSION;
use crate::api::remote::{Reconnect, RemoteEngine};
use crate::api::tcp::Token;
use crate::egress::held::{Held, Reply};
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::{Action, AgentReading, AttachCommand, EngineHandle, EngineInfo, ScreenSource};
use crate::error::{DeckError, Result};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};

pub struct MirrorEngine {
    link: Arc<Link>,
    remote: RemoteEngine,
}

/// How the engine is reached, again after every lost connection.
enum Link {
    Ssh {
        destination: super::Destination,
        options: ConnectOptions,
    },
    Tunnel {
        address: SocketAddr,
        token: Token,
        options: ConnectOptions,
    },
}

impl MirrorEngine {
    /// Connects to `target`'s engine. `runtime` runs the connections (the first and every
    /// reconnection, made from the front end's blocking threads).
    pub async fn connect(
        target: Target,
        options: ConnectOptions,
        runtime: tokio::runtime::Handle,
        screen_fps: f64,
    ) -> Result<MirrorEngine> {
        let link = Arc::new(Link::new(target, options)?);
        let client = link.client().await?;
        let reconnect: Reconnect = {
            let link = Arc::clone(&link);
            let backoff = Mutex::new(Backoff::default());
            Box::new(move || link.reconnect(&runtime, &backoff))
        };
        let remote = RemoteEngine::new(client, Some(reconnect), screen_fps).await?;
        Ok(MirrorEngine { link, remote })
    }

    /// Connects once, never again by itself: a fleet's host is kept up by a task of its
    /// own (see [`super::fleet`]), so no call of the front end ever waits on a reconnection.
    pub async fn connect_once(
        target: Target,
        options: ConnectOptions,
        screen_fps: f64,
    ) -> Result<MirrorEngine> {
        let link = Arc::new(Link::new(target, options)?);
        let client = link.client().await?;
        let remote = RemoteEngine::new(client, None, screen_fps).await?;
        Ok(MirrorEngine { link, remote })
    }

    /// Why the connection ended, once it did.
    pub fn closed(&self) -> Option<String> {
        self.remote.closed()
    }

    /// An error of the API client, naming where it came from (a reconnection's own errors
    /// name it already).
    fn named(&self, error: DeckError) -> DeckError {
        match error {
            DeckError::Api { kind, message } => DeckError::Refused {
                host: self.link.to_string(),
                kind,
                message,
            },
            other => other,
        }
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Ssh { destination, .. } => write!(f, "{destination}"),
            Link::Tunnel { address, .. } => write!(f, "ws://{address}"),
        }
    }
}

impl Link {
    fn new(target: Target, options: ConnectOptions) -> Result<Link> {
        Ok(match target {
            Target::Ssh(destination) => Link::Ssh {
                destination,
                options,
            },
            Target::Tunnel {
                address,
                token_file,
            } => Link::Tunnel {
                address,
                token: Token::read(&token_file)?,
                options,
            },
        })
    }

    /// A new connection unless the last tries failed too recently (see [`Backoff`]): then
    /// why they failed and when the next one is.
    fn reconnect(
        &self,
        runtime: &tokio::runtime::Handle,
        backoff: &Mutex<Backoff>,
    ) -> Result<Client> {
        let waiting = {
            let backoff = backoff.lock().unwrap_or_else(|p| p.into_inner());
            backoff
                .wait(Instant::now())
                .map(|(wait, why)| (wait, why.to_owned()))
        };
        if let Some((wait, why)) = waiting {
            let prefix = format!("{self}: ");
            let why = why.strip_prefix(&prefix).unwrap_or(&why);
            let secs = wait.as_secs().max(1);
            return Err(self.failed(format!("trying again in {secs}s: {why}")));
        }
        let result = runtime.block_on(self.client());
        let mut backoff = backoff.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(_) => backoff.succeeded(),
            Err(e) => backoff.failed(Instant::now(), e.to_string()),
        }
        result
    }

    /// A new connection, within the configured timeout.
    async fn client(&self) -> Result<Client> {
        match self {
            Link::Ssh {
                destination,
                options,
            } => Ok(HostConnection::open(destination, options)
                .await?
                .into_client()),
            Link::Tunnel {
                address,
                token,
                options,
            } => {
                let connecting = self.tunnel_client(*address, token);
                match tokio::time::timeout(options.timeout, connecting).await {
                    Ok(result) => result,
                    Err(_) => {
                        Err(self.failed(format!("no answer within {}s", options.timeout.as_secs())))
                    }
                }
            }
        }
    }

    /// TCP, then the handshake with the listener's `Host` and the bearer token.
    async fn tunnel_client(&self, address: SocketAddr, token: &Token) -> Result<Client> {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| self.failed(format!("connecting: {e}")))?;
        let mut request = format!("ws://{address}/")
            .into_client_request()
            .map_err(|e| self.failed(e.to_string()))?;
        let bearer = token
            .bearer()
            .parse()
            .map_err(|_| self.failed("the token is no header value".into()))?;
        request.headers_mut().insert("authorization", bearer);
        match Client::connect_with(stream, request).await {
            Ok(client) => Ok(client),
            Err(ClientError::VersionMismatch { engine, .. }) => Err(DeckError::ProtocolMismatch {
                host: self.to_string(),
                theirs: engine,
                ours: PROTOCOL_VERSION,
            }),
            Err(e) => Err(self.failed(e.to_string())),
        }
    }

    fn failed(&self, detail: String) -> DeckError {
        DeckError::Remote {
            host: self.to_string(),
            detail,
        }
    }
}

impl EngineHandle for MirrorEngine {
    fn info(&self) -> EngineInfo {
        self.remote.info()
    }

    fn list(&self) -> Result<Vec<SandboxRecord>> {
        self.remote.list().map_err(|e| self.named(e))
    }

    fn execute(&self, action: Action) -> Result<SandboxRecord> {
        self.remote.execute(action).map_err(|e| self.named(e))
    }

    fn restart(&self, name: &SandboxName, fresh: bool) -> Result<SandboxRecord> {
        self.remote.restart(name, fresh).map_err(|e| self.named(e))
    }

    fn start_commands(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, String> {
        self.remote.start_commands(records)
    }

    fn host_stats(&self) -> HostStats {
        self.remote.host_stats()
    }

    fn preview(&self, name: &SandboxName) -> Result<String> {
        self.remote.preview(name).map_err(|e| self.named(e))
    }

    fn agent_states(&self, records: &[SandboxRecord]) -> Vec<AgentReading> {
        self.remote.agent_states(records)
    }

    fn metrics(&self, records: &[SandboxRecord]) -> Option<HashMap<SandboxId, SandboxMetrics>> {
        self.remote.metrics(records)
    }

    fn usage_summary(&self) -> UsageSummary {
        self.remote.usage_summary()
    }

    fn egress_held(&self, records: &[SandboxRecord]) -> HashMap<SandboxId, Vec<Held>> {
        self.remote.egress_held(records)
    }

    fn egress_answer(&self, name: &SandboxName, rule: &str, reply: Reply) -> Result<SandboxRecord> {
        self.remote
            .egress_answer(name, rule, reply)
            .map_err(|e| self.named(e))
    }

    /// `ssh -t … HOST sandbox-deck attach NAME`: the host's own attach (its status line,
    /// C-q) in this terminal. Ours is detached from no terminal: ssh may ask for a
    /// passphrase here, in the foreground.
    fn attach_command(&self, name: &SandboxName) -> Result<AttachCommand> {
        let Link::Ssh {
            destination,
            options,
        } = self.link.as_ref()
        else {
            return Err(DeckError::InvalidArgument {
                what: "attach".into(),
                why: format!(
                    "a ws:// mirror reaches the engine, not the sandbox's terminal: mirror the \
                     host over ssh to attach to {name}"
                ),
            });
        };
        let argv = options.ssh.attach(destination, name);
        Ok(AttachCommand {
            program: argv[0].clone(),
            args: argv[1..].to_vec(),
            env_remove: Vec::new(),
        })
    }

    fn subscribe_screen(&self, name: &SandboxName) -> Result<Box<dyn ScreenSource>> {
        self.remote
            .subscribe_screen(name)
            .map_err(|e| self.named(e))
    }

    /// Listed by the engine, on its host (nothing from an engine without `paths`).
    fn complete_dir(&self, input: &str) -> Vec<String> {
        let command = crate::api::protocol::Command::CompleteDir {
            input: input.to_owned(),
        };
        self.remote.call(command).unwrap_or_default()
    }

    fn files_are_here(&self) -> bool {
        false
    }

    /// What the host's engine pushes wakes this laptop's workers.
    fn wakeups(&self) -> Option<crate::engine::wake::Wakeups> {
        self.remote.wakeups()
    }
}
