//! The sandbox options `create` and `launch` share.

use std::path::PathBuf;

use clap::Args;

use crate::backend::Options;
use crate::sandbox::Network;

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Run bash (or the command after --) instead of the agent.
    #[arg(long)]
    pub shell: bool,
    /// The network: `proxy` (only the allowlist's hosts, through a proxy the host runs),
    /// `host` (the host's network as it is) or `none`. Default: `sandbox.network` (proxy).
    #[arg(long, value_enum, conflicts_with = "no_network")]
    pub network: Option<Network>,
    /// A host its proxy also lets through: `HOST`, `HOST:PORT`, `*.SUFFIX[:PORT]` or an IP
    /// address (repeatable; proxy mode only).
    #[arg(long = "allow", value_name = "HOST[:PORT]")]
    pub allow: Vec<String>,
    /// Same as --network none.
    #[arg(long)]
    pub no_network: bool,
    /// Pass GH_TOKEN/GITHUB_TOKEN (or `gh auth token`) into the sandbox.
    #[arg(long)]
    pub gh_token: bool,
    /// A profile JSON (as generated from nix/sandbox-spec.nix); default: the host profile.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Expose the D-Bus session bus (it can start commands on the host).
    #[arg(long)]
    pub dbus: bool,
    /// Expose the SSH agent socket.
    #[arg(long)]
    pub ssh_agent: bool,
    /// Expose PipeWire/PulseAudio.
    #[arg(long)]
    pub audio: bool,
    /// Expose /dev/dri.
    #[arg(long)]
    pub gpu: bool,
}

impl CommonArgs {
    /// `--network`/`--no-network`, or None for the config's default.
    pub(super) fn network(&self) -> Option<Network> {
        if self.no_network {
            Some(Network::None)
        } else {
            self.network
        }
    }

    /// The config's opt-ins, widened by the flags.
    pub(super) fn options(&self, config: &Options, host_display: bool) -> Options {
        Options {
            host_display: config.host_display || host_display,
            dbus: config.dbus || self.dbus,
            ssh_agent: config.ssh_agent || self.ssh_agent,
            audio: config.audio || self.audio,
            gpu: config.gpu || self.gpu,
        }
    }
}
