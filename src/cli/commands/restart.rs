//! `restart NAME`: stop, then start the same sandbox.

use crate::api::protocol::Command;
use crate::cli::NAME_HELP;
use crate::cli::output::print_state;
use crate::cli::remote::{self, HostArgs};
use crate::engine::Deck;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// Start a new conversation even when there is one to resume.
    #[arg(long)]
    pub fresh: bool,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let record = match &args.remote.host {
        Some(host) => remote::call(
            host,
            &args.remote.ssh,
            Command::Restart {
                name: args.name,
                fresh: args.fresh,
            },
        )?,
        None => Deck::open()?.restart(&args.name, args.fresh)?,
    };
    print_state(&record, json)?;
    Ok(0)
}
