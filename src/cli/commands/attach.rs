//! `attach NAME`: this terminal becomes the sandbox's tmux client.

use std::os::unix::process::CommandExt;

use anyhow::Context;

use crate::cli::NAME_HELP;
use crate::engine::Deck;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
}

/// Returns only on failure: on success this process becomes the tmux client.
pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let mut command = deck.attach_command(&args.name)?;
    let err = command.exec();
    Err(err).context("running tmux attach")
}
