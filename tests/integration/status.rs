//! Agent state from real tmux panes and from hooks run inside a real sandbox.

use std::time::{Duration, Instant};

use crate::common::*;
use sandbox_deck::config::Config;
use sandbox_deck::engine::Deck;
use sandbox_deck::engine::status::{AgentState, StatusTracker};
use sandbox_deck::paths::Paths;
use serde_json::Value;

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

fn status(world: &World, name: &str) -> Value {
    let all = world.json(&["status", name]);
    assert_eq!(all["sampling"], "single");
    all["sandboxes"][0].clone()
}

fn wait_for_state(world: &World, name: &str, state: &str) -> Value {
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        last = status(world, name);
        if last["state"] == state {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} never read {state}; last reading {last}");
}

/// The Claude Code version of the screens the agent stand-ins show.
const CLAUDE: &str = "2.1.197";

#[test]
fn panes_showing_work_and_a_dialog_read_working_and_waiting() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let agent = screen_agent(&world.path("bin"));
    use_agent(&world, &agent);
    // Real screens: Claude working with the waiting words typed *inside* its prompt box
    // (working), and its permission prompt for a Bash command (waiting).
    for (name, screen) in [
        ("work", "working-with-typed-text"),
        ("ask", "permission-bash"),
    ] {
        let dir = world.project(name);
        std::fs::write(dir.join("screen.txt"), claude_screen(CLAUDE, screen)).unwrap();
        world.json(&["create", dir.to_str().unwrap()]);
    }
    // A shell showing the same dialog has no agent, so no agent state.
    let shell = world.project("sh");
    std::fs::write(
        shell.join("screen.txt"),
        claude_screen(CLAUDE, "permission-bash"),
    )
    .unwrap();
    world.json(&[
        "create",
        shell.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "cat screen.txt; exec sleep 600",
    ]);

    let w = wait_for_state(&world, "work", "working");
    assert_eq!(w["source"], "pane");
    let a = wait_for_state(&world, "ask", "waiting");
    assert_eq!(a["source"], "pane");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("do you want to proceed?"),
        "{a}"
    );
    let s = status(&world, "sh");
    assert_eq!(
        (&s["state"], &s["source"]),
        (&Value::Null, &Value::Null),
        "{s}"
    );
    assert_eq!(s["sandbox_state"], "running");
    // The same readings, in a table: the shell's AGENT is `-`.
    let out = world.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("waiting") && text.contains("not debounced"),
        "{text}"
    );
    let sh_row = text
        .lines()
        .find(|l| l.starts_with("sh "))
        .expect("the sh row");
    assert_eq!(sh_row.split_whitespace().nth(1), Some("-"), "{text}");

    world.json(&["stop", "work"]);
    let w = status(&world, "work");
    assert_eq!(
        (w["state"].as_str(), w["reason"].as_str()),
        (Some("exited"), Some("stopped"))
    );
}

/// A stand-in for `claude` that records how it was started, then hands its pane to a shell
/// the test types the hook commands into (so they run inside the sandbox, as hooks do).
fn fake_agent(world: &World) -> String {
    let bin = world.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let agent = bin.join("claude");
    std::fs::write(
        &agent,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$PWD/out/args\"\n\
         while [ $# -gt 0 ]; do [ \"$1\" = --settings ] && cat \"$2\" > \"$PWD/out/settings.json\"; \
         shift; done\nexec sh\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    use_agent(world, &agent);
    agent.to_string_lossy().into_owned()
}

/// Makes `agent` the world's `sandbox.agent`.
fn use_agent(world: &World, agent: &std::path::Path) {
    let config = world.path("config/sandbox-deck");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("[sandbox]\nagent = \"{}\"\n", agent.display()),
    )
    .unwrap();
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

/// Types a line into the sandbox's pane.
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

#[test]
fn hooks_run_inside_the_sandbox_drive_the_state_and_idle_is_debounced() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    fake_agent(&world);
    let project = world.project("agent");
    std::fs::create_dir_all(project.join("out")).unwrap();
    let created = world.json(&["create", project.to_str().unwrap(), "--", "--model", "x"]);
    let id = created["id"].as_str().unwrap();
    // `cat` may still be writing when the file appears: wait until it is whole.
    wait_for("the agent", Duration::from_secs(10), || {
        serde_json::from_str::<Value>(&read(&project.join("out/settings.json"))).is_ok()
    });
    // The agent got the generated settings (at a fixed path inside), before its own
    // arguments, and could read them.
    let args = read(&project.join("out/args"));
    let args: Vec<&str> = args.lines().collect();
    let at = args
        .iter()
        .position(|a| *a == "--settings")
        .expect("--settings");
    assert_eq!(
        args[at + 1],
        "/run/sandbox-deck/hook-settings.json",
        "{args:?}"
    );
    assert_eq!(args[args.len() - 2..], ["--model", "x"], "{args:?}");
    let settings: Value = serde_json::from_str(&read(&project.join("out/settings.json"))).unwrap();
    let hook = |event: &str| {
        settings["hooks"][event][0]["hooks"][0]["command"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    type_line(&world, "agent", &hook("UserPromptSubmit"));
    let s = wait_for_state(&world, "agent", "working");
    assert_eq!(s["source"], "hook");
    // On disk in the state dir, not in the runtime tmpfs a sandbox could fill.
    let events = world
        .path("state/sandbox-deck/sandboxes")
        .join(id)
        .join("status/events.jsonl");
    assert!(
        read(&events).contains("UserPromptSubmit"),
        "written inside, read outside"
    );

    // Debounced: the tracker holds `working` until two idle readings are 1.5 s apart.
    let deck = deck_of(&world);
    let record = deck.show("agent").unwrap();
    let mut tracker = StatusTracker::new();
    assert_eq!(tracker.sample(&deck, &record).1.state, AgentState::Working);
    type_line(&world, "agent", &hook("Stop"));
    wait_for_state(&world, "agent", "idle");
    let first_idle = Instant::now();
    assert_eq!(
        tracker.sample(&deck, &record).1.state,
        AgentState::Working,
        "one idle reading is not enough"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (before, held) = tracker.sample(&deck, &record);
    if first_idle.elapsed() < Duration::from_millis(1400) {
        assert_eq!(held.state, AgentState::Working, "too soon for idle");
    }
    assert_eq!(before, Some(AgentState::Working));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(tracker.sample(&deck, &record).1.state, AgentState::Idle);

    type_line(
        &world,
        "agent",
        &format!(
            "echo '{{\"message\":\"Claude needs your permission to use Bash\"}}' | {{ {}; }}",
            hook("Notification")
        ),
    );
    let s = wait_for_state(&world, "agent", "waiting");
    assert!(s["reason"].as_str().unwrap().contains("permission"), "{s}");
    assert_eq!(
        tracker.sample(&deck, &record).1.state,
        AgentState::Waiting,
        "at once"
    );

    // A SessionEnd line is advisory: the agent's process still runs, so it is not exited.
    type_line(&world, "agent", &hook("SessionEnd"));
    let s = wait_for_state(&world, "agent", "idle");
    assert!(s["reason"].as_str().unwrap().contains("SessionEnd"), "{s}");
    assert_eq!(s["sandbox_state"], "running", "{s}");
    // Only the process ending makes it exited.
    type_line(&world, "agent", "exit");
    wait_for_state(&world, "agent", "exited");
}
