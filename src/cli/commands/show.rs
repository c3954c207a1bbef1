//! `show NAME`: one sandbox's record.

use crate::cli::NAME_HELP;
use crate::cli::output::print_record;
use crate::engine::Deck;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    print_record(&deck.show(&args.name)?, json)?;
    Ok(0)
}
