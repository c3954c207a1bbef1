//! `start NAME`: a stopped, exited or dead sandbox runs again, its agent resuming.

use crate::cli::NAME_HELP;
use crate::cli::output::print_state;
use crate::engine::{Action, Deck};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// Start a new conversation even when there is one to resume.
    #[arg(long)]
    pub fresh: bool,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let record = deck.execute(Action::Start {
        name: args.name,
        fresh: args.fresh,
    })?;
    print_state(&record, json)?;
    Ok(0)
}
