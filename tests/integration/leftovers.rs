//! What a sandbox leaves behind: no display once it no longer runs, and per-project state
//! that `rm --purge` and `gc` remove when no sandbox uses the project any more.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

fn xvfb_pid(record: &Value) -> u32 {
    record["xvfb"]["pid"].as_u64().expect("an Xvfb pid") as u32
}

/// The project's state dirs (there is one once a sandbox has run for it).
fn state_dirs(world: &World) -> Vec<PathBuf> {
    let root = world.path("state/sandbox-deck/projects");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|e| e.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

#[test]
fn an_exited_sandbox_lets_its_display_go_and_gets_one_back_on_start() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("job");
    let gate = project.join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit 2",
        gate.display()
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
    let first = xvfb_pid(&created);
    assert!(is_running(first));
    std::fs::write(&gate, "").unwrap();
    wait_for("the job to exit", Duration::from_secs(10), || {
        world.show("job")["state"] == "exited"
    });
    let exited = world.show("job");
    assert!(
        exited["xvfb"].is_null() && exited["display"].is_null(),
        "{exited}"
    );
    wait_for("its Xvfb to end", Duration::from_secs(5), || {
        !is_running(first)
    });
    // Its last screen stays for `attach`.
    assert!(world.tmux(&["has-session", "-t", "=job"]).status.success());

    std::fs::remove_file(&gate).unwrap();
    let started = world.json(&["start", "job"]);
    assert_eq!(started["state"], "running");
    assert!(is_running(xvfb_pid(&started)), "{started}");
    assert!(started["display"].is_number());
}

#[test]
fn rm_purge_removes_the_project_state_only_when_no_other_sandbox_uses_it() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("shared");
    let first = world.create_idle_at(&project)["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = world.json(&[
        "create",
        project.to_str().unwrap(),
        "--name",
        "second",
        "--shell",
        "--",
        "sleep",
        "600",
    ]);
    assert_eq!(second["state"], "running");
    let dirs = state_dirs(&world);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let state = &dirs[0];

    let kept = world.json(&["rm", "--force", "--purge", &first]);
    assert_eq!(kept["purge"]["result"], "kept_in_use", "{kept}");
    assert!(state.is_dir(), "the other sandbox still uses it");

    let removed = world.json(&["rm", "--force", "--purge", "second"]);
    assert_eq!(removed["purge"]["result"], "removed", "{removed}");
    assert!(!state.exists());
}

#[test]
fn gc_lists_state_without_a_sandbox_and_removes_it_when_told() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let gone = world.project("gone");
    let kept = world.project("kept");
    world.create_idle_at(&gone);
    world.create_idle_at(&kept);
    world.json(&["rm", "--force", "gone"]);
    assert_eq!(state_dirs(&world).len(), 2, "rm alone keeps the state");

    // --json lists and removes nothing.
    let listed = world.json(&["gc"]);
    let orphans = listed["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{listed}");
    assert_eq!(orphans[0]["project"], gone.to_str().unwrap());
    assert_eq!(listed["removed"], serde_json::json!([]));
    assert_eq!(state_dirs(&world).len(), 2);

    // Without a terminal to ask on, plain `gc` lists and removes nothing either.
    let out = world.run(&["gc"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains(gone.to_str().unwrap()) && stdout.contains("nothing removed"),
        "{stdout}"
    );
    assert_eq!(state_dirs(&world).len(), 2);

    let done = world.json(&["gc", "--yes"]);
    assert_eq!(done["removed"].as_array().unwrap().len(), 1, "{done}");
    let left = state_dirs(&world);
    assert_eq!(left.len(), 1);
    assert_eq!(
        read(&left[0].join("path")).trim_end(),
        kept.to_str().unwrap(),
        "the state of the project that still has a sandbox stays"
    );
    assert_eq!(world.show("kept")["state"], "running");
}

/// On a terminal, `gc` asks first: no removes nothing, yes removes. `script` gives it one.
#[test]
fn gc_on_a_terminal_asks_before_removing() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap", "script"]) {
        return;
    }
    let world = World::new();
    let gone = world.project("asked");
    world.create_idle_at(&gone);
    world.json(&["rm", "--force", "asked"]);
    assert_eq!(state_dirs(&world).len(), 1);
    let gc_with_answer = |answer: &str| -> String {
        let own = world.command();
        // script(1) runs it on a pseudo-terminal fed from our stdin, in the world's env.
        let out = std::process::Command::new("script")
            .env_clear()
            .envs(
                own.get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            )
            .args(["-qec", &format!("{BIN} gc"), "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(format!("{answer}\n").as_bytes())?;
                child.wait_with_output()
            })
            .expect("running script");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = gc_with_answer("n");
    assert!(said.contains("remove these 1 dir(s)? [y/N]"), "{said}");
    assert!(said.contains("nothing removed"), "{said}");
    assert_eq!(state_dirs(&world).len(), 1);
    let said = gc_with_answer("y");
    assert!(said.contains("removed 1 dir(s)"), "{said}");
    assert!(state_dirs(&world).is_empty());
}

/// As an unprivileged user (what real users are): a start that dies at once fails, and the
/// exited sandbox's display is gone.
#[test]
fn an_unprivileged_start_that_dies_at_once_fails_with_its_last_lines() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap", "setpriv"]) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    let world = World::new();
    let project = world.project("nob");
    let gate = project.join("broken");
    let script = format!(
        "if [ -e {} ]; then echo 'no such table: users'; exit 5; fi; exec sleep 600",
        gate.display()
    );
    let as_nobody = world.as_nobody();
    let project_arg = project.to_str().unwrap();
    let args = [
        "--json",
        "create",
        project_arg,
        "--shell",
        "--",
        "sh",
        "-c",
        &script,
    ];
    let out = succeed(&mut as_nobody(&args));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    succeed(&mut as_nobody(&["stop", "nob"]));
    std::fs::write(&gate, "").unwrap();
    let out = as_nobody(&["start", "nob"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        says_exit_status(&stderr, 5) && stderr.contains("no such table: users"),
        "{stderr}"
    );
    let out = succeed(&mut as_nobody(&["--json", "show", "nob"]));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["state"], "exited");
    assert!(record["xvfb"].is_null());
    assert!(!is_running(xvfb_pid(&created)));
    succeed(&mut as_nobody(&["rm", "--force", "nob"]));
}
