//! The usage engine against ccusage on the same synthetic corpus, in the same run.
//!
//! ```text
//! cargo bench --bench usage            # 200 MB corpus; USAGE_BENCH_MB=50 for a smaller one
//! ```
//!
//! It generates the corpus (examples/gen-usage-corpus.rs) in a temp dir, installs ccusage
//! with npm into another temp dir (never into the repo), and prints a Markdown report:
//! totals from the generator, from us and from ccusage; cold-run time and peak RSS of both
//! CLIs; our warm run (cache present); and the in-process refresh after appending one line.

#[path = "../examples/gen-usage-corpus.rs"]
mod corpus_gen;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_deck::usage::{GroupBy, Pricing, Query, UsageIndex};
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

    // The corpus, generated once per size (the generator is deterministic).
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
            let _ = std::fs::remove_dir_all(&corpus_dir);
            eprintln!("generating a {mb} MB corpus in {}", corpus_dir.display());
            let c = corpus_gen::generate(&corpus_dir, mb, 0x5eed).expect("corpus");
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
    let (files, bytes) = (facts[5], facts[6]);

    // Ours through the CLI: cold (empty state dir) and warm (its cache present).
    let ours = |state: &Path| {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &scratch)
            .env("TZ", "UTC")
            .env("CLAUDE_CONFIG_DIR", &corpus_dir)
            .env("XDG_STATE_HOME", state)
            .env("XDG_CONFIG_HOME", scratch.join("config"))
            .env("XDG_RUNTIME_DIR", scratch.join("run"))
            .args(["--json", "usage", "--by", "day"]);
        c
    };
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut our_report = Value::Null;
    for i in 0..3 {
        let state = scratch.join(format!("state{i}"));
        let run = measure(ours(&state), &scratch.join("ours.json"));
        our_report = serde_json::from_slice(&run.stdout).expect("our JSON");
        cold.push(run);
        warm.push(measure(ours(&state), &scratch.join("ours-warm.json")));
    }

    // ccusage on the same corpus.
    let cc_dir = std::env::temp_dir().join("sandbox-deck-usage-bench-ccusage");
    let mut cc_runs = Vec::new();
    let mut cc_report = Value::Null;
    if let Some(cc) = ccusage_bin(&cc_dir) {
        for _ in 0..3 {
            let mut c = Command::new(&cc);
            c.env("CLAUDE_CONFIG_DIR", &corpus_dir)
                .env("TZ", "UTC")
                .args(["claude", "daily", "--offline", "--json"]);
            let run = measure(c, &scratch.join("ccusage.json"));
            cc_report = serde_json::from_slice(&run.stdout).expect("ccusage JSON");
            cc_runs.push(run);
        }
    } else {
        eprintln!("ccusage could not be installed: comparing with the generator only");
    }

    // In process: a cold refresh, then one appended line.
    let pricing = Pricing::builtin();
    let roots = vec![corpus_dir.join("projects")];
    let started = Instant::now();
    let mut index = UsageIndex::open(roots, None);
    let stats = index.refresh();
    let in_process_cold = started.elapsed();
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
    let mut refreshes = Vec::new();
    let mut refresh_and_report = Vec::new();
    let mut appended_bytes = 0;
    let mut read_bytes = 0;
    for i in 0..30 {
        let line = format!(
            "{{\"type\":\"assistant\",\"timestamp\":\"2025-10-31T12:00:00.000Z\",\"requestId\":\"req_bench{i}\",\"sessionId\":\"bench\",\"cwd\":\"/bench\",\"isSidechain\":false,\"message\":{{\"id\":\"msg_bench{i}\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"usage\":{{\"input_tokens\":1,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}}}}\n"
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&target)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
        drop(f);
        let started = Instant::now();
        let s = index.refresh();
        refreshes.push(started.elapsed());
        let _ = index.report(&pricing, &query);
        refresh_and_report.push(started.elapsed());
        appended_bytes = line.len() as u64;
        read_bytes = s.bytes_read;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Leave the corpus as it was for the next run.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .unwrap()
        .set_len(original_len)
        .unwrap();

    // Agreement.
    let ours_t = &our_report["totals"];
    let tok = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let ours_tokens = [
        tok(ours_t, "input_tokens"),
        tok(ours_t, "output_tokens"),
        tok(ours_t, "cache_creation_tokens"),
        tok(ours_t, "cache_read_tokens"),
    ];
    let truth_tokens = [
        truth.input,
        truth.output,
        truth.cache_creation,
        truth.cache_read,
    ];
    let ours_cost = ours_t["cost_usd"].as_f64().unwrap_or(0.0);
    assert_eq!(
        ours_tokens, truth_tokens,
        "our totals differ from the generator's"
    );
    assert_eq!(tok(ours_t, "entries"), truth.responses);
    assert!((report.totals.cost_usd - ours_cost).abs() < 1e-6);

    println!("## Usage\n");
    println!(
        "Corpus: {:.0} MB, {files} files, {} unique responses (generated by `examples/gen-usage-corpus.rs`, \
         compact JSON, content-block duplicates, sub-agents, resumed sessions). Machine: {} cores.\n",
        bytes as f64 / 1e6,
        truth.responses,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| totals | input | output | cache write | cache read | cost (USD) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| generator (truth) | {} | {} | {} | {} | |",
        truth.input, truth.output, truth.cache_creation, truth.cache_read
    );
    println!(
        "| sandbox-deck | {} | {} | {} | {} | {:.4} |",
        ours_tokens[0], ours_tokens[1], ours_tokens[2], ours_tokens[3], ours_cost
    );
    if !cc_runs.is_empty() {
        let t = &cc_report["totals"];
        let cc_tokens = [
            tok(t, "inputTokens"),
            tok(t, "outputTokens"),
            tok(t, "cacheCreationTokens"),
            tok(t, "cacheReadTokens"),
        ];
        let cc_cost = t["totalCost"].as_f64().unwrap_or(0.0);
        println!(
            "| ccusage 20.0.24 | {} | {} | {} | {} | {:.4} |",
            cc_tokens[0], cc_tokens[1], cc_tokens[2], cc_tokens[3], cc_cost
        );
        let diff = (ours_cost - cc_cost).abs() / cc_cost.max(1e-9) * 100.0;
        println!(
            "\nTokens {}; cost differs by {:.6} %.\n",
            if cc_tokens == ours_tokens {
                "agree exactly"
            } else {
                "DIFFER"
            },
            diff
        );
    }
    println!("| run (median of 3) | wall | CPU | peak RSS |");
    println!("|---|---|---|---|");
    let row = |name: &str, runs: &[Run]| {
        let rss = runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0);
        println!(
            "| {name} | {} | {} | {:.0} MB |",
            ms(median(runs.iter().map(|r| r.wall).collect())),
            ms(median(runs.iter().map(|r| r.cpu).collect())),
            rss as f64 / 1024.0
        );
    };
    row(
        "sandbox-deck `usage --by day --json`, cold (no cache)",
        &cold,
    );
    row(
        "sandbox-deck `usage --by day --json`, warm (cache, nothing new)",
        &warm,
    );
    if !cc_runs.is_empty() {
        row("ccusage `claude daily --offline --json`", &cc_runs);
    }
    println!(
        "\nIn process: cold refresh {} ({} files, {:.0} MB read), report by day {}.",
        ms(in_process_cold),
        stats.files,
        stats.bytes_read as f64 / 1e6,
        ms(report_time)
    );
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    println!(
        "Refresh after appending one line ({appended_bytes} bytes; {read_bytes} bytes read): \
         median {}, max {} over 30; with the report by day: median {}.",
        ms(median(refreshes.clone())),
        ms(max(&refreshes)),
        ms(median(refresh_and_report))
    );
}
