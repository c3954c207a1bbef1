//! `create DIR`: a managed sandbox with its own display, a tmux session and the agent.

use std::path::PathBuf;

use crate::api::protocol::Command;
use crate::cli::output::print_record;
use crate::cli::remote::{HostArgs, Remote};
use crate::cli::sandbox_args::CommonArgs;
use crate::engine::{Action, CreateRequest, Deck, EngineInfo};
use crate::error::DeckError;
use crate::sandbox::{Payload, SandboxRecord};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory, shared read-write at its own path (with --host: an absolute
    /// path on that host).
    pub dir: PathBuf,
    /// The sandbox's name (default: from the directory name).
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub remote: HostArgs,
    /// Arguments for the agent, or with --shell the command to run.
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn exec(args: Args, json: bool) -> anyhow::Result<i32> {
    let record = match args.remote.host.clone() {
        Some(host) => create_there(&host, args)?,
        None => create_here(args)?,
    };
    print_record(&record, json)?;
    Ok(0)
}

fn create_here(args: Args) -> anyhow::Result<SandboxRecord> {
    let deck = Deck::open()?;
    let options = args
        .common
        .options(&deck.config.bubblewrap.options(), false);
    Ok(deck.execute(Action::Create(CreateRequest {
        project_dir: args.dir,
        name: args.name,
        payload: Payload::new(args.common.shell, args.args),
        network: args.common.network(),
        allow: args.common.allow.clone(),
        gh_token: args.common.gh_token,
        profile: args.common.profile,
        options,
    }))?)
}

/// The host's config opt-ins widened by the flags, as there; a profile is a local file and
/// stays local.
fn create_there(host: &crate::remote::Destination, args: Args) -> anyhow::Result<SandboxRecord> {
    if !args.dir.is_absolute() {
        return Err(DeckError::InvalidProjectDir {
            path: args.dir,
            why: format!("with --host it is a path on {host}, and must be absolute"),
        }
        .into());
    }
    if args.common.profile.is_some() {
        return Err(DeckError::InvalidArgument {
            what: "--profile".into(),
            why: format!(
                "is not available with --host (a profile is a file here; the sandbox on {host} takes that host's)"
            ),
        }
        .into());
    }
    let mut remote = Remote::connect(host, &args.remote.ssh)?;
    let info: EngineInfo = remote.call(Command::Info {})?;
    let options = args.common.options(&info.default_options, false);
    Ok(remote.call(Command::Create {
        project_dir: args.dir,
        name: args.name,
        shell: args.common.shell,
        args: args.args,
        network: args.common.network(),
        allow: args.common.allow,
        gh_token: args.common.gh_token,
        options,
    })?)
}
