//! `net NAME [allow|deny RULE] [--once|--session|--always]`: a proxy-mode sandbox's egress
//! decisions and held connections, its own rules, and the answers to held connections.

use crate::cli::NAME_HELP;
use crate::egress::held::Scope;
use crate::engine::Deck;
use crate::engine::egress::EgressAnswer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Change {
    /// Add RULE to the sandbox's own allowlist (kept in its record).
    Allow,
    /// Remove RULE from it.
    Deny,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without a change: the connections held for an answer (a host no rule \
names waits egress.hold_seconds), then the last decisions of the sandbox's proxy (time, \
kind, host:port, allowed or why not, bytes up and down), from egress.log in its state dir. \
`allow RULE` (HOST, HOST:PORT, *.SUFFIX[:PORT] or an IP address) adds a rule to the \
sandbox's own list, for a running proxy at once and for every later start (--always, the \
default), and lets the held connections it matches through; --once lets only those held \
now through, --session also every later one while the proxy runs. `deny RULE` removes one \
of its own rules (the shared list in the config stays) and refuses the held connections it \
matches."
)]
pub struct Args {
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// allow or deny.
    #[arg(value_enum, requires = "rule")]
    pub change: Option<Change>,
    /// The rule to add or remove.
    pub rule: Option<String>,
    /// Allow only the connections held now.
    #[arg(long, group = "scope", requires = "change")]
    pub once: bool,
    /// Allow while the sandbox's proxy runs (until the sandbox stops).
    #[arg(long, group = "scope", requires = "change")]
    pub session: bool,
    /// Allow for good: the rule goes in the sandbox's own list (the default).
    #[arg(long, group = "scope", requires = "change")]
    pub always: bool,
    /// How many decisions to show.
    #[arg(long, default_value_t = 50)]
    pub last: usize,
}

impl Args {
    /// The scope asked for; `None` if none was named.
    fn scope(&self) -> Option<Scope> {
        [
            (self.once, Scope::Once),
            (self.session, Scope::Session),
            (self.always, Scope::Always),
        ]
        .into_iter()
        .find_map(|(given, scope)| given.then_some(scope))
    }
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    if let (Some(change), Some(rule)) = (args.change, &args.rule) {
        let allow = match change {
            Change::Allow => Some(args.scope().unwrap_or(Scope::Always)),
            Change::Deny if args.scope().is_some() => {
                anyhow::bail!("--once, --session and --always go with allow, not deny")
            }
            Change::Deny => None,
        };
        let done = deck.egress_answer(&args.name, rule, allow)?;
        print_answer(&done, json);
        return Ok(0);
    }
    let held = deck.egress_held(&args.name)?;
    let decisions = deck.egress_decisions(&args.name, args.last)?;
    if json {
        for h in &held {
            let mut value = serde_json::to_value(h)?;
            value["held"] = true.into();
            println!("{value}");
        }
        for d in &decisions {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(0);
    }
    for h in &held {
        say!(
            "{} {:<7} {} HELD, waiting for an answer (net {} allow|deny {})",
            h.since.format("%Y-%m-%d %H:%M:%S"),
            h.kind,
            h.target(),
            args.name,
            h.target()
        );
    }
    for d in &decisions {
        let verdict = match (d.allowed, &d.reason, d.approved) {
            (true, None, Some(scope)) => format!("allowed by the user ({})", scope_word(scope)),
            (true, None, None) => "allowed".to_string(),
            (true, Some(why), _) => format!("allowed, failed: {why}"),
            (false, why, _) => format!("denied: {}", why.as_deref().unwrap_or("")),
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

fn scope_word(scope: Scope) -> &'static str {
    match scope {
        Scope::Once => "once",
        Scope::Session => "session",
        Scope::Always => "always",
    }
}

fn print_answer(done: &EgressAnswer, json: bool) {
    let record = &done.record;
    let answered: Vec<String> = done.answered.iter().map(|h| h.target()).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({ "name": record.name, "allow": record.allow, "answered": answered })
        );
        return;
    }
    say!(
        "{}: its own rules: {}",
        record.name,
        if record.allow.is_empty() {
            "none".to_string()
        } else {
            record.allow.join(", ")
        }
    );
    if !answered.is_empty() {
        say!("answered held: {}", answered.join(", "));
    }
}
