//! What the engine learns without polling (issue 15): a hook event reaches the AGENT column
//! with the status timer set to a minute, a session that goes wakes the monitor
//! at once, and a burst of sandboxes asking at once notifies once per sandbox.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::common::tui::*;
use crate::common::*;
use sandbox_deck::config::Config;
use sandbox_deck::engine::wake::Topic;
use sandbox_deck::engine::{Deck, EngineHandle};
use sandbox_deck::paths::Paths;

/// Timers far longer than any wait below: what happens within the wait came from a wake-up.
/// The status round's timer is `min(monitor, idle_debounce)`: a minute.
const SLOW_TIMERS: &str = "[monitor]\ninterval_ms = 3600000\n[status]\nidle_debounce_ms = 60000\n";
/// How long a wake-up may take here (a busy machine), far under the timers' minute.
const WOKEN_WITHIN: Duration = Duration::from_secs(15);

/// An agent (`claude` on PATH for the config) that prints `text` and sleeps.
fn agent_printing(world: &World, text: &str) -> String {
    // In a dir of its own: the sandbox binds the agent's dir read-only.
    let dir = world.path("agent-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let agent = dir.join("claude");
    std::fs::write(&agent, format!("#!/bin/sh\n{text}\nexec sleep 600\n")).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    agent.to_string_lossy().into_owned()
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn deck_of(world: &World) -> Deck {
    let paths = Paths {
        state_dir: world.path("state/sandbox-deck"),
        config_dir: world.path("config/sandbox-deck"),
        runtime_dir: world.runtime.join("sandbox-deck"),
    };
    let config = Config::load(&paths.config_file()).unwrap();
    Deck::with(paths, config).unwrap()
}

/// The line a hook writes when Claude asks for permission.
const ASKS: &str = "{\"event\":\"Notification\",\"input\":{\"message\":\"Claude needs your permission to use Bash\"}}\n";

fn append_hook_line(world: &World, id: &str) {
    use std::io::Write;
    let file = world.path(&format!(
        "state/sandbox-deck/sandboxes/{id}/status/events.jsonl"
    ));
    let mut events = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    events.write_all(ASKS.as_bytes()).unwrap();
}

#[test]
fn a_hook_event_reaches_the_agent_column_without_a_status_tick() {
    if !tui_prerequisites() {
        return;
    }
    let world = TuiWorld::new();
    let agent = agent_printing(&world, "echo agent-ready");
    world.write_config(&format!(
        "{SLOW_TIMERS}[sandbox]\nagent = {}\n",
        toml_string(&agent)
    ));
    let project = world.project("hooked");
    let out = world.deck(&["--json", "create", &project.to_string_lossy()]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = record["id"].as_str().unwrap().to_owned();
    world.start_tui();
    let screen = world.wait_for("the agent's first state", |s| {
        row_says(s, "hooked", "starting") || row_says(s, "hooked", "idle")
    });
    assert!(!row_says(&screen, "hooked", "waiting"), "{screen}");
    let written = Instant::now();
    append_hook_line(&world, &id);
    let deadline = written + WOKEN_WITHIN;
    loop {
        let screen = world.screen();
        if row_says(&screen, "hooked", "waiting") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hook event did not reach the AGENT column before the status timer: {screen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("hook event to AGENT column: {:?}", written.elapsed());
    world.quit();
}

#[test]
fn a_killed_session_wakes_the_monitor_at_once() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        return;
    }
    let world = World::new();
    for name in ["ends", "killed"] {
        let project = world.project(name);
        world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
    }
    let deck = deck_of(&world);
    let records = deck.list().unwrap();
    // The control clients come with the first look.
    deck.agent_states(&records);
    let wakeups = deck.wakeups().clone();
    let quiet = wakeups.count(Topic::Records);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        wakeups.count(Topic::Records),
        quiet,
        "nothing came or went: no wake-up (the control)"
    );
    let woken_after = |what: &str, before: u64| {
        wait_for(what, WOKEN_WITHIN, || {
            wakeups.count(Topic::Records) > before
        });
    };
    let before = wakeups.count(Topic::Records);
    assert!(
        world
            .tmux(&["kill-session", "-t", "=killed"])
            .status
            .success()
    );
    woken_after("a wake-up for the killed session", before);
    assert_eq!(world.show("killed")["state"], "dead");
    // A pane whose process ends stays (remain-on-exit) and tmux says nothing of it (see
    // `host::tmux_control::ChangeSink`): the monitor's timer finds it, as before.
    let typed = world.tmux(&["send-keys", "-t", "=ends:", "exit 7", "Enter"]);
    assert!(typed.status.success());
    wait_for("the exit to be recorded", WOKEN_WITHIN, || {
        world.show("ends")["state"] == "exited"
    });
}

/// The scale: a hundred sandboxes (`BURST_SANDBOXES` sets fewer for a quick run).
const BURST_DEFAULT: usize = 100;
/// Sandboxes created at once: the registry takes one writer at a time, the rest overlaps.
const CREATE_PARALLEL: usize = 4;

#[test]
fn a_burst_of_sandboxes_asking_at_once_notifies_once_per_sandbox() {
    if !tui_prerequisites() {
        return;
    }
    let count: usize = std::env::var("BURST_SANDBOXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BURST_DEFAULT);
    let world = TuiWorld::new();
    // Every agent waits for a file in its project dir (its working dir), then prints a
    // burst of output ending in Claude Code's permission dialog.
    let agent = agent_printing(
        &world,
        "echo agent-ready; while [ ! -e go ]; do sleep 0.1; done\n\
         i=0; while [ $i -lt 300 ]; do echo \"burst line $i\"; i=$((i+1)); done\n\
         printf 'Bash command\\nDo you want to proceed?\\n❯ 1. Yes\\n'",
    );
    let notified = world.path("notified");
    let command = format!(
        "printf '%s %s\\n' \"$SANDBOX_NAME\" \"$SANDBOX_STATE\" >> '{}'",
        notified.display()
    );
    world.write_config(&format!(
        "[notify]\nbell = true\ncommand = [\"sh\", \"-c\", {}]\n[sandbox]\nagent = {}\n",
        toml_string(&command),
        toml_string(&agent)
    ));
    let names: Vec<String> = (0..count).map(|i| format!("b{i}")).collect();
    create_all(&world, &names);
    world.start_tui();
    let table = Duration::from_secs(30 + count as u64);
    wait_for_screen(&world, "the table", table, |s| {
        s.contains(&format!("Sandboxes {count}/{count}"))
    });
    for name in &names {
        std::fs::write(world.project(name).join("go"), "").unwrap();
    }
    // The header counts the waiting agents (`! 100 waiting`, or `!100` when narrow): the
    // rows of a hundred don't fit a screen.
    let (wide, narrow) = (format!("{count} waiting"), format!("!{count} "));
    let burst = Duration::from_secs(60);
    wait_for_screen(&world, "every sandbox waiting", burst, |s| {
        s.contains(&wide) || s.contains(&narrow)
    });
    // Responsive through it: a key still changes the frame.
    world.keys(&["["]);
    world.wait_for("the Info tab", |s| s.contains("start runs"));
    // A few status rounds later, still once each.
    std::thread::sleep(Duration::from_secs(4));
    let lines = std::fs::read_to_string(&notified).unwrap_or_default();
    for name in &names {
        let times = lines
            .lines()
            .filter(|l| *l == format!("{name} waiting"))
            .count();
        assert_eq!(times, 1, "{name} notified {times} times: {lines}");
    }
    assert_eq!(lines.lines().count(), count, "{lines}");
    world.quit();
}

/// Creates a sandbox for each name, a few at a time.
fn create_all(world: &TuiWorld, names: &[String]) {
    for batch in names.chunks(CREATE_PARALLEL) {
        std::thread::scope(|scope| {
            for name in batch {
                scope.spawn(move || {
                    let dir = world.project(name);
                    let out = world.deck(&["create", &dir.to_string_lossy(), "--name", name]);
                    assert!(out.status.success(), "create {name}: {}", stderr(&out));
                });
            }
        });
    }
}

/// [`TuiWorld::wait_for`] with a longer limit, for what scales with the sandboxes' count.
fn wait_for_screen(world: &TuiWorld, what: &str, limit: Duration, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let screen = world.screen();
        if done(&screen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}; the screen was:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
