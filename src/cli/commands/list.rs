//! `list` (also the bare `sandbox-deck` when not on a terminal): every sandbox, reconciled
//! with what really runs.

use crate::api::protocol::Command;
use crate::cli::output::print_json;
use crate::cli::remote::{self, SshArg};
use crate::cli::table::{Align, Table, Width};
use crate::engine::Deck;
use crate::error::DeckError;
use crate::format::{human_duration, shorten_left};
use crate::remote::Destination;
use crate::sandbox::{SandboxRecord, SandboxState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List another host's sandboxes, through `ssh [USER@]HOST sandbox-deck bridge`; given
    /// more than once, one table of all of them with a HOST column (and a `host` field in
    /// --json).
    #[arg(long = "host", value_name = "[USER@]HOST")]
    pub hosts: Vec<Destination>,
    #[command(flatten)]
    pub ssh: SshArg,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    if args.hosts.is_empty() {
        let deck = Deck::open()?;
        print_list(&deck.list()?, json)?;
        return Ok(0);
    }
    let (listed, failed) = list_hosts(&args.hosts, &args.ssh);
    print_hosts(&listed, json)?;
    match failed {
        Some(error) => Err(error.into()),
        None => Ok(0),
    }
}

/// Every host's list, asked of all hosts at once, in the order given; the hosts that
/// failed make one error naming each.
fn list_hosts(
    hosts: &[Destination],
    ssh: &SshArg,
) -> (Vec<(Destination, Vec<SandboxRecord>)>, Option<DeckError>) {
    let asked: Vec<_> = hosts
        .iter()
        .map(|host| {
            let (host, ssh) = (host.clone(), ssh.clone());
            std::thread::spawn(move || {
                let records = remote::call::<Vec<SandboxRecord>>(&host, &ssh, Command::List {});
                (host, records)
            })
        })
        .collect();
    let mut listed = Vec::new();
    let mut failures = Vec::new();
    for thread in asked {
        match thread.join() {
            Ok((host, Ok(records))) => listed.push((host, records)),
            Ok((_, Err(error))) => failures.push(error),
            Err(_) => failures.push(DeckError::host("listing a host", "its thread panicked")),
        }
    }
    let failed = match failures.len() {
        0 => None,
        1 => failures.pop(),
        _ => Some(DeckError::Remote {
            host: "several hosts".into(),
            detail: failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }),
    };
    (listed, failed)
}

/// One host: its list as on that host (plus `host` in --json). Several: a HOST column.
fn print_hosts(listed: &[(Destination, Vec<SandboxRecord>)], json: bool) -> anyhow::Result<()> {
    if json {
        let mut merged = Vec::new();
        for (host, records) in listed {
            for record in records {
                let mut value = serde_json::to_value(record)?;
                value["host"] = host.as_str().into();
                merged.push(value);
            }
        }
        return print_json(&merged);
    }
    match listed {
        [(_, records)] => print_list(records, false),
        _ => {
            let rows: Vec<(Option<&Destination>, &SandboxRecord)> = listed
                .iter()
                .flat_map(|(host, records)| records.iter().map(move |r| (Some(host), r)))
                .collect();
            print_rows(&rows)
        }
    }
}

/// The table on stdout; on stderr, why a sandbox that should run cannot be reached.
pub(crate) fn print_list(records: &[SandboxRecord], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&records);
    }
    let rows: Vec<(Option<&Destination>, &SandboxRecord)> =
        records.iter().map(|r| (None, r)).collect();
    print_rows(&rows)
}

/// The table of `rows`, with a HOST column when they name their hosts.
fn print_rows(rows: &[(Option<&Destination>, &SandboxRecord)]) -> anyhow::Result<()> {
    if rows.is_empty() {
        say!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return Ok(());
    }
    for line in table(rows).lines() {
        say!("{line}");
    }
    for (host, r) in rows {
        if let Some(why) = &r.unreachable {
            let on = host.map(|h| format!(" (on {h})")).unwrap_or_default();
            eprintln!(
                "sandbox-deck: {}{on} is {} but unreachable: {why}",
                r.name, r.state
            );
        }
    }
    Ok(())
}

fn table(rows: &[(Option<&Destination>, &SandboxRecord)]) -> Table {
    let home = std::env::var("HOME").unwrap_or_default();
    let with_hosts = rows.iter().any(|(host, _)| host.is_some());
    let mut table = Table::new(" ");
    if with_hosts {
        table = table.column("HOST", Align::Left, Width::AtLeast(12));
    }
    let mut table = table
        .column("NAME", Align::Left, Width::AtLeast(20))
        .column("BACKEND", Align::Left, Width::AtLeast(11))
        .column("STATE", Align::Left, Width::AtLeast(10))
        .column("DISPLAY", Align::Left, Width::AtLeast(8))
        .column("NET", Align::Left, Width::AtLeast(6))
        .column("UPTIME", Align::Left, Width::AtLeast(8))
        .column("PROJECT", Align::Left, Width::AtLeast(0));
    for (host, r) in rows {
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
        let mut cells = Vec::new();
        if with_hosts {
            cells.push(host.map_or("-".into(), |h| h.as_str().to_owned()));
        }
        cells.extend([
            r.name.to_string(),
            r.backend.as_str().to_owned(),
            state.to_owned(),
            r.display.map_or("-".into(), |d| format!(":{d}")),
            r.network.to_string(),
            uptime,
            shorten_left(&project, Some(&home), usize::MAX),
        ]);
        table.row(cells);
    }
    table
}
