//! `sandbox-deck launch`: a sandbox in the caller's terminal, registered while it runs.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn launch_returns_the_payload_exit_status() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("launch");
    let out = world
        .command()
        .current_dir(&project)
        .args([
            "launch",
            "bubblewrap",
            "--shell",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(world.list().is_empty(), "unregistered after exit");
}

#[test]
fn a_launched_sandbox_is_listed_while_it_runs() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("hand");
    let gate = project.join("go");
    let script = format!(
        "echo up > {p}/up; while [ ! -e {g} ]; do sleep 0.05; done; exit 3",
        p = project.display(),
        g = gate.display()
    );
    let mut child = world
        .command()
        .args([
            "launch",
            "bubblewrap",
            project.to_str().unwrap(),
            "--shell",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .spawn()
        .unwrap();
    wait_for("the launched payload", Duration::from_secs(10), || {
        project.join("up").exists()
    });
    let listed = world.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["managed"], false);
    assert_eq!(listed[0]["backend"], "bubblewrap");
    assert_eq!(listed[0]["state"], "running");
    assert_eq!(listed[0]["name"], "hand");
    assert!(listed[0]["display"].is_null());
    std::fs::write(&gate, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert!(world.list().is_empty());
}

#[test]
fn a_killed_launcher_is_unregistered_and_takes_its_sandbox_along() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("orphan");
    let mut child = world
        .command()
        .args([
            "launch",
            "bubblewrap",
            project.to_str().unwrap(),
            "--shell",
            "--",
            "sh",
            "-c",
            "touch up; exec sleep 600",
        ])
        .current_dir(&project)
        .spawn()
        .unwrap();
    wait_for("the payload", Duration::from_secs(10), || {
        project.join("up").exists()
    });
    let tree = descendants(child.id());
    assert!(!tree.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for(
        "the sandbox to die with its launcher",
        Duration::from_secs(5),
        || tree.iter().all(|p| !is_running(*p)),
    );
    assert!(
        world.list().is_empty(),
        "the monitor drops a record whose launcher is gone"
    );
}

#[test]
fn doctor_reports_every_prerequisite() {
    let world = World::new();
    let out = world.run(&["--json", "doctor"]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "bwrap",
        "Xvfb",
        "tmux",
        "systemd-nspawn",
        "qemu",
        "kvm",
        "claude",
    ] {
        assert!(
            names.contains(&expected),
            "doctor misses {expected}: {names:?}"
        );
    }
    for check in checks.as_array().unwrap() {
        if check["ok"] == false {
            assert!(
                check["fix"].is_string(),
                "a failed check must say how to fix it: {check}"
            );
        }
    }
    let bwrap = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bwrap")
        .unwrap();
    if which("bwrap").is_some() {
        assert_eq!(bwrap["ok"], true, "bwrap works unprivileged here: {bwrap}");
    }
    assert_eq!(
        out.status.success(),
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true || c["required"] == false)
    );
}
