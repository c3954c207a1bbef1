//! What watching N printing tmux sessions costs the tmux server (issue 15), measured alone:
//! `cargo bench --bench tmux_watch [-- --sessions N --secs S]`.
//!
//! A tmux server of its own (its own socket in a temp dir), N sessions each printing a line
//! every 3 s, and the server's CPU time read from `/proc/PID/stat` over S seconds, for:
//! - (a) nobody watching (the baseline);
//! - (b) one control client per session (`tmux -C attach -f ignore-size`): what the engine
//!   did before, since tmux sends `%output` to a control client only for the panes of its
//!   own session;
//! - (c) one control client attached to a watch session with every session's window linked
//!   into it (`link-window`): what the engine does now;
//!
//! first with a plain tmux (an empty config), then with sandbox-deck's server config and,
//! nobody watching, with each server option that could cost per output on and off.
//!
//! `-- --rounds 1` measures instead what the engine asks over its one client, part by part,
//! each beside nobody watching on the same server just before: (c) the client alone, (c0)
//! the client told to send no `%output` (being attached without the output), (d) plus a
//! capture of each pane that printed since the last round every 1.5 s, one round trip each
//! (the status round before it read the output), (e) plus a `list-panes -a` every 2 s (the
//! reconcile's survey), (f) the survey alone, (g) the survey filtered by tmux (`-f`), (h) the
//! gated round (a pane printing plain lines captured every 15 s) with the filtered survey.
//!
//! `-- --option automatic-rename [--alternations N]` measures only that server option, nobody
//! watching, on and off in turn N times (3 by default).
//!
//! Every process it starts is ended by its pid (the clients) or by its socket (the server);
//! the last line says whether any was left.

#[path = "support/world.rs"]
mod world;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use world::*;

/// The pane: a line every 3 s.
const PRINTER: &str = "i=0; while :; do i=$((i+1)); echo \"line $i\"; sleep 3; done";
const WATCH: &str = "_watch";

fn main() {
    let sessions = arg("--sessions", 100) as usize;
    let secs = Duration::from_secs(arg("--secs", 30));
    run_in_temp_dir("sdtw-", |base| {
        println!(
            "tmux {}, {sessions} sessions printing a line every 3 s, {secs:?} a figure",
            {
                let out = Command::new("tmux")
                    .arg("-V")
                    .output()
                    .map_err(|e| e.to_string())?;
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
        );
        println!("load average at the start: {}", load());
        let plain = base.join("plain.conf");
        std::fs::write(&plain, "").map_err(|e| e.to_string())?;
        let ours = base.join("ours.conf");
        std::fs::write(&ours, sandbox_deck::host::tmux::CONFIG).map_err(|e| e.to_string())?;
        // `-- --option NAME`: only that server option, on and off, `--alternations` times.
        let only = std::env::args().skip_while(|a| a != "--option").nth(1);
        if let Some(option) = only {
            options(base, &ours, sessions, secs, Some(&option))?;
            println!("load average at the end: {}", load());
            return Ok(());
        }
        if arg("--rounds", 0) == 1 {
            rounds::run(base, &ours, sessions, secs)?;
            println!("load average at the end: {}", load());
            return Ok(());
        }
        clients(base, &plain, "plain tmux", sessions, secs)?;
        clients(base, &ours, "sandbox-deck's config", sessions, secs)?;
        options(base, &ours, sessions, secs, None)?;
        println!("load average at the end: {}", load());
        Ok(())
    })
}

struct Server {
    socket: PathBuf,
    conf: PathBuf,
    pid: u32,
}

impl Server {
    fn start(base: &Path, conf: &Path, name: &str, sessions: usize) -> Result<Server, String> {
        let socket = base.join(format!("{name}.sock"));
        let mut server = Server {
            socket,
            conf: conf.to_owned(),
            pid: 0,
        };
        for i in 0..sessions {
            let name = format!("s{i}");
            server.run(&[
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "40",
                "sh",
                "-c",
                PRINTER,
            ])?;
        }
        let pid = server.run(&["display-message", "-p", "#{pid}"])?;
        server.pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("no server pid: {pid}"))?;
        // Let every pane start its loop.
        std::thread::sleep(Duration::from_secs(4));
        Ok(server)
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).arg("-f").arg(&self.conf);
        c
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "tmux {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A control client attached to `session`, its output thrown away, its stdin kept open.
    fn control(&self, session: &str) -> Result<Child, String> {
        let target = format!("={session}");
        self.command()
            .args(["-C", "attach-session", "-f", "ignore-size", "-t", &target])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())
    }

    /// The server's CPU over `period`, in % of a core.
    /// The watch session (its own pane prints nothing), with every session's window linked
    /// into it, as the engine keeps it.
    fn link_into_watch_session(&self, sessions: usize) -> Result<(), String> {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            WATCH,
            "-x",
            "80",
            "-y",
            "24",
            "sleep",
            "1000000",
        ])?;
        for i in 0..sessions {
            let (source, target) = (format!("=s{i}:"), format!("={WATCH}:"));
            self.run(&["link-window", "-d", "-s", &source, "-t", &target])?;
        }
        Ok(())
    }

    fn cost(&self, period: Duration) -> f64 {
        let before = cpu_secs(self.pid);
        std::thread::sleep(period);
        100.0 * (cpu_secs(self.pid) - before) / period.as_secs_f64()
    }

    fn end(&self) {
        let _ = self.run(&["kill-server"]);
        // A server with a hundred panes takes a moment to exit on a busy machine.
        for _ in 0..100 {
            if sandbox_deck::host::process::stat(self.pid).is_none_or(|s| s.state == 'Z') {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[path = "tmux_watch/rounds.rs"]
mod rounds;

fn end_clients(clients: &mut Vec<Child>) {
    for mut child in clients.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split(' ')
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// (a), (b) and (c) on one server.
fn clients(
    base: &Path,
    conf: &Path,
    what: &str,
    sessions: usize,
    period: Duration,
) -> Result<(), String> {
    let server = Server::start(
        base,
        conf,
        &what.replace(|c: char| !c.is_alphanumeric(), "-"),
        sessions,
    )?;
    let result = (|| {
        let none = server.cost(period);
        let mut clients = Vec::new();
        for i in 0..sessions {
            clients.push(server.control(&format!("s{i}"))?);
        }
        std::thread::sleep(Duration::from_secs(1));
        let per_session = server.cost(period);
        end_clients(&mut clients);
        server.link_into_watch_session(sessions)?;
        let mut one = vec![server.control(WATCH)?];
        std::thread::sleep(Duration::from_secs(1));
        let watch = server.cost(period);
        end_clients(&mut one);
        std::thread::sleep(Duration::from_secs(1));
        let again = server.cost(period);
        println!(
            "{what}: tmux server (a) nobody watching {none:.3} %, (b) {sessions} control clients \
             (one a session) {per_session:.3} %, (c) one control client on a watch session with \
             {sessions} linked windows {watch:.3} %, (a) again (the windows still linked, no \
             client) {again:.3} % of a core"
        );
        Ok(())
    })();
    server.end();
    result
}

/// Nobody watching, with our config: each server option that could cost per output, on and
/// off in turn (twice each, alternating, so a drift in the machine's load shows).
fn options(
    base: &Path,
    conf: &Path,
    sessions: usize,
    period: Duration,
    only: Option<&str>,
) -> Result<(), String> {
    let server = Server::start(base, conf, "options", sessions)?;
    let times = if only.is_some() {
        arg("--alternations", 3)
    } else {
        2
    };
    let result = (|| {
        let variants: [(&str, &str, &str, &str); 3] = [
            ("automatic-rename", "-gw", "on", "off"),
            ("monitor-bell", "-gw", "on", "off"),
            ("status", "-g", "on", "off"),
        ];
        for (option, scope, on, off) in variants {
            if only.is_some_and(|o| o != option) {
                continue;
            }
            let mut costs = [0.0; 2];
            for _ in 0..times {
                for (i, value) in [on, off].into_iter().enumerate() {
                    server.run(&["set-option", scope, option, value])?;
                    let cost = server.cost(period);
                    println!("  {option} {value}: {cost:.3} % of a core");
                    costs[i] += cost / times as f64;
                }
            }
            server.run(&["set-option", scope, option, on])?;
            println!(
                "sandbox-deck's config, nobody watching: {option} {on} {:.3} %, {off} {:.3} % of a \
                 core (mean of {times} {period:?} periods each, alternating)",
                costs[0], costs[1]
            );
        }
        Ok(())
    })();
    server.end();
    result
}
