//! The engine's websocket API on its unix socket (`sandbox-deck serve`), driven by raw
//! sockets that write frames by hand (never our own client code), by another uid, and by an
//! independent Python client written from `docs/protocol.md`: SECURITY.md's W5–W13, W16 and
//! W17, the peer check, SIGKILL of the engine, and `notify.command` run once.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    Guarded, PYTHON, SpawnGuarded, World, can_drop_to_nobody, prerequisites, python_websockets,
    run_python, wait_for,
};

/// The idle timeout the tests' engines run with (seconds).
const IDLE: u64 = 3;
const WAIT: Duration = Duration::from_secs(20);

/// A `serve` process of a world, killed when dropped.
pub(crate) struct Engine {
    pub(crate) process: Guarded,
    pub(crate) socket: PathBuf,
}

impl Engine {
    pub(crate) fn start(world: &World) -> Engine {
        let socket = world.runtime.join("sandbox-deck/api.sock");
        let process = world
            .command()
            .args(["serve", "--idle-timeout", &IDLE.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn_guarded();
        wait_for("the engine's socket", WAIT, || {
            UnixStream::connect(&socket).is_ok()
        });
        Engine { process, socket }
    }

    fn pid(&self) -> i32 {
        self.process.id() as i32
    }

    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).expect("kill");
    }

    pub(crate) fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.process.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the engine did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw websocket after its handshake, hello and snapshot read.
    fn client(&self) -> Raw {
        let mut raw = Raw::handshake(&self.socket);
        let hello = raw.text();
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["protocol"], 1, "{hello}");
        let snapshot = raw.text();
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        raw.snapshot = snapshot;
        raw
    }

    /// The engine still answers a new client's `list`.
    fn still_answers(&self) {
        let mut raw = self.client();
        let reply = raw.call(json!({"cmd": "list"}));
        assert_eq!(reply["type"], "ok", "{reply}");
    }
}

/// A websocket client written frame by frame.
struct Raw {
    stream: UnixStream,
    snapshot: Value,
    next_id: u64,
    /// Binary (screen) frames read while waiting for text.
    binaries: std::collections::VecDeque<Vec<u8>>,
}

/// One frame as read: opcode and payload.
struct Frame {
    opcode: u8,
    payload: Vec<u8>,
}

impl Raw {
    fn connect(socket: &Path) -> UnixStream {
        let stream = UnixStream::connect(socket).expect("connecting to the engine");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        stream
    }

    fn handshake(socket: &Path) -> Raw {
        let mut stream = Raw::connect(socket);
        stream.write_all(UPGRADE.as_bytes()).expect("upgrade");
        let response = read_head(&mut stream);
        assert!(
            response.starts_with("HTTP/1.1 101"),
            "no upgrade: {response:?}"
        );
        Raw {
            stream,
            snapshot: Value::Null,
            next_id: 0,
            binaries: Default::default(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // The engine may already have closed: what matters is what it answers.
        let _ = self.stream.write_all(bytes);
    }

    fn send_text(&mut self, text: &str) {
        self.send(&frame(0x1, text.as_bytes(), FrameOpts::default()));
    }

    fn frame(&mut self) -> Option<Frame> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        let opcode = head[0] & 0x0f;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).ok()?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        self.stream.read_exact(&mut payload).ok()?;
        Some(Frame { opcode, payload })
    }

    /// The next text message (events included), answering pings as every client must (a
    /// command may take longer than the idle timeout).
    fn text(&mut self) -> Value {
        loop {
            let frame = self.frame().expect("a frame from the engine");
            match frame.opcode {
                0x1 => return serde_json::from_slice(&frame.payload).expect("JSON text"),
                0x9 => self.send(&frame_of(0xA, &frame.payload)),
                0xA => continue,
                0x2 => self.binaries.push_back(frame.payload),
                other => panic!(
                    "expected text, got opcode {other:#x}: {:.200?}",
                    frame.payload
                ),
            }
        }
    }

    /// The reply to request `id`, skipping events.
    fn reply(&mut self, id: u64) -> Value {
        loop {
            let message = self.text();
            if message["type"] != "event" && message["id"] == id {
                return message;
            }
        }
    }

    fn call(&mut self, command: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send_text(&json!({"id": id, "command": command}).to_string());
        self.reply(id)
    }

    /// The close code the engine ends with (None: the stream ended without a close frame).
    fn close_code(&mut self) -> Option<u16> {
        loop {
            let frame = self.frame()?;
            if frame.opcode == 0x8 {
                return frame
                    .payload
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]));
            }
        }
    }
}

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// The HTTP head of a response, byte by byte (nothing after it is consumed).
fn read_head(stream: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[derive(Clone, Copy)]
struct FrameOpts {
    fin: bool,
    masked: bool,
    rsv: u8,
}

impl Default for FrameOpts {
    fn default() -> FrameOpts {
        FrameOpts {
            fin: true,
            masked: true,
            rsv: 0,
        }
    }
}

/// A well-formed (final, masked) client frame.
fn frame_of(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, payload, FrameOpts::default())
}

/// A client frame as RFC 6455 lays it out, with whatever flags the test wants.
fn frame(opcode: u8, payload: &[u8], opts: FrameOpts) -> Vec<u8> {
    let mut out = vec![(u8::from(opts.fin) << 7) | (opts.rsv << 4) | opcode];
    let mask_bit = if opts.masked { 0x80 } else { 0 };
    header_len(&mut out, mask_bit, payload.len() as u64);
    if opts.masked {
        let key = [0x12u8, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn header_len(out: &mut Vec<u8>, mask_bit: u8, len: u64) {
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

pub(crate) fn engine_prerequisites() -> bool {
    prerequisites(&["tmux", "bwrap", "Xvfb"])
}

#[test]
fn the_engine_greets_with_hello_and_snapshot_on_a_private_socket() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    let mode = std::fs::metadata(&engine.socket)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(engine.socket.parent().expect("dir"))
        .expect("the dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let mut raw = engine.client();
    assert!(
        raw.snapshot["sandboxes"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let reply = raw.call(json!({"cmd": "list"}));
    assert_eq!(reply, json!({"type": "ok", "id": 1, "result": []}));
    // A browser's handshake (any Origin) is refused.
    let mut browser = Raw::connect(&engine.socket);
    let request = UPGRADE.replace("\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n");
    browser.write_all(request.as_bytes()).expect("upgrade");
    let head = read_head(&mut browser);
    assert!(head.starts_with("HTTP/1.1 403"), "{head:?}");
}

#[test]
fn malformed_frames_close_the_connection_with_the_right_code_and_the_engine_lives_on() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    let plain = FrameOpts::default();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "unmasked",
            frame(
                0x1,
                b"{}",
                FrameOpts {
                    masked: false,
                    ..plain
                },
            ),
            1002,
        ),
        (
            "RSV bits",
            frame(
                0x1,
                b"{}",
                FrameOpts {
                    rsv: 0b100,
                    ..plain
                },
            ),
            1002,
        ),
        ("opcode 0x3", frame(0x3, b"{}", plain), 1002),
        (
            "control frame over 125 B",
            frame(0x9, &[b'p'; 200], plain),
            1002,
        ),
        (
            "fragmented ping",
            frame(
                0x9,
                b"p",
                FrameOpts {
                    fin: false,
                    ..plain
                },
            ),
            1002,
        ),
        ("continuation without start", frame(0x0, b"x", plain), 1002),
        (
            "invalid UTF-8",
            frame(0x1, &[0xff, 0xfe, b'{'], plain),
            1007,
        ),
        ("binary for text", frame(0x2, br#"{"id":1}"#, plain), 1003),
        (
            "2^63 bytes claimed",
            {
                let mut f = vec![0x81, 0x80 | 127];
                f.extend_from_slice(&(1u64 << 63).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0]);
                f
            },
            1009,
        ),
        (
            "a frame over 64 KiB",
            frame(0x1, &vec![b' '; 70 << 10], plain),
            1009,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut raw = engine.client();
        raw.send(&bytes);
        assert_eq!(raw.close_code(), Some(code), "{what}");
    }
    // 2 MiB in 60 KiB fragments, and 10 000 small fragments over 1 MiB: 1009 too.
    for (piece, count) in [(60 << 10, 35), (128, 10_000)] {
        let mut raw = engine.client();
        let mut bytes = Vec::new();
        for i in 0..count {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            bytes.extend(frame(
                opcode,
                &vec![b' '; piece],
                FrameOpts {
                    fin: false,
                    ..plain
                },
            ));
        }
        raw.send(&bytes);
        assert_eq!(
            raw.close_code(),
            Some(1009),
            "{count} fragments of {piece} B"
        );
    }
    engine.still_answers();
}

#[test]
fn a_slow_client_is_closed_at_the_timeouts() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    // Half a frame, then silence: closed at the idle timeout.
    let mut raw = engine.client();
    let whole = frame(
        0x1,
        br#"{"id":1,"command":{"cmd":"list"}}"#,
        FrameOpts::default(),
    );
    let started = Instant::now();
    raw.send(&whole[..5]);
    assert_eq!(raw.close_code(), Some(1001), "idle");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(IDLE - 1) && took < Duration::from_secs(IDLE * 3),
        "closed after {took:?}"
    );
    // A handshake never finished: the stream ends at 5 s.
    let mut stream = Raw::connect(&engine.socket);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: local")
        .expect("half");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "handshake closed after {took:?}"
    );
    assert!(rest.is_empty(), "{rest:?}");
    engine.still_answers();
}

#[test]
fn bad_json_is_a_bad_request_and_the_connection_stays_usable() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    let mut raw = engine.client();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bad = [
        "{",
        "not json",
        r#"{"id":1,"id":2,"command":{"cmd":"list"}}"#,
        r#"{"id":"1","command":{"cmd":"list"}}"#,
        r#"{"id":1}"#,
        r#"{"id":1,"command":{"cmd":"list"},"admin":true}"#,
        r#"{"id":1,"command":{"cmd":"stop"}}"#,
        r#"{"id":1,"command":{"cmd":"stop","name":"a","name":"b"}}"#,
        r#"{"id":1,"command":{"cmd":"stop","name":7}}"#,
        deep.as_str(),
    ];
    for text in bad {
        raw.send_text(text);
        let reply = raw.text();
        assert_eq!(reply["type"], "error", "{text:.60}: {reply}");
        assert_eq!(reply["kind"], "bad_request", "{text:.60}: {reply}");
    }
    raw.send_text(r#"{"id":9,"command":{"cmd":"rm_rf"}}"#);
    let reply = raw.reply(9);
    assert_eq!(reply["kind"], "unknown_command", "{reply}");
    let reply = raw.call(json!({"cmd": "list"}));
    assert_eq!(reply["type"], "ok", "the connection stays usable: {reply}");
}

/// Every file under `dir`, except the audit log (which records the refusals).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path.clone());
            }
            // The engine's own bookkeeping, written whatever the commands: the audit log, and
            // the usage index it saves once it has read the logs (after its first reading).
            if !path.ends_with("api-audit.log") && !path.ends_with("usage-cache.json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bad_names_are_refused_before_any_side_effect() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let project = world.project("p");
    let engine = Engine::start(&world);
    let mut raw = engine.client();
    let before = files_under(world.root.path());
    let long = "a".repeat(300);
    let names = [
        "../../etc",
        "a/b",
        ".",
        "..",
        "",
        "-rf",
        "--bind",
        "a;id",
        "$(id)",
        "`id`",
        "a b",
        "a\nb",
        "a\u{0}b",
        "аpi",
        long.as_str(),
    ];
    for name in names {
        for command in [
            json!({"cmd": "stop", "name": name}),
            json!({"cmd": "rm", "name": name, "force": true}),
            json!({"cmd": "start", "name": name}),
            json!({"cmd": "create", "project_dir": project, "name": name, "shell": true,
                   "args": ["sleep", "600"]}),
        ] {
            let reply = raw.call(command.clone());
            assert_eq!(reply["kind"], "invalid_name", "{command}: {reply}");
            // Under the rate limit (20 a second after a burst of 50).
            std::thread::sleep(Duration::from_millis(55));
        }
    }
    assert_eq!(files_under(world.root.path()), before, "no new files");
    assert!(world.processes().is_empty(), "no new processes");
    let reply = raw.call(json!({"cmd": "list"}));
    assert_eq!(reply["result"], json!([]));
}

/// W15: project dirs that hold the user's secrets or everything, or that reach them through a
/// symlink or `..`, are refused by the API as by the CLI, before anything starts. W14: an
/// argv shaped like bwrap options is only the payload's program name.
#[test]
fn bad_project_dirs_are_refused_and_option_shaped_args_stay_the_payloads() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let ssh = world.home.join(".ssh");
    std::fs::create_dir_all(&ssh).expect("~/.ssh");
    let projects = world
        .project("ok")
        .parent()
        .expect("projects")
        .to_path_buf();
    std::os::unix::fs::symlink(&ssh, projects.join("keys")).expect("a symlink to ~/.ssh");
    let engine = Engine::start(&world);
    let mut raw = engine.client();
    let before = files_under(world.root.path());
    for dir in [
        PathBuf::from("/"),
        world.home.clone(),
        ssh.clone(),
        projects.join("keys"),
        projects.join("../home/.ssh"),
        PathBuf::from("relative/dir"),
    ] {
        let reply = raw.call(json!({"cmd": "create", "project_dir": dir, "shell": true,
                                    "args": ["sleep", "600"]}));
        assert_eq!(
            reply["kind"],
            "invalid_project_dir",
            "{}: {reply}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(55));
    }
    assert_eq!(files_under(world.root.path()), before, "no new files");
    assert!(world.processes().is_empty(), "no new processes");

    // W14: `--dev-bind / /` after the payload's `--` is a program that does not exist.
    let project = world.project("argv");
    let reply = raw.call(
        json!({"cmd": "create", "project_dir": project, "name": "argv",
                                "shell": true, "args": ["--dev-bind", "/", "/"]}),
    );
    let bwraps: Vec<String> = world
        .processes()
        .into_iter()
        .map(|pid| {
            crate::common::read(Path::new(&format!("/proc/{pid}/cmdline"))).replace('\0', " ")
        })
        .filter(|cmdline| cmdline.contains("bwrap"))
        .collect();
    assert!(
        bwraps.iter().all(|c| !c.contains("--dev-bind / / ")),
        "a bwrap mounts the host root: {bwraps:?}"
    );
    // It failed to start: bwrap could not exec a program named `--dev-bind`.
    if reply["type"] == "error" {
        assert_eq!(reply["kind"], "start_failed", "{reply}");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("execvp --dev-bind"),
            "bwrap ran it as the program: {reply}"
        );
    }
    // Control: the same words as the CLI's payload are refused the same way by `create`.
    let (kind, _) = world.error_kind(&["create", "/", "--shell"]);
    assert_eq!(kind, "invalid_project_dir");
}

#[test]
fn a_flood_is_closed_and_connections_are_capped() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    let mut raw = engine.client();
    let one = frame(
        0x1,
        br#"{"id":1,"command":{"cmd":"usage"}}"#,
        FrameOpts::default(),
    );
    let flood: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    raw.send(&flood);
    assert_eq!(raw.close_code(), Some(1008), "1000 messages at once");
    // 16 connections at most: the 17th is closed with 1008 after its handshake.
    let held: Vec<Raw> = (0..16).map(|_| engine.client()).collect();
    let mut extra = Raw::handshake(&engine.socket);
    assert_eq!(extra.close_code(), Some(1008), "the 17th connection");
    drop(held);
    wait_for("a free slot", WAIT, || {
        let mut raw = Raw::handshake(&engine.socket);
        raw.frame().is_some_and(|f| f.opcode == 0x1)
    });
    engine.still_answers();
}

/// A shell sandbox made through the CLI (no engine involved).
pub(crate) fn shell_sandbox(world: &World, name: &str) -> Value {
    world.json(&[
        "create",
        world.project(name).to_str().expect("utf-8"),
        "--name",
        name,
        "--shell",
        "--",
        "sleep",
        "600",
    ])
}

#[test]
fn two_stops_of_one_sandbox_are_serialized_and_both_succeed() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    shell_sandbox(&world, "s");
    let engine = Engine::start(&world);
    let mut a = engine.client();
    let mut b = engine.client();
    let stop = json!({"id": 1, "command": {"cmd": "stop", "name": "s"}}).to_string();
    a.send_text(&stop);
    b.send_text(&stop);
    let (ra, rb) = (a.reply(1), b.reply(1));
    assert_eq!(ra["type"], "ok", "{ra}");
    assert_eq!(rb["type"], "ok", "{rb}");
    assert_eq!(ra["result"]["state"], "stopped", "{ra}");
    assert_eq!(rb["result"]["state"], "stopped", "{rb}");
    assert_eq!(world.show("s")["state"], "stopped");
    let audit = std::fs::read_to_string(world.path("state/sandbox-deck/api-audit.log"))
        .expect("the audit log");
    let mut lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{audit}");
    lines.sort_by_key(|l| l["started"].as_str().unwrap_or_default().to_owned());
    for line in &lines {
        assert_eq!(line["command"], json!({"cmd": "stop", "name": "s"}));
        assert_eq!(line["result"], "ok");
        assert_eq!(line["uid"], nix::unistd::geteuid().as_raw());
    }
    assert_ne!(lines[0]["connection"], lines[1]["connection"]);
    // One ran after the other: the second started when the first had ended.
    let time = |line: &Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(line[key].as_str().expect("a time")).expect("rfc3339")
    };
    assert!(
        time(&lines[1], "started") >= time(&lines[0], "at"),
        "the stops overlapped: {audit}"
    );
}

/// What a raw client of uid `as_user` gets for its handshake: the response head, or "" when
/// the engine closed first. Python does the socket part, so setpriv can run it as nobody.
fn handshake_as(socket: &Path, setpriv: Option<u32>) -> String {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
d = b''
try:
    s.sendall(sys.argv[2].encode())
    while b'\r\n\r\n' not in d:
        c = s.recv(1)
        if not c:
            break
        d += c
except ConnectionError:
    pass
sys.stdout.write(d.decode())
"#;
    let mut command = match setpriv {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
                "--",
                PYTHON,
            ]);
            c
        }
        None => Command::new(PYTHON),
    };
    let out = command
        .args(["-c", script])
        .arg(socket)
        .arg(UPGRADE)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn another_uid_is_refused_before_the_handshake_even_with_open_file_modes() {
    if !engine_prerequisites() || !can_drop_to_nobody() || !prerequisites(&[PYTHON]) {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    // Open every door the file system has, so only the engine's own uid check stands.
    for dir in [
        world.root.path().to_path_buf(),
        world.runtime.clone(),
        world.runtime.join("sandbox-deck"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&engine.socket, std::fs::Permissions::from_mode(0o666))
        .expect("chmod");
    let owner = handshake_as(&engine.socket, None);
    assert!(owner.starts_with("HTTP/1.1 101"), "the owner: {owner:?}");
    let nobody = handshake_as(&engine.socket, Some(65534));
    assert_eq!(nobody, "", "nobody got an answer");
    engine.still_answers();
}

#[test]
fn sigkill_of_the_engine_loses_nothing_and_a_new_engine_reports_the_sandboxes() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    shell_sandbox(&world, "one");
    shell_sandbox(&world, "two");
    let pids: Vec<Value> = world.list().iter().map(|r| r["launcher"].clone()).collect();
    let mut engine = Engine::start(&world);
    let raw = engine.client();
    let names: Vec<&str> = raw.snapshot["sandboxes"]
        .as_array()
        .expect("sandboxes")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["one", "two"]);
    engine.signal(nix::sys::signal::Signal::SIGKILL);
    engine.wait();
    assert!(engine.socket.exists(), "SIGKILL leaves the socket file");
    for name in ["one", "two"] {
        assert_eq!(world.show(name)["state"], "running", "{name}");
    }
    let pids_after: Vec<Value> = world.list().iter().map(|r| r["launcher"].clone()).collect();
    assert_eq!(pids, pids_after, "the same processes run");
    // A new engine removes the stale file and reports both running.
    let again = Engine::start(&world);
    let raw = again.client();
    for record in raw.snapshot["sandboxes"].as_array().expect("sandboxes") {
        assert_eq!(record["state"], "running", "{record}");
    }
    assert_eq!(raw.snapshot["sandboxes"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_second_engine_is_refused_and_sigterm_ends_the_first_cleanly() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    shell_sandbox(&world, "keep");
    let mut engine = Engine::start(&world);
    let second = world.run(&["serve"]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another engine already answers"),
        "{stderr}"
    );
    engine.still_answers();
    let mut client = engine.client();
    engine.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(
        client.close_code(),
        Some(1001),
        "a connected client is told"
    );
    assert_eq!(engine.wait(), Some(0));
    assert!(!engine.socket.exists(), "the socket is removed");
    assert_eq!(world.show("keep")["state"], "running");
}

#[test]
fn notify_command_runs_once_per_event_with_two_clients_connected() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let notified = world.path("notified");
    let agent = world.path("bin/show-dialog");
    std::fs::create_dir_all(world.path("bin")).expect("bin");
    let show = "printf 'Bash command\\nDo you want to proceed?\\n❯ 1. Yes\\n'; exec sleep 600";
    std::fs::write(&agent, format!("#!/bin/sh\n{show}\n")).expect("agent");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let command = format!(
        "printf '%s %s\\n' \"$SANDBOX_NAME\" \"$SANDBOX_STATE\" >> '{}'",
        notified.display()
    );
    let config = world.path("config/sandbox-deck/config.toml");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("config dir");
    std::fs::write(
        &config,
        format!(
            "[notify]\ncommand = [\"sh\", \"-c\", {}]\n[sandbox]\nagent = {}\n",
            Value::from(command),
            Value::from(agent.to_string_lossy().into_owned())
        ),
    )
    .expect("config");
    let engine = Engine::start(&world);
    let mut a = engine.client();
    let mut b = engine.client();
    let q = world.project("q");
    let reply = a.call(json!({"cmd": "create", "project_dir": q, "name": "q"}));
    assert_eq!(reply["type"], "ok", "{reply}");
    // Both clients see q waiting, pushed.
    for client in [&mut a, &mut b] {
        let deadline = Instant::now() + WAIT;
        loop {
            let message = client.text();
            let reading = &message["event"]["reading"];
            if reading["name"] == "q" && reading["assessment"]["state"] == "waiting" {
                break;
            }
            assert!(Instant::now() < deadline, "no waiting event");
        }
    }
    wait_for("the notification", WAIT, || {
        std::fs::read_to_string(&notified).is_ok_and(|t| !t.is_empty())
    });
    // A few more monitor rounds: still one line.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(&notified).expect("notified"),
        "q waiting\n"
    );
}

#[test]
fn an_independent_python_client_lists_creates_and_stops() {
    if !engine_prerequisites() || !python_websockets() {
        return;
    }
    let world = World::new();
    let screen = shell_sandbox(&world, "scr");
    set_root(&world, &screen, "#ff8000");
    let engine = Engine::start(&world);
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_client.py");
    let project = world.project("py");
    let stdout = run_python([
        client.as_os_str(),
        engine.socket.as_os_str(),
        project.as_os_str(),
        "scr".as_ref(),
    ]);
    assert!(
        stdout.contains("screen scr 1280x800 pixel 255,128,0"),
        "{stdout}"
    );
    assert!(stdout.contains("listed 1"), "{stdout}");
    assert!(stdout.contains("created py running"), "{stdout}");
    assert!(stdout.contains("preview py text"), "{stdout}");
    assert!(stdout.contains("stopped py stopped"), "{stdout}");
    assert!(stdout.contains("event py stopped"), "{stdout}");
    assert_eq!(world.show("py")["state"], "stopped");
}

/// Paints a sandbox's root window (its own Xvfb, through its cookie).
pub(crate) fn set_root(world: &World, record: &Value, colour: &str) {
    let display = record["display"].as_u64().expect("a display");
    let id = record["id"].as_str().expect("an id");
    let cookie = world
        .runtime
        .join("sandbox-deck/sandboxes")
        .join(id)
        .join("Xauthority");
    let status = Command::new("xsetroot")
        .args(["-display", &format!(":{display}"), "-solid", colour])
        .env("XAUTHORITY", cookie)
        .status()
        .expect("xsetroot");
    assert!(status.success());
}

impl Raw {
    /// The next screen frame: name, width, height and the pixels, decompressed.
    fn screen(&mut self) -> (String, u32, u32, Vec<u8>) {
        loop {
            let data = match self.binaries.pop_front() {
                Some(data) => data,
                None => {
                    let frame = self.frame().expect("a frame from the engine");
                    if frame.opcode != 0x2 {
                        continue;
                    }
                    frame.payload
                }
            };
            assert_eq!(&data[..4], b"SDF1");
            let n = usize::from(data[4]);
            let name = String::from_utf8(data[5..5 + n].to_vec()).expect("name");
            let size = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().expect("4"));
            let (width, height) = (size(5 + n), size(9 + n));
            let rgb = miniz_oxide::inflate::decompress_to_vec_zlib(&data[13 + n..]).expect("zlib");
            assert_eq!(rgb.len(), (width * height * 3) as usize);
            return (name, width, height, rgb);
        }
    }
}

fn pixel(rgb: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * width + x) * 3) as usize;
    [rgb[i], rgb[i + 1], rgb[i + 2]]
}

#[test]
fn two_subscribers_get_the_same_screen_and_its_changes() {
    if !engine_prerequisites() || !prerequisites(&["xsetroot"]) {
        return;
    }
    let world = World::new();
    let record = shell_sandbox(&world, "scr");
    set_root(&world, &record, "#ff8000");
    let engine = Engine::start(&world);
    let mut a = engine.client();
    let mut b = engine.client();
    let reply = a.call(json!({"cmd": "subscribe_screen", "name": "scr", "fps": 5}));
    assert_eq!(
        reply["result"],
        json!({"name": "scr", "fps": 5.0}),
        "{reply}"
    );
    let (name, width, height, first) = a.screen();
    assert_eq!((name.as_str(), width, height), ("scr", 1280, 800));
    assert_eq!(pixel(&first, width, 5, 5), [255, 128, 0]);
    // A second subscriber gets the last frame at once, from the same capture.
    let reply = b.call(json!({"cmd": "subscribe_screen", "name": "scr"}));
    assert_eq!(reply["type"], "ok", "{reply}");
    assert_eq!(b.screen().3, first);
    set_root(&world, &record, "#00ff00");
    for client in [&mut a, &mut b] {
        let (_, width, _, rgb) = client.screen();
        assert_eq!(pixel(&rgb, width, 5, 5), [0, 255, 0]);
    }
    // Both are served by one capture loop: one watch, two subscribers, each changed frame
    // (orange, green) encoded once.
    let stats = a.call(json!({"cmd": "screen_stats"}));
    assert_eq!(stats["result"].as_array().map(Vec::len), Some(1), "{stats}");
    let watch = &stats["result"][0];
    assert_eq!(watch["subscribers"], 2, "{stats}");
    assert_eq!(watch["fps"], 5.0, "{stats}");
    assert!(watch["frames"].as_u64() >= Some(2), "{stats}");
    assert!(
        watch["captures"].as_u64() >= watch["frames"].as_u64(),
        "{stats}"
    );
    // A sandbox without a screen, and a bad name, are errors, not subscriptions.
    let reply = a.call(json!({"cmd": "subscribe_screen", "name": "nope"}));
    assert_eq!(reply["kind"], "not_found", "{reply}");
    let reply = a.call(json!({"cmd": "subscribe_screen", "name": "../x"}));
    assert_eq!(reply["kind"], "invalid_name", "{reply}");
}

#[test]
fn an_auto_started_engine_ends_when_idle_and_not_while_a_client_is_connected() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let config = world.path("config/sandbox-deck/config.toml");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("config dir");
    std::fs::write(&config, "[serve]\nidle_exit_secs = 2\n").expect("config");
    let socket = world.runtime.join("sandbox-deck/api.sock");
    let mut engine = Engine {
        process: world
            .command()
            .args(["serve", "--auto"])
            .stderr(std::process::Stdio::null())
            .spawn_guarded(),
        socket: socket.clone(),
    };
    wait_for("the engine's socket", WAIT, || {
        UnixStream::connect(&socket).is_ok()
    });
    let client = engine.client();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        engine.process.try_wait().expect("try_wait").is_none(),
        "the engine ended with a client connected"
    );
    drop(client);
    let started = Instant::now();
    assert_eq!(engine.wait(), Some(0));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!socket.exists(), "the socket is removed");
}

#[test]
fn bridge_carries_a_client_to_a_real_engine() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world);
    let mut bridge = world
        .command()
        .arg("bridge")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn_guarded();
    let mut input = bridge.stdin.take().expect("stdin");
    let mut output = bridge.stdout.take().expect("stdout");
    // A client waits for the upgrade before its first frame (the engine refuses bytes
    // after the request: tungstenite's "junk after request").
    input.write_all(UPGRADE.as_bytes()).expect("upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            output.read(&mut byte).expect("the bridge"),
            1,
            "the bridge ended"
        );
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let list = br#"{"id":5,"command":{"cmd":"list"}}"#;
    input
        .write_all(&frame(0x1, list, FrameOpts::default()))
        .expect("a command");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let needle = br#"{"type":"ok","id":5,"result":[]}"#;
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = output.read(&mut buf).expect("reading the bridge");
        assert!(
            n > 0,
            "the bridge ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    drop(input);
    assert_eq!(bridge.wait().expect("the bridge").code(), Some(0));
    drop(engine);
}
