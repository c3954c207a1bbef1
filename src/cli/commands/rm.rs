//! `rm NAME`: a sandbox and its files removed, with `--purge` its project's state too.

use crate::api::protocol::Command;
use crate::cli::NAME_HELP;
use crate::cli::output::print_json;
use crate::cli::remote::{HostArgs, Remote};
use crate::engine::gc::Purge;
use crate::engine::{Action, Deck};
use crate::sandbox::{SandboxName, SandboxRecord};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// Remove it even while it runs.
    #[arg(long, short)]
    pub force: bool,
    /// Also remove the project's state (browser profile, ~/.local, tmp) when no other
    /// sandbox uses the project.
    #[arg(long)]
    pub purge: bool,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let name = SandboxName::parse(&args.name)?;
    let (record, purged) = match &args.remote.host {
        Some(host) => {
            let mut remote = Remote::connect(host, &args.remote.ssh)?;
            let record: SandboxRecord = remote.call(Command::Rm {
                name: name.to_string(),
                force: args.force,
            })?;
            let purged = if args.purge {
                remote.call(Command::PurgeProject {
                    project_dir: record.project_dir.as_path().to_owned(),
                })?
            } else {
                Purge::NotAsked
            };
            (record, purged)
        }
        None => {
            let deck = Deck::open()?;
            let record = deck.execute(Action::Remove {
                name,
                force: args.force,
            })?;
            let purged = if args.purge {
                deck.purge_project_state(&record.project_dir)?
            } else {
                Purge::NotAsked
            };
            (record, purged)
        }
    };
    if json {
        let mut value = serde_json::to_value(&record)?;
        value["purge"] = serde_json::to_value(&purged)?;
        print_json(&value)?;
    } else {
        say!("removed {}", record.name);
        if let Some(note) = purged.describe() {
            say!("{note}");
        }
    }
    Ok(0)
}
