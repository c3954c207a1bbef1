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
    Show { name: String },
    /// Stop a sandbox gracefully (agent interrupted, then killed after a timeout).
    Stop { name: String },
    /// Start a stopped, exited or dead sandbox again (the agent resumes with --continue).
    Start { name: String },
    /// Remove a sandbox and its files.
    #[command(alias = "remove")]
    Rm {
        name: String,
        /// Remove it even while it runs.
        #[arg(long, short)]
        force: bool,
    },
    /// Attach this terminal to a sandbox's session (C-q comes back).
    Attach { name: String },
    /// Run a sandbox in this terminal (what the claude-sandbox launchers call).
    Launch {
        backend: BackendKind,
        #[command(flatten)]
        args: LaunchArgs,
    },
    /// Save a PNG of a sandbox's display.
    Screenshot {
        name: String,
        /// The PNG file, or `-` for stdout (default: NAME-<time>.png here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check the host's prerequisites and say how to install what is missing.
    Doctor,
    /// The agent state of every sandbox (or NAME): starting, working, waiting, idle, exited, dead.
    Status {
        name: Option<String>,
        /// Also measure CPU and memory (two samples a second apart).
        #[arg(long)]
        metrics: bool,
    },
    /// Claude tokens and cost from the agents' logs, deduplicated (all logs, or NAME's project).
    Usage {
        /// A sandbox: only its project's usage.
        name: Option<String>,
        /// Only usage from this day on (YYYY-MM-DD, local time).
        #[arg(long)]
        since: Option<String>,
        /// One row per project (default), session, day, model or 5-hour block.
        #[arg(long, value_enum, default_value_t = GroupBy::Project)]
        by: GroupBy,
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
        eprintln!("{body}");
        return 2;
    }
    let _ = error.print();
    error.exit_code()
}

fn report_error(error: &anyhow::Error, json: bool) {
    let kind = error
        .chain()
        .find_map(|e| e.downcast_ref::<DeckError>())
        .map_or("internal", DeckError::kind);
    let message = format!("{error:#}");
    if json {
        let body = serde_json::json!({ "error": { "kind": kind, "message": message } });
        eprintln!("{body}");
    } else {
        eprintln!("sandbox-deck: {message}");
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
                    println!("{mark:8} {:15} {}", c.name, c.detail);
                    if let Some(fix) = &c.fix {
                        println!("{:8} {:15} fix: {fix}", "", "");
                    }
                }
            }
            Ok(if doctor::all_required_ok(&checks) {
                0
            } else {
                1
            })
        }
        Cmd::RunManaged { id, resume } => {
            let deck = Deck::open()?;
            let id = SandboxId::try_from(id)?;
            match deck.run_managed(&id, resume) {
                Ok(never) => match never {},
                Err(e) => {
                    // This runs in the pane: the message stays on screen (remain-on-exit).
                    eprintln!("sandbox-deck: {e}");
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
                project_dir,
                name: args.name,
                payload: Payload::new(args.common.shell, args.args),
                network: args.common.network(),
                gh_token: args.common.gh_token,
                profile: args.common.profile,
                options,
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
            if let Some(status) = record.exit_status.filter(|s| *s != 0) {
                let screen = deck
                    .tmux_of(&record)
                    .capture(record.name.as_str(), 20, false)
                    .unwrap_or_default();
                return Err(DeckError::host(
                    format!("the backend of {}", record.name),
                    format!("exited at once with status {status}; its screen:\n{screen}"),
                )
                .into());
            }
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
                .map_err(|e| DeckError::host("writing the screenshot", e.to_string()))?;
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
                println!("{} ({}x{})", path.display(), frame.width, frame.height);
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
        Cmd::Start { name } => act(Action::Start { name }, json),
        Cmd::Rm { name, force } => {
            let deck = Deck::open()?;
            let record = deck.execute(Action::Remove { name, force })?;
            if json {
                print_json(&record)?;
            } else {
                println!("removed {}", record.name);
            }
            Ok(0)
        }
    }
}

fn act(action: Action, json: bool) -> anyhow::Result<i32> {
    let deck = Deck::open()?;
    let record = deck.execute(action)?;
    if json {
        print_json(&record)?;
    } else {
        println!("{} is {}", record.name, record.state);
    }
    Ok(0)
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
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
        println!("{key:13} {value}");
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
        println!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return Ok(());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    println!(
        "{:20} {:11} {:10} {:8} {:8} PROJECT",
        "NAME", "BACKEND", "STATE", "DISPLAY", "UPTIME"
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
        println!(
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
    state: AgentState,
    reason: String,
    source: crate::engine::status::Source,
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
            let a = deck.agent_status(r);
            StatusRow {
                name: r.name.to_string(),
                sandbox_state: r.state,
                state: a.state,
                reason: match &r.unreachable {
                    Some(why) => format!("unreachable: {why}"),
                    None => a.reason,
                },
                source: a.source,
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
        println!("no sandboxes yet: `sandbox-deck create DIR` makes one");
        return;
    }
    let with_metrics = report.host.is_some();
    let mut head = format!("{:20} {:9}", "NAME", "STATE");
    if with_metrics {
        head.push_str(&format!(" {:>10} {:>9}", "CPU(core)", "MEM"));
    }
    println!("{head} REASON");
    for row in &report.sandboxes {
        let mut line = format!("{:20} {:9}", row.name, row.state.as_str());
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
        println!("{line} {}", row.reason);
    }
    println!("({})", report.note);
}

fn print_usage(report: &Report) {
    if report.files == 0 {
        let roots: Vec<String> = report
            .roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        println!(
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
        let mut key = shorten(&row.key);
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
        println!("{}", out.trim_end());
    }
    if report.totals.skipped_lines > 0 {
        println!(
            "skipped {} line(s) that could not be read ({} malformed)",
            report.totals.skipped_lines, report.malformed_lines
        );
    }
    for u in &report.unknown_models {
        println!(
            "no price for model {:?} ({} entries, {} tokens): counted as $0; add it under [usage.prices]",
            u.model, u.entries, u.total_tokens
        );
    }
    if let Some(block) = &report.active_block {
        print!(
            "current 5-hour block: {} to {} UTC, ${:.2} so far",
            block.start.format("%H:%M"),
            block.end.format("%H:%M"),
            block.totals.cost_usd
        );
        if let (Some(rate), Some(p)) = (&block.burn_rate, &block.projection) {
            print!(
                ", {:.0} tokens/min, projected ${:.2} at its end ({})",
                rate.tokens_per_minute, p.cost_usd, p.note
            );
        }
        println!();
    }
    if let Some(reset) = report.limit_resets_at.filter(|r| *r > chrono::Utc::now()) {
        println!("usage limit reached; resets at {}", reset.to_rfc3339());
    }
}
