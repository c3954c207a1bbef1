//! `mirror [USER@]HOST`: the control center on this terminal, the sandboxes of another host
//! (through `ssh -T HOST sandbox-deck bridge`); `mirror ws://127.0.0.1:PORT --token-file F`
//! through a tunnel the user made to `serve --listen`.

use std::path::PathBuf;

use crate::cli::remote::SshArg;
use crate::config::ImageProtocol;
use crate::error::DeckError;
use crate::remote::target::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The host whose sandboxes to show, as ssh takes it (an alias of your ssh config too),
    /// or ws://127.0.0.1:PORT, the local end of a tunnel to `serve --listen`.
    #[arg(value_name = "[USER@]HOST", required = true)]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub ssh: SshArg,
    /// With ws://…: the file holding the listener's token (yours, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// How screens are drawn (default: ui.image_protocol, "auto" asks the terminal).
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub image_protocol: Option<ImageProtocol>,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    let [host] =
        <[String; 1]>::try_from(args.hosts).map_err(|hosts| DeckError::InvalidArgument {
            what: format!("{} hosts", hosts.len()),
            why: "one mirror shows one host in this version: start one per host \
                  (`list --host a --host b` lists several)"
                .into(),
        })?;
    let target = Target::parse(&host, args.token_file)?;
    // ssh away from the terminal the TUI takes over: it must never prompt there.
    let options = args.ssh.options(true)?;
    crate::tui::mirror(target, options, args.image_protocol)?;
    Ok(0)
}
