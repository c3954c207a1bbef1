//! A hundred sandboxes (issue 15): `cargo bench --bench hundred [-- --sandboxes N --secs S]`.
//!
//! Makes N real agent sandboxes (bubblewrap + Xvfb + tmux; the agent a shell loop printing a
//! line every 2–4 s, silent in every tenth), then measures, each figure beside a baseline
//! taken in the same run:
//! - idle cost of the engine's view as the TUI asks for it (status every 1.5 s, preview every
//!   250 ms), before (a `capture-pane` process per look) and after (control mode, file
//!   events), counting this process, its children and the tmux server;
//! - the real TUI in a tmux of its own: start to first full frame, RSS and PSS, idle cost on
//!   the Agent tab (the TUI, its reaped and live children, the sandboxes' tmux server),
//!   key → frame, pane output → preview and hook event → AGENT column, each against the
//!   floor of the method (a `cat` echoing a key, the pane itself read with `capture-pane`);
//! - `list --json` with 1,000 records against `sandbox-deck --version` and `cat`;
//! - the PSS of each sandbox's own processes (Xvfb, bwrap, its pane's processes).
//!
//! First, tmux's own floor: the same printer panes in a bare tmux (empty config, no client,
//! no sandbox), in one server and spread over ten (`--no-floor` leaves it out).
//!
//! `-- --idle-only` takes only the idle figures (nobody watching, the real TUI on the Agent
//! tab, `--rounds N` times), for profiling: `--hold S` keeps the TUI and its engine running
//! S seconds first, with their pids printed, for `perf record -p`.
//!
//! Screen figures are read by polling `tmux capture-pane` (a process each): the baselines
//! carry the same cost, so compare against them. Everything runs under its own HOME and XDG
//! dirs in a temp dir; every sandbox is removed and everything ended by pid.

#[path = "support/world.rs"]
mod world;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox_deck::config::Config;
use sandbox_deck::engine::{Deck, EngineHandle};
use sandbox_deck::error::DeckError;
use sandbox_deck::paths::Paths;
use sandbox_deck::registry::Registry;
use sandbox_deck::sandbox::{Payload, ProjectDir, SandboxName, SandboxRecord, SandboxState};
use world::*;

/// The agent: a line every 2–4 s; a tenth of them (names ending in 5) silent.
const PRINTER: &str = "case \"$PWD\" in *5) exec sleep 100000;; esac\n\
     i=0\nwhile :; do i=$((i+1)); echo \"line $i\"; sleep $((2 + i % 3)); done";
/// The printer's cycle: lines 2, 3 and 4 s apart.
const PRINTER_CYCLE_MS: usize = 9000;
const WAIT: Duration = Duration::from_secs(60);

fn main() {
    let sandboxes = arg("--sandboxes", 100) as usize;
    let secs = arg("--secs", 30);
    run_in_temp_dir("sdh-", |base| {
        run(base, sandboxes, Duration::from_secs(secs))
    });
}

/// One line of the results table.
struct Figure {
    measure: String,
    value: String,
    baseline: String,
}

fn run(base: &Path, n: usize, period: Duration) -> Result<(), String> {
    let config_dir = configure(base, PRINTER, "")?;
    // tmux's own floor first, on a machine nothing else of ours runs on yet (`--no-floor`
    // leaves it out, for profiling runs).
    let floor = if std::env::args().any(|a| a == "--no-floor") {
        None
    } else {
        Some((
            tmux_floor(base, n, 1, period)?,
            tmux_floor(base, n, 10, period)?,
        ))
    };
    let started = Instant::now();
    create_sandboxes(base, n)?;
    println!(
        "{n} sandboxes created in {:.0} s; measuring {}s per idle figure",
        started.elapsed().as_secs_f64(),
        period.as_secs()
    );
    let server = server_pid(base).ok_or("no tmux server pid")?;
    let mut figures = Vec::new();
    if std::env::args().any(|a| a == "--idle-only") {
        return idle_only(base, n, server, period);
    }
    if let Some((one, spread)) = floor {
        figures.push(Figure {
            measure: "tmux 3.x itself: the same printer panes, no sandbox, empty config, no client"
                .into(),
            value: format!("{} in one server", pct(one, period)),
            baseline: format!("{} spread over 10 servers", pct(spread, period)),
        });
    }
    let records = engine_idle(base, &config_dir, server, period, &mut figures)?;
    figures.push(per_sandbox_pss(&records, server));
    tui(base, n, server, period, &records, &mut figures)?;
    figures.push(list_1000(base)?);
    println!("\n| measure ({n} sandboxes) | figure | baseline, same run |");
    println!("|---|---|---|");
    for f in &figures {
        println!("| {} | {} | {} |", f.measure, f.value, f.baseline);
    }
    Ok(())
}

/// What tmux itself spends on `n` panes running the agent's printer, outside any sandbox,
/// with an empty config and no client attached, spread over `servers` servers: the floor
/// under every idle figure, since each pane's line costs the server a pass of its event loop
/// that polls every pane of that server. CPU seconds over `period`; every server is ended.
fn tmux_floor(base: &Path, n: usize, servers: usize, period: Duration) -> Result<f64, String> {
    let dir = base.join(format!("floor-{servers}"));
    let sockets: Vec<PathBuf> = (0..servers)
        .map(|s| dir.join(format!("tmux-{s}.sock")))
        .collect();
    // Whatever fails, every server started is ended below.
    let started = start_floor_panes(&dir, &sockets, n);
    let pids: Vec<u32> = sockets
        .iter()
        .filter_map(|socket| {
            let out = floor_tmux(socket, &["display-message", "-p", "#{pid}"]).ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        })
        .collect();
    let measured = started.map(|()| {
        std::thread::sleep(Duration::from_millis(PRINTER_CYCLE_MS as u64 + 3000));
        let start: f64 = pids.iter().map(|p| cpu_secs(*p)).sum();
        std::thread::sleep(period);
        let secs = pids.iter().map(|p| cpu_secs(*p)).sum::<f64>() - start;
        println!(
            "tmux itself, {n} printer panes over {servers} server(s), no client: {}",
            pct(secs, period)
        );
        secs
    });
    for socket in &sockets {
        let _ = floor_tmux(socket, &["kill-server"]);
    }
    if !gone_within(Duration::from_secs(10), &pids) {
        return Err(format!("the floor's tmux servers {pids:?} did not end"));
    }
    measured
}

/// `n` sessions running the printer, dealt round the `sockets`' servers.
fn start_floor_panes(dir: &Path, sockets: &[PathBuf], n: usize) -> Result<(), String> {
    for i in 0..n {
        // The printer is silent in projects whose name ends in 5, as in the sandboxes. Each
        // starts at its own phase of the printer's 9 s cycle, as sandboxes made one after the
        // other do: panes printing in step would share the server's wake-ups and understate
        // the floor by half or more (0.70 % against 1.90 % at 100, measured).
        let cwd = dir.join(format!("p{i}"));
        std::fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
        let phase_ms = i * PRINTER_CYCLE_MS / n;
        let printer = format!(
            "sleep {}.{:03}\n{PRINTER}",
            phase_ms / 1000,
            phase_ms % 1000
        );
        let name = format!("p{i}");
        let cwd = cwd.to_string_lossy();
        let args = [
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            &cwd,
            "--",
            "sh",
            "-c",
            &printer,
        ];
        let out = floor_tmux(&sockets[i % sockets.len()], &args)?;
        if !out.status.success() {
            return Err(format!(
                "tmux new-session: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// tmux at `socket` with an empty config (argv only).
fn floor_tmux(socket: &Path, args: &[&str]) -> Result<Output, String> {
    Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(["-f", "/dev/null"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("tmux: {e}"))
}

fn pct(secs: f64, period: Duration) -> String {
    format!("{:.2} % of a core", 100.0 * secs / period.as_secs_f64())
}

/// Only the idle figures, `--rounds` times: nobody watching, then the real TUI on the Agent
/// tab (after `--hold` seconds, for a profiler). With `--other-bin PATH` each round also
/// runs that build's TUI and engine, one after the other on the same sandboxes (an A/B).
fn idle_only(base: &Path, n: usize, server: u32, period: Duration) -> Result<(), String> {
    let rounds = arg("--rounds", 1);
    let mut bins = vec![BIN.to_owned()];
    bins.extend(std::env::args().skip_while(|a| a != "--other-bin").nth(1));
    let screen = Screen {
        socket: base.join("tui.sock"),
        owned: true,
    };
    for round in 0..rounds {
        let nobody = measure(server, period, || {}, || {});
        report("nobody watching", &nobody, period);
        for bin in &bins {
            println!("{bin}:");
            let session = format!("tui{round}");
            start_tui(&screen, base, &session, n, bin)?;
            let pid = tui_pid(&screen, &session)?;
            std::thread::sleep(Duration::from_secs(5));
            let engine = engine_pid(base).ok_or("no engine (serve.pid) beside the TUI")?;
            let hold = arg("--hold", 0);
            if hold > 0 && round == 0 {
                println!("holding {hold} s: TUI pid {pid}, engine pid {engine}");
                std::thread::sleep(Duration::from_secs(hold));
            }
            tui_idle(&[pid, engine], server, period);
            screen.tmux(&["kill-session", "-t", &format!("={session}")]);
            // SAFETY: kill with the pid of the engine started in our temp dir (checked by
            // engine_pid).
            unsafe { libc::kill(engine as i32, libc::SIGTERM) };
            if !gone_within(Duration::from_secs(10), &[engine]) {
                return Err(format!("the engine {engine} did not end"));
            }
        }
    }
    Ok(())
}

fn tui_pid(screen: &Screen, session: &str) -> Result<u32, String> {
    let target = format!("={session}:");
    String::from_utf8_lossy(
        &screen
            .tmux(&["display", "-p", "-t", &target, "#{pane_pid}"])
            .stdout,
    )
    .trim()
    .parse()
    .map_err(|_| "no TUI pid".into())
}

/// The engine asked what the TUI's workers ask, before and after control mode.
fn engine_idle(
    base: &Path,
    config_dir: &Path,
    server: u32,
    period: Duration,
    figures: &mut Vec<Figure>,
) -> Result<Vec<SandboxRecord>, String> {
    let paths = Paths {
        state_dir: base.join("state/sandbox-deck"),
        config_dir: config_dir.to_owned(),
        runtime_dir: base.join("run/sandbox-deck"),
    };
    let config = Config::load(&paths.config_file()).map_err(|e| e.to_string())?;
    let deck = Deck::with(paths, config).map_err(|e| e.to_string())?;
    let records = deck.list().map_err(|e| e.to_string())?;
    let running = records
        .iter()
        .filter(|r| r.state == SandboxState::Running)
        .count();
    if running != records.len() {
        return Err(format!("{running} of {} sandboxes run", records.len()));
    }
    // What the sandboxes cost the tmux server with nobody watching (their panes printing):
    // the part of every figure below that is not ours.
    let nobody = measure(server, period, || {}, || {});
    report(
        "nobody watching (the sandboxes' own output)",
        &nobody,
        period,
    );
    let before = measure(
        server,
        period,
        || {
            for r in &records {
                let _ = deck.agent_status(r);
            }
        },
        || {
            let _ = deck.capture_pane(records[0].name.as_str());
        },
    );
    EngineHandle::agent_states(&deck, &records);
    let (captures, rounds) = (deck.status_captures(), std::cell::Cell::new(0u64));
    let after = measure(
        server,
        period,
        || {
            EngineHandle::agent_states(&deck, &records);
            rounds.set(rounds.get() + 1);
        },
        || {
            let _ = EngineHandle::preview(&deck, &records[0].name);
        },
    );
    report(
        "engine, before (a capture-pane process per look)",
        &before,
        period,
    );
    report("engine, after (control mode, file events)", &after, period);
    // The status gate: panes that only print plain lines are not captured every round.
    println!(
        "status round, after: {} plain captures in {} rounds of {} agents",
        deck.status_captures() - captures,
        rounds.get(),
        records.len()
    );
    figures.push(Figure {
        measure: "idle cost, engine as the TUI asks it (this process + children + tmux server)"
            .into(),
        value: format!(
            "{} ({} processes)",
            pct(after.total(), period),
            after.spawned
        ),
        baseline: format!(
            "{} before ({} processes); {} with nobody watching",
            pct(before.total(), period),
            before.spawned,
            pct(nobody.total(), period)
        ),
    });
    Ok(records)
}

/// Each sandbox's own processes (its Xvfb, and its launcher with everything under it), PSS,
/// with the median by process name.
fn per_sandbox_pss(records: &[SandboxRecord], server: u32) -> Figure {
    let mut per: Vec<u64> = Vec::new();
    let mut by_name: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in records {
        let mut pids: Vec<u32> = r.xvfb.iter().map(|x| x.pid).collect();
        if let Some(launcher) = r.launcher {
            pids.push(launcher.pid);
            pids.extend(descendants(launcher.pid));
        }
        let mut total = 0;
        for pid in pids {
            let kb = pss_kb(pid);
            total += kb;
            let name = sandbox_deck::host::process::name(pid).unwrap_or_default();
            by_name.entry(name).or_default().push(kb);
        }
        per.push(total);
    }
    per.sort_unstable();
    let shared = pss_kb(server) / records.len().max(1) as u64;
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let parts: Vec<String> = by_name
        .into_iter()
        .map(|(name, mut kbs)| {
            kbs.sort_unstable();
            let n = kbs.len();
            format!(
                "{name} {} ×{:.1}",
                mb(kbs[n / 2]),
                n as f64 / records.len() as f64
            )
        })
        .collect();
    println!(
        "per-sandbox PSS by process (median, processes per sandbox): {}",
        parts.join(", ")
    );
    Figure {
        measure: "per-sandbox PSS (Xvfb + bwrap + pane processes) + its share of the tmux server"
            .into(),
        value: format!(
            "median {} + {} (max {})",
            mb(per[per.len() / 2]),
            mb(shared),
            mb(per[per.len() - 1])
        ),
        baseline: "target ≤ 25 MB".into(),
    }
}

/// A tmux server: the bench's own that the TUI runs in (ended on drop), or the deck's.
struct Screen {
    socket: PathBuf,
    owned: bool,
}

impl Screen {
    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux")
    }

    fn capture(&self, target: &str) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", target]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How long until `done` holds for `target`'s screen, polled.
    fn until(&self, target: &str, mut done: impl FnMut(&str) -> bool) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let screen = self.capture(target);
            if done(&screen) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > WAIT {
                return Err(format!("timed out; the screen:\n{screen}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.owned {
            let _ = self.tmux(&["kill-server"]);
        }
    }
}

/// The TUI in a tmux of its own: start, memory, idle cost, key → frame, preview, AGENT.
fn tui(
    base: &Path,
    n: usize,
    server: u32,
    period: Duration,
    records: &[SandboxRecord],
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    let screen = Screen {
        socket: base.join("tui.sock"),
        owned: true,
    };
    // The floor: a program that prints at once, started and read the same way.
    let started = Instant::now();
    let out = screen.tmux(&[
        "new-session",
        "-d",
        "-s",
        "floor",
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        "echo ready; exec cat",
    ]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    screen.until("=floor:", |s| s.contains("ready"))?;
    let floor_start = started.elapsed();
    let (rows, first_frame) = start_tui(&screen, base, "tui", n, BIN)?;
    figures.push(Figure {
        measure: "TUI start to first full frame (every row on screen with its agent state), \
                  starting its engine"
            .into(),
        value: format!("{} (every row listed: {})", ms(first_frame), ms(rows)),
        baseline: format!("{} for `echo` in a new tmux session", ms(floor_start)),
    });
    let pid = tui_pid(&screen, "tui")?;
    // Settled: the first rounds (usage walk, control clients) are done.
    std::thread::sleep(Duration::from_secs(5));
    let engine = engine_pid(base).ok_or("no engine (serve.pid) beside the TUI")?;
    let mb = |kb: u64| kb as f64 / 1024.0;
    figures.push(Figure {
        measure: "memory: the TUI; the engine (`serve --auto`) it started".into(),
        value: format!(
            "TUI RSS {:.1} MB (PSS {:.1}); engine RSS {:.1} MB (PSS {:.1})",
            mb(rss_kb(pid)),
            mb(pss_kb(pid)),
            mb(rss_kb(engine)),
            mb(pss_kb(engine))
        ),
        baseline: "target RSS ≤ 30 MB".into(),
    });
    figures.push(tui_idle(&[pid, engine], server, period));
    figures.push(key_to_frame(&screen)?);
    let name = selected(&screen.capture("=tui:")).ok_or("no selected sandbox")?;
    figures.push(output_to_preview(&screen, base, &name)?);
    let record = records
        .iter()
        .find(|r| r.name.as_str() == name)
        .ok_or("the selected sandbox is not in the records")?;
    figures.push(hook_to_agent(&screen, base, record, &name)?);
    // More TUIs while the engine runs: each a client of it from the start (five, one at a
    // time; the median and the slowest).
    let mut starts = Vec::new();
    for i in 0..5 {
        let session = format!("tui{}", i + 2);
        starts.push(start_tui(&screen, base, &session, n, BIN)?);
        screen.tmux(&["kill-session", "-t", &format!("={session}")]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rows, _) = p50_p99(starts.iter().map(|s| s.0).collect());
    let (full, slowest) = p50_p99(starts.iter().map(|s| s.1).collect());
    figures.push(Figure {
        measure: "TUI start to first full frame, its engine already running (median of 5)".into(),
        value: format!(
            "{} (every row listed: {}; slowest {})",
            ms(full),
            ms(rows),
            ms(slowest)
        ),
        baseline: format!("{} for `echo` in a new tmux session", ms(floor_start)),
    });
    Ok(())
}

/// Starts the TUI in a new session `name` of `screen`; how long until every row is listed,
/// and until every row on screen shows its agent state (the first full frame). `bin` is the
/// build to run (this one's, or `--other-bin`'s).
fn start_tui(
    screen: &Screen,
    base: &Path,
    name: &str,
    n: usize,
    bin: &str,
) -> Result<(Duration, Duration), String> {
    let mut command: Vec<String> = vec![
        "new-session".into(),
        "-d".into(),
        "-s".into(),
        name.into(),
        "-x".into(),
        "120".into(),
        "-y".into(),
        "40".into(),
        "env".into(),
        "-i".into(),
        "TERM=xterm-256color".into(),
    ];
    for (key, value) in environment(base) {
        command.push(format!("{key}={}", value.to_string_lossy()));
    }
    command.push(bin.into());
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let target = format!("={name}:");
    let started = Instant::now();
    let out = screen.tmux(&args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let title = format!("Sandboxes {n}/{n}");
    let mut rows = None;
    screen.until(&target, |s| {
        let listed = s.contains(&title);
        if listed && rows.is_none() {
            rows = Some(started.elapsed());
        }
        listed && every_row_state(s)
    })?;
    let full = started.elapsed();
    Ok((rows.unwrap_or(full), full))
}

/// The TUI's whole idle cost: the TUI and its engine with what they reaped, their live
/// children (the engine's control clients), and the sandboxes' tmux server. `ours` is the
/// TUI and its engine, each also reported alone.
fn tui_idle(ours: &[u32], server: u32, period: Duration) -> Figure {
    let each = || -> Vec<f64> { ours.iter().map(|p| cpu_secs_with_reaped(*p)).collect() };
    // The engine may be the TUI's child: each process once, and none of `ours` again.
    let children = || -> f64 {
        let mut pids: Vec<u32> = ours.iter().flat_map(|p| descendants(*p)).collect();
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|p| !ours.contains(p));
        pids.into_iter().map(cpu_secs).sum()
    };
    let (each0, kids0, server0) = (each(), children(), cpu_secs(server));
    std::thread::sleep(period);
    let split: Vec<f64> = each().iter().zip(&each0).map(|(a, b)| a - b).collect();
    let own: f64 = split.iter().sum();
    let kids = (children() - kids0).max(0.0);
    let srv = cpu_secs(server) - server0;
    println!(
        "TUI idle on the Agent tab, {}s: the TUI and its engine {} (TUI {}, engine {}; with \
         what they reaped), their live children {}, the tmux server {}",
        period.as_secs(),
        pct(own, period),
        pct(split[0], period),
        pct(split.get(1).copied().unwrap_or_default(), period),
        pct(kids, period),
        pct(srv, period)
    );
    Figure {
        measure: "idle cost, real TUI on the Agent tab (TUI + engine + children + tmux server)"
            .into(),
        value: pct(own + kids + srv, period),
        baseline: "the engine's before/after and nobody watching, above".into(),
    }
}

/// A tab switch until it shows, against a key echoed by `cat` in the floor session.
fn key_to_frame(screen: &Screen) -> Result<Figure, String> {
    let mut tui = Vec::new();
    let mut floor = Vec::new();
    for round in 0..60 {
        let info = round % 2 == 0;
        screen.tmux(&["send-keys", "-t", "=tui:", if info { "[" } else { "]" }]);
        tui.push(screen.until("=tui:", |s| s.contains("start runs") == info)?);
        let before = screen.capture("=floor:").matches('x').count();
        screen.tmux(&["send-keys", "-t", "=floor:", "x"]);
        floor.push(screen.until("=floor:", |s| s.matches('x').count() > before)?);
    }
    // Back on the Agent tab.
    if screen.capture("=tui:").contains("start runs") {
        screen.tmux(&["send-keys", "-t", "=tui:", "]"]);
    }
    let (p50, p99) = p50_p99(tui);
    let (f50, f99) = p50_p99(floor);
    Ok(Figure {
        measure: "key → frame (tab switch), p50 / p99".into(),
        value: format!("{} / {}", ms(p50), ms(p99)),
        baseline: format!("{} / {} for `cat` echoing a key", ms(f50), ms(f99)),
    })
}

/// Text typed into the selected sandbox's pane (its tty echoes it: pane output) until the
/// TUI's preview shows it, against the pane itself read with `capture-pane`.
fn output_to_preview(screen: &Screen, base: &Path, name: &str) -> Result<Figure, String> {
    let deck = Screen {
        socket: socket(base),
        owned: false,
    };
    let target = format!("={name}:");
    let mut tui = Vec::new();
    let mut floor = Vec::new();
    for i in 0..20 {
        let marker = format!("Q{i}z");
        deck.tmux(&["send-keys", "-t", &target, "-l", &marker]);
        floor.push(deck.until(&target, |s| s.contains(&marker))?);
        let marker = format!("W{i}z");
        deck.tmux(&["send-keys", "-t", &target, "-l", &marker]);
        tui.push(screen.until("=tui:", |s| s.contains(&marker))?);
        deck.tmux(&["send-keys", "-t", &target, "Enter"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (p50, p99) = p50_p99(tui);
    let (f50, f99) = p50_p99(floor);
    Ok(Figure {
        measure: "pane output → preview on screen, p50 / p99".into(),
        value: format!("{} / {}", ms(p50), ms(p99)),
        baseline: format!("{} / {} for the pane itself", ms(f50), ms(f99)),
    })
}

/// A hook line appended to the selected sandbox's events file until its AGENT cell says so.
fn hook_to_agent(
    screen: &Screen,
    base: &Path,
    record: &SandboxRecord,
    name: &str,
) -> Result<Figure, String> {
    use std::io::Write;
    let file = base.join(format!(
        "state/sandbox-deck/sandboxes/{}/status/events.jsonl",
        record.id
    ));
    let mut samples = Vec::new();
    for i in 0..20 {
        let (line, state) = if i % 2 == 0 {
            (
                "{\"event\":\"Notification\",\"input\":{\"message\":\"Claude needs your permission\"}}\n",
                "waiting",
            )
        } else {
            ("{\"event\":\"UserPromptSubmit\"}\n", "working")
        };
        let mut events = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let written = Instant::now();
        events
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string())?;
        drop(events);
        screen.until("=tui:", |s| {
            row_state(s, name).is_some_and(|st| st == state)
        })?;
        samples.push(written.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (p50, p99) = p50_p99(samples);
    Ok(Figure {
        measure: "hook event → AGENT column, p50 / p99".into(),
        value: format!("{} / {}", ms(p50), ms(p99)),
        baseline: "key → frame's floor above; before: up to the 1.5 s status timer".into(),
    })
}

/// `list --json` over 1,000 stopped records, against the binary doing nothing and `cat`.
fn list_1000(base: &Path) -> Result<Figure, String> {
    let dir = base.join("list1000");
    let paths = Paths {
        state_dir: dir.join("state/sandbox-deck"),
        config_dir: dir.join("config/sandbox-deck"),
        runtime_dir: dir.join("run/sandbox-deck"),
    };
    std::fs::create_dir_all(&paths.state_dir).map_err(|e| e.to_string())?;
    let registry = Registry::new(&paths);
    registry
        .update(|records| {
            for i in 0..1000 {
                let project = dir.join(format!("projects/p{i}"));
                std::fs::create_dir_all(&project).map_err(|e| DeckError::io("a project", e))?;
                records.push(SandboxRecord {
                    state: SandboxState::Stopped,
                    managed: true,
                    ..SandboxRecord::new(
                        SandboxName::parse(&format!("p{i}"))?,
                        ProjectDir::parse(&project)?,
                        Payload::Shell { command: vec![] },
                    )
                });
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let env = |c: &mut Command| {
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.join("home"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let time = |program: &str, args: &[&str]| -> Duration {
        let mut runs = Vec::new();
        for _ in 0..15 {
            let mut c = Command::new(program);
            c.args(args);
            env(&mut c);
            let started = Instant::now();
            let _ = c.status();
            runs.push(started.elapsed());
        }
        p50_p99(runs).0
    };
    let list = time(BIN, &["list", "--json"]);
    let version = time(BIN, &["--version"]);
    let cat = time("cat", &[&registry.path().to_string_lossy()]);
    let out = Command::new(BIN)
        .args(["list", "--json"])
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .output()
        .map_err(|e| e.to_string())?;
    let listed = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    if listed != 1000 {
        return Err(format!("list --json printed {listed} records"));
    }
    Ok(Figure {
        measure: "`list --json`, 1,000 records (median of 15)".into(),
        value: ms(list),
        baseline: format!(
            "{} for `sandbox-deck --version`, {} for `cat` of the registry",
            ms(version),
            ms(cat)
        ),
    })
}

/// The name in the detail box's title (`┌ NAME ─`, beside or under the table's own): the
/// selected sandbox.
fn selected(screen: &str) -> Option<String> {
    screen.lines().find_map(|line| {
        line.split("┌ ")
            .skip(1)
            .filter_map(|title| title.split(' ').next())
            .find(|name| *name != "Sandboxes" && !name.is_empty())
            .map(str::to_owned)
    })
}

/// The AGENT cell of `name`'s row: the word after the state marker, or `-`.
fn row_state(screen: &str, name: &str) -> Option<String> {
    screen.lines().find_map(|line| {
        let cells: Vec<&str> = line.trim_start_matches('│').split_whitespace().collect();
        let at = cells.iter().position(|c| *c == name)?;
        // `● name · idle running …` or `● name ! waiting …` or `● name - running …`.
        (at <= 1).then(|| {
            let next = cells.get(at + 1)?;
            if *next == "-" {
                Some("-".to_owned())
            } else {
                cells.get(at + 2).map(|s| (*s).to_owned())
            }
        })?
    })
}

/// Every row of the table on screen shows its agent state (none reads `-`), and there is
/// at least one.
fn every_row_state(screen: &str) -> bool {
    let Some(header) = screen.lines().position(|l| l.contains("NAME")) else {
        return false;
    };
    let states: Vec<Option<String>> = screen
        .lines()
        .skip(header + 1)
        .map_while(|row| {
            let name = row
                .trim_start_matches('│')
                .split_whitespace()
                .take(2)
                .find(|w| w.starts_with('p'))?;
            Some(row_state(screen, name))
        })
        .collect();
    !states.is_empty()
        && states
            .iter()
            .all(|s| s.as_deref().is_some_and(|s| s != "-"))
}
