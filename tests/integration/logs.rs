//! `sandbox-deck logs`: the pane log a watching engine writes, read back, rotated at its
//! cap, followed until the sandbox stops, and binary output kept harmless.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::guards::SpawnGuarded;
use crate::common::*;
use sandbox_deck::config::Config;
use sandbox_deck::engine::{Deck, EngineHandle};
use sandbox_deck::paths::Paths;
use serde_json::Value;

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

/// A world with `config` as its config file.
fn world_with(config: &str) -> World {
    let world = World::new();
    let dir = world.path("config/sandbox-deck");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
    world
}

/// The engine a control center would hold, watching every running pane of `world`.
fn watching(world: &World) -> Deck {
    let paths = Paths {
        state_dir: world.path("state/sandbox-deck"),
        config_dir: world.path("config/sandbox-deck"),
        runtime_dir: world.runtime.join("sandbox-deck"),
    };
    let config = Config::load(&paths.config_file()).unwrap();
    let deck = Deck::with(paths, config).unwrap();
    deck.agent_states(&deck.list().unwrap());
    deck
}

/// A shell sandbox named `name`.
fn shell(world: &World, name: &str) -> String {
    let project = world.project(name);
    let created = world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
    created["id"].as_str().unwrap().to_owned()
}

fn type_line(world: &World, name: &str, line: &str) {
    let target = format!("={name}:");
    assert!(
        world
            .tmux(&["send-keys", "-t", &target, "-l", line])
            .status
            .success()
    );
    assert!(
        world
            .tmux(&["send-keys", "-t", &target, "Enter"])
            .status
            .success()
    );
}

fn stdout(world: &World, args: &[&str]) -> String {
    let out = world.run(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("logs prints UTF-8")
}

#[test]
fn the_log_rotates_at_its_cap_and_logs_prints_its_last_lines() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = world_with("[logs]\nmax_bytes = 4000\n");
    let id = shell(&world, "chatty");
    let log = world.path(&format!("state/sandbox-deck/sandboxes/{id}/pane.log"));
    let _deck = watching(&world);
    // 300 numbered lines of 40 bytes: 12 kB through a 4 kB cap.
    type_line(
        &world,
        "chatty",
        "i=0; while [ $i -lt 300 ]; do printf 'line %04d ..............................\\n' $i; \
         i=$((i+1)); done; echo all-$((150+150))-done",
    );
    // Until the shell's next prompt is logged too (the last of the three lines below).
    wait_for(
        "the last line and the prompt logged",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log).is_ok_and(|t| {
                t.split_once("all-300-done")
                    .is_some_and(|(_, rest)| !rest.trim().is_empty())
            })
        },
    );
    let current = std::fs::metadata(&log).unwrap().len();
    let old = world.path(&format!("state/sandbox-deck/sandboxes/{id}/pane.log.1"));
    let rotated = std::fs::metadata(&old).expect("a rotated file").len();
    assert!(current <= 4000 && rotated <= 4000, "{current} {rotated}");
    assert!(
        !std::fs::read_to_string(&old).unwrap().contains("line 0000"),
        "only one old file is kept: the first lines are gone"
    );
    // The last line is the prompt the shell is still writing.
    let text = stdout(&world, &["logs", "chatty", "--lines", "3"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert!(lines[0].starts_with("line 0299"), "{text:?}");
    assert_eq!(lines[1], "all-300-done");
    // Negative control: the whole log is read from both files, the rotated one first (how
    // much each holds depends on how tmux chunked the output at the rotation).
    let all = stdout(&world, &["logs", "chatty"]);
    let old_text = std::fs::read_to_string(&old).unwrap();
    let first_old = old_text
        .lines()
        .find(|l| l.starts_with("line "))
        .expect("the rotated file holds numbered lines");
    let current_lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(all.lines().count() > current_lines, "{all}");
    let (before, after) = all.split_once(first_old).expect("the rotated file's lines");
    assert!(
        !before.contains("all-300-done") && after.contains("all-300-done"),
        "{all}"
    );
}

#[test]
fn logs_follow_prints_new_output_and_ends_when_the_sandbox_stops() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = world_with("");
    shell(&world, "followed");
    let _deck = watching(&world);
    type_line(&world, "followed", "echo first-$((1+1))");
    let mut follow = world
        .command()
        .args(["logs", "followed", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_guarded();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let seen = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
                && line.contains(want)
            {
                return;
            }
        }
        panic!("logs -f never printed {want}");
    };
    seen("first-2");
    type_line(&world, "followed", "echo later-$((2+2))");
    seen("later-4");
    assert!(follow.try_wait().unwrap().is_none(), "still following");
    world.json(&["stop", "followed"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "logs -f did not end with the sandbox"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_output_breaks_neither_the_log_nor_json() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = world_with("");
    let id = shell(&world, "binary");
    let log = world.path(&format!("state/sandbox-deck/sandboxes/{id}/pane.log"));
    let _deck = watching(&world);
    // 0xff, a broken UTF-8 sequence, a title escape and a bell, then a plain line after.
    type_line(
        &world,
        "binary",
        "printf 'x\\377\\303(\\033]0;evil\\007y\\n'; echo after-$((3+4))",
    );
    wait_for("the log", Duration::from_secs(10), || {
        std::fs::read(&log).is_ok_and(|b| String::from_utf8_lossy(&b).contains("after-7"))
    });
    let raw = std::fs::read(&log).unwrap();
    assert!(
        raw.windows(3).any(|w| w == b"\xff\xc3("),
        "the log keeps the bytes as printed"
    );
    let text = stdout(&world, &["logs", "binary"]);
    assert!(text.contains("after-7"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("x\u{fffd}\u{fffd}(y"), "{text:?}");
    let json = stdout(&world, &["--json", "logs", "binary"]);
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(lines.iter().any(|l| l["text"] == "after-7"), "{json}");
    let evil = lines
        .iter()
        .find_map(|l| l["text"].as_str().filter(|t| t.starts_with('x')))
        .expect("the escape's line");
    assert!(
        evil.contains("\u{1b}]0;evil\u{7}"),
        "--json keeps it, escaped"
    );
    assert!(!json.contains('\u{1b}'), "no raw escape on the terminal");
}
