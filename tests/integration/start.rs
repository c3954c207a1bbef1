//! `start` never strands an agent, and a sandbox that dies at once is not called running.
//! With the real Claude Code CLI: it refuses `--continue` in a project that has no
//! conversation ("No conversation found to continue", exit 1), so `start` must resume only
//! a conversation that exists.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

/// A world with the real Claude Code installed for the user, past its onboarding, and the
/// project trusted: Claude goes straight to its prompt, or to its verdict on `--continue`.
fn claude_world(name: &str) -> Option<(World, PathBuf)> {
    if !prerequisites(TOOLS) {
        return None;
    }
    let mut world = World::new();
    world.install_real_claude()?;
    let project = world.project(name);
    let claude_json = serde_json::json!({
        "hasCompletedOnboarding": true,
        "theme": "dark",
        "projects": { project.display().to_string(): { "hasTrustDialogAccepted": true } },
    });
    std::fs::write(world.home.join(".claude.json"), claude_json.to_string()).unwrap();
    Some((world, project))
}

fn screen(world: &World, name: &str) -> String {
    let out = world.tmux(&["capture-pane", "-p", "-t", &format!("={name}:")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pane_pid(world: &World, name: &str) -> u32 {
    let out = world.tmux(&["list-panes", "-t", &format!("={name}"), "-F", "#{pane_pid}"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a pane pid")
}

/// The arguments the agent really runs with inside the sandbox, read from /proc: the
/// process under the pane that got our hook settings.
fn agent_args(world: &World, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    wait_for("the agent process", Duration::from_secs(15), || {
        found = descendants(pane_pid(world, name))
            .into_iter()
            .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
            })
            .find(|argv| {
                argv.first().is_some_and(|a| a.ends_with("/claude"))
                    && argv.iter().any(|a| a == "--settings")
            })
            .unwrap_or_default();
        !found.is_empty()
    });
    found
}

/// Claude's prompt is on screen: it is up and waiting for the user.
fn claude_prompt_shows(world: &World, name: &str) -> bool {
    screen(world, name).contains("for shortcuts")
}

/// Stays running (and on its prompt) for a few seconds: a stranded agent exits within two.
fn assert_stays_running(world: &World, name: &str) {
    wait_for("Claude's prompt", Duration::from_secs(20), || {
        claude_prompt_shows(world, name)
    });
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        let record = world.show(name);
        assert_eq!(
            record["state"],
            "running",
            "{record}\n{}",
            screen(world, name)
        );
    }
    assert!(
        !screen(world, name).contains("No conversation found"),
        "{}",
        screen(world, name)
    );
}

#[test]
fn a_new_agent_comes_back_running_after_stop_and_start() {
    let Some((world, project)) = claude_world("fresh") else {
        return;
    };
    let created = world.json(&["create", project.to_str().unwrap()]);
    assert_eq!(created["state"], "running");
    assert_stays_running(&world, "fresh");

    assert_eq!(world.json(&["stop", "fresh"])["state"], "stopped");
    let started = world.json(&["start", "fresh"]);
    assert_eq!(started["state"], "running", "{started}");
    let args = agent_args(&world, "fresh");
    assert!(
        !args.iter().any(|a| a == "--continue"),
        "nothing to resume: {args:?}"
    );
    assert_stays_running(&world, "fresh");
}

/// The negative control of the test above: what `--continue` does to a project without a
/// conversation, asked for by hand. It also shows that create fails when the agent dies.
#[test]
fn continue_without_a_conversation_makes_create_fail_with_claudes_words() {
    let Some((world, project)) = claude_world("forced") else {
        return;
    };
    let out = world.run(&["create", project.to_str().unwrap(), "--", "--continue"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("No conversation found to continue") && says_exit_status(&stderr, 1),
        "{stderr}"
    );
    assert!(world.list().is_empty(), "a failed create leaves no sandbox");
    assert!(
        !world
            .tmux(&["has-session", "-t", "=forced"])
            .status
            .success(),
        "nor its session"
    );
}

#[test]
fn an_agent_with_a_conversation_is_resumed_and_fresh_is_not() {
    let Some((world, project)) = claude_world("known") else {
        return;
    };
    world.json(&["create", project.to_str().unwrap()]);
    wait_for("Claude's prompt", Duration::from_secs(20), || {
        claude_prompt_shows(&world, "known")
    });
    world.json(&["stop", "known"]);
    world.lay_down_conversation(&project, "PAPAYA");

    let started = world.json(&["start", "known"]);
    assert_eq!(started["state"], "running", "{started}");
    let args = agent_args(&world, "known");
    assert!(args.iter().any(|a| a == "--continue"), "{args:?}");
    // Claude really resumed it: the earlier exchange is on screen.
    wait_for("the resumed conversation", Duration::from_secs(20), || {
        screen(&world, "known").contains("Noted: PAPAYA.")
    });
    assert_stays_running(&world, "known");

    let restarted = world.json(&["restart", "known", "--fresh"]);
    assert_eq!(restarted["id"], started["id"]);
    let args = agent_args(&world, "known");
    assert!(!args.iter().any(|a| a == "--continue"), "{args:?}");
    assert_stays_running(&world, "known");
    assert!(!screen(&world, "known").contains("PAPAYA"));
}

fn error_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
        panic!(
            "not a JSON error ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn is_running(pid: &Value) -> bool {
    pid.as_u64()
        .is_some_and(|pid| common::is_running(pid as u32))
}

#[test]
fn a_backend_that_dies_at_once_fails_create_with_its_last_lines() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("broken");
    let out = world.run(&[
        "--json",
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "echo 'config file missing: /nowhere'; exit 3",
    ]);
    assert!(!out.status.success());
    let error = error_of(&out);
    assert_eq!(error["error"]["kind"], "start_failed", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        says_exit_status(message, 3) && message.contains("config file missing: /nowhere"),
        "{message}"
    );
    assert!(world.list().is_empty(), "nothing is left registered");
    assert!(
        world
            .processes()
            .iter()
            .all(|p| { common::process::name(*p).is_some_and(|c| c != "Xvfb") }),
        "no display is left"
    );
    // A good one still succeeds, in the same project.
    assert_eq!(world.create_idle_at(&project)["state"], "running");
}

#[test]
fn a_bad_profile_fails_create_with_bwraps_words() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("profiled");
    // A valid profile whose PATH has no shell: bwrap cannot exec the payload.
    let mut profile = serde_json::to_value(sandbox_deck::spec::Profile::host()).unwrap();
    profile["path"] = serde_json::json!(["/nowhere/bin"]);
    let file = world.path("profile.json");
    std::fs::write(&file, profile.to_string()).unwrap();
    let out = world.run(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--profile",
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ended as soon as it started") && stderr.contains("bwrap: execvp bash"),
        "{stderr}"
    );
    assert!(world.list().is_empty());
}

#[test]
fn a_sandbox_that_dies_on_start_fails_start_and_keeps_nothing_running() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("flaky");
    let gate = project.join("broken");
    // Up the first time; broken once the gate exists.
    let script = format!(
        "if [ -e {gate} ]; then echo 'cannot open the database'; exit 4; fi; echo up; exec sleep 600",
        gate = gate.display()
    );
    let created = world.json(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(created["state"], "running");
    world.json(&["stop", "flaky"]);
    std::fs::write(&gate, "").unwrap();

    let out = world.run(&["--json", "start", "flaky"]);
    assert!(!out.status.success());
    let error = error_of(&out);
    assert_eq!(error["error"]["kind"], "start_failed");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        says_exit_status(message, 4) && message.contains("cannot open the database"),
        "{message}"
    );
    let record = world.show("flaky");
    assert_eq!(record["state"], "exited", "{record}");
    assert!(
        record["exit_status"] == 4 || record["exit_status"].is_null(),
        "{record}"
    );
    assert!(
        record["xvfb"].is_null(),
        "its display was stopped: {record}"
    );
    // Fixed, it starts again.
    std::fs::remove_file(&gate).unwrap();
    let started = world.json(&["start", "flaky"]);
    assert_eq!(started["state"], "running");
    assert!(is_running(&started["xvfb"]["pid"]), "{started}");
}

/// The settle window is the most `create` waits: a sandbox that is clearly up (its payload
/// asleep in `sleep`) is reported running long before it.
#[test]
fn create_returns_once_the_sandbox_is_clearly_alive() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let config = world.path("config/sandbox-deck");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[sandbox]\nstart_settle_ms = 60000\n",
    )
    .unwrap();
    let begun = std::time::Instant::now();
    let created = world.create_idle("quick");
    let took = begun.elapsed();
    assert_eq!(created["state"], "running");
    // Far below the 60 s window, with room for a machine busy with the other tests.
    assert!(took < Duration::from_secs(20), "create took {took:?}");
    // And a failure is still caught under that long window, at once.
    let project = world.project("slow-fail");
    let begun = std::time::Instant::now();
    let out = world.run(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "echo nope; exit 9",
    ]);
    assert!(!out.status.success());
    let took = begun.elapsed();
    assert!(took < Duration::from_secs(20), "the failure took {took:?}");
    assert!(says_exit_status(&String::from_utf8_lossy(&out.stderr), 9));
}
