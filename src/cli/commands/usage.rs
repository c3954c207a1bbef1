//! `usage [NAME]`: Claude tokens and cost from the agents' logs, deduplicated, one row per
//! project, session, day, model or 5-hour block.

use crate::api::protocol::Command;
use crate::cli::output::print_json;
use crate::cli::remote::{self, HostArgs};
use crate::cli::table::{Align, Table, Width};
use crate::engine::Deck;
use crate::format::printable_line;
use crate::usage::{GroupBy, Report, Totals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A sandbox's name (see `sandbox-deck list`): only its project's usage.
    pub name: Option<String>,
    /// Only usage from this day on (YYYY-MM-DD, local time).
    #[arg(long)]
    pub since: Option<String>,
    /// One row per project (default), session, day, model or 5-hour block.
    #[arg(long, value_enum, default_value_t = GroupBy::Project)]
    pub by: GroupBy,
    #[command(flatten)]
    pub remote: HostArgs,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let report = match &args.remote.host {
        Some(host) => {
            let command = Command::UsageReport {
                name: args.name,
                since: args.since,
                by: Some(args.by),
            };
            remote::call(host, &args.remote.ssh, command)?
        }
        None => match from_engine(&args) {
            Some(report) => {
                tracing::debug!("usage: the report came from the engine");
                report
            }
            None => {
                tracing::debug!("usage: no engine answered for these roots: reporting here");
                let deck = Deck::open()?;
                let query =
                    deck.usage_query(args.name.as_deref(), args.since.as_deref(), args.by)?;
                let mut index = deck.usage_index();
                let report = deck.usage_report(&mut index, &query)?;
                // The process ends once the report is printed: freeing every entry of the
                // index one by one first would only cost time.
                std::mem::forget(index);
                report
            }
        },
    };
    if json {
        print_json(&report)?;
    } else {
        print_usage(&report);
    }
    Ok(0)
}

/// How long the engine may take to answer before the report is made here instead.
const ENGINE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The report from the engine (`serve`) of this user, when one answers on its socket: its
/// index is kept current by inotify, so it answers without loading the cache or walking
/// the logs. None (and the report is made here) when no engine answers, it fails or is
/// slow, or it reads other roots than this process would (another `CLAUDE_CONFIG_DIR`).
fn from_engine(args: &Args) -> Option<Report> {
    let paths = crate::paths::Paths::from_env().ok()?;
    let stream =
        crate::engine::service::connect(&crate::engine::service::api_socket(&paths)).ok()??;
    stream.set_nonblocking(true).ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let command = Command::UsageReport {
        name: args.name.clone(),
        since: args.since.clone(),
        by: Some(args.by),
    };
    let ask = async {
        let stream = tokio::net::UnixStream::from_std(stream).ok()?;
        let client = crate::api::client::Client::connect(stream).await.ok()?;
        client.send(command).await.ok()
    };
    let value = runtime
        .block_on(async { tokio::time::timeout(ENGINE_PATIENCE, ask).await })
        .ok()??;
    let report: Report = serde_json::from_value(value).ok()?;
    (report.roots == crate::usage::roots_from_env()).then_some(report)
}

/// How many skipped files the human summary names (`--json` has them all).
const SKIPPED_SHOWN: usize = 10;

fn print_usage(report: &Report) {
    if report.files == 0 {
        let roots: Vec<String> = report
            .roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        say!(
            "no matching Claude Code logs under {} (CLAUDE_CONFIG_DIR sets where to look)",
            roots.join(", ")
        );
        return;
    }
    for line in table(report).lines() {
        say!("{line}");
    }
    print_skipped(report);
    for u in &report.unknown_models {
        say!(
            "no price for model {:?} ({} entries, {} tokens): counted as $0; add it under [usage.prices]",
            u.model,
            u.entries,
            u.total_tokens
        );
    }
    print_block_and_limit(report);
}

fn table(report: &Report) -> Table {
    let label = match report.by {
        GroupBy::Project => "PROJECT",
        GroupBy::Session => "SESSION",
        GroupBy::Day => "DAY",
        GroupBy::Model => "MODEL",
        GroupBy::Block => "BLOCK (UTC start)",
    };
    let mut table = Table::new("  ").column(label, Align::Left, Width::Fit);
    for header in [
        "INPUT",
        "OUTPUT",
        "CACHE WRITE",
        "CACHE READ",
        "TOTAL",
        "COST",
        "ENTRIES",
    ] {
        table = table.column(header, Align::Right, Width::Fit);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let shorten = |key: &str| -> String {
        if report.by == GroupBy::Project && !home.is_empty() && key.starts_with(&home) {
            format!("~{}", &key[home.len()..])
        } else {
            key.to_owned()
        }
    };
    for row in &report.rows {
        let mut key = printable_line(&shorten(&row.key)).into_owned();
        if let Some(sandbox) = &row.sandbox {
            key = format!("{sandbox} ({key})");
        }
        if row.block.as_ref().is_some_and(|b| b.active) {
            key.push_str(" (active)");
        }
        table.row(cells(key, &row.totals));
    }
    table.row(cells("TOTAL".into(), &report.totals));
    table
}

fn cells(key: String, t: &Totals) -> Vec<String> {
    vec![
        key,
        t.input_tokens.to_string(),
        t.output_tokens.to_string(),
        t.cache_creation_tokens.to_string(),
        t.cache_read_tokens.to_string(),
        t.total_tokens.to_string(),
        format!("${:.2}", t.cost_usd),
        t.entries.to_string(),
    ]
}

/// Lines that could not be read and files that were not followed.
fn print_skipped(report: &Report) {
    if report.totals.skipped_lines > 0 {
        say!(
            "skipped {} line(s) that could not be read ({} malformed)",
            report.totals.skipped_lines,
            report.malformed_lines
        );
    }
    if report.skipped_files.is_empty() {
        return;
    }
    say!(
        "skipped {} file(s) that are not plain logs (never followed or read):",
        report.skipped_files.len()
    );
    for f in report.skipped_files.iter().take(SKIPPED_SHOWN) {
        say!(
            "  {}: {} ({})",
            printable_line(&f.path.to_string_lossy()),
            f.reason.as_str(),
            printable_line(&f.detail)
        );
    }
    if report.skipped_files.len() > SKIPPED_SHOWN {
        say!("  … and more: `sandbox-deck usage --json` lists them all");
    }
}

/// The current 5-hour block with its burn rate, and when a reached limit resets.
fn print_block_and_limit(report: &Report) {
    if let Some(block) = &report.active_block {
        say_more!(
            "current 5-hour block: {} to {} UTC, ${:.2} so far",
            block.start.format("%H:%M"),
            block.end.format("%H:%M"),
            block.totals.cost_usd
        );
        if let (Some(rate), Some(p)) = (&block.burn_rate, &block.projection) {
            say_more!(
                ", {:.0} tokens/min, projected ${:.2} at its end ({})",
                rate.tokens_per_minute,
                p.cost_usd,
                p.note
            );
        }
        say!();
    }
    if let Some(reset) = report.limit_resets_at.filter(|r| *r > chrono::Utc::now()) {
        say!("usage limit reached; resets at {}", reset.to_rfc3339());
    }
}
