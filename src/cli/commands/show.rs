//! `show NAME`: one sandbox's record.

use crate::api::protocol::Command;
use crate::cli::NAME_HELP;
use crate::cli::output::print_record;
use crate::cli::remote::{self, HostArgs};
use crate::engine::Deck;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let record = match &args.remote.host {
        Some(host) => remote::call(host, &args.remote.ssh, Command::Show { name: args.name })?,
        None => Deck::open()?.show(&args.name)?,
    };
    print_record(&record, json)?;
    Ok(0)
}
