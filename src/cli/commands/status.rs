//! `status [NAME]`: the agent state of every sandbox (or one), with `--metrics` its CPU and
//! memory too.

use crate::api::protocol::Command;
use crate::cli::output::print_json;
use crate::cli::remote::{self, HostArgs};
use crate::cli::table::{Align, Table, Width};
use crate::engine::Deck;
use crate::engine::status::AgentState;
use crate::engine::status_report::StatusReport;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A sandbox's name (see `sandbox-deck list`); default: every sandbox.
    pub name: Option<String>,
    /// Also measure CPU and memory (two samples a second apart).
    #[arg(long)]
    pub metrics: bool,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    if let Some(host) = &args.remote.host {
        let command = Command::StatusReport {
            name: args.name,
            metrics: args.metrics,
        };
        let report: StatusReport = remote::call(host, &args.remote.ssh, command)?;
        print_report(&report, json)?;
        return Ok(0);
    }
    let deck = Deck::open()?;
    let records = match args.name {
        Some(name) => vec![deck.show(&name)?],
        None => deck.list()?,
    };
    print_report(&deck.status_report(&records, args.metrics), json)?;
    Ok(0)
}

/// The report as `--json` or as a table.
pub(crate) fn print_report(report: &StatusReport, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(report)
    } else {
        print_status(report);
        Ok(())
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
