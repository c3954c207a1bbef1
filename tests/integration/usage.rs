//! Usage on crafted Claude Code logs. Every expected number is worked out by hand in the test.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use sandbox_deck::usage::{
    CostMode, GroupBy, Pricing, Query, Report, UsageIndex, encode_project_dir,
};
use serde_json::{Value, json};

const SONNET: &str = "claude-sonnet-4-5-20250929";
const OPUS: &str = "claude-opus-4-1-20250805";
const HAIKU: &str = "claude-haiku-4-5-20251001";

/// The project path with `.`, `_` and a space that the seed could not find.
const ODD_PROJECT: &str = "/srv/code/My_App.v2 beta";

struct Msg<'a> {
    id: &'a str,
    req: &'a str,
    session: &'a str,
    cwd: &'a str,
    ts: &'a str,
    model: &'a str,
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
}

impl Msg<'_> {
    /// An assistant line as Claude Code writes it: compact JSON, one content block.
    fn line(&self, extra: Value) -> String {
        let mut v = json!({
            "parentUuid": null,
            "isSidechain": false,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session,
            "version": "1.0.90",
            "type": "assistant",
            "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": "Looking at the usage of the code"}],
                "stop_reason": null,
                "usage": {
                    "input_tokens": self.input,
                    "cache_creation_input_tokens": self.cache_write,
                    "cache_read_input_tokens": self.cache_read,
                    "output_tokens": self.output,
                    "service_tier": "standard"
                }
            },
            "requestId": self.req,
            "uuid": "0b5c-uuid",
            "timestamp": self.ts,
        });
        if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
            for (k, x) in extra {
                if k == "usage" {
                    v["message"]["usage"]
                        .as_object_mut()
                        .unwrap()
                        .extend(x.as_object().unwrap().clone());
                } else {
                    v.insert(k, x);
                }
            }
        }
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains("\": "), "compact like Claude Code");
        text + "\n"
    }
}

fn user_line(session: &str, cwd: &str) -> String {
    json!({"type": "user", "sessionId": session, "cwd": cwd,
           "message": {"role": "user", "content": "what does the assistant usage say?"},
           "timestamp": "2025-06-01T10:00:00.000Z"})
    .to_string()
        + "\n"
}

/// One small assistant line of session `s` in `/srv/app`, message `id`.
fn app_line(id: &str) -> String {
    Msg {
        id,
        req: "r",
        session: "s",
        cwd: "/srv/app",
        ts: "2025-06-01T10:00:00.000Z",
        model: SONNET,
        input: 1,
        output: 10,
        cache_write: 0,
        cache_read: 0,
    }
    .line(json!({}))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The crafted corpus: two projects, a resumed session, a sub-agent, every trap.
fn corpus(root: &Path) {
    let p1 = root.join(encode_project_dir(Path::new(ODD_PROJECT)));
    assert_eq!(p1.file_name().unwrap(), "-srv-code-My-App-v2-beta");
    let p2 = root.join(encode_project_dir(Path::new("/srv/code/other")));
    let a = Msg {
        id: "msg_a",
        req: "req_a",
        session: "s1",
        cwd: ODD_PROJECT,
        ts: "2025-06-01T10:01:00.000Z",
        model: SONNET,
        input: 10,
        output: 100,
        cache_write: 1000,
        cache_read: 5000,
    };
    let b = |output| Msg {
        id: "msg_b",
        req: "req_b",
        ts: "2025-06-01T10:02:00.000Z",
        model: OPUS,
        input: 20,
        output,
        cache_write: 0,
        cache_read: 8000,
        ..a
    };
    let c = Msg {
        id: "msg_c",
        req: "req_c",
        ts: "2025-06-01T10:03:00.000Z",
        model: HAIKU,
        input: 1,
        output: 200,
        cache_write: 0,
        cache_read: 100,
        ..a
    };
    let mut s1 = user_line("s1", ODD_PROJECT);
    // One response written as three content-block lines, each repeating its usage.
    for _ in 0..3 {
        s1 += &a.line(json!({}));
    }
    // Streaming partials: output grows 5 → 50 → 120.
    for out in [5, 50, 120] {
        s1 += &b(out).line(json!({}));
    }
    s1 += &c.line(json!({}));
    s1 += "not json at all\n";
    s1 += "{\"type\":\"assistant\",\"message\":{\"usage\":{\"input_tokens\":1}\n";
    s1 += &Msg {
        id: "msg_synth",
        req: "req_synth",
        model: "<synthetic>",
        input: 0,
        output: 0,
        cache_read: 0,
        cache_write: 0,
        ..a
    }
    .line(json!({"isApiErrorMessage": true,
                 "message": {"id": "msg_synth", "model": "<synthetic>", "role": "assistant",
                   "content": [{"type": "text", "text": "Claude AI usage limit reached|1748800800"}],
                   "usage": {"input_tokens": 0, "output_tokens": 0}}}));
    write(&p1.join("s1.jsonl"), &s1);

    // The sub-agent: a sidechain replay of msg_c (other request id, more tokens) and a real
    // sub-agent response.
    let mut agent = c.line(json!({"isSidechain": true, "requestId": "req_c2",
        "usage": {"output_tokens": 300}}));
    agent += &Msg {
        id: "msg_d",
        req: "req_d",
        ts: "2025-06-01T10:04:00.000Z",
        model: HAIKU,
        input: 30,
        output: 40,
        cache_write: 0,
        cache_read: 0,
        ..a
    }
    .line(json!({"isSidechain": true}));
    write(&p1.join("s1/subagents/agent-1.jsonl"), &agent);

    // A resumed session: history copied into a new file, then a new response with the
    // 5m/1h cache-write split.
    let mut s2 = a.line(json!({"sessionId": "s2"}));
    s2 += &b(120).line(json!({"sessionId": "s2"}));
    s2 += &Msg {
        id: "msg_e",
        req: "req_e",
        session: "s2",
        ts: "2025-06-01T10:30:00.000Z",
        input: 5,
        output: 60,
        cache_write: 1000,
        cache_read: 0,
        ..a
    }
    .line(
        json!({"usage": {"cache_creation": {"ephemeral_5m_input_tokens": 400,
                                               "ephemeral_1h_input_tokens": 600}}}),
    );
    write(&p1.join("s2.jsonl"), &s2);

    let mut s3 = Msg {
        id: "msg_f",
        req: "req_f",
        session: "s3",
        cwd: "/srv/code/other",
        ts: "2025-06-01T11:00:00.000Z",
        model: "gpt-4o",
        input: 100,
        output: 100,
        cache_write: 0,
        cache_read: 0,
    }
    .line(json!({}));
    s3 += &Msg {
        id: "msg_g",
        req: "req_g",
        session: "s3",
        cwd: "/srv/code/other",
        ts: "2025-06-02T09:00:00.000Z",
        model: SONNET,
        input: 1,
        output: 1,
        cache_write: 0,
        cache_read: 0,
    }
    .line(json!({}));
    write(&p2.join("s3.jsonl"), &s3);
}

fn query(by: GroupBy) -> Query {
    let mut q = Query::new(by);
    q.local_days = false;
    q.now_ms = 1_800_000_000_000;
    q
}

fn report(index: &UsageIndex, q: &Query) -> Report {
    index.report(&Pricing::builtin(), q)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn duplicates_partials_replays_and_resumed_sessions_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    corpus(&root);
    let mut index = UsageIndex::open(vec![root], None);
    let stats = index.refresh();
    assert_eq!(stats.files, 4);
    let r = report(&index, &query(GroupBy::Project));
    let t = &r.totals;
    // Responses a, b, c, d, e, f, g; nothing else.
    assert_eq!(t.entries, 7);
    assert_eq!(t.input_tokens, 10 + 20 + 1 + 30 + 5 + 100 + 1);
    // b's final 120 (not 5 or 50), c's main-chain 200 (not the sidechain replay's 300).
    assert_eq!(t.output_tokens, 100 + 120 + 200 + 40 + 60 + 100 + 1);
    assert_eq!(t.cache_creation_tokens, 1000 + 1000);
    assert_eq!(t.cache_read_tokens, 5000 + 8000 + 100);
    assert_eq!(t.total_tokens, 167 + 621 + 2000 + 13100);
    // Per million tokens:
    // a sonnet: 10*3 + 100*15 + 1000*3.75 + 5000*0.3 = 6780
    // b opus:   20*15 + 120*75 + 8000*1.5 = 21300
    // c haiku:  1*1 + 200*5 + 100*0.1 = 1011
    // d haiku:  30*1 + 40*5 = 230
    // e sonnet: 5*3 + 60*15 + 400*3.75 + 600*6 = 6015
    // f gpt-4o: unknown, $0
    // g sonnet: 1*3 + 1*15 = 18
    assert!(close(t.cost_usd, 35_354.0 / 1e6), "{}", t.cost_usd);
    // "not json at all" and the cut-off assistant line.
    assert_eq!(t.skipped_lines, 2);
    assert_eq!(r.malformed_lines, 2);
    assert_eq!(r.unknown_models.len(), 1);
    assert_eq!(r.unknown_models[0].model, "gpt-4o");
    assert_eq!(r.unknown_models[0].entries, 1);
    assert_eq!(r.unknown_models[0].total_tokens, 200);
    assert_eq!(
        r.limit_resets_at.unwrap().to_rfc3339(),
        "2025-06-01T18:00:00+00:00"
    );
    // Rows per project, by the lines' cwd (the odd path is found), costliest first.
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.rows[0].key, ODD_PROJECT);
    assert_eq!(r.rows[0].totals.entries, 5);
    assert!(close(r.rows[0].totals.cost_usd, 35_336.0 / 1e6));
    assert_eq!(r.rows[0].totals.skipped_lines, 2);
    assert_eq!(r.rows[1].key, "/srv/code/other");
    assert!(close(r.rows[1].totals.cost_usd, 18.0 / 1e6));
}

#[test]
fn one_project_sessions_models_days_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    corpus(&root);
    let mut index = UsageIndex::open(vec![root], None);
    index.refresh();

    let mut q = query(GroupBy::Session);
    q.project = Some(PathBuf::from(ODD_PROJECT));
    let r = report(&index, &q);
    assert_eq!(r.totals.entries, 5);
    assert_eq!(r.totals.input_tokens, 10 + 20 + 1 + 30 + 5);
    assert_eq!(r.totals.skipped_lines, 2);
    let rows: Vec<(&str, u64)> = r
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.totals.entries))
        .collect();
    // The copies in s2 tie with the originals and stay with the first file (s1).
    assert_eq!(rows, [("s1", 4), ("s2", 1)]);

    let r = report(&index, &query(GroupBy::Model));
    let model = |m: &str| r.rows.iter().find(|r| r.key == m).unwrap().totals.clone();
    assert_eq!(model(SONNET).entries, 3);
    assert_eq!(model(OPUS).output_tokens, 120);
    assert_eq!(model(HAIKU).output_tokens, 240);
    assert!(close(model("gpt-4o").cost_usd, 0.0));

    let r = report(&index, &query(GroupBy::Day));
    let days: Vec<(&str, u64)> = r
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.totals.entries))
        .collect();
    assert_eq!(days, [("2025-06-01", 6), ("2025-06-02", 1)]);

    let mut q = query(GroupBy::Block);
    q.since_ms = Some(1_748_736_000_000 + 3_600_000 * 11); // 2025-06-01T11:00Z
    let r = report(&index, &q);
    assert_eq!(r.totals.entries, 2, "f and g");
    let r = report(&index, &query(GroupBy::Block));
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.rows[0].key, "2025-06-01T10:00:00+00:00");
    assert_eq!(r.rows[0].totals.entries, 6);
    assert!(r.active_block.is_none(), "now is long after");

    let mut q = query(GroupBy::Project);
    q.cost_mode = CostMode::Display;
    assert!(close(report(&index, &q).totals.cost_usd, 0.0), "no costUSD");
}

#[test]
fn a_refresh_reads_only_appended_bytes_and_a_rewritten_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    let log = root.join("-p/s.jsonl");
    let msg = |id: &str, output: u64| {
        Msg {
            id,
            req: "r",
            session: "s",
            cwd: "/p",
            ts: "2025-06-01T10:00:00.000Z",
            model: SONNET,
            input: 1,
            output,
            cache_write: 0,
            cache_read: 0,
        }
        .line(json!({"requestId": format!("req_{id}")}))
    };
    let first = msg("m1", 10) + &msg("m2", 20);
    write(&log, &first);
    let cache = dir.path().join("cache.json");
    let mut index = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
    let stats = index.refresh();
    assert_eq!(stats.bytes_read, first.len() as u64);
    assert_eq!(
        report(&index, &query(GroupBy::Day)).totals.output_tokens,
        30
    );

    // One line appended: only its bytes are read.
    let third = msg("m3", 40);
    append(&log, &third);
    let stats = index.refresh();
    assert_eq!(stats.bytes_read, third.len() as u64);
    assert_eq!((stats.files_appended, stats.files_reread), (1, 0));
    assert_eq!(
        report(&index, &query(GroupBy::Day)).totals.output_tokens,
        70
    );

    // A line still being written is not consumed until its newline arrives.
    let fourth = msg("m4", 80);
    let (head, rest) = fourth.split_at(50);
    append(&log, head);
    index.refresh();
    assert_eq!(report(&index, &query(GroupBy::Day)).totals.entries, 3);
    append(&log, rest);
    let stats = index.refresh();
    assert_eq!(stats.bytes_read, fourth.len() as u64);
    assert_eq!(
        report(&index, &query(GroupBy::Day)).totals.output_tokens,
        150
    );

    // The cache carries it all to a new process: nothing is read again.
    index.save().unwrap();
    let mut reopened = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
    let stats = reopened.refresh();
    assert_eq!(stats.bytes_read, 0);
    assert_eq!(
        report(&reopened, &query(GroupBy::Day)).totals.output_tokens,
        150
    );
    let fifth = msg("m5", 1);
    append(&log, &fifth);
    assert_eq!(reopened.refresh().bytes_read, fifth.len() as u64);
    assert_eq!(
        report(&reopened, &query(GroupBy::Day)).totals.output_tokens,
        151
    );

    // Truncated and rewritten in place (same inode, longer than before): read again.
    let rewritten = msg("n1", 1000)
        + &msg("n2", 2000)
        + &msg("n3", 3000)
        + &msg("n4", 4)
        + &msg("n5", 5)
        + &msg("n6", 6);
    assert!(rewritten.len() > first.len() + third.len() + fourth.len() + fifth.len());
    std::fs::write(&log, &rewritten).unwrap();
    let stats = reopened.refresh();
    assert_eq!((stats.files_reread, stats.files_appended), (1, 0));
    assert_eq!(stats.bytes_read, rewritten.len() as u64);
    let t = report(&reopened, &query(GroupBy::Day)).totals;
    assert_eq!((t.entries, t.output_tokens), (6, 6015));

    // Rewritten with the same length but other numbers: the fingerprint catches it.
    let same_len = rewritten.replace("\"output_tokens\":1000", "\"output_tokens\":7000");
    assert_eq!(same_len.len(), rewritten.len());
    std::fs::write(&log, &same_len).unwrap();
    reopened.refresh();
    assert_eq!(
        report(&reopened, &query(GroupBy::Day)).totals.output_tokens,
        12_015
    );

    // Replaced by another file (new inode), then deleted.
    let replacement = dir.path().join("new.jsonl");
    write(&replacement, &msg("z1", 9));
    std::fs::rename(&replacement, &log).unwrap();
    let stats = reopened.refresh();
    assert_eq!(stats.files_reread, 1);
    assert_eq!(
        report(&reopened, &query(GroupBy::Day)).totals.output_tokens,
        9
    );
    std::fs::remove_file(&log).unwrap();
    let stats = reopened.refresh();
    assert_eq!(stats.files_removed, 1);
    assert_eq!(report(&reopened, &query(GroupBy::Day)).totals.entries, 0);
}

#[test]
fn a_cache_of_another_shape_or_version_is_rebuilt_from_the_logs_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    let log = root.join("-p/s.jsonl");
    let text = Msg {
        id: "m1",
        req: "r1",
        session: "s",
        cwd: "/p",
        ts: "2025-06-01T10:00:00.000Z",
        model: SONNET,
        input: 1,
        output: 10,
        cache_write: 0,
        cache_read: 0,
    }
    .line(json!({}));
    write(&log, &text);
    let cache = dir.path().join("cache.json");
    let mut index = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
    index.refresh();
    index.save().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    // Version 1 kept a file's fields flat, with an offset past the whole file.
    let file = &saved["files"][0];
    let version_1 = json!({
        "version": 1,
        "roots": saved["roots"],
        "files": [{
            "path": file["place"]["path"], "session_hint": "s", "project_dir_name": "-p",
            "id": file["mark"]["id"], "read_at_ns": file["mark"]["read_at_ns"],
            "offset": text.len(), "head": [0, 0], "tail": [0, 0],
            "malformed": 0, "skipped": 0, "synthetic": 0, "lines": 1, "limit": null,
            "strings": [], "entries": [],
        }],
    });
    let mut relabelled = saved.clone();
    relabelled["version"] = json!(1);
    for old in [version_1, relabelled] {
        std::fs::write(&cache, serde_json::to_vec(&old).unwrap()).unwrap();
        let mut reopened = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        let stats = reopened.refresh();
        assert_eq!(stats.bytes_read, text.len() as u64, "{old}");
        let totals = report(&reopened, &query(GroupBy::Day)).totals;
        assert_eq!((totals.entries, totals.output_tokens), (1, 10), "{old}");
    }
}

#[test]
fn a_copy_in_another_file_survives_when_the_first_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    let m = Msg {
        id: "msg_x",
        req: "req_x",
        session: "s",
        cwd: "/p",
        ts: "2025-06-01T10:00:00.000Z",
        model: SONNET,
        input: 1,
        output: 10,
        cache_write: 0,
        cache_read: 0,
    };
    write(&root.join("-p/a.jsonl"), &m.line(json!({})));
    write(&root.join("-p/b.jsonl"), &m.line(json!({})));
    let mut index = UsageIndex::open(vec![root.clone()], None);
    index.refresh();
    assert_eq!(report(&index, &query(GroupBy::Day)).totals.entries, 1);
    std::fs::write(root.join("-p/a.jsonl"), "").unwrap();
    index.refresh();
    let t = report(&index, &query(GroupBy::Day)).totals;
    assert_eq!(
        (t.entries, t.output_tokens),
        (1, 10),
        "b's copy still counts"
    );
}

#[test]
fn the_cli_reports_json_for_every_log_and_for_one_sandbox() {
    if !common::prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let mut world = common::World::new();
    let claude = world.path("claude");
    world.env.push((
        "CLAUDE_CONFIG_DIR".into(),
        claude.to_str().unwrap().to_owned(),
    ));
    let project = world.project("My_App.v2 beta");
    let cwd = project.to_str().unwrap().to_owned();
    let root = claude.join("projects");
    let line = |id: &str, cwd: &str, output: u64| {
        Msg {
            id,
            req: "r",
            session: "s",
            cwd,
            ts: "2025-06-01T10:00:00.000Z",
            model: SONNET,
            input: 1,
            output,
            cache_write: 0,
            cache_read: 0,
        }
        .line(json!({}))
    };
    write(
        &root.join(encode_project_dir(&project)).join("s.jsonl"),
        &(line("m1", &cwd, 10) + &line("m1", &cwd, 10) + "garbage\n"),
    );
    write(
        &root.join("-elsewhere/t.jsonl"),
        &line("m2", "/elsewhere", 1000),
    );
    let created = world.create_idle_at(&project);
    let name = created["name"].as_str().unwrap().to_owned();
    assert_eq!(name, "my-app-v2-beta");

    let all = world.json(&["usage"]);
    for key in [
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
        "cost_usd",
        "entries",
        "skipped_lines",
    ] {
        assert!(all["totals"].get(key).is_some(), "totals.{key} missing");
        assert!(all["rows"][0].get(key).is_some(), "rows[0].{key} missing");
    }
    assert_eq!(all["totals"]["output_tokens"], 1010);
    assert_eq!(all["totals"]["entries"], 2);
    assert_eq!(all["totals"]["skipped_lines"], 1);
    let mine = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == cwd.as_str())
        .expect("a row for the sandbox's project");
    assert_eq!(mine["sandbox"], name.as_str());

    let one = world.json(&["usage", &name, "--by", "day"]);
    assert_eq!(one["totals"]["output_tokens"], 10);
    assert_eq!(one["totals"]["entries"], 1);
    // 1*3 + 10*15 = 153 per million.
    assert!((one["totals"]["cost_usd"].as_f64().unwrap() - 153e-6).abs() < 1e-12);
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);

    let table = world.run(&["usage", "--by", "model"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("MODEL") && text.contains(SONNET), "{text}");
    assert!(text.contains("skipped 1 line"), "{text}");

    let (kind, _) = world.error_kind(&["usage", "--since", "last tuesday"]);
    assert_eq!(kind, "invalid_argument");
    assert!(world.path("state/sandbox-deck/usage-cache.json").exists());
}

#[test]
fn cost_usd_is_used_only_when_the_cost_mode_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    let msg = |id: &'static str, model: &'static str| Msg {
        id,
        req: "r",
        session: "s",
        cwd: "/p",
        ts: "2025-06-01T10:00:00.000Z",
        model,
        input: 1_000,
        output: 1_000,
        cache_write: 0,
        cache_read: 0,
    };
    // Calculated: 1000*3 + 1000*15 = 18000 per million (sonnet); gpt-4o has no price.
    let text = msg("a", SONNET).line(json!({"costUSD": 0.5}))
        + &msg("b", SONNET).line(json!({}))
        + &msg("c", "gpt-4o").line(json!({"costUSD": 0.25}));
    write(&root.join("-p/s.jsonl"), &text);
    let mut index = UsageIndex::open(vec![root], None);
    index.refresh();
    let cost = |mode| {
        let mut q = query(GroupBy::Day);
        q.cost_mode = mode;
        report(&index, &q).totals.cost_usd
    };
    assert!(close(cost(CostMode::Calculate), 2.0 * 0.018));
    assert!(close(cost(CostMode::Display), 0.5 + 0.25));
    assert!(close(cost(CostMode::Auto), 0.5 + 0.018 + 0.25));
}

#[test]
fn the_active_block_burns_and_projects_as_a_labelled_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    let at = |id: &str, ts: &'static str| {
        Msg {
            id,
            req: "r",
            session: "s",
            cwd: "/p",
            ts,
            model: SONNET,
            input: 0,
            output: 1_000,
            cache_write: 0,
            cache_read: 0,
        }
        .line(json!({"requestId": format!("req_{id}")}))
    };
    // 10:10 and 10:40: 2000 tokens in 30 minutes, in the block 10:00-15:00.
    let text = at("a", "2025-06-01T10:10:00.000Z") + &at("b", "2025-06-01T10:40:00.000Z");
    write(&root.join("-p/s.jsonl"), &text);
    let mut index = UsageIndex::open(vec![root], None);
    index.refresh();
    let mut q = query(GroupBy::Block);
    q.now_ms = 1_748_772_000_000 + 60 * 60_000; // 2025-06-01T11:00Z: 240 minutes left
    let r = report(&index, &q);
    let block = r.active_block.clone().expect("an active block");
    assert_eq!(block.start.to_rfc3339(), "2025-06-01T10:00:00+00:00");
    let rate = block.burn_rate.as_ref().unwrap();
    assert!((rate.tokens_per_minute - 2000.0 / 30.0).abs() < 1e-9);
    let p = block.projection.as_ref().unwrap();
    assert!((p.minutes_left - 240.0).abs() < 1e-9);
    assert_eq!(
        p.total_tokens,
        2000 + (2000.0 / 30.0 * 240.0_f64).round() as u64
    );
    assert_eq!(p.note, "estimate from local logs");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["rows"][0]["block"]["active"], true);
    assert_eq!(
        json["rows"][0]["block"]["projection"]["note"],
        "estimate from local logs"
    );
}

/// Forks the command from a small python parent and writes the child's peak RSS (KiB) to
/// the file named by its first argument: a child forked from this test process would start
/// with the test process's own high-water mark, which in the one integration binary holds
/// whatever the other tests running alongside have used.
const PEAK_RSS_PARENT: &str = "import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], 'w').write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
";

/// Runs `command` to its end or kills its process group after `limit`; returns its output
/// and its peak RSS in KiB (measured by [`PEAK_RSS_PARENT`]).
fn run_bounded(
    command: std::process::Command,
    limit: std::time::Duration,
) -> (String, String, i64) {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let peak_file = tempfile::NamedTempFile::new().unwrap();
    let program = crate::common::which(&command.get_program().to_string_lossy())
        .unwrap_or_else(|| command.get_program().into());
    let mut measured = std::process::Command::new("python3");
    measured
        .args(["-c", PEAK_RSS_PARENT])
        .arg(peak_file.path())
        .arg(program)
        .args(command.get_args())
        .env_clear()
        .envs(
            command
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = command.get_current_dir() {
        measured.current_dir(dir);
    }
    let mut child = measured.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "sandbox-deck {:?} still ran after {limit:?}",
                command.get_args()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "status {status}: {}", err.join().unwrap());
    let peak = std::fs::read_to_string(peak_file.path()).unwrap();
    let peak_kib = peak.trim().parse().expect("the measured peak RSS");
    (out.join().unwrap(), err.join().unwrap(), peak_kib)
}

#[test]
fn planted_files_are_skipped_and_counted_and_never_hang_or_blow_up_usage() {
    planted_files(false);
}

#[test]
fn planted_files_as_nobody_are_skipped_and_counted_and_never_hang_or_blow_up_usage() {
    if !common::can_drop_to_nobody() {
        return;
    }
    planted_files(true);
}

/// The red team's files under a Claude root, read by `usage` as root or as nobody.
fn planted_files(nobody: bool) {
    let world = common::World::new();
    let claude = world.path("claude");
    let root = claude.join("projects");
    let dir = root.join("-srv-app");
    write(&dir.join("good.jsonl"), &app_line("m1"));
    // A host file the sandbox cannot see, with lines that would count if it were read.
    let secret = world.path("outside/secret.jsonl");
    write(&secret, &(app_line("m2") + &app_line("m3")));
    let fifo = world.path("outside/fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    link(&fifo, "fifo-link.jsonl");
    link(Path::new("/dev/zero"), "zero.jsonl");
    link(&secret, "secret.jsonl");
    link(&world.path("outside"), "linked-dir");
    nix::unistd::mkfifo(
        &dir.join("fifo.jsonl"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    // 100 GB that take no disk.
    let sparse = std::fs::File::create(dir.join("sparse.jsonl")).unwrap();
    sparse.set_len(100 << 30).unwrap();
    // A counted line, then 50 MB without a newline.
    let mut long = std::fs::File::create(dir.join("long.jsonl")).unwrap();
    long.write_all(app_line("m4").as_bytes()).unwrap();
    // In 1 MiB writes, so the test itself stays small.
    let mib = vec![b'x'; 1 << 20];
    for _ in 0..50 {
        long.write_all(&mib).unwrap();
    }
    drop(long);

    let as_nobody = nobody.then(|| world.as_nobody());
    let deck = |args: &[&str]| {
        let mut command = match &as_nobody {
            Some(as_nobody) => as_nobody(args),
            None => {
                let mut c = world.command();
                c.args(args);
                c
            }
        };
        command.env("CLAUDE_CONFIG_DIR", &claude);
        command
    };
    let command = deck(&["--json", "usage"]);
    let started = std::time::Instant::now();
    let (out, _, peak_kib) = run_bounded(command, std::time::Duration::from_secs(60));
    eprintln!(
        "usage over the planted files: {:?}, peak RSS {} MiB",
        started.elapsed(),
        peak_kib / 1024
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["totals"]["entries"], 2,
        "good.jsonl and the start of long.jsonl: {report}"
    );
    assert_eq!(
        report["totals"]["output_tokens"], 20,
        "nothing of the secret: {report}"
    );
    let skipped: Vec<(String, String)> = report["skipped_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap();
            let name = path.rsplit('/').next().unwrap().to_owned();
            (name, f["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    for (name, reason) in [
        ("fifo-link.jsonl", "symlink"),
        ("zero.jsonl", "symlink"),
        ("secret.jsonl", "symlink"),
        ("linked-dir", "symlink"),
        ("fifo.jsonl", "not_regular"),
        ("sparse.jsonl", "too_large"),
    ] {
        assert!(
            skipped.contains(&(name.to_owned(), reason.to_owned())),
            "{name} not skipped as {reason}: {skipped:?}"
        );
    }
    // Memory is bounded by the line cap, not by what the files claim or hold.
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    // The human summary says so too.
    let (text, _, _) = run_bounded(deck(&["usage"]), std::time::Duration::from_secs(60));
    assert!(text.contains("skipped 6 file(s)"), "{text}");
    assert!(text.contains("sparse.jsonl: too_large"), "{text}");

    // Negative control: the planted files are what they claim. Followed, the link reads the
    // secret; a plain open of the FIFO blocks; /dev/zero never ends.
    assert!(
        std::fs::read_to_string(dir.join("secret.jsonl"))
            .unwrap()
            .contains("m2")
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let fifo_link = dir.join("fifo-link.jsonl");
    std::thread::spawn(move || {
        let opened = std::fs::File::open(fifo_link).is_ok();
        let _ = tx.send(opened);
    });
    assert!(
        rx.recv_timeout(std::time::Duration::from_secs(1)).is_err(),
        "a plain open of the FIFO link returned"
    );
    // Unblock the thread above by opening the write side.
    let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    let mut zero = std::fs::File::open(dir.join("zero.jsonl")).unwrap();
    let mut buf = vec![1u8; 1 << 20];
    use std::io::Read;
    assert_eq!(zero.read(&mut buf).unwrap(), 1 << 20);
    assert_eq!(
        std::fs::metadata(dir.join("sparse.jsonl")).unwrap().len(),
        100 << 30
    );
}

#[test]
fn a_refresh_out_of_time_goes_on_next_time_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    write(&root.join("-srv-app/a.jsonl"), &app_line("m1"));
    write(&root.join("-srv-app/b.jsonl"), &app_line("m2"));
    let mut index = UsageIndex::open(vec![root], None);
    index.set_time_budget(std::time::Duration::ZERO);
    let stats = index.refresh();
    let reasons: Vec<&str> = stats
        .skipped_files
        .iter()
        .map(|f| f.reason.as_str())
        .collect();
    assert_eq!(reasons, ["time_budget", "time_budget"], "{stats:?}");
    let pricing = Pricing::builtin();
    let report = index.report(&pricing, &Query::new(GroupBy::Project));
    assert_eq!(report.totals.entries, 0);
    assert_eq!(
        report.skipped_files.len(),
        2,
        "the report says what is missing"
    );
    index.set_time_budget(std::time::Duration::from_secs(10));
    let stats = index.refresh();
    assert!(stats.skipped_files.is_empty(), "{stats:?}");
    let report = index.report(&pricing, &Query::new(GroupBy::Project));
    assert_eq!(report.totals.entries, 2, "nothing lost");
    assert!(report.skipped_files.is_empty());
}

#[test]
fn a_directory_of_too_many_entries_is_listed_only_so_far_and_said() {
    use sandbox_deck::usage::store::MAX_DIR_ENTRIES;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("projects");
    let crowded = root.join("-crowded");
    std::fs::create_dir_all(&crowded).unwrap();
    for i in 0..=MAX_DIR_ENTRIES {
        std::fs::File::create(crowded.join(format!("{i}"))).unwrap();
    }
    let mut index = UsageIndex::open(vec![root], None);
    let started = std::time::Instant::now();
    let stats = index.refresh();
    eprintln!(
        "{} entries walked in {:?}",
        MAX_DIR_ENTRIES + 1,
        started.elapsed()
    );
    let said: Vec<_> = stats
        .skipped_files
        .iter()
        .filter(|f| f.path == crowded && f.reason.as_str() == "too_large")
        .collect();
    assert_eq!(said.len(), 1, "{:?}", stats.skipped_files);
}

/// `usage --json` prints the same bytes cold (no cache), warm (from the cache) and through a
/// running engine (from the index it keeps), in every grouping; the log says who answered.
/// Asked with other roots than the engine reads, the CLI reports itself.
#[test]
fn usage_json_is_the_same_cold_warm_and_through_the_engine() {
    use common::SpawnGuarded;
    if !common::prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let mut world = common::World::new();
    let claude = world.path("claude");
    let claude_dir = claude.to_str().unwrap().to_owned();
    world
        .env
        .push(("CLAUDE_CONFIG_DIR".into(), claude_dir.clone()));
    world.env.push(("SANDBOX_DECK_LOG".into(), "debug".into()));
    world.env.push(("TZ".into(), "UTC".into()));
    corpus(&claude.join("projects"));
    let cache = world.path("state/sandbox-deck/usage-cache.json");
    let usage = |by: &str, config_dir: &str| -> Vec<u8> {
        let out = world
            .command()
            .env("CLAUDE_CONFIG_DIR", config_dir)
            .args(["--json", "usage", "--by", by])
            .output()
            .expect("running usage");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let log = world.path("state/sandbox-deck/log/sandbox-deck.log");
    let said = |what: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(what)
            .count()
    };
    const FROM_ENGINE: &str = "the report came from the engine";
    const HERE: &str = "reporting here";
    let groupings = ["project", "session", "day", "model", "block"];
    let mut cold = Vec::new();
    for by in groupings {
        let _ = std::fs::remove_file(&cache);
        let _ = std::fs::remove_file(cache.with_extension("bin"));
        let first = usage(by, &claude_dir);
        assert!(cache.exists(), "the cold run wrote the cache");
        let warm = usage(by, &claude_dir);
        assert_eq!(
            String::from_utf8_lossy(&warm),
            String::from_utf8_lossy(&first),
            "--by {by}: warm differs from cold"
        );
        cold.push(first);
    }
    let report: Value = serde_json::from_slice(&cold[0]).unwrap();
    assert!(
        report["totals"]["entries"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!((said(FROM_ENGINE), said(HERE)), (0, 10));

    let socket = world.runtime.join("sandbox-deck/api.sock");
    let engine = world
        .command()
        .args(["serve", "--idle-timeout", "120"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn_guarded();
    common::wait_for(
        "the engine's socket",
        std::time::Duration::from_secs(20),
        || std::os::unix::net::UnixStream::connect(&socket).is_ok(),
    );
    for (by, cold) in groupings.iter().zip(&cold) {
        let via = usage(by, &claude_dir);
        assert_eq!(
            String::from_utf8_lossy(&via),
            String::from_utf8_lossy(cold),
            "--by {by}: the engine's answer differs from cold"
        );
    }
    assert_eq!(said(FROM_ENGINE), 5, "each came from the engine");

    // Other roots than the engine's: reported here, from those roots.
    let empty = world.path("other-claude");
    std::fs::create_dir_all(empty.join("projects")).unwrap();
    let other: Value = serde_json::from_slice(&usage("day", empty.to_str().unwrap())).unwrap();
    assert_eq!(other["files"], 0, "{other}");
    assert_eq!((said(FROM_ENGINE), said(HERE)), (5, 11));

    // A line appended: the engine's index learns it (inotify), and says what a run without
    // the engine then says.
    let log_file = claude
        .join("projects")
        .join(encode_project_dir(Path::new("/srv/code/other")))
        .join("late.jsonl");
    write(
        &log_file,
        &Msg {
            id: "msg_late",
            req: "req_late",
            session: "late",
            cwd: "/srv/code/other",
            ts: "2025-06-02T10:00:00.000Z",
            model: SONNET,
            input: 5,
            output: 7,
            cache_write: 0,
            cache_read: 0,
        }
        .line(json!({})),
    );
    let before = report["totals"]["entries"].as_u64().unwrap();
    let mut via = Vec::new();
    common::wait_for(
        "the engine to count the new line",
        std::time::Duration::from_secs(10),
        || {
            via = usage("session", &claude_dir);
            let r: Value = serde_json::from_slice(&via).unwrap();
            r["totals"]["entries"].as_u64() == Some(before + 1)
        },
    );
    drop(engine);
    common::wait_for(
        "the engine to end",
        std::time::Duration::from_secs(10),
        || std::os::unix::net::UnixStream::connect(&socket).is_err(),
    );
    let here = usage("session", &claude_dir);
    assert_eq!(
        String::from_utf8_lossy(&here),
        String::from_utf8_lossy(&via),
        "after the append, without the engine"
    );
}
