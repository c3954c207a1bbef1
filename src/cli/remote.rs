//! `--host [USER@]HOST`: a subcommand run against another host's engine, reached as `ssh
//! HOST sandbox-deck bridge`, with the same output, `--json` shape and exit status as on
//! that host. The commands stay synchronous: each connection gets a small runtime of its
//! own for its ssh process and its API client.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::api::protocol::Command;
use crate::capture::Frame;
use crate::config::Config;
use crate::error::{DeckError, Result};
use crate::paths::Paths;
use crate::remote::connection::{ConnectOptions, HostConnection};
use crate::remote::{Destination, SshCommand};
use crate::sandbox::SandboxName;

/// `--host` and `--ssh` of a subcommand that runs on one host.
#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// Run it on another host, through `ssh [USER@]HOST sandbox-deck bridge` (same output,
    /// --json and exit status as there).
    #[arg(long, value_name = "[USER@]HOST")]
    pub host: Option<Destination>,
    #[command(flatten)]
    pub ssh: SshArg,
}

/// `--ssh`, for `--host` and `mirror`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SshArg {
    /// The ssh command (default: mirror.ssh_command, "ssh"), split like shell words and
    /// never run by a shell, e.g. 'ssh -p 2222'.
    #[arg(long = "ssh", value_name = "COMMAND")]
    pub command: Option<String>,
}

impl SshArg {
    /// How to connect: `--ssh` or the config's command, the config's timeout.
    pub fn options(&self, detach: bool) -> Result<ConnectOptions> {
        let paths = Paths::from_env()?;
        let config =
            Config::load_system_and_user(&Paths::system_config_file(), &paths.config_file())?;
        let ssh = match &self.command {
            Some(text) => SshCommand::parse(text, "--ssh")?,
            None => SshCommand::parse(&config.mirror.ssh_command, "mirror.ssh_command")?,
        };
        Ok(ConnectOptions {
            ssh,
            timeout: Duration::from_secs(config.mirror.connect_timeout_secs),
            detach,
        })
    }
}

/// A connection to one host, used from synchronous code.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    connection: Option<HostConnection>,
}

impl Remote {
    pub fn connect(destination: &Destination, ssh: &SshArg) -> Result<Remote> {
        let options = ssh.options(false)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeckError::os("starting the connection's runtime", e))?;
        let connection = runtime.block_on(HostConnection::open(destination, &options))?;
        Ok(Remote {
            runtime,
            connection: Some(connection),
        })
    }

    /// Runs `command` on the host and reads its result as `T`.
    pub fn call<T: DeserializeOwned>(&mut self, command: Command) -> Result<T> {
        let connection = self.connection.as_mut().expect("connected until dropped");
        self.runtime.block_on(connection.call(command))
    }

    /// The current picture of `name`'s screen.
    pub fn screenshot(&mut self, name: &SandboxName) -> Result<Frame> {
        let connection = self.connection.as_mut().expect("connected until dropped");
        self.runtime.block_on(connection.screenshot(name))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.runtime.block_on(connection.close());
        }
    }
}

/// Runs one command on `destination`: connect, call, close.
pub fn call<T: DeserializeOwned>(
    destination: &Destination,
    ssh: &SshArg,
    command: Command,
) -> Result<T> {
    Remote::connect(destination, ssh)?.call(command)
}
