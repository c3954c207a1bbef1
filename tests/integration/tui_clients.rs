//! TUIs as clients of one engine, in a real tmux: the first TUI starts `serve --auto`, the
//! second connects to it; an action in one shows in the other; `notify.command` runs once
//! per event however many TUIs watch; the engine killed with SIGKILL loses nothing, and the
//! TUIs start a new one and carry on.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::is_running;
use crate::common::tui::*;

/// The engines (`serve`) whose runtime dir is this world's, by their environment.
fn engines_of(world: &TuiWorld) -> Vec<i32> {
    let wanted = format!("XDG_RUNTIME_DIR={}", world.path("run").display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| is_running(*pid as u32))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|a| a == b"serve")
                && environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes())
        })
        .collect()
}

fn notifications(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A world whose agent shows Claude Code's permission dialog, and whose notify command
/// appends `<name> <state>` to the returned file.
fn world_with_a_waiting_agent() -> (TuiWorld, std::path::PathBuf) {
    let world = TuiWorld::new();
    let notified = world.path("notified");
    let command = format!(
        "printf '%s %s\\n' \"$SANDBOX_NAME\" \"$SANDBOX_STATE\" >> '{}'",
        notified.display()
    );
    let show = "printf 'Bash command\\nDo you want to proceed?\\n❯ 1. Yes\\n'; exec sleep 600";
    let agent = world.path("bin/show-dialog");
    std::fs::create_dir_all(world.path("bin")).expect("creating bin");
    std::fs::write(&agent, format!("#!/bin/sh\n{show}\n")).expect("writing the agent");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))
        .expect("making the agent executable");
    world.write_config(&format!(
        "[notify]\nbell = true\ncommand = [\"sh\", \"-c\", {}]\n[sandbox]\nagent = {}\n",
        toml_string(&command),
        toml_string(&agent.to_string_lossy())
    ));
    (world, notified)
}

#[test]
fn two_tuis_share_one_engine_see_each_others_actions_and_notify_once() {
    if !tui_prerequisites() {
        return;
    }
    let (world, notified) = world_with_a_waiting_agent();
    let q = world.project("q");
    let out = world.deck(&["create", &q.to_string_lossy(), "--name", "q"]);
    assert!(out.status.success(), "create q: {}", stderr(&out));
    let x = world.project("x");
    let out = world.deck(&["create", &x.to_string_lossy(), "--name", "x", "--shell"]);
    assert!(out.status.success(), "create x: {}", stderr(&out));

    world.start_tui();
    world.wait_for("q waiting and x running", |s| {
        row_says(s, "q", "waiting") && row_says(s, "x", "running")
    });
    world.start_another_tui("tui2");
    world.wait_for_on("tui2", "q waiting and x running", |s| {
        row_says(s, "q", "waiting") && row_says(s, "x", "running")
    });
    assert_eq!(engines_of(&world).len(), 1, "one engine for both TUIs");
    let engine = world.engine_pid().expect("the engine wrote its pid");
    assert_eq!(engines_of(&world), [engine]);

    // Stopped in the first; the second follows without a key.
    select(&world, "tui", "x");
    world.keys(&["s"]);
    world.wait_for("the stop question", |s| s.contains("Stop sandbox x?"));
    world.keys(&["y"]);
    world.wait_for("x stopped", |s| row_says(s, "x", "stopped"));
    world.wait_for_on("tui2", "x stopped in the other TUI", |s| {
        row_says(s, "x", "stopped")
    });

    // One notification for q's waiting, though two TUIs watched it (and time passed for a
    // second one to come).
    let deadline = Instant::now() + WAIT;
    while notifications(&notified).is_empty() {
        assert!(Instant::now() < deadline, "notify.command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(notifications(&notified), ["q waiting"]);

    // SIGKILL the engine: the sandboxes run on, and the TUIs start a new engine and carry on.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(engine),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 the engine");
    let deadline = Instant::now() + WAIT;
    while is_running(engine as u32) {
        assert!(Instant::now() < deadline, "the engine did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    select(&world, "tui2", "x");
    world.keys_on("tui2", &["S"]);
    world.wait_for_on("tui2", "x started through a new engine", |s| {
        row_says(s, "x", "running")
    });
    world.wait_for("x running in the first TUI too", |s| {
        row_says(s, "x", "running") && row_says(s, "q", "waiting")
    });
    let engines = engines_of(&world);
    assert_eq!(engines.len(), 1, "one new engine: {engines:?}");
    assert_ne!(engines[0], engine);
    // q's agent never stopped: still the same one waiting, no second notification.
    assert_eq!(notifications(&notified), ["q waiting"]);

    world.quit();
    world.keys_on("tui2", &["q"]);
    assert_eq!(world.wait_for_exit_on("tui2"), 0);
}

/// The detail pane's title names the selected sandbox: `┌ x ─` (under the table in a
/// narrow window).
fn detail_names(screen: &str, name: &str) -> bool {
    screen.lines().any(|l| l.contains(&format!("┌ {name} ─")))
}

/// Moves the selection of the TUI of `session` down (wrapping) until `name` is selected.
fn select(world: &TuiWorld, session: &str, name: &str) {
    for _ in 0..6 {
        if detail_names(&world.screen_on(session), name) {
            return;
        }
        world.keys_on(session, &["j"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    world.wait_for_on(session, &format!("{name} selected"), |s| {
        detail_names(s, name)
    });
}

#[test]
fn a_tui_whose_engine_cannot_start_says_so_and_runs_no_engine_of_its_own() {
    if !tui_prerequisites() {
        return;
    }
    let world = TuiWorld::new();
    // A directory where the socket goes: the engine cannot listen there and exits at once.
    let blocked = world.path("run/sandbox-deck/api.sock");
    std::fs::create_dir_all(&blocked).expect("a directory in the socket's place");
    std::fs::set_permissions(
        world.path("run/sandbox-deck"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("a private runtime dir");
    world.start_tui();
    assert_eq!(world.wait_for_exit(), 1, "the TUI fails");
    let out = world.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "=tui:"]);
    let screen = String::from_utf8_lossy(&out.stdout).replace('\n', "");
    assert!(
        screen.contains("no engine answers on") && screen.contains("api.sock"),
        "{screen}"
    );
    assert!(
        screen.contains("sandbox-deck.log"),
        "the engine's log is named: {screen}"
    );
    assert!(engines_of(&world).is_empty(), "no engine left running");
    assert!(
        world.registered().is_empty(),
        "nothing was made: {:?}",
        world.registered()
    );
}
