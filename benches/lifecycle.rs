//! Lifecycle benchmark (issue 2): `cargo bench --bench lifecycle [-- --runs N]`.
//!
//! Measures, against the real release binary and real Xvfb, tmux and bwrap:
//! 1. `create` → running for a bubblewrap sandbox, next to the same work done by hand
//!    (Xvfb on a free display, `tmux new-session` running bwrap), interleaved run by run;
//! 2. `list --json` with 100 registered sandboxes (all stopped, then 5 of them running),
//!    next to spawning `cat` on the registry file.
//!
//! Everything runs with its own HOME and XDG dirs in a temp dir. Everything started is ended
//! by pid (or `kill-server` on our own sockets) and the temp dir is removed; the last lines
//! say whether any process was left. Missing host tools skip the parts that need them.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sandbox_deck::host::process;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");

const DEFAULT_RUNS: usize = 20;
const LIST_RUNS: usize = 30;
const WARMUP: usize = 2;
const REGISTERED: usize = 100;
const RUNNING: usize = 5;

const CREATE_TARGET_MS: f64 = 300.0;
const LIST_TARGET_MS: f64 = 20.0;

type Res<T> = Result<T, String>;

fn main() {
    let runs = runs_from_args();
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted)).expect("signal handler");
    }
    // Orphans of what we start (the daemonised tmux servers, the deck's Xvfb once `create`
    // has exited) become our children instead of pid 1's, so we can reap them: an init that
    // does not reap (as in some VMs and containers) would otherwise keep them as zombies.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut bench = Bench::new(interrupted).expect("setting up the benchmark dir");
    let result = bench.run_all(runs);
    let leftovers = bench.finish();
    let stale = bench.stale_display_files();
    let code = match result {
        Ok(report) => {
            report.print();
            0
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            1
        }
    };
    if stale.is_empty() {
        println!("leftover display lock files and sockets: none");
    } else {
        println!("leftover display lock files and sockets (removed now): {stale:?}");
    }
    if leftovers.is_empty() {
        println!("leftover processes: none");
    } else {
        println!("leftover processes (killed now): {leftovers:?}");
    }
    let clean = stale.is_empty() && leftovers.is_empty();
    std::process::exit(if clean { code } else { 1 });
}

/// `--runs N` (default 20) sets the timed runs of `create`; `list` always gets at least 30.
/// Other arguments (cargo passes `--bench`) are ignored.
fn runs_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_RUNS)
}

// ---------------------------------------------------------------------------------------
// Statistics and the report

#[derive(Debug, Clone, Copy)]
struct Stats {
    runs: usize,
    median: f64,
    p10: f64,
    p90: f64,
    min: f64,
}

/// Milliseconds; percentiles by nearest rank, the median averaged for an even count.
fn stats(samples: &[Duration]) -> Stats {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let rank = |p: f64| ms[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    Stats {
        runs: n,
        median,
        p10: rank(0.10),
        p90: rank(0.90),
        min: ms[0],
    }
}

struct Pair {
    what: &'static str,
    ours: Stats,
    baseline: Stats,
    baseline_what: &'static str,
}

struct Verdict {
    label: String,
    median: f64,
    target: f64,
}

#[derive(Default)]
struct Report {
    pairs: Vec<Pair>,
    verdicts: Vec<Verdict>,
    notes: Vec<String>,
}

impl Report {
    fn add(&mut self, pair: Pair, label: impl Into<String>, target: f64) {
        self.verdicts.push(Verdict {
            label: label.into(),
            median: pair.ours.median,
            target,
        });
        self.pairs.push(pair);
    }

    fn print(&self) {
        println!();
        println!(
            "{:<44} {:>4} {:>9} {:>9} {:>9} {:>9}",
            "benchmark (ms)", "runs", "median", "p10", "p90", "min"
        );
        let row = |name: String, s: &Stats| {
            println!(
                "{:<44} {:>4} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name, s.runs, s.median, s.p10, s.p90, s.min
            );
        };
        for pair in &self.pairs {
            row(format!("{} (sandbox-deck)", pair.what), &pair.ours);
            row(
                format!("  baseline: {}", pair.baseline_what),
                &pair.baseline,
            );
            println!(
                "{:<44} {:>4} {:>8.2}x",
                "  ratio ours/baseline (medians)",
                "",
                pair.ours.median / pair.baseline.median
            );
        }
        for note in &self.notes {
            println!("note: {note}");
        }
        println!();
        for v in &self.verdicts {
            let verdict = if v.median <= v.target { "ok" } else { "MISSED" };
            println!(
                "{} median {:.1} ms (target <= {} ms): {verdict}",
                v.label, v.median, v.target
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Processes

/// A process we started or saw, known by pid and start time so a recycled pid never counts.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: u32,
    start_time: u64,
}

/// (state, ppid, start time) from `/proc/<pid>/stat`, read by the crate's one reader.
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let s = process::stat(pid)?;
    Some((s.state, s.ppid, s.start_time))
}

impl Proc {
    fn of(pid: u32) -> Option<Proc> {
        stat(pid).map(|(_, _, start_time)| Proc { pid, start_time })
    }

    fn from_json(v: &Value) -> Option<Proc> {
        Some(Proc {
            pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
            start_time: v.get("start_time")?.as_u64()?,
        })
    }

    /// Running (a zombie has finished running).
    fn is_alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, _, start)| {
            start == self.start_time && state != 'Z' && state != 'X'
        })
    }

    fn signal(&self, signal: Signal) {
        if self.is_alive() {
            let _ = kill(Pid::from_raw(self.pid as i32), signal);
        }
    }
}

fn all_pids() -> Vec<u32> {
    process::pids()
}

/// Live processes whose command line or environment names `marker` (every process we start
/// gets HOME and the XDG dirs under it, and sandboxed ones keep HOME), and their descendants.
fn processes_marked(marker: &str) -> Vec<Proc> {
    let me = std::process::id();
    let table: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?.1)))
        .collect();
    let mut found: Vec<u32> = table
        .iter()
        .map(|(pid, _)| *pid)
        .filter(|pid| *pid != me)
        .filter(|pid| {
            ["cmdline", "environ"].iter().any(|file| {
                std::fs::read(format!("/proc/{pid}/{file}"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
            })
        })
        .collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for (pid, ppid) in &table {
            if *ppid == parent && !found.contains(pid) && *pid != me {
                found.push(*pid);
            }
        }
        i += 1;
    }
    found
        .into_iter()
        .filter_map(Proc::of)
        .filter(Proc::is_alive)
        .collect()
}

/// Reaps our children that have exited. Only called between runs, when no `Child` or
/// `output()` of ours is waiting on a process that could be among them.
fn reap_zombies() -> usize {
    let me = std::process::id();
    let mut reaped = 0;
    for pid in all_pids() {
        if stat(pid).is_some_and(|(state, ppid, _)| state == 'Z' && ppid == me) {
            // SAFETY: waitpid on a single pid, no status wanted.
            if unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) } > 0 {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Whether any child of ours is a zombie waiting to be reaped.
fn have_zombies() -> bool {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .any(|pid| stat(pid).is_some_and(|(state, ppid, _)| state == 'Z' && ppid == me))
}

/// No live server holds the display's lock file and no socket is left.
fn display_looks_free(number: u32) -> bool {
    let held = std::fs::read_to_string(format!("/tmp/.X{number}-lock"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .and_then(Proc::of)
        .is_some_and(|p| p.is_alive());
    !held && !Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()
}

/// Every live process below `pid`.
fn descendants(pid: u32) -> Vec<Proc> {
    let table: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, stat(p)?.1)))
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            table
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found[1..]
        .iter()
        .filter_map(|p| Proc::of(*p))
        .filter(Proc::is_alive)
        .collect()
}

fn comm(pid: u32) -> String {
    process::name(pid).unwrap_or_default()
}

fn wait_until(timeout: Duration, pause: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn check(out: &Output, what: &str) -> Res<()> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The benchmark's private world

struct Bench {
    root: Option<tempfile::TempDir>,
    /// The root's path as text: every process of ours names it on its command line.
    marker: String,
    home: PathBuf,
    state: PathBuf,
    config: PathBuf,
    runtime: PathBuf,
    project: PathBuf,
    baseline_socket: PathBuf,
    /// Baseline Xvfb servers not yet ended (normally none between runs).
    baseline_xvfb: Vec<Child>,
    /// Every process of a sandbox or baseline run, checked at the end.
    seen: Vec<Proc>,
    /// Every display an Xvfb of ours held, with that server's pid.
    displays: Vec<(u32, u32)>,
    interrupted: Arc<AtomicBool>,
    finished: bool,
}

impl Bench {
    fn new(interrupted: Arc<AtomicBool>) -> std::io::Result<Bench> {
        // A short path: the tmux socket lives under it and sun_path holds 108 bytes.
        let root = tempfile::Builder::new()
            .prefix("sdb-")
            .tempdir_in(std::env::temp_dir())?;
        let base = root.path().canonicalize()?;
        let dir = |name: &str| -> std::io::Result<PathBuf> {
            let path = base.join(name);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)?;
            Ok(path)
        };
        Ok(Bench {
            marker: base.to_string_lossy().into_owned(),
            home: dir("home")?,
            state: dir("state")?,
            config: dir("config")?,
            runtime: dir("run")?,
            project: dir("project")?,
            baseline_socket: base.join("run/baseline-tmux.sock"),
            root: Some(root),
            baseline_xvfb: Vec::new(),
            seen: Vec::new(),
            displays: Vec::new(),
            interrupted,
            finished: false,
        })
    }

    fn registry_file(&self) -> PathBuf {
        self.state.join("sandbox-deck/registry.json")
    }

    fn deck_socket(&self) -> PathBuf {
        self.runtime.join("sandbox-deck/tmux.sock")
    }

    fn env(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_STATE_HOME", &self.state)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
    }

    fn deck(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        self.env(&mut command);
        command.args(args);
        command
    }

    fn tmux(&self, socket: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        self.env(&mut command);
        command.arg("-S").arg(socket).args(args);
        command
    }

    fn check_interrupt(&self) -> Res<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            Err("interrupted".into())
        } else {
            Ok(())
        }
    }

    fn run_all(&mut self, runs: usize) -> Res<Report> {
        let mut report = Report::default();
        let tools = ["Xvfb", "tmux", "bwrap"];
        let missing: Vec<&str> = tools.into_iter().filter(|t| which(t).is_none()).collect();
        println!("sandbox-deck lifecycle benchmark: {BIN}");
        println!("private dir (HOME, XDG dirs, project): {}", self.marker);
        if missing.is_empty() {
            let pair = self.bench_create(runs, &mut report.notes)?;
            report.add(pair, "create->running", CREATE_TARGET_MS);
        } else {
            report.notes.push(format!(
                "SKIPPED create->running and the running list: missing {missing:?}"
            ));
        }
        let runs = runs.max(LIST_RUNS);
        let pair = self.bench_list_stopped(runs)?;
        report.add(
            pair,
            format!("list --json ({REGISTERED} sandboxes)"),
            LIST_TARGET_MS,
        );
        if missing.is_empty() {
            let pair = self.bench_list_running(runs)?;
            report.add(
                pair,
                format!("list --json ({REGISTERED} sandboxes, {RUNNING} running)"),
                LIST_TARGET_MS,
            );
        }
        Ok(report)
    }

    // --- create -------------------------------------------------------------------------

    fn bench_create(&mut self, runs: usize, notes: &mut Vec<String>) -> Res<Pair> {
        println!("create->running: {WARMUP} warm-up + {runs} runs each, interleaved");
        let mut ours = Vec::new();
        let mut baseline = Vec::new();
        let mut xvfb_phase = Vec::new();
        for i in 0..WARMUP + runs {
            self.check_interrupt()?;
            let name = format!("b{i}");
            let a = self.create_once(&name)?;
            let (b, xvfb) = self.by_hand_once(&name)?;
            reap_zombies();
            if i >= WARMUP {
                ours.push(a);
                baseline.push(b);
                xvfb_phase.push(xvfb);
            }
        }
        let xvfb = stats(&xvfb_phase).median;
        let total = stats(&baseline).median;
        notes.push(format!(
            "baseline create phases (medians): Xvfb ready {xvfb:.1} ms, the rest (tmux + bwrap) \
             about {:.1} ms",
            total - xvfb
        ));
        Ok(Pair {
            what: "create->running",
            ours: stats(&ours),
            baseline: stats(&baseline),
            baseline_what: "Xvfb + tmux new-session + bwrap",
        })
    }

    /// One timed `create` (spawn to exit, state checked), then an untimed `rm --force`.
    fn create_once(&mut self, name: &str) -> Res<Duration> {
        let project = self.project.to_string_lossy().into_owned();
        let mut command = self.deck(&[
            "--json", "create", &project, "--name", name, "--shell", "--", "sleep", "600",
        ]);
        let start = Instant::now();
        let out = command
            .output()
            .map_err(|e| format!("running {BIN}: {e}"))?;
        let elapsed = start.elapsed();
        check(&out, "sandbox-deck create")?;
        let record: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("create printed no JSON record: {e}"))?;
        self.remember(&record);
        if let Some(launcher) = Proc::from_json(&record["launcher"]) {
            self.seen.extend(descendants(launcher.pid));
        }
        if record["state"] != "running" {
            return Err(format!("create returned state {}", record["state"]));
        }
        let out = self
            .deck(&["--json", "rm", "--force", name])
            .output()
            .map_err(|e| e.to_string())?;
        check(&out, "sandbox-deck rm --force")?;
        Ok(elapsed)
    }

    /// Notes the processes a record names, for the leak check at the end.
    fn remember(&mut self, record: &Value) {
        for key in ["xvfb", "launcher"] {
            if let Some(p) = Proc::from_json(&record[key]) {
                self.seen.push(p);
            }
        }
        let display = record["display"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok());
        if let (Some(number), Some(xvfb)) = (display, Proc::from_json(&record["xvfb"])) {
            self.displays.push((number, xvfb.pid));
        }
    }

    /// Lock files and sockets that a server of ours left behind (a clean exit removes both).
    /// They are removed; the list says which displays had them.
    fn stale_display_files(&self) -> Vec<u32> {
        let mut stale = Vec::new();
        for (number, pid) in &self.displays {
            let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
            let ours = std::fs::read_to_string(&lock)
                .is_ok_and(|text| text.trim().parse::<u32>().ok() == Some(*pid));
            if ours && !Proc::of(*pid).is_some_and(|p| p.is_alive()) {
                let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
                let _ = std::fs::remove_file(&lock);
                stale.push(*number);
            }
        }
        stale
    }

    /// The same work without sandbox-deck: Xvfb on a free display, then a tmux session whose
    /// pane runs bwrap, timed until the pane has exec'd bwrap. Then, untimed, the session and
    /// the display are ended by name and pid.
    fn by_hand_once(&mut self, name: &str) -> Res<(Duration, Duration)> {
        let start = Instant::now();
        let display = self.start_baseline_xvfb()?;
        let xvfb_ready = start.elapsed();
        let out = self
            .tmux(
                &self.baseline_socket,
                &["-f", "/dev/null", "new-session", "-d", "-s", name],
            )
            .args(["-x", "200", "-y", "50", "-P", "-F", "#{pane_pid}", "--"])
            .args([
                "bwrap",
                "--unshare-user",
                "--unshare-pid",
                "--die-with-parent",
            ])
            .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args(["--", "sleep", "600"])
            .env("DISPLAY", format!(":{display}"))
            .output()
            .map_err(|e| format!("running tmux: {e}"))?;
        check(&out, "tmux new-session")?;
        let pane: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "tmux printed no pane pid".to_string())?;
        let is_bwrap = || comm(pane) == "bwrap";
        if !wait_until(Duration::from_secs(5), Duration::from_millis(1), is_bwrap) {
            return Err("the baseline pane never ran bwrap".into());
        }
        let elapsed = start.elapsed();

        // Untimed. Let bwrap finish setting up first: ended earlier, its outer process can die
        // before the inner one has armed --die-with-parent, and the inner one is left (seen).
        let payload_runs = || descendants(pane).iter().any(|p| comm(p.pid) == "sleep");
        wait_until(
            Duration::from_secs(5),
            Duration::from_millis(2),
            payload_runs,
        );
        let mut sandbox = descendants(pane);
        sandbox.extend(Proc::of(pane));
        self.seen.extend(sandbox.iter().copied());
        let target = format!("={name}");
        let out = self
            .tmux(&self.baseline_socket, &["kill-session", "-t", &target])
            .output()
            .map_err(|e| format!("running tmux: {e}"))?;
        check(&out, "tmux kill-session")?;
        let all_gone = || !sandbox.iter().any(Proc::is_alive);
        if !wait_until(Duration::from_secs(2), Duration::from_millis(2), all_gone) {
            // The pid-1 of a pid namespace ignores everything but SIGKILL from outside.
            sandbox.iter().for_each(|p| p.signal(Signal::SIGKILL));
        }
        self.end_baseline_xvfb();
        Ok((elapsed, xvfb_ready))
    }

    /// Starts Xvfb on the first free display from 10 up and returns the number once the
    /// server holds its lock file and listens on its socket. `-displayfd` is not used: it
    /// skips the lock file and, with `-nolisten local`, always lands on :0, replacing the
    /// socket of any other server there (seen on this kind of shared machine).
    fn start_baseline_xvfb(&mut self) -> Res<u32> {
        let mut number = 10;
        for _ in 0..64 {
            while !display_looks_free(number) {
                number += 1;
            }
            let mut command = Command::new("Xvfb");
            self.env(&mut command);
            command
                .arg(format!(":{number}"))
                .args(["-screen", "0", "1280x800x24"])
                .args(["-nolisten", "tcp", "-nolisten", "local"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: setsid is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = command.spawn().map_err(|e| format!("starting Xvfb: {e}"))?;
            let pid = child.id();
            self.seen.extend(Proc::of(pid));
            self.baseline_xvfb.push(child);
            let lock = format!("/tmp/.X{number}-lock");
            let socket = format!("/tmp/.X11-unix/X{number}");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let child = self.baseline_xvfb.last_mut().expect("just pushed");
                if !matches!(child.try_wait(), Ok(None)) {
                    break; // lost the display to another server: try the next number
                }
                let owns_lock = std::fs::read_to_string(&lock)
                    .is_ok_and(|text| text.trim().parse::<u32>().ok() == Some(pid));
                if owns_lock && Path::new(&socket).exists() {
                    self.displays.push((number, pid));
                    return Ok(number);
                }
                if Instant::now() > deadline {
                    return Err(format!("Xvfb :{number} not ready after 10 s"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            self.end_baseline_xvfb();
            number += 1;
        }
        Err("no free display for the baseline Xvfb".into())
    }

    /// SIGTERM each baseline Xvfb, SIGKILL after 2 s, and reap it.
    fn end_baseline_xvfb(&mut self) {
        for mut child in self.baseline_xvfb.drain(..) {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let gone = wait_until(Duration::from_secs(2), Duration::from_millis(2), || {
                matches!(child.try_wait(), Ok(Some(_)) | Err(_))
            });
            if !gone {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    // --- list ---------------------------------------------------------------------------

    /// A stopped managed record in the registry's own format (see src/sandbox.rs).
    fn stopped_record(&self, i: usize) -> Value {
        let name = format!("l{i:03}");
        json!({
            "name": name,
            "id": format!("{:016x}", 0x5d5d_0000_0000_0000_u64 + i as u64),
            "backend": "bubblewrap",
            "state": "stopped",
            "project_dir": self.project,
            "display": null,
            "tmux_session": name,
            "network": true,
            "managed": true,
            "created_at": "2026-01-01T12:00:00Z",
            "exit_status": 0,
            "reason": null,
            "payload": { "kind": "shell", "command": ["sleep", "600"] },
            "gh_token": false,
            "started_at": null,
            "agent_ran": false,
            "xvfb": null,
            "launcher": null,
            "profile": null,
        })
    }

    /// Replaces the registry with `count` stopped records (schema 1, pretty, as the deck saves).
    fn write_registry(&self, count: usize) -> Res<()> {
        let file = json!({
            "schema": 1,
            "sandboxes": (0..count).map(|i| self.stopped_record(i)).collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        text.push(b'\n');
        let path = self.registry_file();
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("creating the state dir: {e}"))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("writing the registry: {e}"))
    }

    /// `sandbox-deck --json list`, parsed.
    fn list(&self) -> Res<Vec<Value>> {
        let out = self
            .deck(&["--json", "list"])
            .output()
            .map_err(|e| e.to_string())?;
        check(&out, "sandbox-deck list")?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        v.as_array()
            .cloned()
            .ok_or_else(|| "list --json printed no array".to_string())
    }

    fn count_state(records: &[Value], state: &str) -> usize {
        records.iter().filter(|r| r["state"] == state).count()
    }

    fn bench_list_stopped(&mut self, runs: usize) -> Res<Pair> {
        self.write_registry(REGISTERED)?;
        let before = std::fs::read(self.registry_file()).map_err(|e| e.to_string())?;
        let records = self.list()?;
        if records.len() != REGISTERED || Self::count_state(&records, "stopped") != REGISTERED {
            return Err(format!(
                "list showed {} records, expected {REGISTERED} stopped: the record format drifted?",
                records.len()
            ));
        }
        println!("list --json, {REGISTERED} stopped: {WARMUP} warm-up + {runs} runs each");
        let pair = self.time_list(runs, "list --json, 100 stopped")?;
        let after = std::fs::read(self.registry_file()).map_err(|e| e.to_string())?;
        if before != after {
            return Err("list rewrote a registry of stopped sandboxes".into());
        }
        Ok(pair)
    }

    fn bench_list_running(&mut self, runs: usize) -> Res<Pair> {
        // The stopped records first, then real sandboxes through the CLI, which adds them
        // with its own read-modify-write.
        self.write_registry(REGISTERED - RUNNING)?;
        let project = self.project.to_string_lossy().into_owned();
        for i in 0..RUNNING {
            let name = format!("r{i}");
            let out = self
                .deck(&[
                    "--json", "create", &project, "--name", &name, "--shell", "--", "sleep", "600",
                ])
                .output()
                .map_err(|e| e.to_string())?;
            check(&out, "sandbox-deck create")?;
            let record: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            self.remember(&record);
        }
        let records = self.list()?;
        if records.len() != REGISTERED || Self::count_state(&records, "running") != RUNNING {
            return Err(format!(
                "list showed {} records, {} running; expected {REGISTERED}, {RUNNING}",
                records.len(),
                Self::count_state(&records, "running")
            ));
        }
        println!(
            "list --json, {REGISTERED} with {RUNNING} running: {WARMUP} warm-up + {runs} runs each"
        );
        let pair = self.time_list(runs, "list --json, 100 (5 running)")?;
        let records = self.list()?;
        if Self::count_state(&records, "running") != RUNNING {
            return Err("a running sandbox stopped running during the list benchmark".into());
        }
        for i in 0..RUNNING {
            let out = self
                .deck(&["--json", "rm", "--force", &format!("r{i}")])
                .output()
                .map_err(|e| e.to_string())?;
            check(&out, "sandbox-deck rm --force")?;
        }
        Ok(pair)
    }

    /// Times `sandbox-deck --json list` and `cat <registry>`, interleaved.
    fn time_list(&self, runs: usize, what: &'static str) -> Res<Pair> {
        let registry = self.registry_file();
        let mut ours = Vec::new();
        let mut baseline = Vec::new();
        for i in 0..WARMUP + runs {
            self.check_interrupt()?;
            let mut command = self.deck(&["--json", "list"]);
            let start = Instant::now();
            let out = command.output().map_err(|e| e.to_string())?;
            let a = start.elapsed();
            check(&out, "sandbox-deck list")?;

            let mut command = Command::new("cat");
            self.env(&mut command);
            command.arg(&registry);
            let start = Instant::now();
            let out = command.output().map_err(|e| e.to_string())?;
            let b = start.elapsed();
            check(&out, "cat")?;
            if i >= WARMUP {
                ours.push(a);
                baseline.push(b);
            }
        }
        Ok(Pair {
            what,
            ours: stats(&ours),
            baseline: stats(&baseline),
            baseline_what: "cat <registry file>",
        })
    }

    // --- cleanup ------------------------------------------------------------------------

    /// Ends everything this benchmark started and removes its temp dir. Returns the pids that
    /// were still running after the orderly cleanup (they are SIGKILLed).
    fn finish(&mut self) -> Vec<u32> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        self.end_baseline_xvfb();
        // Sandboxes through the CLI, by name from the registry.
        if let Ok(text) = std::fs::read(self.registry_file())
            && let Ok(v) = serde_json::from_slice::<Value>(&text)
        {
            let records = v["sandboxes"].as_array().cloned().unwrap_or_default();
            for r in records {
                let running = r["state"].as_str() != Some("stopped");
                if let (true, Some(name)) = (running, r["name"].as_str()) {
                    let _ = self.deck(&["rm", "--force", name]).output();
                }
            }
        }
        // Our two private tmux servers, by their own sockets.
        for socket in [self.deck_socket(), self.baseline_socket.clone()] {
            if socket.exists() {
                let _ = self
                    .tmux(&socket, &["kill-server"])
                    .stderr(Stdio::null())
                    .output();
            }
        }
        // Whatever is left: processes naming our temp dir (and their children), and the
        // processes we noted along the way. Give exiting ones a moment first.
        let leftovers = || {
            let mut left = processes_marked(&self.marker);
            left.extend(self.seen.iter().copied().filter(Proc::is_alive));
            left.sort_by_key(|p| p.pid);
            left.dedup_by_key(|p| p.pid);
            left
        };
        wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
            leftovers().is_empty()
        });
        let left = leftovers();
        for p in &left {
            p.signal(Signal::SIGKILL);
        }
        wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
            reap_zombies();
            !have_zombies()
        });
        if let Some(root) = self.root.take() {
            let path = root.path().to_owned();
            if let Err(e) = root.close() {
                eprintln!("could not remove {}: {e}", path.display());
            }
        }
        left.iter().map(|p| p.pid).collect()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let left = self.finish();
        if !left.is_empty() {
            eprintln!("killed leftover processes: {left:?}");
        }
    }
}
