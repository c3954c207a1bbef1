//! `mirror [USER@]HOST`: the control center on this terminal, the sandboxes of another host
//! (through `ssh -T HOST sandbox-deck bridge`).

use crate::cli::remote::SshArg;
use crate::config::ImageProtocol;
use crate::error::DeckError;
use crate::remote::Destination;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The host whose sandboxes to show, as ssh takes it (an alias of your ssh config too).
    #[arg(value_name = "[USER@]HOST", required = true)]
    pub hosts: Vec<Destination>,
    #[command(flatten)]
    pub ssh: SshArg,
    /// How screens are drawn (default: ui.image_protocol, "auto" asks the terminal).
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub image_protocol: Option<ImageProtocol>,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    let [host] =
        <[Destination; 1]>::try_from(args.hosts).map_err(|hosts| DeckError::InvalidArgument {
            what: format!("{} hosts", hosts.len()),
            why: "one mirror shows one host in this version: start one per host \
                  (`list --host a --host b` lists several)"
                .into(),
        })?;
    // ssh away from the terminal the TUI takes over: it must never prompt there.
    let options = args.ssh.options(true)?;
    crate::tui::mirror(host, options, args.image_protocol)?;
    Ok(0)
}
