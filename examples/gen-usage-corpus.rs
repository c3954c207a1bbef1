//! Writes a synthetic Claude Code log corpus for the usage benchmark:
//!
//! ```text
//! cargo run --release --example gen-usage-corpus -- DIR [MEGABYTES]
//! ```
//!
//! `DIR/projects/<encoded cwd>/<session>.jsonl` like Claude Code writes them: compact JSON (no
//! space after `:` or `,`), one line per content block (each repeating the response's usage),
//! streaming partials with fewer output tokens, 5-minute and 1-hour cache writes, tool
//! results, summaries and snapshots between them, sub-agent logs under `<session>/subagents/`
//! (some starting with a sidechain replay of their parent's last response), and resumed
//! sessions that start with a verbatim copy of an earlier session's lines. Deterministic for a given seed. It keeps its own count of the unique
//! responses, so the benchmark has a third opinion besides ours and ccusage's.
#![allow(dead_code)]

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

const MODELS: &[(&str, u64)] = &[
    ("claude-sonnet-4-5-20250929", 60),
    ("claude-opus-4-1-20250805", 15),
    ("claude-haiku-4-5-20251001", 20),
    ("claude-opus-4-5-20251101", 5),
];

const WORDS: &[&str] = &[
    "the",
    "function",
    "returns",
    "a",
    "value",
    "when",
    "error",
    "file",
    "test",
    "build",
    "cargo",
    "module",
    "struct",
    "impl",
    "let",
    "match",
    "Some",
    "None",
    "path",
    "config",
    "\"quoted\"",
    "line\nbreak",
    "usage",
    "assistant",
    "tokens",
    "parse",
    "and",
    "then",
];

/// The truth about what was written: every unique response counted once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    pub responses: u64,
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

#[derive(Debug, Default)]
pub struct Corpus {
    pub root: PathBuf,
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    pub truth: Truth,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn id(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
    fn uuid(&mut self) -> String {
        let h = format!("{:016x}{:016x}", self.next(), self.next());
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
    fn text(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(WORDS[self.below(WORDS.len() as u64) as usize]);
            s.push(' ');
        }
        s
    }
    fn model(&mut self) -> &'static str {
        let mut roll = self.below(100);
        for (model, weight) in MODELS {
            if roll < *weight {
                return model;
            }
            roll -= weight;
        }
        MODELS[0].0
    }
}

fn encode(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

struct Session<'a> {
    id: String,
    cwd: &'a str,
    now_ms: i64,
    sidechain: bool,
    /// The last line of the last response, for a sub-agent to replay.
    last: Option<serde_json::Value>,
}

/// One response: its content-block lines (1 to 3, each with the same usage).
fn response(rng: &mut Rng, s: &mut Session, truth: &mut Truth, out: &mut Vec<String>) {
    let model = rng.model();
    let first = rng.chance(10);
    let input = if first {
        rng.range(2_000, 20_000)
    } else {
        rng.range(1, 60)
    };
    let cache_creation = if rng.chance(40) {
        rng.range(100, 20_000)
    } else {
        0
    };
    let cache_read = if first { 0 } else { rng.range(5_000, 150_000) };
    // Some cache writes have a one-hour lifetime (priced 2x input instead of 1.25x).
    let one_hour = if rng.chance(20) {
        cache_creation / rng.range(1, 3)
    } else {
        0
    };
    let output = rng.range(1, 4_000);
    // Streaming can leave partial copies with fewer output tokens before the final lines.
    let partials = if rng.chance(10) { rng.range(1, 2) } else { 0 };
    truth.responses += 1;
    truth.input += input;
    truth.output += output;
    truth.cache_creation += cache_creation;
    truth.cache_read += cache_read;
    let message_id = format!("msg_01{}", rng.id(22));
    let request_id = format!("req_011C{}", rng.id(20));
    let blocks = rng.range(1, 3);
    for i in 0..partials + blocks {
        let partial = i < partials;
        let block = i.saturating_sub(partials);
        s.now_ms += rng.range(50, 3_000) as i64;
        let content = match block {
            0 if blocks > 1 => {
                json!([{"type":"thinking","thinking":rng.text(400),"signature":rng.id(120)}])
            }
            b if b + 1 == blocks && rng.chance(60) => {
                json!([{"type":"tool_use","id":format!("toolu_01{}", rng.id(22)),"name":"Bash","input":{"command":rng.text(60),"description":rng.text(30)}}])
            }
            _ => {
                let len = rng.range(50, 800) as usize;
                json!([{"type":"text","text":rng.text(len)}])
            }
        };
        let line = json!({
            "parentUuid": rng.uuid(),
            "isSidechain": s.sidechain,
            "userType": "external",
            "cwd": s.cwd,
            "sessionId": s.id,
            "version": "2.0.14",
            "gitBranch": "main",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": input,
                    "cache_creation_input_tokens": cache_creation,
                    "cache_read_input_tokens": cache_read,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": cache_creation - one_hour,
                        "ephemeral_1h_input_tokens": one_hour
                    },
                    "output_tokens": if partial { output * (i + 1) / (partials + 2) } else { output },
                    "service_tier": "standard"
                }
            },
            "requestId": request_id,
            "type": "assistant",
            "uuid": rng.uuid(),
            "timestamp": timestamp(s.now_ms),
        });
        out.push(line.to_string());
        s.last = Some(line);
    }
}

/// A sub-agent's replay of its parent's last response: same message id, a new request id,
/// marked as a sidechain, and more output tokens. It must not count.
fn replay(rng: &mut Rng, parent: &serde_json::Value) -> String {
    let mut line = parent.clone();
    line["isSidechain"] = true.into();
    line["requestId"] = format!("req_011C{}", rng.id(20)).into();
    let out = line["message"]["usage"]["output_tokens"]
        .as_u64()
        .unwrap_or(0);
    line["message"]["usage"]["output_tokens"] = (out + 100).into();
    line.to_string()
}

fn user_line(rng: &mut Rng, s: &mut Session, len: usize, tool_result: bool) -> String {
    s.now_ms += rng.range(1_000, 60_000) as i64;
    let content = if tool_result {
        json!([{"tool_use_id":format!("toolu_01{}", rng.id(22)),"type":"tool_result","content":rng.text(len),"is_error":false}])
    } else {
        json!(rng.text(len))
    };
    json!({
        "parentUuid": rng.uuid(),
        "isSidechain": s.sidechain,
        "userType": "external",
        "cwd": s.cwd,
        "sessionId": s.id,
        "version": "2.0.14",
        "gitBranch": "main",
        "type": "user",
        "message": {"role": "user", "content": content},
        "uuid": rng.uuid(),
        "timestamp": timestamp(s.now_ms),
    })
    .to_string()
}

fn write_lines(path: &Path, lines: &[String], corpus: &mut Corpus) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("a file in a dir"))?;
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for line in lines {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        corpus.bytes += line.len() as u64 + 1;
    }
    out.flush()?;
    corpus.files += 1;
    corpus.lines += lines.len() as u64;
    Ok(())
}

/// Writes about `megabytes` MB of logs under `root/projects`.
pub fn generate(root: &Path, megabytes: u64, seed: u64) -> std::io::Result<Corpus> {
    let mut rng = Rng(seed | 1);
    let projects_dir = root.join("projects");
    let mut corpus = Corpus {
        root: root.to_owned(),
        ..Corpus::default()
    };
    let cwds: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("/home/dev/src/service-{i}"),
            1 => format!("/home/dev/src/my_app.v{i}"),
            2 => format!("/home/dev/projects/with space {i}"),
            _ => format!("/srv/repos/tool{i}"),
        })
        .collect();
    // The last session of each project, for resumed sessions to copy.
    let mut previous: Vec<Option<Vec<String>>> = vec![None; cwds.len()];
    let start_ms: i64 = 1_759_276_800_000; // 2025-10-01T00:00:00Z
    let target = megabytes * 1_000_000;
    while corpus.bytes < target {
        let p = rng.below(cwds.len() as u64) as usize;
        let cwd = &cwds[p];
        let mut s = Session {
            id: rng.uuid(),
            cwd,
            now_ms: start_ms + rng.below(30 * 86_400_000) as i64,
            sidechain: false,
            last: None,
        };
        let mut lines = Vec::new();
        if rng.chance(10)
            && let Some(prev) = &previous[p]
        {
            // A resumed session starts with the history of the one it resumes, verbatim.
            let keep = prev.len().min(rng.range(20, 60) as usize);
            lines.extend_from_slice(&prev[prev.len() - keep..]);
        }
        if rng.chance(30) {
            lines.push(
                json!({"type":"summary","summary":rng.text(60),"leafUuid":rng.uuid()}).to_string(),
            );
        }
        let turns = rng.range(5, 40);
        let session_dir = projects_dir.join(encode(cwd));
        for _ in 0..turns {
            turn(&mut rng, &mut s, &mut lines, &session_dir, &mut corpus)?;
        }
        let path = session_dir.join(format!("{}.jsonl", s.id));
        write_lines(&path, &lines, &mut corpus)?;
        previous[p] = Some(lines);
    }
    Ok(corpus)
}

/// One turn of session `s`: a prompt, a few responses with their tool results, now and then
/// a sub-agent (its own file under `session_dir`) and a compaction.
fn turn(
    rng: &mut Rng,
    s: &mut Session,
    lines: &mut Vec<String>,
    session_dir: &Path,
    corpus: &mut Corpus,
) -> std::io::Result<()> {
    let len = rng.range(50, 600) as usize;
    lines.push(user_line(rng, s, len, false));
    if rng.chance(20) {
        lines.push(json!({"type":"file-history-snapshot","messageId":rng.uuid(),"snapshot":{"trackedFileBackups":{},"timestamp":timestamp(s.now_ms)},"isSnapshotUpdate":false}).to_string());
    }
    for _ in 0..rng.range(1, 6) {
        let mut blocks = Vec::new();
        response(rng, s, &mut corpus.truth, &mut blocks);
        lines.extend(blocks);
        let len = rng.range(100, 1_500) as usize;
        lines.push(user_line(rng, s, len, true));
    }
    if rng.chance(12) {
        sub_agent(rng, s, session_dir, corpus)?;
    }
    if rng.chance(5) {
        lines.push(json!({"type":"system","subtype":"compact_boundary","content":"Conversation compacted","timestamp":timestamp(s.now_ms),"sessionId":s.id,"cwd":s.cwd}).to_string());
    }
    Ok(())
}

/// A sub-agent of session `s`, in its own file: sometimes a replay of the parent's last
/// response first, then a few tool results and responses.
fn sub_agent(
    rng: &mut Rng,
    s: &Session,
    session_dir: &Path,
    corpus: &mut Corpus,
) -> std::io::Result<()> {
    let mut agent = Session {
        id: s.id.clone(),
        cwd: s.cwd,
        now_ms: s.now_ms,
        sidechain: true,
        last: None,
    };
    let mut agent_lines = Vec::new();
    if rng.chance(30)
        && let Some(parent) = &s.last
    {
        agent_lines.push(replay(rng, parent));
    }
    for _ in 0..rng.range(3, 15) {
        let len = rng.range(100, 1_000) as usize;
        agent_lines.push(user_line(rng, &mut agent, len, true));
        response(rng, &mut agent, &mut corpus.truth, &mut agent_lines);
    }
    let path = session_dir
        .join(&s.id)
        .join("subagents")
        .join(format!("agent-{}.jsonl", &rng.uuid()[..8]));
    write_lines(&path, &agent_lines, corpus)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: gen-usage-corpus DIR [MEGABYTES]");
        std::process::exit(2);
    };
    let megabytes = args.next().and_then(|m| m.parse().ok()).unwrap_or(200);
    let corpus = generate(Path::new(&dir), megabytes, 0x5eed)?;
    println!(
        "{} files, {} lines, {:.1} MB, {} unique responses; tokens: input {}, output {}, cache write {}, cache read {}",
        corpus.files,
        corpus.lines,
        corpus.bytes as f64 / 1e6,
        corpus.truth.responses,
        corpus.truth.input,
        corpus.truth.output,
        corpus.truth.cache_creation,
        corpus.truth.cache_read
    );
    Ok(())
}
