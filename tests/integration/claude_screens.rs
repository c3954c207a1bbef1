//! The status patterns against real screens of the real Claude Code CLI, captured by
//! `scripts/capture-claude-screens` into `tests/fixtures/claude-screens/<version>/`.
//! Every dialog that waits for the user must read waiting, the prompt idle, the spinner
//! working; a new capture that is not classified here fails the test.

use crate::common;

use std::path::{Path, PathBuf};

use sandbox_deck::engine::status::{
    AgentState, HookEvent, Patterns, SPINNER, Signals, Source, assess,
};
use sandbox_deck::engine::status_gate::{Grams, OutputGate};
use sandbox_deck::sandbox::SandboxState;

/// The Claude Code version whose screens the shipped patterns are checked against.
const VERSION: &str = "2.1.197";

/// Each captured screen and what it must read as (None: no pattern, so idle once started).
const SCREENS: &[(&str, Option<AgentState>)] = &[
    ("onboarding-theme", Some(AgentState::Waiting)),
    ("onboarding-security-notes", Some(AgentState::Waiting)),
    ("trust-folder", Some(AgentState::Waiting)),
    ("api-key", Some(AgentState::Waiting)),
    ("login-method", Some(AgentState::Waiting)),
    ("login-paste-code", Some(AgentState::Waiting)),
    ("theme-menu", Some(AgentState::Waiting)),
    ("model-menu", Some(AgentState::Waiting)),
    ("permission-bash", Some(AgentState::Waiting)),
    ("permission-write", Some(AgentState::Waiting)),
    ("permission-edit", Some(AgentState::Waiting)),
    ("permission-fetch", Some(AgentState::Waiting)),
    ("question", Some(AgentState::Waiting)),
    ("question-last-choice", Some(AgentState::Waiting)),
    ("idle", None),
    ("idle-not-logged-in", None),
    ("idle-after-answer", None),
    ("working", Some(AgentState::Working)),
    ("working-with-typed-text", Some(AgentState::Working)),
    ("working-with-long-typed-text", Some(AgentState::Working)),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/claude-screens/{VERSION}"))
}

fn screen(name: &str) -> String {
    common::claude_screen(VERSION, name)
}

/// A sandbox that has run for a minute, with no hook yet and a quiet transcript.
fn running(pane: &str) -> Signals<'_> {
    Signals {
        sandbox: SandboxState::Running,
        sandbox_reason: None,
        exit_status: None,
        running_for_ms: Some(60_000),
        hook: None,
        pane: Some(pane),
        transcript_age_ms: None,
        fresh_ms: 5_000,
    }
}

#[test]
fn every_captured_screen_reads_as_what_it_shows() {
    let patterns = Patterns::builtin();
    let mut wrong = Vec::new();
    for (name, expected) in SCREENS {
        let found = patterns.match_pane(&screen(name));
        if found.map(|(state, _)| state) != *expected {
            wrong.push(format!("{name}: expected {expected:?}, matched {found:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The status round's gate on pane output ([`sandbox_deck::engine::status_gate`]) on every
/// real screen: a screen that reads as something is always captured again on output, and
/// each line that holds the matched text, written the way a redrawing UI writes it (each
/// word in its own SGR, a cursor-forward for each space, one write a word), is seen.
#[test]
fn the_status_gate_sees_every_real_screen_and_each_matched_line_redrawn() {
    let patterns = Patterns::builtin();
    let grams = Grams::of(&patterns);
    assert!(grams.on());
    for (name, expected) in SCREENS {
        let screen = screen(name);
        if expected.is_none() {
            continue;
        }
        assert!(grams.could_show(&screen), "{name}: kept without a capture");
        let (_, text) = patterns.match_pane(&screen).expect("it matches");
        let lines = screen.lines().filter(|l| match text {
            SPINNER => l.contains('\u{2026}'),
            _ => l.to_lowercase().contains(text),
        });
        let mut seen = 0;
        for line in lines {
            seen += 1;
            let mut gate = OutputGate::default();
            for word in line.split(' ').filter(|w| !w.is_empty()) {
                gate.feed(&grams, format!("\x1b[1m{word}\x1b[0m\x1b[1C").as_bytes());
            }
            assert!(gate.mark() > 0, "{name}: {line:?} redrawn went unseen");
            if text == SPINNER {
                continue;
            }
            // Only its letters, cut every five bytes by an SGR, one write a piece: no short
            // run, no glyph, so the pieces of the pattern alone must say it.
            let ascii: Vec<u8> = line.bytes().filter(u8::is_ascii).collect();
            let mut gate = OutputGate::default();
            for piece in ascii.chunks(5) {
                let mut write = piece.to_vec();
                write.extend_from_slice(b"\x1b[0m");
                gate.feed(&grams, &write);
            }
            assert!(
                gate.mark() > 0,
                "{name}: the letters of {line:?} went unseen"
            );
        }
        assert!(seen > 0, "{name}: no line holds {text:?}");
    }
}

#[test]
fn every_capture_is_classified() {
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(fixtures()).expect("the fixtures dir") {
        let path = entry.expect("a fixture").path();
        if path.extension().is_some_and(|e| e == "txt") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if !SCREENS.iter().any(|(name, _)| *name == stem) {
                unlisted.push(stem);
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "captured but not classified: {unlisted:?}"
    );
}

#[test]
fn the_status_of_a_running_agent_on_each_screen() {
    let patterns = Patterns::builtin();
    for (name, expected) in SCREENS {
        let pane = screen(name);
        let a = assess(&running(&pane), &patterns);
        let expected = expected.unwrap_or(AgentState::Idle);
        assert_eq!(a.state, expected, "{name}: {}", a.reason);
        // A dialog outranks the idle hook Claude sent when its session started.
        let start = HookEvent {
            event: "SessionStart".into(),
            ts: None,
            input: None,
            seen_ms: 0,
        };
        let with_hook = Signals {
            hook: Some((&start, 30_000)),
            ..running(&pane)
        };
        let a = assess(&with_hook, &patterns);
        assert_eq!(a.state, expected, "{name} after SessionStart: {}", a.reason);
        if expected == AgentState::Waiting {
            assert_eq!(a.source, Source::Pane);
        }
    }
}

#[test]
fn text_typed_in_the_real_prompt_box_never_counts() {
    let patterns = Patterns::builtin();
    let pane = screen("working-with-typed-text");
    // The fixture does hold waiting words, in the box: matched over the whole pane they win.
    let box_line = pane
        .lines()
        .rfind(|l| l.starts_with('❯'))
        .expect("the input line");
    assert!(box_line.contains("Do you want to proceed? Enter to confirm"));
    let whole: String = pane.to_lowercase();
    assert!(whole.contains("do you want to proceed?"));
    let outside = patterns.outside_prompt_box(&pane);
    assert!(!outside.contains(&box_line), "the input line was matched");
    // While the user types, Claude hides "esc to interrupt": its spinner says it works.
    assert!(!pane.contains("esc to interrupt"));
    assert_eq!(
        patterns.match_pane(&pane),
        Some((AgentState::Working, SPINNER))
    );
    // A dialog's selected choice under a rule is not a prompt box: the hint under it counts.
    let question = screen("question-last-choice");
    assert!(question.lines().any(|l| l.starts_with("❯ 4.")));
    assert_eq!(
        patterns.outside_prompt_box(&question).len(),
        question.trim_end().lines().count()
    );
}

/// The real `claude`, installed per user as a new user would, in a managed sandbox: its
/// first screen (the trust dialog, onboarding being done) reads waiting.
#[test]
fn a_real_claude_in_a_sandbox_showing_its_first_dialog_reads_waiting() {
    if !common::prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let mut world = common::World::new();
    if world.install_real_claude().is_none() {
        return;
    }
    std::fs::write(
        world.home.join(".claude.json"),
        r#"{"hasCompletedOnboarding": true}"#,
    )
    .unwrap();
    let project = world.project("first");
    world.json(&["create", project.to_str().unwrap()]);
    let mut last = serde_json::Value::Null;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        last = world.json(&["status", "first"])["sandboxes"][0].clone();
        if last["state"] == "waiting" || last["sandbox_state"] != "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let screen = world.tmux(&["capture-pane", "-p", "-t", "=first:"]);
    let screen = String::from_utf8_lossy(&screen.stdout);
    assert_eq!(last["state"], "waiting", "{last}\nthe pane:\n{screen}");
    assert_eq!(last["source"], "pane", "{last}");
    assert!(screen.contains("Enter to confirm"), "{screen}");
}
