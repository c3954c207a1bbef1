//! `auth`: the credential a `--network proxy` agent's proxy injects (see
//! `egress::credential`).

use std::io::Read;

use crate::egress::credential::{Credential, Kind};
use crate::engine::Deck;

pub const LONG_ABOUT: &str = "The credential proxy-mode agents use without ever holding it.

`auth --set` reads it from stdin (never an argument, never the environment) and keeps it \
0600 on this host: a long-lived OAuth token made once with `claude setup-token` (the \
default), or an API key with --kind api-key. From then on every new `--network proxy` \
sandbox gets a placeholder of its own in CLAUDE_CODE_OAUTH_TOKEN (or ANTHROPIC_API_KEY) and \
ANTHROPIC_BASE_URL=http://api.anthropic.com; its proxy checks the placeholder, puts the real \
credential in its place and sends the request on over TLS. The host's \
~/.claude/.credentials.json is then not shown inside.

`auth` alone says whether one is set (never the token); `auth --remove` removes it.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read the credential from stdin and keep it (0600).
    #[arg(long, conflicts_with = "remove")]
    pub set: bool,
    /// What --set reads.
    #[arg(long, value_enum, default_value = "oauth-token", requires = "set")]
    pub kind: Kind,
    /// Remove it: new sandboxes use the host's own login again.
    #[arg(long)]
    pub remove: bool,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let path = deck.paths.credential_file();
    if args.set {
        let mut text = String::new();
        std::io::stdin()
            .take(8192)
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("reading the credential from stdin: {e}"))?;
        Credential::new(args.kind, &text)?.store(&path)?;
        report(json, Some(args.kind));
    } else if args.remove {
        Credential::remove(&path)?;
        report(json, None);
    } else {
        report(json, Credential::load(&path)?.map(|c| c.kind));
    }
    Ok(0)
}

fn report(json: bool, kind: Option<Kind>) {
    let name = kind.map(|k| match k {
        Kind::OauthToken => "oauth_token",
        Kind::ApiKey => "api_key",
    });
    if json {
        println!("{}", serde_json::json!({ "credential": name }));
    } else {
        match name {
            Some(name) => {
                println!("credential: {name} (injected by proxy-mode sandboxes' proxies)")
            }
            None => println!("credential: none (agents use the host's own login)"),
        }
    }
}
