//! What the sandbox benchmarks share: a temp dir with its own HOME and XDG dirs, the CLI
//! run in it, its tmux server, CPU time read from `/proc`, and the cleanup that removes every
//! sandbox, ends the server by its socket and kills by pid whatever of ours is left.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_deck::host::process;

/// The number after `name` on the bench's command line (`-- --secs 10`), or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");
/// The TUI's pace: every agent state every 1.5 s, the selected preview every 250 ms.
pub const STATUS_EVERY: Duration = Duration::from_millis(1500);
pub const PREVIEW_EVERY: Duration = Duration::from_millis(250);

/// Runs `bench` in a fresh temp dir (as a subreaper, so the daemonised tmux server and the
/// sandboxes' orphans are ours to reap), cleans up and exits: 1 when it failed or left a
/// process behind.
pub fn run_in_temp_dir(prefix: &str, bench: impl FnOnce(&Path) -> Result<(), String>) -> ! {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let root = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(std::env::temp_dir())
        .expect("a temp dir");
    let base = root.path().canonicalize().expect("the temp dir");
    let code = match bench(&base) {
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
    drop(root);
    std::process::exit(if left.is_empty() { code } else { 1 });
}

/// The CLI with the temp dir's environment.
pub fn deck_cli(base: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .envs(environment(base))
        .args(args)
        .stdin(Stdio::null());
    c
}

pub fn environment(base: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        ("PATH", std::env::var_os("PATH").unwrap_or_default()),
        ("HOME", base.join("home").into()),
        ("XDG_STATE_HOME", base.join("state").into()),
        ("XDG_CONFIG_HOME", base.join("config").into()),
        ("XDG_RUNTIME_DIR", base.join("run").into()),
        ("LANG", "C.UTF-8".into()),
    ]
}

/// Writes the deck's config and `bin/claude` (`agent` is its body after `#!/bin/sh`).
pub fn configure(base: &Path, agent: &str, extra_config: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let bin = base.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let claude = bin.join("claude");
    std::fs::write(&claude, format!("#!/bin/sh\n{agent}\n")).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let config_dir = base.join("config/sandbox-deck");
    std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[sandbox]\nagent = \"{}\"\n{extra_config}",
            claude.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(config_dir)
}

/// Creates the agent sandboxes `p0`..`p{count-1}` with the CLI.
pub fn create_sandboxes(base: &Path, count: usize) -> Result<(), String> {
    for i in 0..count {
        let project = base.join(format!("projects/p{i}"));
        std::fs::create_dir_all(&project).map_err(|e| e.to_string())?;
        let out = deck_cli(base, &["create", &project.to_string_lossy()])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "create p{i}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

pub fn socket(base: &Path) -> PathBuf {
    base.join("run/sandbox-deck/tmux.sock")
}

pub fn server_pid(base: &Path) -> Option<u32> {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(socket(base))
        .args(["display-message", "-p", "#{pid}"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// utime + stime of a live process (0 for one that is gone).
pub fn cpu_secs(pid: u32) -> f64 {
    process::stat(pid).map_or(0.0, |s| s.cpu_ticks as f64 / ticks_per_sec())
}

/// utime + stime of a live process and of the children it has reaped.
pub fn cpu_secs_with_reaped(pid: u32) -> f64 {
    process::stat(pid).map_or(0.0, |s| {
        (s.cpu_ticks + s.reaped_children_ticks) as f64 / ticks_per_sec()
    })
}

pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf with a constant.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// A process's proportional set size (`/proc/PID/smaps_rollup`), in kB.
pub fn pss_kb(pid: u32) -> u64 {
    field_kb(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// A process's resident set size, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    field_kb(&format!("/proc/{pid}/status"), "VmRSS:")
}

fn field_kb(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Every descendant of `pid` (children first), from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = process::pids()
        .into_iter()
        .filter_map(|p| Some((p, process::parent(p)?)))
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// The median and the 99th percentile of `samples`.
pub fn p50_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The engine (`serve --auto`) a TUI started in `base`, from its pid file, if it runs.
pub fn engine_pid(base: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(base.join("run/sandbox-deck/serve.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    // Ours only if its environment names our temp dir (a pid file can outlive its process).
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    String::from_utf8_lossy(&environ)
        .contains(&*base.to_string_lossy())
        .then_some(pid)
}

pub fn cleanup(base: &Path) {
    if let Ok(out) = deck_cli(base, &["list", "--json"]).output()
        && let Ok(records) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
    {
        for r in records.as_array().into_iter().flatten() {
            if let Some(name) = r["name"].as_str() {
                let _ = deck_cli(base, &["rm", "--force", name]).output();
            }
        }
    }
    if let Some(engine) = engine_pid(base) {
        // SAFETY: kill with the pid of the engine started in our temp dir (checked above).
        unsafe { libc::kill(engine as i32, libc::SIGTERM) };
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

/// Whether every one of `pids` is gone within `timeout`, reaping on the way whatever we
/// became the parent of (the benches are subreapers).
pub fn gone_within(timeout: Duration, pids: &[u32]) -> bool {
    process::wait_until(timeout, || {
        // SAFETY: waitpid on any child, without blocking.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        pids.iter().all(|p| !process::is_running(*p))
    })
}

/// Processes whose command line names our temp dir (Xvfb's -auth, tmux's socket, bwrap).
pub fn ours(base: &Path) -> Vec<u32> {
    let marker = base.to_string_lossy().into_owned();
    let me = std::process::id();
    process::pids()
        .into_iter()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct Cost {
    /// CPU seconds: this process, its reaped children, its live tmux children, the server.
    pub own: f64,
    pub children: f64,
    pub server: f64,
    pub spawned: u64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.own + self.children + self.server
    }
}

pub fn measure(
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

pub struct Snapshot {
    own: f64,
    children: f64,
    server: f64,
}

pub fn snapshot(server: u32) -> Snapshot {
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

pub fn report(what: &str, cost: &Cost, period: Duration) {
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
