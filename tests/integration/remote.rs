//! `--host` through a real OpenSSH server: each "host" is a world of its own (HOME, XDG
//! dirs, registry, engine) behind its own `sshd`, the "laptop" another world whose
//! `mirror.ssh_command` is `ssh -F` with the test's client config. Every subcommand's
//! output, `--json` and exit status are compared with the same command run on the host;
//! hosts that cannot answer are explained, never waited on forever.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::sshd::{RemoteDeck, SshClient, Sshd};
use crate::common::{BIN, World, prerequisites, wait_for};

const TOOLS: &[&str] = &["tmux", "Xvfb", "bwrap"];

/// A host: its world and its server (the server, and the engine its sessions started,
/// end first).
struct Host {
    sshd: Sshd,
    world: World,
}

fn host(alias: &str, deck: RemoteDeck) -> Option<Host> {
    let world = World::new();
    let sshd = Sshd::start(&world, alias, deck)?;
    Some(Host { sshd, world })
}

/// The laptop: a world whose ssh reaches `hosts`, connecting for at most `timeout_secs`.
fn laptop(hosts: &[&Host], timeout_secs: u64) -> (World, SshClient) {
    let world = World::new();
    let servers: Vec<&Sshd> = hosts.iter().map(|h| &h.sshd).collect();
    let ssh = SshClient::new(&world, &servers);
    ssh.configure(&world);
    let config = world.path("config/sandbox-deck/config.toml");
    let mut text = crate::common::read(&config);
    text = text.replace(
        "[mirror]\n",
        &format!("[mirror]\nconnect_timeout_secs = {timeout_secs}\n"),
    );
    std::fs::write(&config, text).unwrap();
    (world, ssh)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `args` on the laptop with `--host ALIAS` after the subcommand (the first word
/// that is no flag).
fn there(laptop: &World, alias: &str, args: &[&str]) -> Output {
    let at = args
        .iter()
        .position(|a| !a.starts_with("--"))
        .expect("a subcommand")
        + 1;
    let mut full = args.to_vec();
    full.splice(at..at, ["--host", alias]);
    laptop.run(&full)
}

/// The same command on the laptop through `--host` and on the host itself: same exit
/// status, same stdout (JSON compared as values, `host` fields aside). Returns the JSON
/// (or Null for text).
fn same_there_and_here(laptop: &World, host: &Host, args: &[&str]) -> Value {
    let remote = there(laptop, &host.sshd.alias, args);
    let local = host.world.run(args);
    assert_eq!(
        remote.status.code(),
        local.status.code(),
        "{args:?}: exit status\nthere: {}\nhere: {}",
        stderr(&remote),
        stderr(&local)
    );
    if !local.status.success() {
        if args.contains(&"--json") {
            let kind = |out: &Output| -> Value {
                serde_json::from_slice::<Value>(&out.stderr).expect("a JSON error")["error"]["kind"]
                    .clone()
            };
            assert_eq!(kind(&remote), kind(&local), "{args:?}: the error kind");
        }
        return Value::Null;
    }
    if args.contains(&"--json") {
        let parse = |out: &Output| -> Value {
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout))
            })
        };
        let mut remote_json = parse(&remote);
        if let Some(items) = remote_json.as_array_mut() {
            for item in items {
                assert_eq!(item["host"], host.sshd.alias.as_str(), "{args:?}");
                item.as_object_mut().unwrap().remove("host");
            }
        }
        let local_json = parse(&local);
        assert_eq!(remote_json, local_json, "{args:?}");
        return local_json;
    }
    assert_eq!(
        without_uptimes(&remote.stdout),
        without_uptimes(&local.stdout),
        "{args:?}"
    );
    Value::Null
}

/// Text with durations (`0s`, `12m`) masked: the two commands ran a moment apart.
fn without_uptimes(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .split(' ')
        .map(|word| {
            let digits = word.trim_end_matches(['s', 'm', 'h', 'd']);
            let is_duration = !digits.is_empty()
                && digits.len() < word.len()
                && digits.chars().all(|c| c.is_ascii_digit());
            if is_duration { "T" } else { word }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_session_of_the_test_sshd_lives_in_its_hosts_world() {
    let Some(host) = host("deck-a", RemoteDeck::Real) else {
        return;
    };
    let (laptop, ssh) = laptop(&[&host], 20);
    std::fs::write(host.world.home.join("marker"), "host-a").unwrap();
    let out = ssh.run("deck-a", &["cat \"$HOME/marker\""]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host-a");
    let out = ssh.run("deck-a", &["sandbox-deck", "--version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(laptop);
}

#[test]
fn every_subcommand_with_host_answers_as_it_does_on_the_host() {
    if !prerequisites(TOOLS) {
        return;
    }
    let Some(host) = host("deck-a", RemoteDeck::Real) else {
        return;
    };
    let (laptop, _ssh) = laptop(&[&host], 30);
    let project = host.world.project("api");
    let dir = project.to_str().unwrap();

    let created = laptop.json(&[
        "create",
        "--host",
        "deck-a",
        dir,
        "--name",
        "api",
        "--shell",
        "--",
        "sh",
        "-c",
        "echo remote-marker; exec sleep 600",
    ]);
    assert_eq!(created["name"], "api");
    assert_eq!(created["state"], "running");
    assert_eq!(
        host.world.show("api")["id"],
        created["id"],
        "made on the host"
    );
    assert!(laptop.list().is_empty(), "nothing made on the laptop");

    for args in [
        &["--json", "list"][..],
        &["list"],
        &["--json", "show", "api"],
        &["show", "api"],
        &["--json", "status"],
        &["status", "api"],
        &["--json", "usage"],
        &["--json", "usage", "--by", "day"],
        &["--json", "show", "nope"],
        &["--json", "stop", "NOPE"],
        &["--json", "status", "nope"],
    ] {
        same_there_and_here(&laptop, &host, args);
    }

    let stopped = laptop.json(&["stop", "--host", "deck-a", "api"]);
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(host.world.show("api"), stopped);
    let started = laptop.json(&["start", "--host", "deck-a", "api"]);
    assert_eq!(started["state"], "running");
    let restarted = laptop.json(&["restart", "--host", "deck-a", "api"]);
    assert_eq!(restarted["state"], "running");
    assert_eq!(restarted["id"], created["id"]);
    same_there_and_here(&laptop, &host, &["--json", "show", "api"]);

    // The PNG is written on the laptop, at the display's size.
    let png = laptop.path("api.png");
    let shot = laptop.json(&[
        "screenshot",
        "--host",
        "deck-a",
        "api",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert_eq!(shot["name"], "api");
    assert_eq!(shot["path"], png.to_str().unwrap());
    assert!(shot["width"].as_u64().unwrap() >= 64, "{shot}");
    let bytes = std::fs::read(&png).expect("the PNG on the laptop");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    let metrics = laptop.json(&["status", "--host", "deck-a", "--metrics", "api"]);
    assert!(metrics["host"]["cores"].as_u64().unwrap() >= 1, "{metrics}");
    assert!(metrics["sandboxes"][0]["metrics"].is_object(), "{metrics}");

    let web = host.world.project("web");
    let offline = laptop.json(&[
        "create",
        "--host",
        "deck-a",
        web.to_str().unwrap(),
        "--shell",
        "--no-network",
        "--",
        "sleep",
        "600",
    ]);
    assert_eq!(
        offline["network"], "none",
        "the flags reach the host: {offline}"
    );
    let purged = laptop.json(&["rm", "--host", "deck-a", "--force", "--purge", "web"]);
    assert_eq!(purged["purge"]["result"], "removed", "{purged}");
    let state = Path::new(purged["purge"]["dir"].as_str().unwrap());
    assert!(
        state.starts_with(host.world.path("state")),
        "the host's state: {purged}"
    );
    assert!(!state.exists(), "{purged}");

    let removed = laptop.json(&["rm", "--host", "deck-a", "--force", "api"]);
    assert_eq!(removed["id"], created["id"]);
    assert_eq!(removed["purge"]["result"], "not_asked");
    assert!(host.world.list().is_empty(), "removed on the host");
}

#[test]
fn list_of_two_hosts_is_one_table_with_a_host_column_and_host_fields() {
    if !prerequisites(TOOLS) {
        return;
    }
    let (Some(a), Some(b)) = (
        host("deck-a", RemoteDeck::Real),
        host("deck-b", RemoteDeck::Real),
    ) else {
        return;
    };
    let (laptop, _ssh) = laptop(&[&a, &b], 30);
    a.world.create_idle("alpha");
    b.world.create_idle("beta");
    b.world.create_idle("gamma");
    let merged = laptop.json(&["list", "--host", "deck-a", "--host", "deck-b"]);
    let rows: Vec<(String, String)> = merged
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().into(),
                r["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pair = |h: &str, n: &str| (h.to_owned(), n.to_owned());
    assert_eq!(
        rows,
        [
            pair("deck-a", "alpha"),
            pair("deck-b", "beta"),
            pair("deck-b", "gamma")
        ]
    );
    // Each record is the host's own, apart from `host`.
    let mut beta = merged[1].clone();
    beta.as_object_mut().unwrap().remove("host");
    assert_eq!(beta, b.world.show("beta"));

    let table = laptop.run(&["list", "--host", "deck-a", "--host", "deck-b"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("HOST"), "{text}");
    assert!(
        lines[1].starts_with("deck-a") && lines[1].contains("alpha"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("deck-b") && lines[3].contains("gamma"),
        "{text}"
    );

    // One host gone: the other's rows are still printed, and the status says it failed.
    let mut a = a;
    a.sshd.stop();
    let partial = laptop.run(&["--json", "list", "--host", "deck-a", "--host", "deck-b"]);
    assert_eq!(partial.status.code(), Some(1), "{}", stderr(&partial));
    let listed: Value = serde_json::from_slice(&partial.stdout).expect("the reachable host's list");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let error: Value = serde_json::from_slice(&partial.stderr).expect("a JSON error");
    assert_eq!(error["error"]["kind"], "remote");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("deck-a: "),
        "{error}"
    );
}

/// Runs `args` on the laptop, expecting a failure within `bound` (never a hang), and
/// returns the `--json` error's kind and message.
fn fails_quickly(laptop: &World, args: &[&str], bound: Duration) -> (String, String) {
    let started = Instant::now();
    let (kind, message) = laptop.error_kind(args);
    assert!(
        started.elapsed() < bound,
        "{args:?} took {:?}: {message}",
        started.elapsed()
    );
    (kind, message)
}

/// A stand-in `sandbox-deck` that answers the websocket handshake and greets as an engine
/// of protocol version 0 would.
const OLD_ENGINE: &str = r#"#!/usr/bin/python3
import base64, hashlib, json, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
head = b""
while not head.endswith(b"\r\n\r\n"):
    c = inp.read(1)
    if not c:
        sys.exit(1)
    head += c
key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
       if l.lower().startswith(b"sec-websocket-key:")][0]
accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
out.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
hello = json.dumps({"type": "hello", "protocol": 0, "capabilities": [], "engine": "0.0.1",
                    "connection": 1}).encode()
out.write(bytes([0x81, len(hello)]) + hello)
out.flush()
inp.read()
"#;

#[test]
fn hosts_that_cannot_answer_are_explained_and_never_waited_on_forever() {
    if !prerequisites(&["python3"]) {
        return;
    }
    let Some(mut gone) = host("gone", RemoteDeck::Real) else {
        return;
    };
    let bare = host("bare", RemoteDeck::Missing).unwrap();
    let old = host("old", RemoteDeck::StandIn(OLD_ENGINE.into())).unwrap();
    // A login banner where the API should be: once with a blank line (a bad HTTP answer at
    // once), once without (the handshake waits for the rest until the timeout).
    let banner = host(
        "banner",
        RemoteDeck::StandIn(
            "#!/bin/sh\nprintf 'Welcome to \\033[1mbox\\033[0m\\r\\n\\r\\n'\nexec sleep 60\n"
                .into(),
        ),
    )
    .unwrap();
    let mute = host(
        "mute",
        RemoteDeck::StandIn("#!/bin/sh\nprintf 'Welcome'\nexec sleep 60\n".into()),
    )
    .unwrap();
    let (laptop, _ssh) = laptop(&[&gone, &bare, &old, &banner, &mute], 4);
    gone.sshd.stop();
    let bound = Duration::from_secs(15);

    let (kind, message) = fails_quickly(&laptop, &["list", "--host", "gone"], bound);
    assert_eq!(kind, "remote");
    assert!(
        message.starts_with("gone: ssh could not connect"),
        "{message}"
    );
    assert!(
        message.contains("Connection refused"),
        "ssh's own words: {message}"
    );

    // The mirror says the same before it takes the screen.
    let started = Instant::now();
    let out = laptop.run(&["mirror", "gone"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gone: ssh could not connect"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < bound);
    let out = laptop.run(&["mirror", "old"]);
    assert!(
        stderr(&out).contains("protocol version 0"),
        "{}",
        stderr(&out)
    );
    // Several hosts are checked before the screen is taken too (each host's connection is
    // then the fleet's: see `fleet`).
    let (kind, message) = laptop.error_kind(&["mirror", "old", "old"]);
    assert_eq!(kind, "invalid_argument", "{message}");
    assert!(message.contains("given twice"), "{message}");

    let (kind, message) = fails_quickly(&laptop, &["show", "--host", "bare", "api"], bound);
    assert_eq!(kind, "remote");
    assert!(
        message.contains("sandbox-deck is not installed there"),
        "{message}"
    );

    let (kind, message) = fails_quickly(&laptop, &["list", "--host", "old"], bound);
    assert_eq!(kind, "protocol_version");
    assert!(
        message.contains("protocol version 0") && message.contains("speaks 1"),
        "both versions named: {message}"
    );

    for alias in ["banner", "mute"] {
        let (kind, message) = fails_quickly(&laptop, &["status", "--host", alias], bound);
        assert_eq!(kind, "remote", "{alias}");
        assert!(
            message.contains("not the sandbox-deck API") && message.contains("Welcome"),
            "{alias}: {message}"
        );
        assert!(!message.contains('\u{1b}'), "printable: {message}");
    }

    // Bad input on our side fails before ssh runs.
    let (kind, message) = laptop.error_kind(&["list", "--host", "old", "--ssh", "ssh 'open"]);
    assert_eq!(kind, "invalid_argument", "{message}");
    let out = laptop.run(&["list", "--host=-oProxyCommand=touch /tmp/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("starts with '-'"), "{}", stderr(&out));
    let (kind, message) = laptop.error_kind(&["create", "--host", "old", "relative/dir"]);
    assert_eq!(kind, "invalid_project_dir", "{message}");
    let (kind, message) =
        laptop.error_kind(&["create", "--host", "old", "/srv/api", "--profile", "p.json"]);
    assert_eq!(kind, "invalid_argument", "{message}");
    assert!(message.contains("--profile"), "{message}");
}

#[test]
fn attach_with_host_puts_this_terminal_on_the_remote_session_and_c_q_comes_back() {
    if !prerequisites(TOOLS) {
        return;
    }
    let Some(host) = host("deck-a", RemoteDeck::Real) else {
        return;
    };
    let (laptop, ssh) = laptop(&[&host], 30);
    let project = host.world.project("term");
    host.world.json(&[
        "create",
        project.to_str().unwrap(),
        "--shell",
        "--",
        "sh",
        "-c",
        "echo remote-attached-marker; exec sleep 600",
    ]);
    // The laptop's terminal: a tmux of its own runs `attach --host` and then says how it
    // ended.
    let outer = laptop.path("outer.sock");
    let outer_tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-S")
            .arg(&outer)
            .args(args)
            .output()
            .unwrap()
    };
    let script = format!(
        "env -u TMUX HOME={home} XDG_CONFIG_HOME={config} XDG_STATE_HOME={state} \
         XDG_RUNTIME_DIR={run} {BIN} attach --host deck-a --ssh '{ssh}' term; \
         echo attach-ended-$?; exec sleep 600",
        home = laptop.home.display(),
        config = laptop.path("config").display(),
        state = laptop.path("state").display(),
        run = laptop.runtime.display(),
        ssh = ssh.command_line(),
    );
    let started = outer_tmux(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "30",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let screen =
        || String::from_utf8_lossy(&outer_tmux(&["capture-pane", "-p"]).stdout).into_owned();
    wait_for(
        "the remote session on screen",
        Duration::from_secs(20),
        || screen().contains("remote-attached-marker"),
    );
    assert!(screen().contains("sandbox term"), "{}", screen());
    outer_tmux(&["send-keys", "C-q"]);
    wait_for("the attach to end", Duration::from_secs(20), || {
        screen().contains("attach-ended-0")
    });
    let _ = outer_tmux(&["kill-server"]);
    assert_eq!(
        host.world.show("term")["state"],
        "running",
        "detaching leaves it running"
    );
}
