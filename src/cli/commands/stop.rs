//! `stop NAME`: the agent interrupted, then killed after a timeout.

use crate::cli::NAME_HELP;
use crate::cli::output::print_state;
use crate::engine::{Action, Deck};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let record = deck.execute(Action::Stop { name: args.name })?;
    print_state(&record, json)?;
    Ok(0)
}
