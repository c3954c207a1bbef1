//! `serve --listen`: the loopback TCP listener for explicit tunnels, driven by raw TCP
//! sockets against a real engine: SECURITY.md's W1–W4 (token, Origin, Host, malformed
//! upgrades) and W18 (the token file), the refusal of non-loopback addresses, and the
//! positive control: the right token connects and `list` works, beside the unix socket, under
//! the same limits, and an ordinary client library (Python's `websockets`) connects too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    Guarded, SpawnGuarded, World, prerequisites, python_websockets, run_python, wait_for,
};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "6f1c0e2a9b8d7c4e5f3a2b1c0d9e8f7a";
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn engine_prerequisites() -> bool {
    prerequisites(&["tmux", "bwrap", "Xvfb"])
}

/// A token file `name` with `mode`, holding `text`.
fn token_file(world: &World, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = world.path(name);
    std::fs::write(&path, text).expect("writing the token file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// A `serve --listen` process of a world, killed when dropped.
struct Engine {
    _process: Guarded,
    /// The TCP address it printed (port 0 asked for a free one).
    address: String,
    socket: PathBuf,
}

impl Engine {
    fn start(world: &World, listen: &str) -> Engine {
        let file = token_file(world, "api.token", &format!("{TOKEN}\n"), 0o600);
        let mut process = world
            .command()
            .args(["serve", "--idle-timeout", "5", "--listen", listen])
            .arg("--token-file")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn_guarded();
        let stderr = process.stderr.take().expect("stderr");
        let (lines, said) = mpsc::channel();
        // Reads to the end, so the engine never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = said.recv_timeout(left).expect("the engine's TCP address");
            if let Some(rest) = line.strip_prefix("sandbox-deck: and on ") {
                break rest.split(' ').next().expect("an address").to_owned();
            }
        };
        let socket = world.runtime.join("sandbox-deck/api.sock");
        Engine {
            _process: process,
            address,
            socket,
        }
    }

    fn port(&self) -> u16 {
        let (_, port) = self.address.rsplit_once(':').expect("host:port");
        port.parse().expect("a port")
    }

    /// The request head of an upgrade to `target`, with the right Host and token unless
    /// `edits` replace (Some) or remove (None) a header.
    fn request(&self, target: &str, edits: &[(&str, Option<&str>)]) -> String {
        let bearer = format!("Bearer {TOKEN}");
        let mut headers: Vec<(String, String)> = [
            ("Host", self.address.as_str()),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
            ("Authorization", bearer.as_str()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (name, value) in edits {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            if let Some(value) = value {
                headers.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        let lines: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        format!("GET {target} HTTP/1.1\r\n{lines}\r\n")
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.address).expect("connecting over TCP");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        stream
    }

    /// Sends `request`; the response head and the stream after it.
    fn exchange(&self, request: &str) -> (String, TcpStream) {
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).expect("the request");
        let head = read_head(&mut stream);
        (head, stream)
    }

    /// Sends `request` and returns the refusal's head, having checked that no websocket
    /// followed: a short text body, then the end of the stream.
    fn refused(&self, request: &str) -> String {
        let (head, mut stream) = self.exchange(request);
        assert!(!head.starts_with("HTTP/1.1 101"), "upgraded: {request}");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("the stream ends");
        assert!(rest.len() < 200, "{rest:?}");
        assert!(
            rest.is_ascii(),
            "no websocket frame after a refusal: {rest:?}"
        );
        head
    }

    /// A websocket over TCP after its hello and snapshot.
    fn client(&self) -> Raw {
        let (head, stream) = self.exchange(&self.request("/", &[]));
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut raw = Raw { stream };
        assert_eq!(raw.text()["type"], "hello");
        assert_eq!(raw.text()["type"], "snapshot");
        raw
    }
}

/// A websocket client written frame by frame, over either socket.
struct Raw<S: Read + Write = TcpStream> {
    stream: S,
}

impl<S: Read + Write> Raw<S> {
    fn send(&mut self, bytes: &[u8]) {
        // The engine may already have closed: what matters is what it answers.
        let _ = self.stream.write_all(bytes);
    }

    /// The next frame: opcode and payload.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).ok()?;
                usize::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).ok()?;
                usize::try_from(u64::from_be_bytes(b)).ok()?
            }
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some((head[0] & 0x0f, payload))
    }

    /// The next text message, skipping pings and binary frames.
    fn text(&mut self) -> Value {
        loop {
            let (opcode, payload) = self.frame().expect("a frame from the engine");
            match opcode {
                0x1 => return serde_json::from_slice(&payload).expect("JSON text"),
                0x8 => panic!("closed: {payload:?}"),
                _ => {}
            }
        }
    }

    fn call(&mut self, id: u64, command: Value) -> Value {
        let text = json!({"id": id, "command": command}).to_string();
        self.send(&frame(0x1, text.as_bytes()));
        loop {
            let message = self.text();
            if message["type"] != "event" && message["id"] == id {
                return message;
            }
        }
    }

    /// The close code the engine ends with (None: the stream ended without one).
    fn close_code(&mut self) -> Option<u16> {
        loop {
            let (opcode, payload) = self.frame()?;
            if opcode == 0x8 {
                return payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            }
        }
    }
}

/// A masked client frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let key = [0x37u8, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// The HTTP head of a response, byte by byte (nothing after it is consumed).
fn read_head(stream: &mut impl Read) -> String {
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

fn has_header(head: &str, line: &str) -> bool {
    head.split("\r\n").any(|l| l.eq_ignore_ascii_case(line))
}

/// A client of the unix socket, as `api.rs` has (no Authorization there: the uid is checked).
fn unix_client(socket: &Path) -> Raw<UnixStream> {
    let mut stream = UnixStream::connect(socket).expect("the unix socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("upgrade");
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut raw = Raw { stream };
    assert_eq!(raw.text()["type"], "hello");
    assert_eq!(raw.text()["type"], "snapshot");
    raw
}

#[test]
fn the_right_token_connects_over_tcp_and_list_works_beside_the_unix_socket() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    assert!(
        engine.address.starts_with("127.0.0.1:"),
        "{}",
        engine.address
    );
    let mut tcp = engine.client();
    let reply = tcp.call(1, json!({"cmd": "list"}));
    assert_eq!(reply, json!({"type": "ok", "id": 1, "result": []}));
    // Every Host we answer to.
    for host in [
        format!("localhost:{}", engine.port()),
        format!("[::1]:{}", engine.port()),
    ] {
        let (head, _) = engine.exchange(&engine.request("/", &[("Host", Some(&host))]));
        assert!(head.starts_with("HTTP/1.1 101"), "{host}: {head}");
    }
    // The unix socket works alongside, and a TCP command is audited like any other.
    let mut unix = unix_client(&engine.socket);
    let reply = unix.call(1, json!({"cmd": "list"}));
    assert_eq!(reply["type"], "ok", "{reply}");
    let stop = tcp.call(2, json!({"cmd": "stop", "name": "nothing-here"}));
    assert_eq!(stop["kind"], "not_found", "{stop}");
    let audit = std::fs::read_to_string(world.path("state/sandbox-deck/api-audit.log"))
        .expect("the audit log");
    assert!(audit.contains("nothing-here"), "{audit}");
}

#[test]
fn the_listener_takes_ipv6_loopback_too() {
    if !engine_prerequisites() {
        return;
    }
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this host has no IPv6 loopback");
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "[::1]:0");
    assert!(engine.address.starts_with("[::1]:"), "{}", engine.address);
    let mut tcp = engine.client();
    assert_eq!(tcp.call(1, json!({"cmd": "list"}))["type"], "ok");
    let (head, _) = engine.exchange(&engine.request(
        "/",
        &[("Host", Some(&format!("127.0.0.1:{}", engine.port())))],
    ));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[test]
fn w1_no_token_a_wrong_one_or_one_in_the_url_is_401_and_no_websocket() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    let wrong = format!("Bearer {}0", &TOKEN[..31]);
    let in_url = format!("/?token={TOKEN}");
    let cases = [
        ("no token", engine.request("/", &[("Authorization", None)])),
        (
            "a wrong token",
            engine.request("/", &[("Authorization", Some(&wrong))]),
        ),
        (
            "the token in the query string only",
            engine.request(&in_url, &[("Authorization", None)]),
        ),
        (
            "the token in the query string and the header",
            engine.request(&in_url, &[]),
        ),
        (
            "the token as Basic",
            engine.request("/", &[("Authorization", Some(&format!("Basic {TOKEN}")))]),
        ),
    ];
    for (what, request) in cases {
        let head = engine.refused(&request);
        assert!(head.starts_with("HTTP/1.1 401"), "{what}: {head}");
        assert!(
            has_header(&head, "WWW-Authenticate: Bearer"),
            "{what}: {head}"
        );
    }
    // Control: the same request with the right header upgrades.
    let (head, _) = engine.exchange(&engine.request("/", &[]));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[test]
fn w2_browser_origins_are_403_even_with_the_right_token() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    let own = format!("http://{}", engine.address);
    for origin in [
        "https://evil.example",
        "null",
        "http://127.attacker.example",
        own.as_str(),
    ] {
        let head = engine.refused(&engine.request("/", &[("Origin", Some(origin))]));
        assert!(head.starts_with("HTTP/1.1 403"), "{origin}: {head}");
    }
    let (head, _) = engine.exchange(&engine.request("/", &[]));
    assert!(head.starts_with("HTTP/1.1 101"), "control: {head}");
}

#[test]
fn w3_a_foreign_host_is_403_even_with_the_right_token() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    let port = engine.port();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{port}.evil.example"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "localhost".to_owned(),
    ] {
        let head = engine.refused(&engine.request("/", &[("Host", Some(&host))]));
        assert!(head.starts_with("HTTP/1.1 403"), "{host}: {head}");
    }
    let head = engine.refused(&engine.request("/", &[("Host", None)]));
    assert!(head.starts_with("HTTP/1.1 403"), "no Host: {head}");
    let (head, _) =
        engine.exchange(&engine.request("/", &[("Host", Some(&format!("LOCALHOST:{port}")))]));
    assert!(head.starts_with("HTTP/1.1 101"), "control: {head}");
}

#[test]
fn w4_what_is_not_a_version_13_upgrade_is_400_or_426_naming_version_13() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    let plain = engine.request(
        "/",
        &[
            ("Upgrade", None),
            ("Connection", None),
            ("Sec-WebSocket-Key", None),
            ("Sec-WebSocket-Version", None),
        ],
    );
    let cases = [
        ("a plain GET", plain, "426"),
        (
            "Sec-WebSocket-Version: 8",
            engine.request("/", &[("Sec-WebSocket-Version", Some("8"))]),
            "426",
        ),
        (
            "no Sec-WebSocket-Key",
            engine.request("/", &[("Sec-WebSocket-Key", None)]),
            "400",
        ),
        (
            "a key of 18 bytes",
            engine.request(
                "/",
                &[("Sec-WebSocket-Key", Some("AAAAAAAAAAAAAAAAAAAAAAAA"))],
            ),
            "400",
        ),
    ];
    for (what, request, status) in cases {
        let head = engine.refused(&request);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {head}"
        );
        assert!(
            has_header(&head, "Sec-WebSocket-Version: 13"),
            "{what}: {head}"
        );
    }
    // Without the token, the same requests learn nothing but 401.
    let head = engine.refused(&engine.request(
        "/",
        &[
            ("Sec-WebSocket-Version", Some("8")),
            ("Authorization", None),
        ],
    ));
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // Bytes after the request, before the 101: refused with a word, not silently.
    let early = format!("{}{}", engine.request("/", &[]), "x");
    let head = engine.refused(&early);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (head, _) = engine.exchange(&engine.request("/", &[]));
    assert!(head.starts_with("HTTP/1.1 101"), "control: {head}");
}

#[test]
fn tcp_connections_share_the_limits_and_the_connection_cap_of_the_unix_socket() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    // A frame over 64 KiB: 1009.
    let mut raw = engine.client();
    raw.send(&frame(0x1, &vec![b' '; 70 << 10]));
    assert_eq!(raw.close_code(), Some(1009), "a frame over 64 KiB");
    // 1000 commands at once: the rate limit, 1008.
    let mut raw = engine.client();
    let one = frame(0x1, br#"{"id":1,"command":{"cmd":"usage"}}"#);
    let flood: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    raw.send(&flood);
    assert_eq!(raw.close_code(), Some(1008), "1000 messages at once");
    // 16 connections in all, whichever socket: 15 unix and one TCP, then a 17th of each.
    let mut held: Vec<Raw<UnixStream>> = (0..15).map(|_| unix_client(&engine.socket)).collect();
    let tcp = engine.client();
    let (head, stream) = engine.exchange(&engine.request("/", &[]));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(Raw { stream }.close_code(), Some(1008), "a 17th over TCP");
    held.pop();
    drop(tcp);
    wait_for("a free slot", WAIT, || {
        let (head, stream) = engine.exchange(&engine.request("/", &[]));
        let mut raw = Raw { stream };
        head.starts_with("HTTP/1.1 101") && raw.frame().is_some_and(|(opcode, _)| opcode == 0x1)
    });
    drop(held);
    // A handshake that never ends is closed at the handshake timeout (5 s), unanswered.
    let mut stream = engine.connect();
    let request = engine.request("/", &[]);
    stream
        .write_all(&request.as_bytes()[..20])
        .expect("half a request");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(12),
        "closed after {took:?}"
    );
    let mut raw = engine.client();
    assert_eq!(raw.call(1, json!({"cmd": "list"}))["type"], "ok");
}

/// What `serve` does with `args`: its exit code and stderr, and whether it made the socket.
fn serve_refused(world: &World, args: &[&str], token: &Path) -> String {
    let mut process = world
        .command()
        .arg("serve")
        .args(args)
        .arg("--token-file")
        .arg(token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_guarded();
    // An engine that started runs until killed: give it a while, then fail (the guard
    // kills it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while process.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "serve {args:?} started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = process.wait_with_output().expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started: {stderr}");
    assert!(!stderr.contains("the engine listens"), "{stderr}");
    assert!(
        !world.runtime.join("sandbox-deck/api.sock").exists(),
        "a socket was made: {stderr}"
    );
    stderr
}

/// A port nothing listens on now (bound and let go).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

#[test]
fn w18_a_token_file_others_may_read_or_another_uid_owns_refuses_to_start() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["--listen", listen.as_str()];
    let file = token_file(&world, "open.token", TOKEN, 0o644);
    let stderr = serve_refused(&world, &args, &file);
    assert!(stderr.contains("mode is 0644"), "{stderr}");
    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        serve_refused(&world, &args, &file);
    }
    // Too short (127 bits), or not hex.
    let short = token_file(&world, "short.token", &TOKEN[..31], 0o600);
    let stderr = serve_refused(&world, &args, &short);
    assert!(stderr.contains("fewer than 32"), "{stderr}");
    let words = token_file(
        &world,
        "words.token",
        "correct horse battery staple correct horse",
        0o600,
    );
    let stderr = serve_refused(&world, &args, &words);
    assert!(stderr.contains("hex digits only"), "{stderr}");
    // Owned by another uid, with the right mode: refused though we (root) could read it.
    if nix::unistd::geteuid().is_root() {
        let theirs = token_file(&world, "theirs.token", TOKEN, 0o600);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        let stderr = serve_refused(&world, &args, &theirs);
        assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    } else {
        eprintln!("the other-uid case runs as root only (it chowns the file to nobody)");
    }
    // Control: the same file, ours and 0600, starts.
    let engine = Engine::start(&world, &listen);
    assert_eq!(engine.address, listen);
    engine.client();
}

#[test]
fn a_non_loopback_listen_address_is_refused_before_anything_is_bound() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let file = token_file(&world, "api.token", TOKEN, 0o600);
    let port = free_port();
    for address in [
        format!("0.0.0.0:{port}"),
        format!("[::]:{port}"),
        format!("192.0.2.1:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("localhost:{port}"),
    ] {
        let stderr = serve_refused(&world, &["--listen", &address], &file);
        assert!(
            stderr.contains("not a loopback address") || stderr.contains("127.0.0.1:PORT"),
            "{address}: {stderr}"
        );
    }
    // Without its token file, --listen is refused too.
    let out = world
        .command()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--token-file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ordinary client library, not ours: Python's `websockets` with the token as an extra
/// header connects and lists; without it, it reports the 401.
const PYTHON_CLIENT: &str = r#"
import asyncio, json, sys
import websockets

async def main(url, token):
    headers = {"Authorization": "Bearer " + token}
    # The header argument was renamed in websockets 14 (Debian 12 has 10.4).
    if int(websockets.__version__.split(".")[0]) >= 14:
        connect = websockets.connect(url, additional_headers=headers)
    else:
        connect = websockets.connect(url, extra_headers=headers)
    async with connect as ws:
        hello = json.loads(await ws.recv())
        snapshot = json.loads(await ws.recv())
        await ws.send(json.dumps({"id": 1, "command": {"cmd": "list"}}))
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("id") == 1:
                break
        print("connected", hello["type"], snapshot["type"], reply["type"], reply["result"])
    try:
        async with websockets.connect(url) as ws:
            print("upgraded without the token")
    except Exception as e:
        print("without the token:", "401" if "401" in str(e) else repr(e))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;

#[test]
fn an_ordinary_websocket_client_connects_with_the_token_header() {
    if !engine_prerequisites() || !python_websockets() {
        return;
    }
    let world = World::new();
    let engine = Engine::start(&world, "127.0.0.1:0");
    let stdout = run_python([
        "-c".to_owned(),
        PYTHON_CLIENT.to_owned(),
        format!("ws://{}/", engine.address),
        TOKEN.to_owned(),
    ]);
    assert!(
        stdout.contains("connected hello snapshot ok []"),
        "{stdout}"
    );
    assert!(stdout.contains("without the token: 401"), "{stdout}");
}
