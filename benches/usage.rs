//! The usage engine against ccusage on the same synthetic corpus, in the same run.
//!
//! ```text
//! cargo bench --bench usage            # 200 MB corpus; USAGE_BENCH_MB=50 for a smaller one
//! ```
//!
//! It generates the corpus (examples/gen-usage-corpus.rs) in a temp dir, installs ccusage
//! with npm into another temp dir (never into the repo), and prints a Markdown report:
//! totals from the generator, from us and from ccusage; cold-run time and peak RSS of both
//! CLIs, ours beside `cat` of the same files run alternately with it (issue 15's target: at
//! most 2x); our warm run (cache present, nothing new) without an engine and through a
//! running `serve` (target: at most 10 ms), all printing the same JSON; and the in-process
//! refresh after appending one line. The engine it starts is ended by its pid.

#[path = "../examples/gen-usage-corpus.rs"]
mod corpus_gen;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_deck::usage::{GroupBy, Pricing, Query, RefreshStats, UsageIndex};
use serde_json::Value;

const CCUSAGE: &[&str] = &["ccusage@20.0.24", "@ccusage/ccusage-linux-x64@20.0.24"];
const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");

struct Run {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: i64,
    stdout: Vec<u8>,
}

/// Runs `command` to completion and reads its resource usage with wait4.
fn measure(mut command: Command, out: &Path) -> Run {
    let file = std::fs::File::create(out).expect("stdout file");
    command.stdout(Stdio::from(file)).stderr(Stdio::null());
    let started = Instant::now();
    // Reaped below with wait4, which std's Child cannot do (it gives no rusage).
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: pid is our own unwaited child; both pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(rc, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed"
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
        stdout: std::fs::read(out).expect("stdout"),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn ccusage_bin(dir: &Path) -> Option<PathBuf> {
    let bin = dir.join("node_modules/.bin/ccusage");
    if bin.exists() {
        return Some(bin);
    }
    std::fs::create_dir_all(dir).ok()?;
    eprintln!("installing {CCUSAGE:?} with npm into {}", dir.display());
    let ok = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .args(CCUSAGE)
        .status()
        .is_ok_and(|s| s.success());
    (ok && bin.exists()).then_some(bin)
}

fn main() {
    let mb: u64 = std::env::var("USAGE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let base = std::env::temp_dir().join("sandbox-deck-usage-bench");
    let corpus_dir = base.join(format!("corpus-{mb}mb"));
    let scratch = base.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let corpus = corpus(&corpus_dir, mb);
    let runs = cli_runs(&corpus_dir, &scratch);
    let our_report = runs.report.clone();
    let (cc_runs, cc_report) = ccusage_runs(&corpus_dir, &scratch);
    let in_process = in_process(&corpus_dir);
    let ours = Totals::of(&our_report["totals"]);
    assert_eq!(
        ours.tokens,
        corpus.truth_tokens(),
        "our totals differ from the generator's"
    );
    assert_eq!(ours.entries, corpus.truth.responses);
    assert!((in_process.report_cost - ours.cost).abs() < 1e-6);
    print_totals(&corpus, &ours, (!cc_runs.is_empty()).then_some(&cc_report));
    print_runs(&runs, &cc_runs);
    print_in_process(&in_process);
}

/// The generated corpus and what the generator says it holds.
struct Corpus {
    truth: corpus_gen::Truth,
    files: u64,
    bytes: u64,
}

impl Corpus {
    fn truth_tokens(&self) -> [u64; 4] {
        let t = &self.truth;
        [t.input, t.output, t.cache_creation, t.cache_read]
    }
}

/// The corpus in `corpus_dir`, generated once per size (the generator is deterministic).
fn corpus(corpus_dir: &Path, mb: u64) -> Corpus {
    let marker = corpus_dir.join("truth.json");
    let truth: corpus_gen::Truth = match std::fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<u64>>(&b).ok())
    {
        Some(v) if v.len() == 7 => corpus_gen::Truth {
            responses: v[0],
            input: v[1],
            output: v[2],
            cache_creation: v[3],
            cache_read: v[4],
        },
        _ => {
            let _ = std::fs::remove_dir_all(corpus_dir);
            eprintln!("generating a {mb} MB corpus in {}", corpus_dir.display());
            let c = corpus_gen::generate(corpus_dir, mb, 0x5eed).expect("corpus");
            let t = c.truth;
            let v = vec![
                t.responses,
                t.input,
                t.output,
                t.cache_creation,
                t.cache_read,
                c.files as u64,
                c.bytes,
            ];
            std::fs::write(&marker, serde_json::to_vec(&v).unwrap()).unwrap();
            t
        }
    };
    let facts: Vec<u64> = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    Corpus {
        truth,
        files: facts[5],
        bytes: facts[6],
    }
}

/// Our CLI runs and their baselines.
struct CliRuns {
    cold: Vec<Run>,
    /// `cat` of the same files, each run right before a cold one.
    cat: Vec<Run>,
    warm: Vec<Run>,
    /// Warm through a running engine (`serve`), its index current.
    engine: Vec<Run>,
    report: Value,
}

/// The corpus's log files, in path order.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("corpus dir").flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "jsonl") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Ours through the CLI: five times cold (empty state dir, right after a `cat` of the same
/// files) and warm (its cache present), then five times through an engine. Every run prints
/// the same JSON.
fn cli_runs(corpus_dir: &Path, scratch: &Path) -> CliRuns {
    let ours = |state: &Path| {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", scratch)
            .env("TZ", "UTC")
            .env("CLAUDE_CONFIG_DIR", corpus_dir)
            .env("XDG_STATE_HOME", state)
            .env("XDG_CONFIG_HOME", scratch.join("config"))
            .env("XDG_RUNTIME_DIR", scratch.join("run"));
        c
    };
    let usage = |state: &Path| {
        let mut c = ours(state);
        c.args(["--json", "usage", "--by", "day"]);
        c
    };
    let files = log_files(&corpus_dir.join("projects"));
    let mut runs = CliRuns {
        cold: Vec::new(),
        cat: Vec::new(),
        warm: Vec::new(),
        engine: Vec::new(),
        report: Value::Null,
    };
    for i in 0..5 {
        let mut cat = Command::new("cat");
        cat.args(&files);
        runs.cat.push(measure(cat, Path::new("/dev/null")));
        let state = scratch.join(format!("state{i}"));
        let run = measure(usage(&state), &scratch.join("ours.json"));
        if i == 0 {
            runs.report = serde_json::from_slice(&run.stdout).expect("our JSON");
        }
        assert_eq!(
            serde_json::from_slice::<Value>(&run.stdout).unwrap(),
            runs.report
        );
        let cold_text = run.stdout.clone();
        runs.cold.push(run);
        let run = measure(usage(&state), &scratch.join("ours-warm.json"));
        assert_eq!(run.stdout, cold_text, "warm prints what cold printed");
        runs.warm.push(run);
    }
    // The engine, on the last state dir; ended by its pid.
    let state = scratch.join("state4");
    let socket = scratch.join("run/sandbox-deck/api.sock");
    let mut serve = ours(&state);
    serve
        .args(["serve", "--idle-timeout", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut engine = serve.spawn().expect("starting serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the engine did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cold_text = std::fs::read(scratch.join("ours-warm.json")).unwrap();
    for i in 0..6 {
        let run = measure(usage(&state), &scratch.join("ours-engine.json"));
        assert_eq!(run.stdout, cold_text, "the engine prints what cold printed");
        // The first makes the engine's index (from the cache): not counted.
        if i > 0 {
            runs.engine.push(run);
        }
    }
    let _ = engine.kill();
    let _ = engine.wait();
    runs
}

/// ccusage on the same corpus, three times (none when it cannot be installed). Returns the
/// runs and the last report.
fn ccusage_runs(corpus_dir: &Path, scratch: &Path) -> (Vec<Run>, Value) {
    let cc_dir = std::env::temp_dir().join("sandbox-deck-usage-bench-ccusage");
    let mut cc_runs = Vec::new();
    let mut cc_report = Value::Null;
    if let Some(cc) = ccusage_bin(&cc_dir) {
        for _ in 0..3 {
            let mut c = Command::new(&cc);
            c.env("CLAUDE_CONFIG_DIR", corpus_dir)
                .env("TZ", "UTC")
                .args(["claude", "daily", "--offline", "--json"]);
            let run = measure(c, &scratch.join("ccusage.json"));
            cc_report = serde_json::from_slice(&run.stdout).expect("ccusage JSON");
            cc_runs.push(run);
        }
    } else {
        eprintln!("ccusage could not be installed: comparing with the generator only");
    }
    (cc_runs, cc_report)
}

/// The index in process: a cold refresh and report, then 30 refreshes after one appended
/// line each.
struct InProcess {
    cold: Duration,
    stats: RefreshStats,
    report_time: Duration,
    report_cost: f64,
    refreshes: Vec<Duration>,
    /// The same append read through `refresh_paths` (the file inotify named), no walk.
    named_refreshes: Vec<Duration>,
    refresh_and_report: Vec<Duration>,
    appended_bytes: u64,
    read_bytes: u64,
}

fn in_process(corpus_dir: &Path) -> InProcess {
    let pricing = Pricing::builtin();
    let roots = vec![corpus_dir.join("projects")];
    let started = Instant::now();
    let mut index = UsageIndex::open(roots, None);
    let stats = index.refresh();
    let cold = started.elapsed();
    let mut query = Query::new(GroupBy::Day);
    query.local_days = false;
    let started = Instant::now();
    let report = index.report(&pricing, &query);
    let report_time = started.elapsed();
    assert_eq!(stats.skipped_files.len(), 0);

    let target = std::fs::read_dir(corpus_dir.join("projects"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a log file");
    let original_len = std::fs::metadata(&target).unwrap().len();
    let mut run = InProcess {
        cold,
        stats,
        report_time,
        report_cost: report.totals.cost_usd,
        refreshes: Vec::new(),
        named_refreshes: Vec::new(),
        refresh_and_report: Vec::new(),
        appended_bytes: 0,
        read_bytes: 0,
    };
    let append = |line: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&target)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    };
    let named: std::collections::HashSet<PathBuf> = [target.clone()].into_iter().collect();
    for i in 0..60 {
        let line = format!(
            "{{\"type\":\"assistant\",\"timestamp\":\"2025-10-31T12:00:00.000Z\",\"requestId\":\"req_bench{i}\",\"sessionId\":\"bench\",\"cwd\":\"/bench\",\"isSidechain\":false,\"message\":{{\"id\":\"msg_bench{i}\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"usage\":{{\"input_tokens\":1,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}}}}\n"
        );
        append(&line);
        let started = Instant::now();
        if i % 2 == 1 {
            // Every other line through the path the dashboard takes with inotify.
            let s = index.refresh_paths(&named);
            run.named_refreshes.push(started.elapsed());
            assert_eq!(s.new_entries, 1, "the named refresh read the line");
            continue;
        }
        let s = index.refresh();
        run.refreshes.push(started.elapsed());
        let _ = index.report(&pricing, &query);
        run.refresh_and_report.push(started.elapsed());
        run.appended_bytes = line.len() as u64;
        run.read_bytes = s.bytes_read;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Leave the corpus as it was for the next run.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .unwrap()
        .set_len(original_len)
        .unwrap();
    run
}

/// A report's totals: input, output, cache write and cache read tokens, cost, entries.
struct Totals {
    tokens: [u64; 4],
    cost: f64,
    entries: u64,
}

impl Totals {
    /// Ours (`usage --json`'s `totals`).
    fn of(t: &Value) -> Totals {
        Totals {
            tokens: [
                tok(t, "input_tokens"),
                tok(t, "output_tokens"),
                tok(t, "cache_creation_tokens"),
                tok(t, "cache_read_tokens"),
            ],
            cost: t["cost_usd"].as_f64().unwrap_or(0.0),
            entries: tok(t, "entries"),
        }
    }

    /// ccusage's (`daily --json`'s `totals`).
    fn of_ccusage(t: &Value) -> Totals {
        Totals {
            tokens: [
                tok(t, "inputTokens"),
                tok(t, "outputTokens"),
                tok(t, "cacheCreationTokens"),
                tok(t, "cacheReadTokens"),
            ],
            cost: t["totalCost"].as_f64().unwrap_or(0.0),
            entries: 0,
        }
    }
}

fn tok(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// The corpus and the totals table: the generator's, ours and ccusage's when it ran.
fn print_totals(corpus: &Corpus, ours: &Totals, cc_report: Option<&Value>) {
    let truth = &corpus.truth;
    println!("## Usage\n");
    println!(
        "Corpus: {:.0} MB, {} files, {} unique responses (generated by `examples/gen-usage-corpus.rs`, \
         compact JSON, content-block duplicates, sub-agents, resumed sessions). Machine: {} cores.\n",
        corpus.bytes as f64 / 1e6,
        corpus.files,
        truth.responses,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| totals | input | output | cache write | cache read | cost (USD) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| generator (truth) | {} | {} | {} | {} | |",
        truth.input, truth.output, truth.cache_creation, truth.cache_read
    );
    let t = &ours.tokens;
    println!(
        "| sandbox-deck | {} | {} | {} | {} | {:.4} |",
        t[0], t[1], t[2], t[3], ours.cost
    );
    if let Some(cc_report) = cc_report {
        let cc = Totals::of_ccusage(&cc_report["totals"]);
        let t = &cc.tokens;
        println!(
            "| ccusage 20.0.24 | {} | {} | {} | {} | {:.4} |",
            t[0], t[1], t[2], t[3], cc.cost
        );
        let diff = (ours.cost - cc.cost).abs() / cc.cost.max(1e-9) * 100.0;
        println!(
            "\nTokens {}; cost differs by {:.6} %.\n",
            if cc.tokens == ours.tokens {
                "agree exactly"
            } else {
                "DIFFER"
            },
            diff
        );
    }
}

/// The CLI runs' table: wall, CPU and peak RSS, and the two ratios.
fn print_runs(runs: &CliRuns, cc_runs: &[Run]) {
    println!("| run (median of 5) | wall | CPU | peak RSS |");
    println!("|---|---|---|---|");
    let wall = |runs: &[Run]| median(runs.iter().map(|r| r.wall).collect());
    let row = |name: &str, runs: &[Run]| {
        let rss = runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0);
        println!(
            "| {name} | {} | {} | {:.0} MB |",
            ms(wall(runs)),
            ms(median(runs.iter().map(|r| r.cpu).collect())),
            rss as f64 / 1024.0
        );
    };
    row("`cat` of the same files (baseline)", &runs.cat);
    row(
        "sandbox-deck `usage --by day --json`, cold (no cache)",
        &runs.cold,
    );
    row(
        "sandbox-deck `usage --by day --json`, warm (cache, nothing new, no engine)",
        &runs.warm,
    );
    row(
        "sandbox-deck `usage --by day --json`, warm through a running engine",
        &runs.engine,
    );
    if !cc_runs.is_empty() {
        row("ccusage `claude daily --offline --json`", cc_runs);
    }
    let ratio = wall(&runs.cold).as_secs_f64() / wall(&runs.cat).as_secs_f64().max(1e-9);
    println!(
        "\nCold / `cat`: {ratio:.2}x (target at most 2x: {}). Warm: {} without an engine, {} \
         through one (target at most 10 ms: {}, {}). Cold, warm and engine printed the same JSON.",
        if ratio <= 2.0 { "met" } else { "NOT met" },
        ms(wall(&runs.warm)),
        ms(wall(&runs.engine)),
        if wall(&runs.warm) <= Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        },
        if wall(&runs.engine) <= Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        },
    );
}

fn print_in_process(run: &InProcess) {
    println!(
        "\nIn process: cold refresh {} ({} files, {:.0} MB read), report by day {}.",
        ms(run.cold),
        run.stats.files,
        run.stats.bytes_read as f64 / 1e6,
        ms(run.report_time)
    );
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    println!(
        "Refresh after appending one line ({} bytes; {} bytes read): \
         median {}, max {} over 30; with the report by day: median {}.",
        run.appended_bytes,
        run.read_bytes,
        ms(median(run.refreshes.clone())),
        ms(max(&run.refreshes)),
        ms(median(run.refresh_and_report.clone()))
    );
    println!(
        "The same append read as the file inotify named (`refresh_paths`, no walk): median {}, \
         max {} over 30: {:.0}x less than the walk.",
        ms(median(run.named_refreshes.clone())),
        ms(max(&run.named_refreshes)),
        median(run.refreshes.clone()).as_secs_f64()
            / median(run.named_refreshes.clone()).as_secs_f64().max(1e-9)
    );
}
