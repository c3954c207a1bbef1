//! `net NAME [allow|deny RULE]`: a proxy-mode sandbox's egress decisions, and its own rules.

use crate::cli::NAME_HELP;
use crate::engine::Deck;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Change {
    /// Add RULE to the sandbox's own allowlist (kept in its record).
    Allow,
    /// Remove RULE from it.
    Deny,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without a change: the last decisions of the sandbox's proxy (time, kind, \
host:port, allowed or why not, bytes up and down), from egress.log in its state dir. \
`allow RULE` (HOST, HOST:PORT, *.SUFFIX[:PORT] or an IP address) adds a rule to the \
sandbox's own list, for a running proxy at once and for every later start; `deny RULE` \
removes one of its own rules (the shared list in the config stays)."
)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// allow or deny.
    #[arg(value_enum, requires = "rule")]
    pub change: Option<Change>,
    /// The rule to add or remove.
    pub rule: Option<String>,
    /// How many decisions to show.
    #[arg(long, default_value_t = 50)]
    pub last: usize,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    if let (Some(change), Some(rule)) = (args.change, &args.rule) {
        let record = deck.egress_rule(&args.name, rule, change == Change::Allow)?;
        if json {
            println!(
                "{}",
                serde_json::json!({ "name": record.name, "allow": record.allow })
            );
        } else {
            say!(
                "{}: its own rules: {}",
                record.name,
                if record.allow.is_empty() {
                    "none".to_string()
                } else {
                    record.allow.join(", ")
                }
            );
        }
        return Ok(0);
    }
    let decisions = deck.egress_decisions(&args.name, args.last)?;
    if json {
        for d in &decisions {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(0);
    }
    for d in &decisions {
        let verdict = match (d.allowed, &d.reason) {
            (true, None) => "allowed".to_string(),
            (true, Some(why)) => format!("allowed, failed: {why}"),
            (false, why) => format!("denied: {}", why.as_deref().unwrap_or("")),
        };
        say!(
            "{} {:<7} {}:{} {} ({} B up, {} B down)",
            d.time.format("%Y-%m-%d %H:%M:%S"),
            d.kind,
            d.host,
            d.port,
            verdict,
            d.bytes_up,
            d.bytes_down
        );
    }
    Ok(0)
}
