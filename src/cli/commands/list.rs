//! `list` (also the bare `sandbox-deck` when not on a terminal): every sandbox, reconciled
//! with what really runs.

use crate::cli::output::print_json;
use crate::cli::table::{Align, Table, Width};
use crate::engine::Deck;
use crate::format::{human_duration, shorten_left};
use crate::sandbox::{SandboxRecord, SandboxState};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    print_list(&deck.list()?, json)?;
    Ok(0)
}

/// The table on stdout; on stderr, why a sandbox that should run cannot be reached.
pub(crate) fn print_list(records: &[SandboxRecord], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&records);
    }
    if records.is_empty() {
        say!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return Ok(());
    }
    for line in table(records).lines() {
        say!("{line}");
    }
    for r in records {
        if let Some(why) = &r.unreachable {
            eprintln!(
                "sandbox-deck: {} is {} but unreachable: {why}",
                r.name, r.state
            );
        }
    }
    Ok(())
}

fn table(records: &[SandboxRecord]) -> Table {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut table = Table::new(" ")
        .column("NAME", Align::Left, Width::AtLeast(20))
        .column("BACKEND", Align::Left, Width::AtLeast(11))
        .column("STATE", Align::Left, Width::AtLeast(10))
        .column("DISPLAY", Align::Left, Width::AtLeast(8))
        .column("NET", Align::Left, Width::AtLeast(6))
        .column("UPTIME", Align::Left, Width::AtLeast(8))
        .column("PROJECT", Align::Left, Width::AtLeast(0));
    for r in records {
        let uptime = match (r.state, r.started_at) {
            (SandboxState::Running, Some(t)) => human_duration(chrono::Utc::now() - t),
            _ => "-".into(),
        };
        let state = if r.unreachable.is_some() {
            "unreachable"
        } else {
            r.state.as_str()
        };
        let project = r.project_dir.as_path().display().to_string();
        table.row(vec![
            r.name.to_string(),
            r.backend.as_str().to_owned(),
            state.to_owned(),
            r.display.map_or("-".into(), |d| format!(":{d}")),
            r.network.to_string(),
            uptime,
            shorten_left(&project, Some(&home), usize::MAX),
        ]);
    }
    table
}
