//! The log file: in the state dir, at the level `SANDBOX_DECK_LOG` asks for, never on the
//! terminal.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::*;

fn log_file(world: &World) -> PathBuf {
    world.path("state/sandbox-deck/log/sandbox-deck.log")
}

#[test]
fn the_log_is_in_the_state_dir_at_the_level_asked_for() {
    let mut world = World::new();
    // At the default level (info) a quiet command logs nothing, so creates nothing.
    let out = world.run(&["--json", "list"]);
    assert!(out.status.success());
    assert!(!log_file(&world).exists(), "nothing to log at info");

    world.env.push(("SANDBOX_DECK_LOG".into(), "debug".into()));
    let out = world.run(&["--json", "list"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "nothing on the terminal: {out:?}");
    let text = std::fs::read_to_string(log_file(&world)).expect("the log file");
    let line = text
        .lines()
        .find(|l| l.contains("started"))
        .unwrap_or_else(|| panic!("no start line in {text:?}"));
    assert!(line.contains(" DEBUG "), "{line}");
    assert!(line.contains(&format!("version={}", env!("CARGO_PKG_VERSION"))));
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(log_file(&world)), 0o600);
    assert_eq!(mode(world.path("state/sandbox-deck/log")), 0o700);
}

#[test]
fn a_filter_that_does_not_parse_logs_at_info_and_says_so_in_the_log_only() {
    let mut world = World::new();
    world
        .env
        .push(("SANDBOX_DECK_LOG".into(), "sandbox_deck=loud".into()));
    let out = world.run(&["--json", "list"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "nothing on the terminal: {out:?}");
    let text = std::fs::read_to_string(log_file(&world)).expect("the log file");
    assert!(text.contains(" WARN "), "{text}");
    assert!(
        text.contains("SANDBOX_DECK_LOG is not a valid filter"),
        "{text}"
    );
    assert!(!text.contains(" DEBUG "), "{text}");
}

#[test]
fn the_monitor_logs_why_a_sandbox_changed_state() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let world = World::new();
    world.create_idle("one");
    assert!(world.tmux(&["kill-session", "-t", "=one"]).status.success());
    let state = world.show("one")["state"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(log_file(&world)).expect("the log file");
    let line = text
        .lines()
        .find(|l| l.contains("sandbox=one") && l.contains("marked"))
        .unwrap_or_else(|| panic!("no decision about `one` in {text:?}"));
    assert!(line.contains(&format!("marked {state}")), "{state}: {line}");
}
