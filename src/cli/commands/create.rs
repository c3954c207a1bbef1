//! `create DIR`: a managed sandbox with its own display, a tmux session and the agent.

use std::path::PathBuf;

use crate::cli::output::print_record;
use crate::cli::sandbox_args::CommonArgs;
use crate::engine::{Action, CreateRequest, Deck};
use crate::sandbox::Payload;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory, shared read-write at its own path.
    pub dir: PathBuf,
    /// The sandbox's name (default: from the directory name).
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Arguments for the agent, or with --shell the command to run.
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let options = args
        .common
        .options(&deck.config.bubblewrap.options(), false);
    let record = deck.execute(Action::Create(CreateRequest {
        project_dir: args.dir,
        name: args.name,
        payload: Payload::new(args.common.shell, args.args),
        network: args.common.network(),
        allow: args.common.allow.clone(),
        gh_token: args.common.gh_token,
        profile: args.common.profile,
        options,
    }))?;
    print_record(&record, json)?;
    Ok(0)
}
