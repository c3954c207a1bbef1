//! The engine handle of `sandbox-deck mirror HOST`: the API's [`RemoteEngine`] over an ssh
//! tunnel, reconnecting through a new tunnel when the old one ends (the host rebooted, the
//! laptop slept), and attaching with `ssh -t HOST sandbox-deck attach NAME` in this
//! terminal: the engine's own attach command is a tmux client on its host.

use std::collections::HashMap;

use super::Destination;
use super::connection::{ConnectOptions, HostConnection};
use crate::api::client::Client;
use crate::api::remote::{Reconnect, RemoteEngine};
use crate::engine::host_stats::HostStats;
use crate::engine::usage::UsageSummary;
use crate::engine::{Action, AgentReading, AttachCommand, EngineHandle, EngineInfo, ScreenSource};
use crate::error::{DeckError, Result};
use crate::metrics::SandboxMetrics;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};

pub struct MirrorEngine {
    destination: Destination,
    options: ConnectOptions,
    remote: RemoteEngine,
}

impl MirrorEngine {
    /// Connects to `destination`'s engine. `runtime` runs the connections (the first and
    /// every reconnection, made from the front end's blocking threads).
    pub async fn connect(
        destination: Destination,
        options: ConnectOptions,
        runtime: tokio::runtime::Handle,
        screen_fps: f64,
    ) -> Result<MirrorEngine> {
        let client = client_of(&destination, &options).await?;
        let reconnect: Reconnect = {
            let (destination, options) = (destination.clone(), options.clone());
            Box::new(move || runtime.block_on(client_of(&destination, &options)))
        };
        let remote = RemoteEngine::new(client, Some(reconnect), screen_fps).await?;
        Ok(MirrorEngine {
            destination,
            options,
            remote,
        })
    }
}

impl MirrorEngine {
    /// An error of the API client, naming the host it came from (a reconnection's own
    /// errors name it already).
    fn named(&self, error: DeckError) -> DeckError {
        match error {
            DeckError::Api { kind, message } => DeckError::Refused {
                host: self.destination.to_string(),
                kind,
                message,
            },
            other => other,
        }
    }
}

async fn client_of(destination: &Destination, options: &ConnectOptions) -> Result<Client> {
    Ok(HostConnection::open(destination, options)
        .await?
        .into_client())
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

    /// `ssh -t … HOST sandbox-deck attach NAME`: the host's own attach (its status line,
    /// C-q) in this terminal. Ours is detached from no terminal: ssh may ask for a
    /// passphrase here, in the foreground.
    fn attach_command(&self, name: &SandboxName) -> Result<AttachCommand> {
        let argv = self.options.ssh.attach(&self.destination, name);
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

    fn files_are_here(&self) -> bool {
        false
    }
}
