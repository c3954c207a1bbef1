//! Idle cost of watching running sandboxes (issue 15): `cargo bench --bench idle [-- --secs N]`.
//!
//! Ten running sandboxes whose agent is a quiet shell, and the engine handle asked what the
//! TUI's workers ask (every agent state every 1.5 s, the selected sandbox's preview every
//! 250 ms), two ways in the same run:
//! - before: a `tmux capture-pane` process per look (what `Deck::agent_status` and
//!   `capture_pane` do, the path the handle took until control mode);
//! - after: through the handle (`agent_states`, `preview`): one tmux control client per
//!   session, a capture only for a pane that printed since the last look.
//!
//! The cost counted is the whole of it: this process, the children it started (reaped
//! `capture-pane` processes, and the control clients, read from `/proc`), and the tmux
//! server. Everything runs under its own HOME and XDG dirs in a temp dir; every sandbox is
//! removed with `rm --force`, the tmux server is ended by its socket, and the last line
//! says whether any process of ours was left (those are then killed by pid).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_deck::config::Config;
use sandbox_deck::engine::{Deck, EngineHandle};
use sandbox_deck::host::process;
use sandbox_deck::paths::Paths;

const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");
const SANDBOXES: usize = 10;
const STATUS_EVERY: Duration = Duration::from_millis(1500);
const PREVIEW_EVERY: Duration = Duration::from_millis(250);

fn main() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30u64);
    // Orphans of what we start (the daemonised tmux server) become ours to reap.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let root = tempfile::Builder::new()
        .prefix("sdi-")
        .tempdir_in(std::env::temp_dir())
        .expect("a temp dir");
    let base = root.path().canonicalize().expect("the temp dir");
    let code = match run(&base, Duration::from_secs(secs)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            1
        }
    };
    cleanup(&base);
    let left = ours(&base);
    for pid in &left {
        // SAFETY: kill with a pid of a process of ours (its command line names our temp dir).
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    if left.is_empty() {
        println!("leftover processes: none");
    } else {
        println!("leftover processes (killed now): {left:?}");
    }
    std::process::exit(if left.is_empty() { code } else { 1 });
}

fn run(base: &Path, period: Duration) -> Result<(), String> {
    let bin = base.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let agent = bin.join("claude");
    std::fs::write(&agent, "#!/bin/sh\nexec sh\n").map_err(|e| e.to_string())?;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let config_dir = base.join("config/sandbox-deck");
    std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
    std::fs::write(
        config_dir.join("config.toml"),
        format!("[sandbox]\nagent = \"{}\"\n", agent.display()),
    )
    .map_err(|e| e.to_string())?;
    for i in 0..SANDBOXES {
        let project = base.join(format!("projects/p{i}"));
        std::fs::create_dir_all(&project).map_err(|e| e.to_string())?;
        let out = deck_cli(base, &["create", &project.to_string_lossy()])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "create: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let paths = Paths {
        state_dir: base.join("state/sandbox-deck"),
        config_dir,
        runtime_dir: base.join("run/sandbox-deck"),
    };
    let config = Config::load(&paths.config_file()).map_err(|e| e.to_string())?;
    let deck = Deck::with(paths, config).map_err(|e| e.to_string())?;
    let records = deck.list().map_err(|e| e.to_string())?;
    let server = server_pid(base).ok_or("no tmux server pid")?;
    println!(
        "{} running sandboxes (agent: a quiet shell), {}s each way, status every {:?}, \
         preview every {:?}",
        records.len(),
        period.as_secs(),
        STATUS_EVERY,
        PREVIEW_EVERY
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
    // The first look attaches the control clients; the idle cost is what comes after.
    EngineHandle::agent_states(&deck, &records);
    let after = measure(
        server,
        period,
        || {
            EngineHandle::agent_states(&deck, &records);
        },
        || {
            let _ = EngineHandle::preview(&deck, &records[0].name);
        },
    );
    report("before (a capture-pane process per look)", &before, period);
    report("after (control mode)", &after, period);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    println!(
        "ratio before/after, whole cost: {:.1}x; tmux processes started: {} vs {}",
        ratio(before.total(), after.total()),
        before.spawned,
        after.spawned
    );
    Ok(())
}

#[derive(Debug, Default)]
struct Cost {
    /// CPU seconds: this process, its reaped children, its live tmux children, the server.
    own: f64,
    children: f64,
    server: f64,
    spawned: u64,
}

impl Cost {
    fn total(&self) -> f64 {
        self.own + self.children + self.server
    }
}

fn measure(
    server: u32,
    period: Duration,
    mut status: impl FnMut(),
    mut preview: impl FnMut(),
) -> Cost {
    let start = snapshot(server);
    let spawned = sandbox_deck::host::tmux::spawned_processes();
    let began = Instant::now();
    let mut next_status = began;
    while began.elapsed() < period {
        if Instant::now() >= next_status {
            status();
            next_status += STATUS_EVERY;
        }
        preview();
        std::thread::sleep(PREVIEW_EVERY);
    }
    let end = snapshot(server);
    Cost {
        own: end.own - start.own,
        children: end.children - start.children,
        server: end.server - start.server,
        spawned: sandbox_deck::host::tmux::spawned_processes() - spawned,
    }
}

struct Snapshot {
    own: f64,
    children: f64,
    server: f64,
}

fn snapshot(server: u32) -> Snapshot {
    let usage = |who| {
        // SAFETY: an all-zero rusage is a valid value of that plain C struct.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage fills the struct we hand it, which lives across the call.
        unsafe { libc::getrusage(who, &mut u) };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(u.ru_utime) + secs(u.ru_stime)
    };
    let me = std::process::id();
    // The control clients are alive (not reaped) while measured: read from /proc. (As a
    // subreaper we also parent the server and the sandboxes' Xvfbs: not these.)
    let live_children: f64 = process::pids()
        .into_iter()
        .filter(|pid| *pid != server && process::parent(*pid) == Some(me))
        .filter(|pid| process::name(*pid).is_some_and(|n| n.starts_with("tmux")))
        .map(cpu_secs)
        .sum();
    Snapshot {
        own: usage(libc::RUSAGE_SELF),
        children: usage(libc::RUSAGE_CHILDREN) + live_children,
        server: cpu_secs(server),
    }
}

/// utime + stime of a live process (0 for one that is gone).
fn cpu_secs(pid: u32) -> f64 {
    // SAFETY: sysconf with a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    process::stat(pid).map_or(0.0, |s| s.cpu_ticks as f64 / hz)
}

fn report(what: &str, cost: &Cost, period: Duration) {
    let pct = |s: f64| 100.0 * s / period.as_secs_f64();
    println!(
        "{what}: {:.3} % of a core (this process {:.3} %, children {:.3} %, tmux server \
         {:.3} %), {} tmux processes started",
        pct(cost.total()),
        pct(cost.own),
        pct(cost.children),
        pct(cost.server),
        cost.spawned
    );
}

fn deck_cli(base: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", base.join("home"))
        .env("XDG_STATE_HOME", base.join("state"))
        .env("XDG_CONFIG_HOME", base.join("config"))
        .env("XDG_RUNTIME_DIR", base.join("run"))
        .env("LANG", "C.UTF-8")
        .args(args)
        .stdin(Stdio::null());
    c
}

fn socket(base: &Path) -> PathBuf {
    base.join("run/sandbox-deck/tmux.sock")
}

fn server_pid(base: &Path) -> Option<u32> {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(socket(base))
        .args(["display-message", "-p", "#{pid}"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn cleanup(base: &Path) {
    if let Ok(out) = deck_cli(base, &["list", "--json"]).output()
        && let Ok(records) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
    {
        for r in records.as_array().into_iter().flatten() {
            if let Some(name) = r["name"].as_str() {
                let _ = deck_cli(base, &["rm", "--force", name]).output();
            }
        }
    }
    if socket(base).exists() {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(socket(base))
            .arg("kill-server")
            .stderr(Stdio::null())
            .output();
    }
    std::thread::sleep(Duration::from_millis(300));
    // Reap what we became the parent of.
    // SAFETY: waitpid on any child, without blocking.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// Processes whose command line names our temp dir (Xvfb's -auth, tmux's socket, bwrap).
fn ours(base: &Path) -> Vec<u32> {
    let marker = base.to_string_lossy().into_owned();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .collect()
}
