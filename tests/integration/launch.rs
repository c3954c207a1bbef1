//! `sandbox-deck launch`: a sandbox in the caller's terminal, registered while it runs.

use crate::common;

use std::time::Duration;

use crate::common::*;

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
        .spawn_guarded();
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
        .spawn_guarded();
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

/// Starts `launch bubblewrap DIR --shell -- sh -c SCRIPT` in the background and waits for
/// the file `up` the script writes into the project.
fn start_instance(world: &World, project: &std::path::Path, script: &str) -> Guarded {
    let child = world
        .command()
        .args([
            "launch",
            "bubblewrap",
            project.to_str().unwrap(),
            "--shell",
            "--",
            "sh",
            "-c",
            script,
        ])
        .spawn_guarded();
    wait_for("the instance", Duration::from_secs(10), || {
        project.join("up").exists()
    });
    child
}

#[test]
fn enter_opens_a_shell_inside_the_running_instance() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("enter-me");
    let _first = start_instance(
        &world,
        &project,
        "echo inside > /tmp/marker; touch up; exec sleep 600",
    );
    let mut enter = world
        .command()
        .args(["launch", "bubblewrap", project.to_str().unwrap(), "--enter"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_guarded();
    use std::io::Write;
    enter
        .stdin
        .take()
        .unwrap()
        .write_all(b"pwd; cat /tmp/marker; hostname; grep -c . /proc/1/status >/dev/null && echo ok; grep Seccomp: /proc/self/status; echo $CLAUDE_SANDBOX\n")
        .unwrap();
    let out = enter.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        project.to_str().unwrap(),
        "cd into the project: {stdout}"
    );
    assert_eq!(lines[1], "inside", "the instance's own /tmp: {stdout}");
    assert_eq!(
        lines[2], "enter-me",
        "the instance's uts namespace: {stdout}"
    );
    assert!(
        stdout.contains("Seccomp:\t2"),
        "the same filter applies: {stdout}"
    );
    assert!(
        stdout.contains("\n1\n"),
        "the instance's environment: {stdout}"
    );
    assert_eq!(world.list().len(), 1, "entering registers nothing");
}

/// `--enter -- CMD` runs CMD inside (it used to run a shell that read nothing and printed
/// nothing), with or without `--shell`, and passes on its output and exit status.
#[test]
fn enter_with_a_command_runs_it_and_prints_its_output() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("enter-cmd");
    let _first = start_instance(
        &world,
        &project,
        "echo inside > /tmp/marker; touch up; exec sleep 600",
    );
    for shell in [&[][..], &["--shell"][..]] {
        let out = world
            .command()
            .args(["launch", "bubblewrap", project.to_str().unwrap(), "--enter"])
            .args(shell)
            .args(["--", "sh", "-c", "cat /tmp/marker; pwd; exit 3"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout,
            format!("inside\n{}\n", project.display()),
            "{shell:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "{shell:?}: the command's status"
        );
    }
}

/// On a terminal, the entered shell is interactive with job control: it gets the terminal's
/// foreground (else bash stops itself with SIGTTIN and the user waits forever), and the
/// caller gets it back afterwards.
#[test]
fn enter_on_a_terminal_gives_an_interactive_shell() {
    if !prerequisites(&["bwrap", "script", "timeout"]) {
        return;
    }
    let world = World::new();
    let project = world.project("enter-tty");
    let _first = start_instance(&world, &project, "touch up; exec sleep 600");
    let template = world.command();
    let mut on_a_tty = std::process::Command::new("timeout");
    on_a_tty.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            on_a_tty.env(k, v);
        }
    }
    // The enter runs in the pty's foreground; after it, the same shell reads the terminal.
    let shell = "\"$SD_BIN\" launch bubblewrap \"$SD_PROJECT\" --enter; \
         echo \"after=$(ps -o stat= -p $$)\"; read -r line; echo \"read=$line\"";
    let out = on_a_tty
        .env("SD_BIN", BIN)
        .env("SD_PROJECT", &project)
        .args(["20", "script", "-qec", shell, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn_guarded();
    use std::io::Write;
    let mut child = out;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"echo \"jobs=$(set -o | grep -c 'monitor.*on')\"; test -t 0 && echo tty=yes; exit\n",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stdin.write_all(b"back\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "timed out or failed: {text}");
    assert!(
        text.contains("jobs=1"),
        "an interactive shell with job control: {text}"
    );
    assert!(text.contains("tty=yes"), "{text}");
    assert!(
        text.contains("after=Ss+"),
        "the caller's shell is in the foreground: {text}"
    );
    assert!(
        text.contains("read=back"),
        "the caller reads its terminal again: {text}"
    );
}

/// Ctrl-Z in an entered command or a hand-launched sandbox stops the whole job as the user's
/// shell sees it (prompt back, `jobs` lists it), and `fg` resumes it with the terminal. Both
/// lead a process group of their own, so this is relayed, not automatic.
#[test]
fn ctrl_z_and_fg_work_on_entered_and_launched_commands() {
    if !prerequisites(&["bwrap", "python3", "bash"]) {
        return;
    }
    let world = World::new();
    let project = world.project("enter-jobs");
    let _first = start_instance(&world, &project, "touch up; exec sleep 600");
    // An interactive bash on a pty, driven key by key.
    const DRIVER: &str = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
out = b""
def read(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
def send(text):
    os.write(fd, text.encode())
read(0.5)
send(f"'{sys.argv[1]}' launch bubblewrap '{sys.argv[2]}' {sys.argv[3]} --shell -- sh -c 'echo started; sleep 2; echo resumed'\n")
read(1.5)
send("\x1a")
read(1)
send("jobs; echo prompt=back\n")
read(1)
send("fg\n")
read(3.5)
send("echo status=$?; exit\n")
read(1)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
"#;
    let template = world.command();
    let mut driver = std::process::Command::new("python3");
    driver.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            driver.env(k, v);
        }
    }
    // An entered command, and a hand-launched sandbox: both lead a process group of their
    // own, apart from the job the user's shell controls.
    for mode in ["--enter", "--new"] {
        let out = driver
            .env("PS1", "$ ")
            .env("TERM", "xterm")
            .args(["-c", DRIVER, BIN, project.to_str().unwrap(), mode])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("started"), "{mode}: {text}");
        assert!(
            text.contains("Stopped"),
            "{mode}: the shell saw the job stop: {text}"
        );
        assert!(text.contains("prompt=back"), "{mode}: {text}");
        let resumed = text.find("\nresumed\n").expect("resumed after fg");
        assert!(
            resumed > text.find("prompt=back").unwrap(),
            "{mode}: {text}"
        );
        assert!(text.contains("status=0"), "{mode}: {text}");
    }
}

#[test]
fn a_second_launch_joins_and_new_starts_a_fresh_instance() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("joinable");
    let _first = start_instance(
        &world,
        &project,
        "echo first > /tmp/who; touch up; exec sleep 600",
    );
    let joined = succeed(world.command().args([
        "launch",
        "bubblewrap",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "cat",
        "/tmp/who",
    ]));
    assert_eq!(String::from_utf8_lossy(&joined.stdout).trim(), "first");
    assert!(String::from_utf8_lossy(&joined.stderr).contains("joining"));
    let fresh = world
        .command()
        .args([
            "launch",
            "bubblewrap",
            project.to_str().unwrap(),
            "--new",
            "--shell",
            "--",
            "sh",
            "-c",
            "ls /proc | grep -c '^[0-9]'",
        ])
        .output()
        .unwrap();
    assert!(fresh.status.success());
    let procs: u32 = String::from_utf8_lossy(&fresh.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        procs <= 4,
        "a fresh pid namespace sees only its own processes, saw {procs}"
    );
    assert_eq!(
        world.list().len(),
        1,
        "the fresh one has unregistered, the first remains"
    );
}

#[test]
fn stop_ends_the_whole_tree_of_the_running_instance() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("stoppable");
    let mut first = start_instance(&world, &project, "sleep 600 & sleep 600 & touch up; wait");
    let tree = descendants(first.id());
    assert!(
        tree.len() >= 4,
        "bwrap, its init, sh and two sleeps: {tree:?}"
    );
    succeed(
        world
            .command()
            .args(["launch", "bubblewrap", project.to_str().unwrap(), "--stop"]),
    );
    first.wait().unwrap();
    for pid in &tree {
        assert!(!is_running(*pid), "{pid} survived --stop");
    }
    assert!(world.list().is_empty());
    let (kind, _) =
        world.error_kind(&["launch", "bubblewrap", project.to_str().unwrap(), "--stop"]);
    assert_eq!(kind, "not_found", "nothing left to stop");
}

/// CI runs as root, where bwrap takes another path (it creates the namespaces with root's
/// rights). Users run it unprivileged: this runs launch, join and enter as `nobody`.
#[test]
fn an_unprivileged_user_can_launch_join_and_enter() {
    if !prerequisites(&["bwrap", "setpriv"]) {
        return;
    }
    if !common::can_drop_to_nobody() {
        return;
    }
    let world = World::new();
    let project = world.project("unpriv");
    let as_nobody = world.as_nobody();
    let _first = as_nobody(&[
        "launch",
        "bubblewrap",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "echo hi > /tmp/m; touch up; exec sleep 600",
    ])
    .spawn_guarded();
    wait_for("the unprivileged instance", Duration::from_secs(10), || {
        project.join("up").exists()
    });
    let joined = as_nobody(&[
        "launch",
        "bubblewrap",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "cat /tmp/m; id -u; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status",
    ])
    .output()
    .unwrap();
    let out = String::from_utf8_lossy(&joined.stdout);
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    assert!(out.starts_with("hi\n65534\n"), "{out}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{set}:\t0000000000000000")),
            "no capabilities after joining ({set}): {out}"
        );
    }
}

#[test]
fn per_project_state_persists_outside_the_project_and_home() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("stateful");
    let run = |script: &str| {
        let out = succeed(world.command().args([
            "launch",
            "bubblewrap",
            "--new",
            project.to_str().unwrap(),
            "--shell",
            "--",
            "sh",
            "-c",
            script,
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(
        "mkdir -p ~/.local/bin && echo tool > ~/.local/bin/t && echo tmp > /tmp/kept && echo scratch > ~/scratch",
    );
    let second = run("cat ~/.local/bin/t /tmp/kept; ls ~/scratch 2>&1 || true");
    assert!(second.starts_with("tool\ntmp\n"), "{second}");
    assert!(
        second.contains("No such file"),
        "the rest of home is fresh each time: {second}"
    );
    // None of it is in the project or the real home; it lives under the state dir.
    assert!(!project.join(".local").exists());
    assert!(!world.home.join(".local/bin/t").exists());
    let projects = world.path("state/sandbox-deck/projects");
    let dirs: Vec<_> = std::fs::read_dir(&projects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1);
    assert!(
        dirs[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("stateful-")
    );
    assert_eq!(
        read(&dirs[0].join("path")).trim(),
        project.to_str().unwrap()
    );
    // A state dir that records another project is never reused.
    std::fs::write(dirs[0].join("path"), "/somewhere/else\n").unwrap();
    let out = world
        .command()
        .args([
            "--json",
            "launch",
            "bubblewrap",
            "--new",
            project.to_str().unwrap(),
            "--shell",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to"));
}

/// A state dir named by the earlier suffix (12 hex digits of SHA-256 of the project's path,
/// computed here with coreutils) keeps its content: the next launch uses it as it is,
/// the sandbox sees what was in it, and the dir stays where it is.
#[test]
fn a_project_state_dir_of_the_earlier_naming_is_kept() {
    if !prerequisites(&["bwrap", "sha256sum"]) {
        return;
    }
    let world = World::new();
    let project = world.project("legacy");
    let path_text = project.to_str().unwrap();
    let mut hash = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut hash.stdin.take().unwrap(), path_text.as_bytes()).unwrap();
    let digest = String::from_utf8(hash.wait_with_output().unwrap().stdout).unwrap();
    let projects = world.path("state/sandbox-deck/projects");
    let old = projects.join(format!("legacy-{}", &digest[..12]));
    std::fs::create_dir_all(old.join("local/bin")).unwrap();
    std::fs::write(old.join("path"), format!("{path_text}\n")).unwrap();
    std::fs::write(old.join("local/bin/t"), "from before\n").unwrap();
    let out = succeed(world.command().args([
        "launch",
        "bubblewrap",
        "--new",
        path_text,
        "--shell",
        "--",
        "sh",
        "-c",
        "cat ~/.local/bin/t",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from before\n");
    let dirs: Vec<_> = std::fs::read_dir(&projects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(dirs[0], old, "used where it is");
    assert_eq!(read(&dirs[0].join("path")).trim(), path_text);
}

#[test]
fn a_profile_forces_its_chromium_extensions_by_policy() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    let world = World::new();
    let project = world.project("policy");
    let extension = "a".repeat(32);
    let profile = serde_json::json!({
        "name": "test",
        "path": ["/usr/bin", "/bin"],
        "ro_paths": ["/usr", "/bin", "/lib", "/lib64"],
        "etc": ["passwd", "group"],
        "env": { "PROFILE_MARK": "from-profile" },
        "chromium_extensions": [extension],
        "notice": "test notice"
    });
    let file = world.path("profile.json");
    std::fs::write(&file, profile.to_string()).unwrap();
    let out = world
        .command()
        .args(["launch", "bubblewrap", "--new", project.to_str().unwrap(), "--profile", file.to_str().unwrap()])
        .args(["--shell", "--", "sh", "-c", "cat /etc/chromium/policies/managed/sandbox-deck.json; echo; echo $PROFILE_MARK; ls /etc"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let policy: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert!(
        policy["ExtensionInstallForcelist"][0]
            .as_str()
            .unwrap()
            .starts_with(&extension)
    );
    assert!(stdout.contains("from-profile"));
    let etc: Vec<&str> = stdout.lines().skip(3).collect();
    assert!(
        etc.contains(&"passwd") && !etc.contains(&"shadow") && !etc.contains(&"hosts"),
        "{etc:?}"
    );
    // A profile that widens the sandbox is refused before anything runs.
    let bad = serde_json::json!({ "name": "bad", "path": [], "ro_paths": ["/"], "etc": [] });
    std::fs::write(&file, bad.to_string()).unwrap();
    let (kind, _) = world.error_kind(&[
        "launch",
        "bubblewrap",
        "--new",
        project.to_str().unwrap(),
        "--profile",
        file.to_str().unwrap(),
        "--shell",
        "--",
        "true",
    ]);
    assert_eq!(kind, "profile");
}

#[test]
fn display_host_is_an_opt_in() {
    if !prerequisites(&["bwrap", "Xvfb", "xdpyinfo"]) {
        return;
    }
    let mut world = World::new();
    let project = world.project("desk");
    // A stand-in for the desktop's X server, with its own cookie.
    let auth = world.path("host.Xauthority");
    sandbox_deck::host::xvfb::write_cookie(&auth).unwrap();
    let spec = sandbox_deck::host::xvfb::XvfbSpec {
        first_display: 300,
        width: 640,
        height: 480,
        depth: 24,
        auth_file: auth.clone(),
        log_file: world.path("host-x.log"),
    };
    let mut server = sandbox_deck::host::xvfb::start(std::path::Path::new("Xvfb"), &spec).unwrap();
    world
        .env
        .push(("DISPLAY".into(), format!(":{}", server.number)));
    world
        .env
        .push(("XAUTHORITY".into(), auth.display().to_string()));
    let probe = "xdpyinfo >/dev/null 2>&1 && echo reachable || echo unreachable";
    let run = |extra: &[&str]| {
        let out = succeed(
            world
                .command()
                .args(["launch", "bubblewrap", "--new", project.to_str().unwrap()])
                .args(extra)
                .args(["--shell", "--", "sh", "-c", probe]),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(run(&[]), "unreachable", "no host display by default");
    assert_eq!(run(&["--display", "host"]), "reachable");
    server.process.terminate(Duration::from_secs(2));
    let _ = server.child.wait();
}

/// Where the real per-user Claude is installed, as users have it.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `npm install -g` with a user prefix: `~/.npm-global/bin/claude` → `../lib/node_modules/…`.
    NpmPrefix,
    /// The native installer: `~/.local/bin/claude` → `~/.local/share/claude/versions/<v>`.
    Native,
    /// nvm: `~/.nvm/versions/node/<v>/bin/claude` → the package's `#!/usr/bin/env node`
    /// launcher, run by the node beside it (the host's node, hard-linked there).
    Nvm,
}

/// Installs the real claude in `layout` under the world's home and puts it first on PATH.
/// Returns its version.
fn install_claude(world: &mut World, layout: Layout) -> Option<String> {
    let npm = world.install_real_claude()?;
    let package = npm
        .canonicalize()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&package.join("package.json"))).unwrap();
    let version = manifest["version"].as_str().unwrap().to_owned();
    if let Layout::Nvm = layout {
        let node = which("node")?;
        let root = world.home.join(".nvm/versions/node/v22.0.0");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let lib = world.home.join(".npm-global/lib");
        std::fs::rename(&lib, root.join("lib")).unwrap();
        std::fs::hard_link(node.canonicalize().unwrap(), root.join("bin/node"))
            .or_else(|_| std::fs::copy(&node, root.join("bin/node")).map(|_| ()))
            .unwrap();
        // npm makes a bin target executable; this one is a hard link to the prepared copy,
        // so it is replaced by an executable copy rather than changed.
        let launcher = root.join("lib/node_modules/@anthropic-ai/claude-code/cli-wrapper.cjs");
        let text = std::fs::read(&launcher).unwrap();
        std::fs::remove_file(&launcher).unwrap();
        std::fs::write(&launcher, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(
            "../lib/node_modules/@anthropic-ai/claude-code/cli-wrapper.cjs",
            root.join("bin/claude"),
        )
        .unwrap();
        std::fs::remove_dir_all(world.home.join(".npm-global")).unwrap();
        put_first_on_path(world, &root.join("bin"));
    }
    if let Layout::Native = layout {
        let binary = npm.canonicalize().unwrap();
        let version = world.home.join(".local/share/claude/versions/2.1.197");
        std::fs::create_dir_all(version.parent().unwrap()).unwrap();
        std::fs::hard_link(&binary, &version)
            .or_else(|_| std::fs::copy(&binary, &version).map(|_| ()))
            .unwrap();
        let bin = world.home.join(".local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(&version, bin.join("claude")).unwrap();
        std::fs::remove_dir_all(world.home.join(".npm-global")).unwrap();
        put_first_on_path(world, &bin);
    }
    Some(version)
}

fn put_first_on_path(world: &mut World, dir: &std::path::Path) {
    let path = std::env::var("PATH").unwrap_or_default();
    world.env.retain(|(k, _)| k != "PATH");
    world
        .env
        .push(("PATH".into(), format!("{}:{path}", dir.display())));
}

fn pane(world: &World, session: &str) -> String {
    let out = world.tmux(&["capture-pane", "-p", "-t", &format!("={session}:")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Moves the trust dialog's cursor to "Yes, I trust this folder" (its place in the menu
/// varies) and confirms, until the main screen shows.
fn accept_trust(world: &World, session: &str, layout: Layout) {
    let target = format!("={session}:");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let screen = pane(world, session);
        if screen.contains("for shortcuts") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{layout:?}: the trust dialog was not accepted:\n{screen}"
        );
        let on_yes = screen
            .lines()
            .any(|l| l.contains('❯') && l.contains("Yes, I trust"));
        let key = if on_yes { "Enter" } else { "Down" };
        world.tmux(&["send-keys", "-t", &target, key]);
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// Waits until the pane shows `needle`, and shows the pane when it never does.
fn wait_for_screen(world: &World, session: &str, layout: Layout, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let screen = pane(world, session);
        if screen.contains(needle) {
            return screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{layout:?}: no {needle:?} on the screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The real Claude Code, installed per user, starts in a managed sandbox (its install bound
/// after the fresh home), shows its first screen, and writes its transcript where the host
/// keeps this project's: `~/.claude/projects/<encoded project>/`.
#[test]
fn the_real_claude_runs_from_a_per_user_install_and_its_transcript_lands_on_the_host() {
    if !prerequisites(&["bwrap", "tmux", "Xvfb"]) {
        return;
    }
    for layout in [Layout::NpmPrefix, Layout::Native, Layout::Nvm] {
        let mut world = World::new();
        let Some(version) = install_claude(&mut world, layout) else {
            return;
        };
        std::fs::write(
            world.home.join(".claude.json"),
            r#"{"hasCompletedOnboarding": true, "theme": "dark"}"#,
        )
        .unwrap();
        // Preferences a user has, bound read-only: Claude must still start with them.
        for dir in ["plugins", "skills", "hooks", "commands"] {
            std::fs::create_dir_all(world.home.join(".claude").join(dir)).unwrap();
        }
        std::fs::write(world.home.join(".claude/settings.json"), "{}\n").unwrap();
        let project = world.project("real-claude");
        let record = world.json(&["create", project.to_str().unwrap()]);
        let session = record["tmux_session"].as_str().expect("a tmux session");
        let screen = wait_for_screen(&world, session, layout, "trust this folder");
        assert!(!screen.contains("No such file"), "{layout:?}: {screen}");
        accept_trust(&world, session, layout);
        // The per-user install ran, not one the host may have elsewhere on PATH.
        wait_for_screen(&world, session, layout, &format!("Claude Code v{version}"));
        let words = "hello from the sandbox";
        world.tmux(&["send-keys", "-t", &format!("={session}:"), "-l", words]);
        std::thread::sleep(Duration::from_millis(300));
        world.tmux(&["send-keys", "-t", &format!("={session}:"), "Enter"]);
        let transcripts = world
            .home
            .join(".claude/projects")
            .join(sandbox_deck::usage::encode_project_dir(&project));
        wait_for(
            "the transcript on the host",
            Duration::from_secs(30),
            || {
                std::fs::read_dir(&transcripts)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|e| read(&e.path()).contains(words))
            },
        );
        // The session's other state stayed in the sandbox's own ~/.claude.
        assert!(
            !world.home.join(".claude/history.jsonl").exists(),
            "{layout:?}: the prompt history reached the host's ~/.claude"
        );
        let pane_text = pane(&world, session);
        assert!(
            !pane_text.contains("missing or broken"),
            "{layout:?}: {pane_text}"
        );
    }
}

#[test]
fn doctor_shows_what_of_the_agents_install_a_sandbox_gets() {
    let mut world = World::new();
    if install_claude(&mut world, Layout::Native).is_none() {
        return;
    }
    let out = world.run(&["--json", "doctor"]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor's JSON");
    let claude = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "claude")
        .expect("a claude check");
    let detail = claude["detail"].as_str().unwrap();
    let versions = world.home.join(".local/share/claude/versions");
    assert!(
        detail.contains(&format!(
            "mounts {} at /run/sandbox-deck/agent/0 (read-only)",
            versions.display()
        )),
        "{detail}"
    );
    assert!(
        detail.contains("runs /run/sandbox-deck/bin/claude"),
        "{detail}"
    );
}

/// The real claude inside reads the host's login through the one bound file: `claude auth
/// status` says logged in with the host's credentials, and not logged in without them.
#[test]
fn the_real_claude_inside_logs_in_with_the_hosts_credentials_file() {
    if !prerequisites(&["bwrap"]) {
        return;
    }
    for logged_in_on_host in [true, false] {
        let mut world = World::new();
        if install_claude(&mut world, Layout::NpmPrefix).is_none() {
            return;
        }
        std::fs::create_dir_all(world.home.join(".claude")).unwrap();
        if logged_in_on_host {
            std::fs::write(
                world.home.join(".claude/.credentials.json"),
                r#"{"claudeAiOauth": {"accessToken": "sk-ant-oat01-test", "refreshToken": "sk-ant-ort01-test",
                    "expiresAt": 4102444800000, "scopes": ["user:inference"], "subscriptionType": "max"}}"#,
            )
            .unwrap();
        }
        let project = world.project("login");
        let out = world
            .command()
            .args(["launch", "bubblewrap", "--new", project.to_str().unwrap()])
            .args(["--", "auth", "status"])
            .output()
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(status["loggedIn"], logged_in_on_host, "{status}");
    }
}
