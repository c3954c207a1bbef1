//! `run-managed` (internal): what tmux runs in a managed sandbox's pane. It becomes the
//! backend process, so the pane's exit status is the sandbox's.

use crate::cli::output::show_notices;
use crate::engine::Deck;
use crate::sandbox::SandboxId;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sandbox's id (the registry's, not its name, which can be reused).
    #[arg(long)]
    pub id: String,
    /// Resume the agent's last conversation (`claude --continue`).
    #[arg(long = "continue")]
    pub resume: bool,
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let id = SandboxId::try_from(args.id)?;
    let prepared = deck.prepare_managed(&id, args.resume);
    show_notices(&prepared.notices);
    match prepared
        .outcome
        .and_then(|launch| deck.exec_managed(launch))
    {
        Ok(never) => match never {},
        Err(e) => {
            // This runs in the pane: the message stays on screen (remain-on-exit).
            tell!("sandbox-deck: {e}");
            Ok(127)
        }
    }
}
