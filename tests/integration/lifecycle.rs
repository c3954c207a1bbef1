//! The life of a managed sandbox, against real Xvfb, tmux and bubblewrap.

use crate::common;

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

fn pid_of(record: &Value, key: &str) -> u32 {
    record[key]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} pid in {record}")) as u32
}

/// A payload that reports what it sees into `out/` of the project, then stays up.
fn probe_script(project: &std::path::Path) -> String {
    let out = project.join("out");
    std::fs::create_dir_all(&out).unwrap();
    format!(
        "cd {p}; pwd > out/pwd; ls -A \"$HOME\" > out/home; \
         cat \"$HOME/host-secret\" > out/secret 2>&1; echo \"$DISPLAY\" > out/display; \
         env > out/env; echo done > out/ready; exec sleep 600",
        p = project.display()
    )
}

#[test]
fn a_sandbox_lives_through_create_stop_start_and_rm() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    std::fs::write(world.home.join("host-secret"), "canary-7731").unwrap();
    let project = world.project("api");
    let script = probe_script(&project);

    let created = world.json(&[
        "create",
        project.to_str().unwrap(),
        "--name",
        "api",
        "--shell",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(created["state"], "running", "{created}");
    assert_eq!(created["managed"], true);
    assert_eq!(created["backend"], "bubblewrap");
    assert_eq!(created["project_dir"], project.to_str().unwrap());
    assert!(created["display"].is_u64());
    assert_eq!(created["tmux_session"], "api");

    let listed = world.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "running");

    // Inside: the project at its own path, a fresh home without the host's files, its display.
    wait_for("the probe", Duration::from_secs(10), || {
        project.join("out/ready").exists()
    });
    assert_eq!(
        read(&project.join("out/pwd")).trim(),
        project.to_str().unwrap()
    );
    let home_listing = read(&project.join("out/home"));
    assert!(
        !home_listing.contains("host-secret"),
        "host home leaked: {home_listing}"
    );
    assert!(!read(&project.join("out/secret")).contains("canary-7731"));
    // Negative control: the canary is readable outside the sandbox.
    assert!(read(&world.home.join("host-secret")).contains("canary-7731"));
    assert_eq!(
        read(&project.join("out/display")).trim(),
        format!(":{}", created["display"])
    );

    // stop: nothing of it remains, and it says stopped.
    let xvfb = pid_of(&created, "xvfb");
    let launcher = pid_of(&created, "launcher");
    let mut tree = descendants(launcher);
    tree.extend([xvfb, launcher]);
    assert!(tree.iter().all(|p| is_running(*p)));
    let stopped = world.json(&["stop", "api"]);
    assert_eq!(stopped["state"], "stopped");
    assert!(stopped["display"].is_null());
    for pid in &tree {
        assert!(!is_running(*pid), "process {pid} survived stop");
    }
    assert!(!world.tmux(&["has-session", "-t", "=api"]).status.success());
    // Stopping twice is fine.
    assert_eq!(world.json(&["stop", "api"])["state"], "stopped");

    // start: same name and project, new processes.
    std::fs::remove_file(project.join("out/ready")).unwrap();
    let started = world.json(&["start", "api"]);
    assert_eq!(started["state"], "running");
    assert_eq!(started["id"], created["id"]);
    wait_for("the probe after start", Duration::from_secs(10), || {
        project.join("out/ready").exists()
    });

    // rm refuses a running sandbox, then --force removes it and every process of it.
    let (kind, _) = world.error_kind(&["rm", "api"]);
    assert_eq!(kind, "wrong_state");
    let launcher = pid_of(&started, "launcher");
    let mut tree = descendants(launcher);
    tree.extend([pid_of(&started, "xvfb"), launcher]);
    world.json(&["rm", "--force", "api"]);
    assert!(world.list().is_empty());
    for pid in &tree {
        assert!(
            !is_running(*pid),
            "process {pid} of a removed sandbox is left"
        );
    }
    assert!(world.processes().iter().all(|p| !tree.contains(p)));
    let (kind, _) = world.error_kind(&["show", "api"]);
    assert_eq!(kind, "not_found");
}

#[test]
fn a_vanished_session_or_display_is_noticed() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    world.create_idle("one");
    let second = world.create_idle("two");

    // The session killed behind our back: exited or dead, never running.
    assert!(world.tmux(&["kill-session", "-t", "=one"]).status.success());
    let one_now = world.show("one");
    let state = one_now["state"].as_str().unwrap();
    assert!(
        state == "exited" || state == "dead",
        "after kill-session: {one_now}"
    );

    // Its Xvfb killed: dead, with the reason, and the rest of it is ended.
    let xvfb = pid_of(&second, "xvfb");
    let launcher = pid_of(&second, "launcher");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(xvfb as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("Xvfb to die", Duration::from_secs(5), || !is_running(xvfb));
    let two_now = world.show("two");
    assert_eq!(two_now["state"], "dead", "{two_now}");
    assert_eq!(two_now["reason"], "Xvfb died");
    wait_for("the backend to end", Duration::from_secs(5), || {
        !is_running(launcher)
    });
    assert!(!world.tmux(&["has-session", "-t", "=two"]).status.success());

    // A dead sandbox starts again.
    assert_eq!(world.json(&["start", "two"])["state"], "running");
}

#[test]
fn a_finished_backend_reads_exited_with_its_status() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("job");
    let gate = project.join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit 5",
        gate.display()
    );
    world.json(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(world.show("job")["state"], "running");
    std::fs::write(&gate, "").unwrap();
    wait_for("the job to exit", Duration::from_secs(10), || {
        world.show("job")["state"] == "exited"
    });
    assert_eq!(world.show("job")["exit_status"], 5);
    // Its last screen is kept for inspection until it is stopped.
    assert!(world.tmux(&["has-session", "-t", "=job"]).status.success());
    assert_eq!(world.json(&["stop", "job"])["state"], "stopped");
    assert!(!world.tmux(&["has-session", "-t", "=job"]).status.success());
}

#[test]
fn a_second_process_sees_the_sandboxes_of_the_first_and_other_xdg_dirs_see_none() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let created = world.create_idle("shared");
    // Every CLI call is its own process: this one only knows the registry.
    assert_eq!(world.show("shared")["id"], created["id"]);
    let other = World::new();
    assert!(other.list().is_empty());
    assert_ne!(other.tmux_socket(), world.tmux_socket());
}

#[test]
fn eight_parallel_creates_lose_no_record() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let project = world.project(&format!("p{i}"));
            world
                .command()
                .args([
                    "--json",
                    "create",
                    project.to_str().unwrap(),
                    "--shell",
                    "--",
                    "sleep",
                    "600",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = world.list();
    assert_eq!(listed.len(), 8);
    assert!(listed.iter().all(|r| r["state"] == "running"), "{listed:?}");
    let mut displays: Vec<u64> = listed
        .iter()
        .map(|r| r["display"].as_u64().unwrap())
        .collect();
    displays.sort();
    displays.dedup();
    assert_eq!(displays.len(), 8, "each sandbox has its own display");
}

#[test]
fn a_corrupt_registry_is_reported_and_left_unchanged() {
    let world = World::new();
    let registry = world.registry();
    std::fs::create_dir_all(registry.parent().unwrap()).unwrap();
    let garbage = b"{\"schema\":1,\"sandboxes\":[{\"name\":";
    std::fs::write(&registry, garbage).unwrap();
    let (kind, message) = world.error_kind(&["list"]);
    assert_eq!(kind, "corrupt_registry");
    assert!(message.contains("registry.json"), "{message}");
    let project = world.project("x");
    let (kind, _) = world.error_kind(&["create", project.to_str().unwrap(), "--shell"]);
    assert_eq!(kind, "corrupt_registry");
    assert_eq!(std::fs::read(&registry).unwrap(), garbage);

    std::fs::write(&registry, b"{\"schema\":7,\"sandboxes\":[]}").unwrap();
    assert_eq!(world.error_kind(&["list"]).0, "newer_schema");
    assert_eq!(
        std::fs::read(&registry).unwrap(),
        b"{\"schema\":7,\"sandboxes\":[]}"
    );
}

#[test]
fn bad_names_and_project_dirs_are_refused_before_anything_starts() {
    let world = World::new();
    let project = world.project("ok");
    let file = world.path("a-file");
    std::fs::write(&file, "").unwrap();
    for name in [
        "Bad",
        "-rf",
        "a b",
        "../../etc",
        "a;id",
        "$(id)",
        "a:b",
        "",
        &"x".repeat(33),
    ] {
        let (kind, _) = world.error_kind(&[
            "create",
            project.to_str().unwrap(),
            "--name",
            name,
            "--shell",
        ]);
        assert_eq!(kind, "invalid_name", "name {name:?}");
    }
    let missing = world.path("missing");
    let (kind, message) = world.error_kind(&["create", missing.to_str().unwrap(), "--shell"]);
    assert_eq!(kind, "invalid_project_dir");
    assert!(message.contains("does not exist"), "{message}");
    let (kind, message) = world.error_kind(&["create", file.to_str().unwrap(), "--shell"]);
    assert_eq!(kind, "invalid_project_dir");
    assert!(message.contains("not a directory"), "{message}");
    let (kind, _) = world.error_kind(&["create", world.home.to_str().unwrap(), "--shell"]);
    assert_eq!(
        kind, "invalid_project_dir",
        "the home directory itself is refused"
    );
    assert!(world.list().is_empty());
    assert!(
        world.processes().is_empty(),
        "nothing may start for bad input"
    );
}

#[test]
fn a_project_dir_holding_the_users_secrets_or_config_is_refused_by_name() {
    let world = World::new();
    for rel in [".ssh", ".config/gh", ".local/share", ".claude"] {
        std::fs::create_dir_all(world.home.join(rel)).unwrap();
    }
    let link = world.path("home-link");
    std::os::unix::fs::symlink(&world.home, &link).unwrap();
    let home = world.home.to_str().unwrap().to_owned();
    let cases: Vec<(String, &str)> = vec![
        (format!("{home}/.config"), "~/.config"),
        (format!("{home}/.config/gh"), "~/.config"),
        (format!("{home}/.ssh"), "~/.ssh"),
        (format!("{home}/.local"), "~/.local"),
        (format!("{home}/.claude"), "~/.claude"),
        (home.clone(), "home directory"),
        // ~/.ssh's parent through a symlink, and ancestors of HOME up to the root.
        (link.to_str().unwrap().to_owned(), "home directory"),
        (
            world.root.path().to_str().unwrap().to_owned(),
            "home directory",
        ),
        ("/tmp".to_owned(), "home directory"),
        ("/".to_owned(), "root directory"),
        // The deck's own state dir (XDG_STATE_HOME) holds every sandbox's state.
        (
            world.path("state").to_str().unwrap().to_owned(),
            "state dir",
        ),
    ];
    std::fs::create_dir_all(world.path("state")).unwrap();
    for (dir, named) in &cases {
        let (kind, message) = world.error_kind(&["create", dir, "--shell"]);
        assert_eq!(kind, "invalid_project_dir", "{dir} accepted");
        assert!(message.contains(named), "{dir}: {message}");
        let out = world.run(&["launch", "bubblewrap", dir, "--shell", "--", "true"]);
        assert!(!out.status.success(), "launch {dir} accepted");
    }
    assert!(world.list().is_empty());
    // Control: a normal project inside the same home is accepted.
    let project = world.home.join("code/api");
    std::fs::create_dir_all(&project).unwrap();
    let out = world.run(&[
        "launch",
        "bubblewrap",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "true",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("invalid project"), "{stderr}");
    if prerequisites(&["bwrap"]) {
        assert!(out.status.success(), "{stderr}");
    }
}

#[test]
fn a_project_whose_git_cannot_be_protected_is_refused_before_anything_starts() {
    if !prerequisites(&["git"]) {
        return;
    }
    let world = World::new();
    let linked = world.project("linked");
    let real = world.path("real.git");
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(&real, linked.join(".git")).unwrap();
    let hooks = world.project("hooks");
    succeed(Command::new("git").args(["init", "-q"]).current_dir(&hooks));
    succeed(
        Command::new("git")
            .args(["config", "core.hooksPath", "."])
            .current_dir(&hooks),
    );
    for (project, named) in [(&linked, "symlink"), (&hooks, "core.hooksPath")] {
        let (kind, message) = world.error_kind(&["create", project.to_str().unwrap(), "--shell"]);
        assert_eq!(kind, "invalid_project_dir");
        assert!(message.contains(named), "{message}");
    }
    assert!(world.list().is_empty());
}

#[test]
fn a_duplicate_name_is_refused() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let first = world.create_idle("dup");
    let project = first["project_dir"].as_str().unwrap();
    let (kind, _) = world.error_kind(&["create", project, "--shell"]);
    assert_eq!(kind, "already_exists");
    assert_eq!(world.list().len(), 1);
}

#[test]
fn a_missing_agent_says_how_to_install_it() {
    if !prerequisites(TOOLS) {
        return;
    }
    let mut world = World::new();
    // The host's tools without any `claude` (a host may have one in /usr/bin too).
    let bin = world.path("bin-without-claude");
    std::fs::create_dir_all(&bin).unwrap();
    for entry in std::fs::read_dir("/usr/bin").unwrap().flatten() {
        if entry.file_name() != "claude" {
            let _ = std::os::unix::fs::symlink(entry.path(), bin.join(entry.file_name()));
        }
    }
    world
        .env
        .push(("PATH".into(), bin.to_string_lossy().into_owned()));
    let project = world.project("agent");
    let (kind, message) = world.error_kind(&["create", project.to_str().unwrap()]);
    assert_eq!(kind, "missing_binary");
    assert!(
        message.contains("claude") && message.contains("npm install"),
        "{message}"
    );
    assert!(world.list().is_empty());
}

#[test]
fn create_rolls_back_the_display_when_tmux_fails() {
    if !prerequisites(TOOLS) {
        return;
    }
    let mut world = World::new();
    // A tmux that fails every command, first on PATH.
    let bin = world.path("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("tmux");
    std::fs::write(&fake, "#!/bin/sh\necho 'fake tmux refuses' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    world.env.push(("PATH".into(), path));
    let project = world.project("rollback");
    let (kind, message) = world.error_kind(&["create", project.to_str().unwrap(), "--shell"]);
    assert_eq!(kind, "host");
    assert!(message.contains("fake tmux refuses"), "{message}");
    assert!(world.list().is_empty(), "the record is rolled back");
    let xvfbs: Vec<u32> = world
        .processes()
        .into_iter()
        .filter(|p| common::comm(*p) == "Xvfb")
        .collect();
    assert!(xvfbs.is_empty(), "Xvfb left running: {xvfbs:?}");
}

#[test]
fn attach_refuses_a_stopped_sandbox_with_a_hint() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    world.create_idle("att");
    world.json(&["stop", "att"]);
    let (kind, message) = world.error_kind(&["attach", "att"]);
    assert_eq!(kind, "wrong_state");
    assert!(message.contains("sandbox-deck start att"), "{message}");
}

#[test]
fn attach_puts_a_terminal_on_the_sandbox_session() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("term");
    world.json(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "echo attached-marker; exec sleep 600",
    ]);
    // A terminal of our own: an outer tmux on another socket runs `sandbox-deck attach`.
    let outer = world.path("outer.sock");
    let mut attach = vec![BIN.to_string(), "attach".into(), "term".into()];
    let envs = [
        format!("HOME={}", world.home.display()),
        format!("XDG_STATE_HOME={}", world.path("state").display()),
        format!("XDG_CONFIG_HOME={}", world.path("config").display()),
        format!("XDG_RUNTIME_DIR={}", world.runtime.display()),
    ];
    let mut args = vec![
        "-S".to_string(),
        outer.display().to_string(),
        "new-session".into(),
        "-d".into(),
        "-x".into(),
        "120".into(),
        "-y".into(),
        "30".into(),
    ];
    for e in &envs {
        args.push("-e".into());
        args.push(e.clone());
    }
    args.push("--".into());
    args.push("env".into());
    args.push("-u".into());
    args.push("TMUX".into());
    args.append(&mut attach);
    let outer_tmux = |a: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-S")
            .arg(&outer)
            .args(a)
            .output()
            .unwrap()
    };
    assert!(
        std::process::Command::new("tmux")
            .args(&args)
            .status()
            .unwrap()
            .success()
    );
    let screen =
        || String::from_utf8_lossy(&outer_tmux(&["capture-pane", "-p"]).stdout).into_owned();
    wait_for("the attached screen", Duration::from_secs(10), || {
        screen().contains("attached-marker")
    });
    assert!(
        screen().contains("sandbox term"),
        "our status line names the sandbox: {}",
        screen()
    );
    // C-q detaches and ends the attach command.
    outer_tmux(&["send-keys", "C-q"]);
    wait_for("detach", Duration::from_secs(10), || {
        !String::from_utf8_lossy(&world.tmux(&["list-clients"]).stdout).contains("term")
    });
    let _ = outer_tmux(&["kill-server"]);
    assert_eq!(
        world.show("term")["state"],
        "running",
        "detaching leaves it running"
    );
}

/// A stand-in for `claude` on PATH that records its arguments in the project and stays up.
fn fake_agent(world: &mut World) -> std::path::PathBuf {
    let bin = world.path("agent-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let agent = bin.join("claude");
    std::fs::write(
        &agent,
        "#!/bin/sh\n{ for a in \"$@\"; do printf '%s\\n' \"$a\"; done; echo ---; } >> \"$PWD/agent-args\"\necho agent-ready\nexec sleep 600\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    world.env.push(("PATH".into(), path));
    bin
}

/// The argument lists of every agent run so far, one string (a line an argument) per run.
fn agent_runs(project: &std::path::Path) -> Vec<String> {
    read(&project.join("agent-args"))
        .split_terminator("---\n")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_agent_gets_the_sandbox_notice_and_resumes_only_a_conversation_that_exists() {
    if !prerequisites(TOOLS) {
        return;
    }
    let mut world = World::new();
    fake_agent(&mut world);
    let project = world.project("agent");
    let created = world.json(&["create", project.to_str().unwrap(), "--", "--model", "opus"]);
    assert_eq!(created["state"], "running");
    assert_eq!(created["payload"]["kind"], "agent");
    wait_for("the agent", Duration::from_secs(10), || {
        agent_runs(&project).len() == 1
    });
    let first = &agent_runs(&project)[0];
    assert!(first.starts_with("--append-system-prompt\n"), "{first}");
    assert!(
        first.contains("sandbox"),
        "the notice names the sandbox: {first}"
    );
    assert!(first.ends_with("--model\nopus\n"), "{first}");
    assert!(
        !first.contains("--continue"),
        "a first run starts fresh: {first}"
    );
    // No conversation in the project yet: --continue would make Claude exit at once.
    world.json(&["stop", "agent"]);
    world.json(&["start", "agent"]);
    wait_for("the restarted agent", Duration::from_secs(10), || {
        agent_runs(&project).len() == 2
    });
    let second = &agent_runs(&project)[1];
    assert!(
        !second.contains("--continue"),
        "nothing to resume: {second}"
    );
    // With a conversation, start resumes it.
    world.lay_down_conversation(&project, "PAPAYA");
    world.json(&["stop", "agent"]);
    world.json(&["start", "agent"]);
    wait_for("the resumed agent", Duration::from_secs(10), || {
        agent_runs(&project).len() == 3
    });
    let third = &agent_runs(&project)[2];
    assert!(third.contains("--continue\n--model\nopus\n"), "{third}");
    // restart --fresh does not, and it is the same sandbox.
    let restarted = world.json(&["restart", "agent", "--fresh"]);
    assert_eq!(restarted["state"], "running");
    assert_eq!(restarted["id"], created["id"], "restart keeps the id");
    wait_for("the fresh agent", Duration::from_secs(10), || {
        agent_runs(&project).len() == 4
    });
    let fourth = &agent_runs(&project)[3];
    assert!(!fourth.contains("--continue"), "--fresh: {fourth}");
    assert!(fourth.ends_with("--model\nopus\n"), "{fourth}");
}

#[test]
fn a_bad_config_names_the_key_and_changes_nothing() {
    let world = World::new();
    let config = world.path("config/sandbox-deck/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[display]\nwidht = 800\n").unwrap();
    let (kind, message) = world.error_kind(&["list"]);
    assert_eq!(kind, "config");
    assert!(message.contains("widht"), "{message}");
    std::fs::write(&config, "[display]\nwidth = \"wide\"\n").unwrap();
    let (kind, message) = world.error_kind(&["list"]);
    assert_eq!(kind, "config");
    assert!(message.contains("display.width"), "{message}");
    std::fs::write(&config, "[display]\nwidth = 1024\n").unwrap();
    assert!(world.list().is_empty(), "a valid override loads");
}

#[test]
fn without_a_runtime_dir_a_private_fallback_is_used() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    let project = world.project("fallback");
    let mut cmd = world.command();
    cmd.env_remove("XDG_RUNTIME_DIR");
    cmd.env("TMPDIR", world.root.path());
    succeed(cmd.args([
        "--json",
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sleep",
        "600",
    ]));
    let uid = nix::unistd::getuid().as_raw();
    let fallback = world.root.path().join(format!("sandbox-deck-{uid}"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&fallback).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(fallback.join("tmux.sock").exists());
    let socket = fallback.join("tmux.sock");
    let mut rm = world.command();
    rm.env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", world.root.path());
    assert!(
        rm.args(["rm", "--force", "fallback"])
            .status()
            .unwrap()
            .success()
    );
    let _ = std::process::Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .arg("kill-server")
        .output();
    // A fallback dir that others can write to is refused.
    std::fs::set_permissions(&fallback, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut list = world.command();
    list.env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", world.root.path());
    let out = list.args(["--json", "list"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("others can write"));
}

/// CI runs as root; users don't. The whole managed life as `nobody`: Xvfb, our tmux server
/// and an unprivileged bwrap, and a screenshot of its display.
#[test]
fn an_unprivileged_user_runs_a_managed_sandbox() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap", "setpriv"]) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    let world = World::new();
    let project = world.project("nobody");
    let as_nobody = world.as_nobody();
    let script = "{ id -u; grep -E 'CapEff|Seccomp:' /proc/self/status; } > out; exec sleep 600";
    let out = succeed(&mut as_nobody(&[
        "--json",
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        script,
    ]));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["state"], "running");
    wait_for("the payload", Duration::from_secs(10), || {
        read(&project.join("out")).lines().count() == 3
    });
    let seen = read(&project.join("out"));
    assert!(seen.starts_with("65534\n"), "{seen}");
    assert!(
        seen.contains("CapEff:\t0000000000000000") && seen.contains("Seccomp:\t2"),
        "{seen}"
    );
    let shot = succeed(&mut as_nobody(&["screenshot", "nobody", "-o", "-"]));
    assert!(shot.stdout.starts_with(b"\x89PNG"));
    let xvfb = record["xvfb"]["pid"].as_u64().unwrap() as u32;
    assert!(
        as_nobody(&["rm", "--force", "nobody"])
            .status()
            .unwrap()
            .success()
    );
    assert!(!is_running(xvfb));
}

/// A session without `XDG_RUNTIME_DIR` (`su - user`, `sudo -iu user`, cron), or with another
/// one, resolves another runtime dir and would find another tmux server (or none) there:
/// read-only commands from it must neither kill the sandbox nor mark it dead. `cmd` runs
/// sandbox-deck as the user under test, `world` is theirs.
/// sandbox-deck as some user in some session.
type Session<'a> = dyn Fn(&[&str]) -> std::process::Command + 'a;

fn sessions_without_the_runtime_dir_leave_sandboxes_alone(world: &World, cmd: &Session<'_>) {
    let project = world.project("keep");
    let out = succeed(&mut cmd(&[
        "--json",
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sleep",
        "600",
    ]));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["state"], "running", "{record}");
    let processes = [pid_of(&record, "launcher"), pid_of(&record, "xvfb")];
    let other_runtime = world.path("other-run");
    std::fs::create_dir_all(&other_runtime).unwrap();
    let tmp = world.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    succeed(
        std::process::Command::new("chmod")
            .arg("0700")
            .arg(&other_runtime),
    );
    // Both belong to the user under test (the world may have been handed to nobody).
    let owner = std::fs::metadata(&world.home).map(|m| {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", m.uid(), m.gid())
    });
    succeed(
        std::process::Command::new("chown")
            .arg(owner.unwrap())
            .arg(&other_runtime)
            .arg(&tmp),
    );
    let sessions: [(&str, Box<Session<'_>>); 2] = [
        (
            "no XDG_RUNTIME_DIR",
            Box::new(|args: &[&str]| {
                let mut c = cmd(args);
                // Its fallback lands in this world, not in the machine's temp dir.
                c.env_remove("XDG_RUNTIME_DIR").env("TMPDIR", &tmp);
                c
            }),
        ),
        (
            "another XDG_RUNTIME_DIR",
            Box::new(|args: &[&str]| {
                let mut c = cmd(args);
                c.env("XDG_RUNTIME_DIR", &other_runtime);
                c
            }),
        ),
    ];
    for (label, session) in &sessions {
        let list = succeed(&mut session(&["--json", "list"]));
        let list: Value = serde_json::from_slice(&list.stdout).unwrap();
        assert_eq!(list[0]["state"], "running", "{label}: {list}");
        assert!(list[0].get("unreachable").is_none(), "{label}: {list}");
        let show = succeed(&mut session(&["--json", "show", "keep"]));
        let show: Value = serde_json::from_slice(&show.stdout).unwrap();
        assert_eq!(show["state"], "running", "{label}: {show}");
        let status = succeed(&mut session(&["--json", "status"]));
        let status: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(
            status["sandboxes"][0]["sandbox_state"], "running",
            "{label}: {status}"
        );
        for pid in processes {
            assert!(is_running(pid), "{label}: process {pid} was killed");
        }
    }
    // The control: those sessions' own runtime dirs hold no server with the sandbox, so a
    // monitor that asked the caller's server (the old behaviour) would have found its
    // session gone, called it dead and ended it.
    let uid = std::fs::metadata(&world.home).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let theirs = [
        other_runtime.join("sandbox-deck/tmux.sock"),
        tmp.join(format!("sandbox-deck-{}/tmux.sock", uid.unwrap())),
    ];
    for socket in &theirs {
        let seen = std::process::Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .args(["has-session", "-t", "=keep"])
            .output()
            .unwrap();
        assert!(
            !seen.status.success(),
            "{} has the session",
            socket.display()
        );
    }
    assert!(world.tmux(&["has-session", "-t", "=keep"]).status.success());

    // Its server truly out of reach (the socket moved away): still running, reported
    // unreachable with the reason, nothing killed; back in reach, nothing to report.
    let socket = world.tmux_socket();
    let hidden = socket.with_extension("hidden");
    std::fs::rename(&socket, &hidden).unwrap();
    let list = succeed(&mut cmd(&["--json", "list"]));
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    std::fs::rename(&hidden, &socket).unwrap();
    assert_eq!(list[0]["state"], "running", "{list}");
    let why = list[0]["unreachable"].as_str().unwrap_or_default();
    assert!(why.contains("tmux"), "the reason names tmux: {list}");
    let text = succeed(&mut cmd(&["list"]));
    assert!(
        !String::from_utf8_lossy(&text.stdout).contains("unreachable"),
        "reachable again"
    );
    for pid in processes {
        assert!(
            is_running(pid),
            "process {pid} was killed while unreachable"
        );
    }
    let registry: Value = serde_json::from_str(&read(&world.registry())).unwrap();
    assert_eq!(registry["sandboxes"][0]["state"], "running", "{registry}");
    succeed(&mut cmd(&["rm", "--force", "keep"]));
    for pid in processes {
        assert!(!is_running(pid), "rm ends {pid}");
    }
}

#[test]
fn a_session_without_xdg_runtime_dir_leaves_sandboxes_alone() {
    if !prerequisites(TOOLS) {
        return;
    }
    let world = World::new();
    sessions_without_the_runtime_dir_leave_sandboxes_alone(&world, &|args: &[&str]| {
        let mut c = world.command();
        c.args(args);
        c
    });
}

#[test]
fn a_session_without_xdg_runtime_dir_leaves_sandboxes_alone_unprivileged() {
    if !prerequisites(&["tmux", "Xvfb", "bwrap"]) || !can_drop_to_nobody() {
        return;
    }
    let world = World::new();
    // The project is nobody's too (made before the world is handed over).
    world.project("keep");
    let as_nobody = world.as_nobody();
    sessions_without_the_runtime_dir_leave_sandboxes_alone(&world, &as_nobody);
}
