//! The engine watching panes over one tmux control client (`tmux -C`) on the watch session
//! every sandbox window is linked into, against a real server: agent state and preview
//! without a capture process, a killed client or watch session coming back, output routed
//! to the right pane log, and no window left behind by a sandbox that stopped.

use std::time::{Duration, Instant};

use crate::common::*;
use sandbox_deck::config::Config;
use sandbox_deck::engine::status::AgentState;
use sandbox_deck::engine::{Deck, EngineHandle};
use sandbox_deck::host::tmux::{SURVEY_ARGS, WATCH_SESSION, spawned_by_this_thread};
use sandbox_deck::paths::Paths;
use sandbox_deck::sandbox::{SandboxName, SandboxRecord};

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

/// A world whose agent is a shell (`claude` on PATH that execs `sh`), with `config` appended
/// to its config file.
fn agent_world(config: &str) -> World {
    let world = World::new();
    let bin = world.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let agent = bin.join("claude");
    std::fs::write(&agent, "#!/bin/sh\nexec sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = world.path("config/sandbox-deck");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("[sandbox]\nagent = \"{}\"\n{config}", agent.display()),
    )
    .unwrap();
    world
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

fn type_line(world: &World, name: &str, line: &str) {
    let target = format!("={name}:");
    let typed = world.tmux(&["send-keys", "-t", &target, "-l", line]);
    assert!(typed.status.success());
    assert!(
        world
            .tmux(&["send-keys", "-t", &target, "Enter"])
            .status
            .success()
    );
}

fn state_of(deck: &Deck, records: &[SandboxRecord]) -> AgentState {
    deck.agent_states(records)[0].assessment.state
}

/// The tmux control clients this test process started for `world` (its children named
/// tmux that talk to the world's server).
fn control_clients(world: &World) -> Vec<u32> {
    let socket = world.tmux_socket().to_string_lossy().into_owned();
    children(std::process::id())
        .into_iter()
        .filter(|pid| comm(*pid).starts_with("tmux") && state(*pid) != Some('Z'))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&socket))
        })
        .collect()
}

#[test]
fn a_pane_that_asks_reads_waiting_with_no_capture_process_spawned() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    let project = world.project("agent");
    world.json(&["create", project.to_str().unwrap()]);
    let deck = deck_of(&world);
    let records = deck.list().unwrap();
    // The first look attaches the control client and captures once; then the pane is quiet.
    wait_for("the shell's prompt", Duration::from_secs(10), || {
        deck.preview(&SandboxName::parse("agent").unwrap())
            .is_ok_and(|p| p.contains('#') || p.contains('$'))
    });
    assert_ne!(state_of(&deck, &records), AgentState::Waiting);
    let before = spawned_by_this_thread();
    for _ in 0..20 {
        assert_ne!(state_of(&deck, &records), AgentState::Waiting);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        spawned_by_this_thread(),
        before,
        "a silent pane costs no process"
    );
    // The typed command does not show the question; its output does.
    type_line(&world, "agent", "printf 'Do you want to pro%sceed?\\n' ''");
    let typed = Instant::now();
    let mut waited = None;
    while typed.elapsed() < Duration::from_secs(5) {
        if state_of(&deck, &records) == AgentState::Waiting {
            waited = Some(typed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let waited = waited.expect("the pane read waiting");
    // How fast is the benchmark's business (benches/idle.rs); a timed assertion here would
    // only measure this machine's load.
    println!("read waiting {waited:?} after the question was typed");
    assert_eq!(
        spawned_by_this_thread(),
        before,
        "no capture process was spawned to read it"
    );
}

/// The status round reads a pane's output before it captures: a pane printing plain lines
/// is not captured again (its last text stands), and a question written in pieces, escape
/// codes and separate writes between its words, is still read.
#[test]
fn plain_lines_cost_no_capture_and_a_question_in_pieces_is_still_read() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    // The agent prints a plain line every 100 ms until `go` appears, then asks in pieces.
    let agent = world.path("bin/claude");
    std::fs::write(
        &agent,
        "#!/bin/sh\ni=0\nwhile [ ! -e go ]; do i=$((i+1)); echo \"line $i\"; sleep 0.1; done\n\
         printf 'Do you \\033[1mwant\\033[0m'; sleep 0.2\n\
         printf '\\033[1C'; sleep 0.2; printf 'to pro'; sleep 0.2; printf 'ceed?\\n'\n\
         exec sleep 100000\n",
    )
    .unwrap();
    let project = world.project("agent");
    world.json(&["create", project.to_str().unwrap()]);
    let deck = deck_of(&world);
    let records = deck.list().unwrap();
    wait_for("plain lines", Duration::from_secs(10), || {
        deck.preview(&SandboxName::parse("agent").unwrap())
            .is_ok_and(|p| p.contains("line 3"))
    });
    assert_ne!(state_of(&deck, &records), AgentState::Waiting);
    let printed = || last_line(&deck.preview(&SandboxName::parse("agent").unwrap()).unwrap());
    let at_first = printed();
    let first = deck.status_captures();
    assert!(first >= 1, "the first reading captured the pane");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_ne!(state_of(&deck, &records), AgentState::Waiting);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(printed() > at_first + 5, "it kept printing");
    assert_eq!(
        deck.status_captures(),
        first,
        "plain lines were not captured again"
    );
    std::fs::write(project.join("go"), "").unwrap();
    wait_for("the question read", Duration::from_secs(10), || {
        state_of(&deck, &records) == AgentState::Waiting
    });
}

/// The highest `line N` on a screen.
fn last_line(screen: &str) -> u32 {
    screen
        .lines()
        .filter_map(|l| l.trim().strip_prefix("line ")?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_killed_control_client_comes_back_and_the_preview_resumes() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    let project = world.project("term");
    world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
    let deck = deck_of(&world);
    let name = SandboxName::parse("term").unwrap();
    let records = deck.list().unwrap();
    deck.agent_states(&records);
    let clients = control_clients(&world);
    assert_eq!(clients.len(), 1, "one control client for the server");
    type_line(&world, "term", "echo before-$((40+2))");
    wait_for("the preview", Duration::from_secs(5), || {
        deck.preview(&name).is_ok_and(|p| p.contains("before-42"))
    });
    // Negative control: ending the client by its pid ends the connection.
    let _ = std::process::Command::new("kill")
        .arg(clients[0].to_string())
        .status();
    wait_for("the client to end", Duration::from_secs(5), || {
        !is_running(clients[0]) || state(clients[0]) == Some('Z')
    });
    type_line(&world, "term", "echo after-$((40+3))");
    wait_for("the preview to resume", Duration::from_secs(5), || {
        deck.preview(&name).is_ok_and(|p| p.contains("after-43"))
    });
    let again = control_clients(&world);
    assert_eq!(again.len(), 1, "a new client: {again:?}");
    assert_ne!(again[0], clients[0]);
    assert_eq!(
        world.show("term")["state"],
        "running",
        "nothing marked dead"
    );
    // A silent pane is read without a process over the new client.
    let before = spawned_by_this_thread();
    for _ in 0..10 {
        assert!(deck.preview(&name).unwrap().contains("after-43"));
    }
    assert_eq!(spawned_by_this_thread(), before);
}

#[test]
fn pane_output_goes_to_a_private_log_only_while_watched() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    let project = world.project("logged");
    let created = world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let log = world.path(&format!("state/sandbox-deck/sandboxes/{id}/pane.log"));
    type_line(&world, "logged", "echo unwatched-$((1+1))");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!log.exists(), "nobody watches: nothing is logged");
    let deck = deck_of(&world);
    deck.agent_states(&deck.list().unwrap());
    // Binary output, invalid UTF-8 and a control byte, through printf's octal escapes.
    type_line(&world, "logged", "printf 'bin:\\377\\303(\\001:end\\n'");
    wait_for("the log", Duration::from_secs(5), || {
        std::fs::read(&log).is_ok_and(|b| contains(&b, b"bin:\xff\xc3(\x01:end"))
    });
    let bytes = std::fs::read(&log).unwrap();
    assert!(!contains(&bytes, b"unwatched-2"), "before the watch");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn asking_about_one_sandbox_keeps_the_others_watched() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    for name in ["one", "two"] {
        let project = world.project(name);
        world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
    }
    let deck = deck_of(&world);
    let records = deck.list().unwrap();
    deck.agent_states(&records);
    let clients = control_clients(&world);
    assert_eq!(clients.len(), 1, "one client for both running sessions");
    let before = spawned_by_this_thread();
    // What `serve` does for `status NAME`: one record.
    deck.agent_states(&records[..1]);
    deck.agent_states(&records);
    assert_eq!(control_clients(&world), clients, "the same client");
    assert_eq!(spawned_by_this_thread(), before, "none started again");
    assert_eq!(
        watch_windows(&world).len(),
        3,
        "both windows still linked, and the watch session's own: {:?}",
        watch_windows(&world)
    );
}

/// The windows of the watch session: (window id, how many sessions it is linked into).
fn watch_windows(world: &World) -> Vec<(String, u32)> {
    let target = format!("={WATCH_SESSION}");
    let out = world.tmux(&[
        "list-windows",
        "-t",
        &target,
        "-F",
        "#{window_id} #{window_linked_sessions}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (id, n) = l.split_once(' ')?;
            Some((id.to_owned(), n.parse().ok()?))
        })
        .collect()
}

/// The window id and size of `name`'s session.
fn window_of(world: &World, name: &str) -> String {
    let target = format!("={name}:");
    let out = world.tmux(&[
        "display-message",
        "-p",
        "-t",
        &target,
        "#{window_id} #{window_width}x#{window_height}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn has_watch_session(world: &World) -> bool {
    let target = format!("={WATCH_SESSION}");
    world.tmux(&["has-session", "-t", &target]).status.success()
}

/// Stopping, removing or killing a sandbox's session ends its window in the watch session
/// too (a linked window outlives its session otherwise, its pane still running), linking
/// changes no window's size, and the watch session goes with the last sandbox.
#[test]
fn a_sandbox_that_ends_leaves_no_window_in_the_watch_session() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    for name in ["one", "two", "three"] {
        let project = world.project(name);
        world.json(&[
            "create",
            project.to_str().unwrap(),
            "--name",
            name,
            "--shell",
            "--",
            "sh",
        ]);
    }
    let sizes: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|n| window_of(&world, n))
        .collect();
    assert!(
        sizes[0].ends_with(" 200x50"),
        "the configured size: {sizes:?}"
    );
    let deck = deck_of(&world);
    deck.agent_states(&deck.list().unwrap());
    assert_eq!(
        watch_windows(&world).len(),
        4,
        "{:?}",
        watch_windows(&world)
    );
    let now: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|n| window_of(&world, n))
        .collect();
    assert_eq!(now, sizes, "linking into the watch session resized nothing");
    let (one, two) = (window_of(&world, "one"), window_of(&world, "two"));
    let window = |w: &str| w.split(' ').next().unwrap().to_owned();
    let linked = |w: &str| watch_windows(&world).iter().any(|(id, _)| *id == window(w));
    assert!(linked(&one) && linked(&two));
    // Stopped by a one-shot CLI: its window is gone from the watch session at once.
    world.json(&["stop", "one"]);
    assert!(!linked(&one), "{:?}", watch_windows(&world));
    // Killed behind our back: the engine ends what is left of it as soon as it looks.
    let pane_pid = |name: &str| {
        let target = format!("={name}:");
        let out = world.tmux(&["display-message", "-p", "-t", &target, "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let pid = pane_pid("two");
    assert!(world.tmux(&["kill-session", "-t", "=two"]).status.success());
    wait_for("the orphaned window ended", Duration::from_secs(10), || {
        deck.list().unwrap();
        !linked(&two)
    });
    wait_for("its pane's process ended", Duration::from_secs(10), || {
        !is_running(pid) || state(pid) == Some('Z')
    });
    assert!(
        watch_windows(&world).iter().all(|(_, n)| *n == 2 || {
            // The watch session's own window.
            *n == 1
        }),
        "{:?}",
        watch_windows(&world)
    );
    assert_eq!(watch_windows(&world).len(), 2, "three's and its own");
    // The last one removed: the watch session goes too, and the server with it.
    world.json(&["rm", "--force", "three"]);
    deck.agent_states(&deck.list().unwrap());
    wait_for("the watch session gone", Duration::from_secs(10), || {
        !has_watch_session(&world)
    });
    assert!(
        control_clients(&world).is_empty(),
        "{:?}",
        control_clients(&world)
    );
}

/// The one client's output reaches each sandbox's own log, by pane.
#[test]
fn output_of_two_sandboxes_goes_to_their_own_logs() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    let mut logs = Vec::new();
    for name in ["left", "right"] {
        let project = world.project(name);
        let created = world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
        let id = created["id"].as_str().unwrap().to_owned();
        logs.push(world.path(&format!("state/sandbox-deck/sandboxes/{id}/pane.log")));
    }
    let deck = deck_of(&world);
    deck.agent_states(&deck.list().unwrap());
    type_line(&world, "left", "echo from-left-$((6*7))");
    type_line(&world, "right", "echo from-right-$((6*8))");
    for (log, word) in logs.iter().zip([&b"from-left-42"[..], b"from-right-48"]) {
        wait_for("the log", Duration::from_secs(5), || {
            std::fs::read(log).is_ok_and(|b| contains(&b, word))
        });
    }
    let left = std::fs::read(&logs[0]).unwrap();
    let right = std::fs::read(&logs[1]).unwrap();
    assert!(
        !contains(&left, b"from-right"),
        "{}",
        String::from_utf8_lossy(&left)
    );
    assert!(
        !contains(&right, b"from-left"),
        "{}",
        String::from_utf8_lossy(&right)
    );
    // The previews too.
    let preview = |name: &str| deck.preview(&SandboxName::parse(name).unwrap()).unwrap();
    assert!(preview("left").contains("from-left-42") && !preview("left").contains("from-right"));
    assert!(preview("right").contains("from-right-48"));
}

/// The watch session killed behind the engine's back: it is made again, the windows linked
/// again, and the output flows again; nothing is marked dead.
#[test]
fn a_killed_watch_session_is_made_again_and_output_flows() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    let project = world.project("kept");
    let created = world.json(&["create", project.to_str().unwrap(), "--shell", "--", "sh"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let log = world.path(&format!("state/sandbox-deck/sandboxes/{id}/pane.log"));
    let deck = deck_of(&world);
    let name = SandboxName::parse("kept").unwrap();
    deck.agent_states(&deck.list().unwrap());
    let first = control_clients(&world);
    assert_eq!(first.len(), 1);
    let target = format!("={WATCH_SESSION}");
    assert!(
        world
            .tmux(&["kill-session", "-t", &target])
            .status
            .success()
    );
    assert!(!has_watch_session(&world));
    wait_for("the client to end", Duration::from_secs(5), || {
        first
            .iter()
            .all(|p| !is_running(*p) || state(*p) == Some('Z'))
    });
    assert!(
        world.tmux(&["has-session", "-t", "=kept"]).status.success(),
        "the sandbox's session is untouched"
    );
    wait_for("the watch session again", Duration::from_secs(5), || {
        deck.agent_states(&deck.list().unwrap());
        has_watch_session(&world)
    });
    type_line(&world, "kept", "echo again-$((50+5))");
    wait_for("the log", Duration::from_secs(5), || {
        std::fs::read(&log).is_ok_and(|b| contains(&b, b"again-55"))
    });
    wait_for("the preview", Duration::from_secs(5), || {
        deck.preview(&name).is_ok_and(|p| p.contains("again-55"))
    });
    assert_eq!(control_clients(&world).len(), 1);
    assert_eq!(
        world.show("kept")["state"],
        "running",
        "nothing marked dead"
    );
}

#[test]
fn no_sandbox_can_take_the_watch_sessions_name() {
    let world = World::new();
    let project = world.project("watch");
    let (kind, message) = world.error_kind(&[
        "create",
        project.to_str().unwrap(),
        "--name",
        WATCH_SESSION,
        "--shell",
        "--",
        "sh",
    ]);
    assert_eq!(kind, "invalid_name", "{message}");
}

/// The engine's survey of panes goes over a kept control client (no `tmux list-panes`
/// process per reconcile), says what a spawned `list-panes` says, and carries on when the
/// session the client is attached to is killed.
#[test]
fn reconciling_surveys_over_a_kept_connection_that_outlives_its_session() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    for name in ["one", "two"] {
        let project = world.project(name);
        world.json(&["create", project.to_str().unwrap(), "--name", name]);
    }
    let deck = deck_of(&world);
    let tmux_of = |deck: &Deck| deck.tmux_of(&deck.list().unwrap()[0]);
    let tmux = tmux_of(&deck);
    // A one-shot engine keeps nothing: a connection would cost it a process more.
    deck.list().unwrap();
    assert!(
        control_clients(&world).is_empty(),
        "{:?}",
        control_clients(&world)
    );
    deck.keep_tmux_links();
    deck.list().unwrap();
    assert_eq!(control_clients(&world).len(), 1, "one kept survey client");
    let before = spawned_by_this_thread();
    for _ in 0..5 {
        let records = deck.list().unwrap();
        assert!(records.iter().all(|r| r.state.to_string() == "running"));
    }
    assert_eq!(spawned_by_this_thread(), before, "no process per reconcile");
    assert_eq!(
        deck.survey(&tmux),
        tmux.survey(),
        "the same answer as list-panes"
    );
    // tmux itself leaves the watch session's panes out (each sandbox pane is listed once).
    assert!(has_watch_session(&world));
    let listed = world.tmux(&SURVEY_ARGS);
    let listed = String::from_utf8_lossy(&listed.stdout);
    let sessions: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert!(!sessions.contains(&WATCH_SESSION), "{listed}");
    // Whichever session it is attached to, killing one leaves a correct survey.
    for name in ["one", "two"] {
        assert!(
            world
                .tmux(&["kill-session", "-t", &format!("={name}")])
                .status
                .success()
        );
        // The last one takes the server with it: an unreachable server proves nothing, so
        // its sandbox reads exited only once its launcher has gone too.
        wait_for(
            "the sandbox no longer running",
            Duration::from_secs(10),
            || {
                let records = deck.list().unwrap();
                let record = records.iter().find(|r| r.name.as_str() == name).unwrap();
                record.state.to_string() != "running"
            },
        );
        assert_eq!(deck.survey(&tmux), tmux.survey());
    }
}

/// What an idle engine asks of the tmux server: with every pane silent, rounds of what
/// `serve` does (a reconcile, the agent states, the selected pane's preview) send no command
/// at all over the control client (no survey, no capture, no tending). A session killed
/// behind the engine's back is surveyed at once (tmux tells), and so is a pane whose
/// process ended (its process is gone; tmux tells nothing of that).
#[test]
fn an_idle_engine_sends_the_tmux_server_nothing() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    for name in ["one", "two", "three"] {
        let project = world.project(name);
        world.json(&["create", project.to_str().unwrap(), "--name", name]);
    }
    let deck = deck_of(&world);
    deck.keep_tmux_links();
    let one = SandboxName::parse("one").unwrap();
    let round = |deck: &Deck| {
        let records = deck.list().unwrap();
        deck.agent_states(&records);
        deck.preview(&one).unwrap();
        records
    };
    // Settled: the prompts drawn, captured once, the connection made and tended.
    wait_for("the prompts", Duration::from_secs(10), || {
        round(&deck);
        deck.preview(&one)
            .is_ok_and(|p| p.contains('#') || p.contains('$'))
    });
    std::thread::sleep(Duration::from_millis(300));
    round(&deck);
    let before = deck.tmux_commands_sent();
    assert!(before.contains_key("list-panes"), "{before:?}");
    for _ in 0..10 {
        let records = round(&deck);
        assert!(records.iter().all(|r| r.state.to_string() == "running"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        deck.tmux_commands_sent(),
        before,
        "an idle round sends no command"
    );
    // A session killed by hand: tmux tells, and the next reconcile surveys.
    assert!(world.tmux(&["kill-session", "-t", "=two"]).status.success());
    wait_for("two read dead", Duration::from_secs(5), || {
        let records = round(&deck);
        records
            .iter()
            .any(|r| r.name.as_str() == "two" && r.state.to_string() == "dead")
    });
    // A pane whose process ended: tmux tells nothing, its process is gone.
    type_line(&world, "three", "exit 3");
    wait_for("three read exited", Duration::from_secs(5), || {
        let records = round(&deck);
        records
            .iter()
            .any(|r| r.name.as_str() == "three" && r.state.to_string() == "exited")
    });
}

/// A sandbox's window keeps the sandbox's name whatever runs in it (tmux looks up no
/// window's command after each output), and an attached client's status line still shows
/// the command running in the sandbox.
#[test]
fn a_window_keeps_the_sandbox_name_and_the_status_line_shows_the_command() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = agent_world("");
    let project = world.project("named");
    world.json(&[
        "create",
        project.to_str().unwrap(),
        "--name",
        "named",
        "--shell",
        "--",
        "sh",
    ]);
    let show = |format: &str| {
        let out = world.tmux(&["display-message", "-p", "-t", "=named:", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    type_line(&world, "named", "sleep 30");
    wait_for("sleep in the foreground", Duration::from_secs(10), || {
        show("#{pane_current_command}") == "sleep"
    });
    // Output since, and time for a rename (tmux renames at most twice a second).
    type_line(&world, "named", "x");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(show("#{window_name}"), "named");
    assert_eq!(show("#{automatic-rename}"), "0");
    assert_eq!(show("#{E:window-status-current-format}"), "0:sleep*");
}
