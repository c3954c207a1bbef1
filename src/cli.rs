//! The command line: every action as a subcommand, each with `--json`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::backend::Options;
use crate::doctor;
use crate::engine::launch::{LaunchMode, LaunchRequest};
use crate::engine::status::AgentState;
use crate::engine::{Action, CreateRequest, Deck};
use crate::error::DeckError;
use crate::sandbox::{BackendKind, Payload, SandboxId, SandboxRecord};
use crate::usage::{GroupBy, Report};

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

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make a sandbox for a project: its own display, a tmux session, the agent inside.
    Create(CreateArgs),
    /// List sandboxes.
    #[command(alias = "ls")]
    List,
    /// Show one sandbox.
    Show {
        #[arg(help = NAME_HELP)]
        name: String,
    },
    /// Stop a sandbox gracefully (agent interrupted, then killed after a timeout).
    Stop {
        #[arg(help = NAME_HELP)]
        name: String,
    },
    /// Start a stopped, exited or dead sandbox again. The agent resumes its last conversation
    /// (--continue) when the project has one, else it starts a new one.
    Start {
        #[arg(help = NAME_HELP)]
        name: String,
        /// Start a new conversation even when there is one to resume.
        #[arg(long)]
        fresh: bool,
    },
    /// Stop a sandbox and start it again (same sandbox, same id; the agent resumes as with start).
    Restart {
        #[arg(help = NAME_HELP)]
        name: String,
        /// Start a new conversation even when there is one to resume.
        #[arg(long)]
        fresh: bool,
    },
    /// Remove a sandbox and its files.
    #[command(alias = "remove")]
    Rm {
        #[arg(help = NAME_HELP)]
        name: String,
        /// Remove it even while it runs.
        #[arg(long, short)]
        force: bool,
        /// Also remove the project's state (browser profile, ~/.local, tmp) when no other
        /// sandbox uses the project.
        #[arg(long)]
        purge: bool,
    },
    /// List the state dirs of projects that no sandbox uses, and remove them (after asking).
    Gc {
        /// Remove without asking.
        #[arg(long, short)]
        yes: bool,
    },
    /// Attach this terminal to a sandbox's session (C-q comes back).
    Attach {
        #[arg(help = NAME_HELP)]
        name: String,
    },
    /// Run a sandbox in this terminal, outside the control center (what the launchers call).
    #[command(long_about = LAUNCH_ABOUT)]
    Launch {
        /// The backend (bubblewrap; containers and VMs come later).
        backend: BackendKind,
        #[command(flatten)]
        args: LaunchArgs,
    },
    /// Save a PNG of a sandbox's display.
    Screenshot {
        #[arg(help = NAME_HELP)]
        name: String,
        /// The PNG file, or `-` for stdout (default: NAME-<time>.png here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check the host's prerequisites and say how to install what is missing.
    Doctor,
    /// The agent state of every sandbox (or NAME): starting, working, waiting, idle, exited, dead.
    Status {
        /// A sandbox's name (see `sandbox-deck list`); default: every sandbox.
        name: Option<String>,
        /// Also measure CPU and memory (two samples a second apart).
        #[arg(long)]
        metrics: bool,
    },
    /// Claude tokens and cost from the agents' logs, deduplicated (all logs, or NAME's project).
    Usage {
        /// A sandbox's name (see `sandbox-deck list`): only its project's usage.
        name: Option<String>,
        /// Only usage from this day on (YYYY-MM-DD, local time).
        #[arg(long)]
        since: Option<String>,
        /// One row per project (default), session, day, model or 5-hour block.
        #[arg(long, value_enum, default_value_t = GroupBy::Project)]
        by: GroupBy,
    },
    /// Print the shell completion script for SHELL (see the README for where it goes).
    Completions {
        /// bash, zsh, fish (also elvish, powershell).
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or with DIR write one page per command there (sandbox-deck.1,
    /// sandbox-deck-create.1, …).
    Man {
        /// An existing directory, e.g. ~/.local/share/man/man1.
        dir: Option<PathBuf>,
    },
    /// Internal: keeps a sandbox's view of the project's git dir and the host's in step.
    #[command(hide = true)]
    GitSync {
        #[arg(long)]
        spec: std::path::PathBuf,
        #[arg(long)]
        pid: u32,
        #[arg(long)]
        start_time: u64,
        #[arg(long)]
        detach: bool,
    },
    /// Internal: the command tmux runs in a managed sandbox's pane.
    #[command(hide = true)]
    RunManaged {
        #[arg(long)]
        id: String,
        #[arg(long = "continue")]
        resume: bool,
    },
}

/// The help of every NAME argument.
const NAME_HELP: &str = "The sandbox's name, as `sandbox-deck list` shows it";

const LAUNCH_ABOUT: &str = "\
Run a sandbox in this terminal, outside the control center: no tmux session and no display of
its own. It is registered while it runs (`list` shows it, `stop` ends it) and unregistered when
it ends.

This is what the launchers call. A launcher is a small wrapper built from the Nix sandbox spec:
`claude-sandbox DIR` execs `sandbox-deck launch bubblewrap --profile <its profile JSON> DIR`,
so the agent runs with exactly the tools that spec lists. Without Nix, call `launch` yourself:
the built-in host profile uses the host's /usr and the `claude` on PATH.

A second launch in a project that already has a running sandbox joins it (runs the agent
inside it); --new starts another, --enter opens a shell in it and --stop ends it.";

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The project directory, shared read-write at its own path.
    pub dir: PathBuf,
    /// The sandbox's name (default: from the directory name).
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Arguments for the agent, or with --shell the command to run.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LaunchArgs {
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

impl LaunchArgs {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DisplayChoice {
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    /// Shared with the host (the agent needs its API); Landlock keeps host abstract sockets out.
    Host,
    /// Its own network namespace with only `lo`.
    None,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Run bash (or the command after --) instead of the agent.
    #[arg(long)]
    pub shell: bool,
    /// The network: `host` (default) or `none`.
    #[arg(long, value_enum, conflicts_with = "no_network")]
    pub network: Option<NetworkMode>,
    /// Same as --network none.
    #[arg(long)]
    pub no_network: bool,
    /// Pass GH_TOKEN/GITHUB_TOKEN (or `gh auth token`) into the sandbox.
    #[arg(long)]
    pub gh_token: bool,
    /// A profile JSON (as generated from nix/sandbox-spec.nix); default: the host profile.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Expose the D-Bus session bus (it can start commands on the host).
    #[arg(long)]
    pub dbus: bool,
    /// Expose the SSH agent socket.
    #[arg(long)]
    pub ssh_agent: bool,
    /// Expose PipeWire/PulseAudio.
    #[arg(long)]
    pub audio: bool,
    /// Expose /dev/dri.
    #[arg(long)]
    pub gpu: bool,
}

impl CommonArgs {
    fn network(&self) -> Option<bool> {
        match (self.network, self.no_network) {
            (_, true) | (Some(NetworkMode::None), _) => Some(false),
            (Some(NetworkMode::Host), _) => Some(true),
            (None, false) => None,
        }
    }

    /// The config's opt-ins, widened by the flags.
    fn options(&self, config: &Options, host_display: bool) -> Options {
        Options {
            host_display: config.host_display || host_display,
            dbus: config.dbus || self.dbus,
            ssh_agent: config.ssh_agent || self.ssh_agent,
            audio: config.audio || self.audio,
            gpu: config.gpu || self.gpu,
        }
    }
}

/// Runs the CLI and returns the process exit code.
/// Human output. Names, reasons, paths and keys can come from a sandbox (hook messages,
/// transcript fields, file names), so every line printed for people goes through the one
/// sanitizer, [`crate::format::printable`]; `--json` output is escaped by [`print_json`].
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
        eprintln!("{}", escape_json_controls(&body.to_string()));
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
        eprintln!("{}", escape_json_controls(&body.to_string()));
    } else {
        tell!("sandbox-deck: {message}");
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let json = cli.json;
    let Some(command) = cli.command else {
        // On a terminal the control center opens; piped or with --json, the list is printed.
        use std::io::IsTerminal;
        if !json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            crate::tui::run(cli.image_protocol)?;
            return Ok(0);
        }
        let deck = Deck::open()?;
        print_list(&deck.list()?, json)?;
        return Ok(0);
    };
    match command {
        Cmd::Completions { shell } => {
            crate::cli_docs::write_completions(shell, &mut std::io::stdout().lock())
                .context("writing the completion script")?;
            Ok(0)
        }
        Cmd::Man { dir: None } => {
            crate::cli_docs::render_man_page(&mut std::io::stdout().lock())
                .context("writing the man page")?;
            Ok(0)
        }
        Cmd::Man { dir: Some(dir) } => {
            let written = crate::cli_docs::write_man_pages(&dir)?;
            if json {
                print_json(&written)?;
            } else {
                for path in written {
                    println!("{}", path.display());
                }
            }
            Ok(0)
        }
        Cmd::Doctor => {
            let checks = doctor::run();
            if json {
                print_json(&checks)?;
            } else {
                for c in &checks {
                    let mark = if c.ok {
                        "ok "
                    } else if c.required {
                        "MISSING"
                    } else {
                        "missing"
                    };
                    say!("{mark:8} {:15} {}", c.name, c.detail);
                    if let Some(fix) = &c.fix {
                        say!("{:8} {:15} fix: {fix}", "", "");
                    }
                }
            }
            Ok(if doctor::all_required_ok(&checks) {
                0
            } else {
                1
            })
        }
        Cmd::GitSync {
            spec,
            pid,
            start_time,
            detach,
        } => {
            use crate::backend::git_view;
            if detach {
                let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                git_view::detach(&args)?;
            } else {
                let watched = crate::host::process::ProcRef { pid, start_time };
                git_view::run_sync_helper(&spec, watched)?;
            }
            Ok(0)
        }
        Cmd::RunManaged { id, resume } => {
            let deck = Deck::open()?;
            let id = SandboxId::try_from(id)?;
            match deck.run_managed(&id, resume) {
                Ok(never) => match never {},
                Err(e) => {
                    // This runs in the pane: the message stays on screen (remain-on-exit).
                    tell!("sandbox-deck: {e}");
                    Ok(127)
                }
            }
        }
        Cmd::Launch { backend, args } => {
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
            let code = deck.launch_foreground(LaunchRequest {
                backend,
                sandbox: CreateRequest {
                    project_dir,
                    name: args.name,
                    payload: Payload::new(args.common.shell, args.args),
                    network: args.common.network(),
                    gh_token: args.common.gh_token,
                    profile: args.common.profile,
                    options,
                },
                mode,
            })?;
            Ok(code)
        }
        Cmd::Attach { name } => {
            let deck = Deck::open()?;
            let mut command = deck.attach_command(&name)?;
            let err = command.exec();
            Err(err).context("running tmux attach")
        }
        Cmd::List => {
            let deck = Deck::open()?;
            print_list(&deck.list()?, json)?;
            Ok(0)
        }
        Cmd::Show { name } => {
            let deck = Deck::open()?;
            print_record(&deck.show(&name)?, json)?;
            Ok(0)
        }
        Cmd::Create(args) => {
            let deck = Deck::open()?;
            let options = args
                .common
                .options(&deck.config.bubblewrap.options(), false);
            let record = deck.execute(Action::Create(CreateRequest {
                project_dir: args.dir,
                name: args.name,
                payload: Payload::new(args.common.shell, args.args),
                network: args.common.network(),
                gh_token: args.common.gh_token,
                profile: args.common.profile,
                options,
            }))?;
            print_record(&record, json)?;
            Ok(0)
        }
        Cmd::Screenshot { name, output } => {
            let deck = Deck::open()?;
            let frame = deck.screenshot(&name)?;
            let captured_at = chrono::Utc::now();
            let path = output.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{name}-{}.png",
                    captured_at.format("%Y%m%d-%H%M%S")
                ))
            });
            crate::capture::write_png(&frame, &path)
                .map_err(|e| DeckError::capture("writing the screenshot", e))?;
            let to_stdout = path == std::path::Path::new("-");
            if json && !to_stdout {
                let absolute = std::path::absolute(&path).unwrap_or(path);
                print_json(&serde_json::json!({
                    "name": name,
                    "width": frame.width,
                    "height": frame.height,
                    "path": absolute,
                    "captured_at": captured_at,
                }))?;
            } else if !to_stdout {
                say!("{} ({}x{})", path.display(), frame.width, frame.height);
            }
            Ok(0)
        }
        Cmd::Status { name, metrics } => {
            let deck = Deck::open()?;
            let records = match name {
                Some(name) => vec![deck.show(&name)?],
                None => deck.list()?,
            };
            let report = status_report(&deck, &records, metrics);
            if json {
                print_json(&report)?;
            } else {
                print_status(&report);
            }
            Ok(0)
        }
        Cmd::Usage { name, since, by } => {
            let deck = Deck::open()?;
            let query = deck.usage_query(name.as_deref(), since.as_deref(), by)?;
            let mut index = deck.usage_index();
            let report = deck.usage_report(&mut index, &query)?;
            if json {
                print_json(&report)?;
            } else {
                print_usage(&report);
            }
            Ok(0)
        }
        Cmd::Stop { name } => act(Action::Stop { name }, json),
        Cmd::Start { name, fresh } => act(Action::Start { name, fresh }, json),
        Cmd::Restart { name, fresh } => {
            let deck = Deck::open()?;
            let record = deck.restart(&name, fresh)?;
            print_state(&record, json)?;
            Ok(0)
        }
        Cmd::Rm { name, force, purge } => {
            let deck = Deck::open()?;
            let record = deck.execute(Action::Remove { name, force })?;
            let purged = if purge {
                deck.purge_project_state(&record.project_dir)?
            } else {
                crate::engine::gc::Purge::NotAsked
            };
            if json {
                let mut value = serde_json::to_value(&record)?;
                value["purge"] = serde_json::to_value(&purged)?;
                print_json(&value)?;
            } else {
                say!("removed {}", record.name);
                if let Some(note) = purged.describe() {
                    say!("{note}");
                }
            }
            Ok(0)
        }
        Cmd::Gc { yes } => gc(yes, json),
    }
}

fn act(action: Action, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let record = deck.execute(action)?;
    print_state(&record, json)?;
    Ok(0)
}

fn print_state(record: &SandboxRecord, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(record)
    } else {
        say!("{} is {}", record.name, record.state);
        Ok(())
    }
}

/// `gc`: the orphaned project state dirs, removed after a yes (or with --yes). Under --json
/// without --yes it only lists them.
fn gc(yes: bool, json: bool) -> anyhow::Result<i32> {
    use std::io::{BufRead, IsTerminal};
    let deck = Deck::open()?;
    let orphans = deck.orphaned_project_states()?;
    if !json {
        if orphans.is_empty() {
            say!("no project state without a sandbox");
            return Ok(0);
        }
        for o in &orphans {
            let project = o
                .project
                .as_ref()
                .map_or("(unknown project)".into(), |p| p.display().to_string());
            let mib = o.bytes as f64 / 1_048_576.0;
            say!("{}  {mib:.1} MiB  {project}", o.dir.display());
        }
    }
    let remove = yes
        || (!json && std::io::stdin().is_terminal() && {
            say_more!("remove these {} dir(s)? [y/N] ", orphans.len());
            std::io::stdout().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            matches!(answer.trim(), "y" | "Y" | "yes")
        });
    let removed = if remove && !orphans.is_empty() {
        deck.remove_project_states(&orphans)?
    } else {
        Vec::new()
    };
    if json {
        print_json(&serde_json::json!({ "orphans": orphans, "removed": removed }))?;
    } else if remove {
        say!("removed {} dir(s)", removed.len());
    } else {
        say!("nothing removed (`sandbox-deck gc --yes` removes them)");
    }
    Ok(0)
}

/// JSON for programs. serde escapes C0 controls in strings but leaves DEL and the C1
/// controls (U+0080..U+009F) raw, and a terminal may act on C1 (CSI, OSC): those are
/// escaped too. Outside strings JSON is ASCII, so a plain replacement keeps it valid.
fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", escape_json_controls(&text))?;
    Ok(())
}

fn escape_json_controls(json: &str) -> std::borrow::Cow<'_, str> {
    let raw = |c: char| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c);
    if !json.chars().any(raw) {
        return json.into();
    }
    json.chars()
        .map(|c| {
            if raw(c) {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn print_record(record: &SandboxRecord, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(record);
    }
    let display = record.display.map_or("-".into(), |d| format!(":{d}"));
    let rows = [
        ("name", record.name.to_string()),
        ("id", record.id.to_string()),
        ("state", state_text(record)),
        ("backend", record.backend.to_string()),
        (
            "project",
            record.project_dir.as_path().display().to_string(),
        ),
        ("display", display),
        (
            "tmux session",
            record.tmux_session.clone().unwrap_or("-".into()),
        ),
        ("network", if record.network { "on" } else { "off" }.into()),
        (
            "managed",
            if record.managed {
                "yes"
            } else {
                "no (launched by hand)"
            }
            .into(),
        ),
        ("created", record.created_at.to_rfc3339()),
    ];
    for (key, value) in rows {
        say!("{key:13} {value}");
    }
    Ok(())
}

fn state_text(record: &SandboxRecord) -> String {
    let mut text = record.state.to_string();
    if let Some(status) = record.exit_status {
        text.push_str(&format!(" (status {status})"));
    }
    if let Some(reason) = &record.reason {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(why) = &record.unreachable {
        text.push_str(&format!(" (unreachable: {why})"));
    }
    text
}

fn print_list(records: &[SandboxRecord], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&records);
    }
    if records.is_empty() {
        say!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return Ok(());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    say!(
        "{:20} {:11} {:10} {:8} {:8} PROJECT",
        "NAME",
        "BACKEND",
        "STATE",
        "DISPLAY",
        "UPTIME"
    );
    for r in records {
        let uptime = match (r.state, r.started_at) {
            (crate::sandbox::SandboxState::Running, Some(t)) => {
                crate::format::human_duration(chrono::Utc::now() - t)
            }
            _ => "-".into(),
        };
        let project = crate::format::shorten_left(
            &r.project_dir.as_path().display().to_string(),
            Some(&home),
            usize::MAX,
        );
        say!(
            "{:20} {:11} {:10} {:8} {:8} {}",
            r.name.as_str(),
            r.backend.as_str(),
            if r.unreachable.is_some() {
                "unreachable"
            } else {
                r.state.as_str()
            },
            r.display.map_or("-".into(), |d| format!(":{d}")),
            uptime,
            project
        );
    }
    for r in records {
        if let Some(why) = &r.unreachable {
            eprintln!(
                "sandbox-deck: {} is {} but unreachable: {why}",
                r.name, r.state
            );
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct StatusReport {
    /// Always "single": the CLI takes one reading, so it is not debounced.
    sampling: &'static str,
    note: &'static str,
    sandboxes: Vec<StatusRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<crate::metrics::HostMetrics>,
}

#[derive(Serialize)]
struct StatusRow {
    name: String,
    sandbox_state: crate::sandbox::SandboxState,
    /// None (null) for a shell sandbox: no agent runs there.
    state: Option<AgentState>,
    reason: String,
    source: Option<crate::engine::status::Source>,
    project: std::path::PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<crate::metrics::SandboxMetrics>,
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
        .map(|r| {
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
                metrics: snapshot
                    .as_ref()
                    .and_then(|s| s.sandboxes.get(&r.id).cloned()),
            }
        })
        .collect();
    StatusReport {
        sampling: "single",
        note: "one reading, not debounced (the dashboard waits for two before showing idle)",
        sandboxes,
        host: snapshot.map(|s| s.host),
    }
}

fn print_status(report: &StatusReport) {
    if report.sandboxes.is_empty() {
        say!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return;
    }
    let with_metrics = report.host.is_some();
    let mut head = format!("{:20} {:9}", "NAME", "STATE");
    if with_metrics {
        head.push_str(&format!(" {:>10} {:>9}", "CPU(core)", "MEM"));
    }
    say!("{head} REASON");
    for row in &report.sandboxes {
        let state = row.state.map_or("-", AgentState::as_str);
        let mut line = format!("{:20} {:9}", row.name, state);
        if with_metrics {
            match &row.metrics {
                Some(m) => line.push_str(&format!(
                    " {:>9.1}% {:>8.1}M",
                    m.cpu_percent_of_core,
                    m.rss_bytes as f64 / 1_048_576.0
                )),
                None => line.push_str(&format!(" {:>10} {:>9}", "-", "-")),
            }
        }
        say!("{line} {}", crate::format::printable_line(&row.reason));
    }
    say!("({})", report.note);
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
    let home = std::env::var("HOME").unwrap_or_default();
    let label = match report.by {
        GroupBy::Project => "PROJECT",
        GroupBy::Session => "SESSION",
        GroupBy::Day => "DAY",
        GroupBy::Model => "MODEL",
        GroupBy::Block => "BLOCK (UTC start)",
    };
    let shorten = |key: &str| -> String {
        if report.by == GroupBy::Project && !home.is_empty() && key.starts_with(&home) {
            format!("~{}", &key[home.len()..])
        } else {
            key.to_owned()
        }
    };
    let mut table: Vec<[String; 8]> = vec![[
        label.to_string(),
        "INPUT".into(),
        "OUTPUT".into(),
        "CACHE WRITE".into(),
        "CACHE READ".into(),
        "TOTAL".into(),
        "COST".into(),
        "ENTRIES".into(),
    ]];
    let line = |key: String, t: &crate::usage::Totals| -> [String; 8] {
        [
            key,
            t.input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.cache_creation_tokens.to_string(),
            t.cache_read_tokens.to_string(),
            t.total_tokens.to_string(),
            format!("${:.2}", t.cost_usd),
            t.entries.to_string(),
        ]
    };
    for row in &report.rows {
        let mut key = crate::format::printable_line(&shorten(&row.key)).into_owned();
        if let Some(sandbox) = &row.sandbox {
            key = format!("{sandbox} ({key})");
        }
        if row.block.as_ref().is_some_and(|b| b.active) {
            key.push_str(" (active)");
        }
        table.push(line(key, &row.totals));
    }
    table.push(line("TOTAL".into(), &report.totals));
    let widths: Vec<usize> = (0..8)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let mut out = format!("{:w$}", row[0], w = widths[0]);
        for c in 1..8 {
            out.push_str(&format!("  {:>w$}", row[c], w = widths[c]));
        }
        say!("{}", out.trim_end());
    }
    if report.totals.skipped_lines > 0 {
        say!(
            "skipped {} line(s) that could not be read ({} malformed)",
            report.totals.skipped_lines,
            report.malformed_lines
        );
    }
    if !report.skipped_files.is_empty() {
        say!(
            "skipped {} file(s) that are not plain logs (never followed or read):",
            report.skipped_files.len()
        );
        for f in report.skipped_files.iter().take(SKIPPED_SHOWN) {
            say!(
                "  {}: {} ({})",
                crate::format::printable_line(&f.path.to_string_lossy()),
                f.reason.as_str(),
                crate::format::printable_line(&f.detail)
            );
        }
        if report.skipped_files.len() > SKIPPED_SHOWN {
            say!("  … and more: `sandbox-deck usage --json` lists them all");
        }
    }
    for u in &report.unknown_models {
        say!(
            "no price for model {:?} ({} entries, {} tokens): counted as $0; add it under [usage.prices]",
            u.model,
            u.entries,
            u.total_tokens
        );
    }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every positional argument of every subcommand says what it is.
    #[test]
    fn every_positional_argument_has_help() {
        let root = Cli::command();
        for command in root.get_subcommands().filter(|c| !c.is_hide_set()) {
            for arg in command.get_positionals() {
                assert!(
                    arg.get_help().is_some(),
                    "`{} <{}>` has no help",
                    command.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
