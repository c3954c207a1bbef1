//! The command line: every action as a subcommand, each with `--json`.
//!
//! This module parses (the clap [`Cli`] and its global flags), dispatches and reports errors.
//! Each subcommand is one file under `commands/` with its arguments (`Args`) and what it
//! does (`exec`); `output` and `table` are what they print with.

use clap::{Parser, Subcommand};

use crate::engine::Deck;
use crate::error::DeckError;

/// Human output. Names, reasons, paths and keys can come from a sandbox (hook messages,
/// transcript fields, file names), so every line printed for people goes through the one
/// sanitizer, [`crate::format::printable`]; `--json` output is escaped by
/// [`output::print_json`].
macro_rules! say {
    () => { println!() };
    ($($arg:tt)*) => { println!("{}", crate::format::printable(&format!($($arg)*))) };
}

/// [`say!`] without the newline.
macro_rules! say_more {
    ($($arg:tt)*) => { print!("{}", crate::format::printable(&format!($($arg)*))) };
}

/// [`say!`] on stderr.
macro_rules! tell {
    ($($arg:tt)*) => { eprintln!("{}", crate::format::printable(&format!($($arg)*))) };
}

mod commands;
pub mod docs;
mod output;
mod remote;
mod sandbox_args;
mod table;

use commands::*;

#[derive(Debug, Parser)]
#[command(
    name = "sandbox-deck",
    version,
    about = "Run AI coding agents in sandboxes and keep an eye on them"
)]
pub struct Cli {
    /// Print machine-readable JSON (errors too, as {"error":{"kind","message"}} on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// How the control center draws screens (default: ui.image_protocol, "auto" asks the terminal).
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub image_protocol: Option<crate::config::ImageProtocol>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// Every subcommand; the order is the order of `--help`.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make a sandbox for a project: its own display, a tmux session, the agent inside.
    Create(create::Args),
    /// List sandboxes.
    #[command(alias = "ls")]
    List(list::Args),
    /// Show one sandbox.
    Show(show::Args),
    /// Stop a sandbox gracefully (agent interrupted, then killed after a timeout).
    Stop(stop::Args),
    /// Start a stopped, exited or dead sandbox again. The agent resumes its last conversation
    /// (--continue) when the project has one, else it starts a new one.
    Start(start::Args),
    /// Stop a sandbox and start it again (same sandbox, same id; the agent resumes as with start).
    Restart(restart::Args),
    /// Remove a sandbox and its files.
    #[command(alias = "remove")]
    Rm(rm::Args),
    /// List the state dirs of projects that no sandbox uses, and remove them (after asking).
    Gc(gc::Args),
    /// Attach this terminal to a sandbox's session (C-q comes back).
    Attach(attach::Args),
    /// Run a sandbox in this terminal, outside the control center (what the launchers call).
    #[command(long_about = launch::LONG_ABOUT)]
    Launch(launch::Args),
    /// Save a PNG of a sandbox's display.
    Screenshot(screenshot::Args),
    /// Check the host's prerequisites and say how to install what is missing.
    Doctor(doctor::Args),
    /// The agent state of every sandbox (or NAME): starting, working, waiting, idle, exited, dead.
    Status(status::Args),
    /// What a sandbox's pane printed while the control center watched (its pane log).
    Logs(logs::Args),
    /// Claude tokens and cost from the agents' logs, deduplicated (all logs, or NAME's project).
    Usage(usage::Args),
    /// Run the engine headless, with its websocket API on a unix socket (docs/protocol.md).
    ///
    /// One monitor loop for every client: sandboxes, agent states, metrics, usage and host
    /// stats are read once and pushed to the clients when they change; notify.command runs
    /// here, once per event. The socket is <runtime dir>/sandbox-deck/api.sock (0600, other
    /// users refused); --listen adds a loopback TCP port that takes a bearer token. Sandboxes
    /// never depend on the engine: they keep running when it stops or is killed, and a new
    /// engine finds them.
    Serve(serve::Args),
    /// Connect stdin and stdout to this host's engine (started if need be): `ssh HOST
    /// sandbox-deck bridge` is how a mirror reaches it.
    #[command(long_about = bridge::LONG_ABOUT)]
    Bridge(bridge::Args),
    /// The control center on this terminal for another host's sandboxes (or several hosts'
    /// in one table), through `ssh -T HOST sandbox-deck bridge` (your ssh config and keys
    /// apply).
    Mirror(mirror::Args),
    /// Print the shell completion script for SHELL (see the README for where it goes).
    Completions(completions::Args),
    /// Print the man page, or with DIR write one page per command there (sandbox-deck.1,
    /// sandbox-deck-create.1, …).
    Man(man::Args),
    /// Internal: keeps a sandbox's view of the project's git dir and the host's in step.
    #[command(hide = true)]
    GitSync(git_sync::Args),
    /// The credential proxy-mode agents use without ever holding it: hand it over on stdin
    /// (`claude setup-token` makes one), see whether one is set, or remove it.
    #[command(long_about = auth::LONG_ABOUT)]
    Auth(auth::Args),
    /// A proxy-mode sandbox's egress: its proxy's last decisions, or allow/deny a host.
    Net(net::Args),
    /// Internal: a `--network proxy` sandbox's egress proxy.
    #[command(hide = true)]
    EgressProxy(egress_proxy::Args),
    /// Internal: the command tmux runs in a managed sandbox's pane.
    #[command(hide = true)]
    RunManaged(run_managed::Args),
}

/// The help of every NAME argument.
const NAME_HELP: &str = "The sandbox's name, as `sandbox-deck list` shows it";

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            report_error(&error, json);
            1
        }
    }
}

/// Help and version print as usual; a usage mistake under `--json` is a JSON error too.
fn usage_error(error: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let wants_json = std::env::args().any(|a| a == "--json");
    let is_info = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if wants_json && !is_info {
        let message = error.render().to_string();
        let body = serde_json::json!({ "error": { "kind": "usage", "message": message.trim() } });
        eprintln!("{}", output::escape_json_controls(&body.to_string()));
        return 2;
    }
    // Printing help or a usage error to a closed stdout/stderr: the exit code still says it.
    let _ = error.print();
    error.exit_code()
}

fn report_error(error: &anyhow::Error, json: bool) {
    let kind = error
        .chain()
        .find_map(|e| e.downcast_ref::<DeckError>())
        .map_or("internal", DeckError::kind);
    let message = crate::error::report(error.as_ref());
    if json {
        let body = serde_json::json!({ "error": { "kind": kind, "message": message } });
        eprintln!("{}", output::escape_json_controls(&body.to_string()));
    } else {
        tell!("sandbox-deck: {message}");
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let json = cli.json;
    let Some(command) = cli.command else {
        return run_without_command(cli.image_protocol, json);
    };
    match command {
        Cmd::Create(args) => create::exec(args, json),
        Cmd::List(args) => list::exec(args, json),
        Cmd::Show(args) => show::exec(args, json),
        Cmd::Stop(args) => stop::exec(args, json),
        Cmd::Start(args) => start::exec(args, json),
        Cmd::Restart(args) => restart::exec(args, json),
        Cmd::Rm(args) => rm::exec(args, json),
        Cmd::Gc(args) => gc::exec(args, json),
        Cmd::Attach(args) => attach::exec(args, json),
        Cmd::Launch(args) => launch::exec(args, json),
        Cmd::Screenshot(args) => screenshot::exec(args, json),
        Cmd::Doctor(args) => doctor::exec(args, json),
        Cmd::Status(args) => status::exec(args, json),
        Cmd::Logs(args) => logs::exec(args, json),
        Cmd::Usage(args) => usage::exec(args, json),
        Cmd::Serve(args) => serve::exec(args, json),
        Cmd::Bridge(args) => bridge::exec(args, json),
        Cmd::Mirror(args) => mirror::exec(args, json),
        Cmd::Completions(args) => completions::exec(args, json),
        Cmd::Man(args) => man::exec(args, json),
        Cmd::GitSync(args) => git_sync::exec(args, json),
        Cmd::EgressProxy(args) => egress_proxy::exec(args, json),
        Cmd::Auth(args) => auth::exec(args, json),
        Cmd::Net(args) => net::exec(args, json),
        Cmd::RunManaged(args) => run_managed::exec(args, json),
    }
}

/// On a terminal the control center opens; piped or with --json, the list is printed.
fn run_without_command(
    image_protocol: Option<crate::config::ImageProtocol>,
    json: bool,
) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    if !json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        crate::tui::run(image_protocol)?;
        return Ok(0);
    }
    let deck = Deck::open()?;
    list::print_list(&deck.list()?, json)?;
    Ok(0)
}

#[cfg(test)]
mod tests;
