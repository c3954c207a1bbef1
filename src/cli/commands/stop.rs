//! `stop NAME`: the agent interrupted, then killed after a timeout.

use crate::api::protocol::Command;
use crate::cli::NAME_HELP;
use crate::cli::output::print_state;
use crate::cli::remote::{self, HostArgs};
use crate::engine::{Action, Deck};
use crate::sandbox::SandboxName;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let name = SandboxName::parse(&args.name)?;
    let record = match &args.remote.host {
        Some(host) => remote::call(
            host,
            &args.remote.ssh,
            Command::Stop {
                name: name.to_string(),
            },
        )?,
        None => Deck::open()?.execute(Action::Stop { name })?,
    };
    print_state(&record, json)?;
    Ok(0)
}
