//! `mirror [USER@]HOST…`: the control center on this terminal, the sandboxes of another host
//! (through `ssh -T HOST sandbox-deck bridge`), or of several in one table; `mirror ws://127.0.0.1:PORT --token-file F`
//! through a tunnel the user made to `serve --listen`.

use std::path::PathBuf;

use crate::cli::remote::SshArg;
use crate::config::ImageProtocol;
use crate::error::DeckError;
use crate::remote::target::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hosts whose sandboxes to show (several share one table), as ssh takes them (an
    /// alias of your ssh config too), or ws://127.0.0.1:PORT, the local end of a tunnel to
    /// `serve --listen`.
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
    // ssh away from the terminal the TUI takes over: it must never prompt there.
    let options = args.ssh.options(true)?;
    if let [host] = args.hosts.as_slice() {
        let target = Target::parse(host, args.token_file)?;
        crate::tui::mirror(target, options, args.image_protocol)?;
        return Ok(0);
    }
    let targets = fleet_targets(&args.hosts, args.token_file)?;
    crate::tui::fleet(targets, options, args.image_protocol)?;
    Ok(0)
}

/// Several hosts, each said once, all checked before the screen is taken. A token file
/// belongs to one tunnel, so it goes with one ws:// host alone.
fn fleet_targets(hosts: &[String], token_file: Option<PathBuf>) -> Result<Vec<Target>, DeckError> {
    if token_file.is_some() {
        return Err(DeckError::InvalidArgument {
            what: "--token-file".into(),
            why: "goes with one ws:// host; mirror a tunnel by itself".into(),
        });
    }
    let mut targets: Vec<Target> = Vec::new();
    for host in hosts {
        let target = Target::parse(host, None)?;
        if targets.contains(&target) {
            return Err(DeckError::InvalidArgument {
                what: host.clone(),
                why: "is given twice".into(),
            });
        }
        targets.push(target);
    }
    Ok(targets)
}
