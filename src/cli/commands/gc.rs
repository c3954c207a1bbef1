//! `gc`: the state dirs of projects no sandbox uses, removed after a yes (or with --yes).
//! Under --json without --yes it only lists them.

use std::io::Write;

use crate::cli::output::print_json;
use crate::engine::Deck;
use crate::engine::gc::OrphanState;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove without asking.
    #[arg(long, short)]
    pub yes: bool,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let orphans = deck.orphaned_project_states()?;
    if !json {
        if orphans.is_empty() {
            say!("no project state without a sandbox");
            return Ok(0);
        }
        list(&orphans);
    }
    let remove = args.yes || (!json && confirmed(orphans.len())?);
    let removed = if remove && !orphans.is_empty() {
        deck.remove_project_states(&orphans)?
    } else {
        Vec::new()
    };
    if json {
        print_json(&serde_json::json!({ "orphans": orphans, "removed": removed }))?;
    } else if remove {
        say!("removed {} dir(s)", removed.len());
    } else {
        say!("nothing removed (`sandbox-deck gc --yes` removes them)");
    }
    Ok(0)
}

fn list(orphans: &[OrphanState]) {
    for o in orphans {
        let project = o
            .project
            .as_ref()
            .map_or("(unknown project)".into(), |p| p.display().to_string());
        let mib = o.bytes as f64 / 1_048_576.0;
        say!("{}  {mib:.1} MiB  {project}", o.dir.display());
    }
}

/// A yes typed on a terminal; never asks when stdin is not one.
fn confirmed(count: usize) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    say_more!("remove these {count} dir(s)? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
