//! `status [NAME]`: the agent state of every sandbox (or one), with `--metrics` its CPU and
//! memory too.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::output::print_json;
use crate::cli::table::{Align, Table, Width};
use crate::engine::Deck;
use crate::engine::status::{AgentState, Source};
use crate::metrics::{HostMetrics, SandboxMetrics};
use crate::sandbox::{SandboxRecord, SandboxState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A sandbox's name (see `sandbox-deck list`); default: every sandbox.
    pub name: Option<String>,
    /// Also measure CPU and memory (two samples a second apart).
    #[arg(long)]
    pub metrics: bool,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let records = match args.name {
        Some(name) => vec![deck.show(&name)?],
        None => deck.list()?,
    };
    let report = status_report(&deck, &records, args.metrics);
    if json {
        print_json(&report)?;
    } else {
        print_status(&report);
    }
    Ok(0)
}

#[derive(Serialize)]
struct StatusReport {
    /// Always "single": the CLI takes one reading, so it is not debounced.
    sampling: &'static str,
    note: &'static str,
    sandboxes: Vec<StatusRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<HostMetrics>,
}

#[derive(Serialize)]
struct StatusRow {
    name: String,
    sandbox_state: SandboxState,
    /// None (null) for a shell sandbox: no agent runs there.
    state: Option<AgentState>,
    reason: String,
    source: Option<Source>,
    project: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<SandboxMetrics>,
}

fn status_report(deck: &Deck, records: &[SandboxRecord], metrics: bool) -> StatusReport {
    let snapshot = metrics
        .then(|| {
            let mut sampler = deck.metrics_sampler();
            sampler.sample(records);
            let pause = deck.config.metrics.interval_ms.min(1000);
            std::thread::sleep(std::time::Duration::from_millis(pause));
            sampler.sample(records)
        })
        .flatten();
    let sandboxes = records
        .iter()
        .map(|r| StatusRow {
            metrics: snapshot
                .as_ref()
                .and_then(|s| s.sandboxes.get(&r.id).cloned()),
            ..status_row(deck, r)
        })
        .collect();
    StatusReport {
        sampling: "single",
        note: "one reading, not debounced (the dashboard waits for two before showing idle)",
        sandboxes,
        host: snapshot.map(|s| s.host),
    }
}

/// One sandbox's row, without its metrics.
fn status_row(deck: &Deck, r: &SandboxRecord) -> StatusRow {
    let a = r.runs_agent().then(|| deck.agent_status(r));
    StatusRow {
        name: r.name.to_string(),
        sandbox_state: r.state,
        state: a.as_ref().map(|a| a.state),
        reason: match &r.unreachable {
            Some(why) => format!("unreachable: {why}"),
            None => a.as_ref().map_or_else(
                || format!("a shell sandbox (no agent); it is {}", r.state),
                |a| a.reason.clone(),
            ),
        },
        source: a.map(|a| a.source),
        project: r.project_dir.as_path().to_owned(),
        metrics: None,
    }
}

fn print_status(report: &StatusReport) {
    if report.sandboxes.is_empty() {
        say!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return;
    }
    let with_metrics = report.host.is_some();
    let mut table = Table::new(" ")
        .column("NAME", Align::Left, Width::AtLeast(20))
        .column("STATE", Align::Left, Width::AtLeast(9));
    if with_metrics {
        table = table
            .column("CPU(core)", Align::Right, Width::AtLeast(10))
            .column("MEM", Align::Right, Width::AtLeast(9));
    }
    table = table.column("REASON", Align::Left, Width::AtLeast(0));
    for row in &report.sandboxes {
        let mut cells = vec![
            row.name.clone(),
            row.state.map_or("-", AgentState::as_str).to_owned(),
        ];
        if with_metrics {
            cells.extend(match &row.metrics {
                Some(m) => [
                    format!("{:.1}%", m.cpu_percent_of_core),
                    format!("{:.1}M", m.rss_bytes as f64 / 1_048_576.0),
                ],
                None => ["-".into(), "-".into()],
            });
        }
        cells.push(crate::format::printable_line(&row.reason).into_owned());
        table.row(cells);
    }
    for line in table.lines() {
        say!("{line}");
    }
    say!("({})", report.note);
}
