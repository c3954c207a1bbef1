//! `launch BACKEND [DIR]`: a sandbox in this terminal, outside the control center (what the
//! Nix launchers exec), or joining, entering or stopping the project's running one.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::output::show_notices;
use crate::cli::sandbox_args::CommonArgs;
use crate::engine::CreateRequest;
use crate::engine::Deck;
use crate::engine::launch::{LaunchMode, LaunchRequest};
use crate::sandbox::{BackendKind, Payload};

pub(crate) const LONG_ABOUT: &str = "\
Run a sandbox in this terminal, outside the control center: no tmux session and no display of
its own. It is registered while it runs (`list` shows it, `stop` ends it) and unregistered when
it ends.

This is what the launchers call. A launcher is a small wrapper built from the Nix sandbox spec:
`claude-sandbox DIR` execs `sandbox-deck launch bubblewrap --profile <its profile JSON> DIR`,
so the agent runs with exactly the tools that spec lists. Without Nix, call `launch` yourself:
the built-in host profile uses the host's /usr and the `claude` on PATH.

A second launch in a project that already has a running sandbox joins it (runs the agent
inside it); --new starts another, --enter opens a shell in it and --stop ends it.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backend (bubblewrap; containers and VMs come later).
    pub backend: BackendKind,
    /// The project directory (default: the current directory).
    pub dir: Option<PathBuf>,
    /// The name it is registered under (default: from the directory name).
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    /// `host`: the host's X11/Wayland display, for use on a desktop (default: none).
    #[arg(long, value_enum)]
    pub display: Option<DisplayChoice>,
    /// A shell inside the project's running sandbox.
    #[arg(long, group = "mode")]
    pub enter: bool,
    /// Stop the project's running sandbox (its whole process tree).
    #[arg(long, group = "mode")]
    pub stop: bool,
    /// Start a fresh sandbox even when the project has one running (default: join it).
    #[arg(long, group = "mode")]
    pub new: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Arguments for the agent, or with --shell the command to run.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DisplayChoice {
    None,
    Host,
}

impl Args {
    fn mode(&self) -> LaunchMode {
        if self.enter {
            LaunchMode::Enter
        } else if self.stop {
            LaunchMode::Stop
        } else if self.new {
            LaunchMode::New
        } else {
            LaunchMode::JoinOrStart
        }
    }
}

pub fn exec(args: Args, _json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let mode = args.mode();
    let project_dir = match args.dir {
        Some(dir) => dir,
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let host_display = args.display == Some(DisplayChoice::Host);
    let options = args
        .common
        .options(&deck.config.bubblewrap.options(), host_display);
    let prepared = deck.launch_foreground(LaunchRequest {
        backend: args.backend,
        sandbox: CreateRequest {
            project_dir,
            name: args.name,
            payload: Payload::new(args.common.shell, args.args),
            network: args.common.network(),
            allow: args.common.allow.clone(),
            gh_token: args.common.gh_token,
            profile: args.common.profile,
            options,
        },
        mode,
    });
    show_notices(&prepared.notices);
    Ok(deck.run_foreground(prepared.outcome?)?)
}
