//! `start NAME`: a stopped, exited or dead sandbox runs again, its agent resuming.

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
    /// Start a new conversation even when there is one to resume.
    #[arg(long)]
    pub fresh: bool,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let name = SandboxName::parse(&args.name)?;
    let record = match &args.remote.host {
        Some(host) => remote::call(
            host,
            &args.remote.ssh,
            Command::Start {
                name: name.to_string(),
                fresh: args.fresh,
            },
        )?,
        None => Deck::open()?.execute(Action::Start {
            name,
            fresh: args.fresh,
        })?,
    };
    print_state(&record, json)?;
    Ok(0)
}
