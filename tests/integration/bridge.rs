//! `sandbox-deck bridge` against a real unix-socket server (an echo server in this process
//! stands in for the engine's API: the bridge only copies bytes), and finding or starting
//! the engine (`engine::service`) with a stand-in engine program.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sandbox_deck::engine::service::{self, EngineCommand, Starter};
use sandbox_deck::error::DeckError;
use sandbox_deck::host::placement::Placement;

use crate::common::{self, SpawnGuarded, World};

const DEADLINE: Duration = Duration::from_secs(30);

/// The API socket of `world`'s engine, its private dir made, and a listener on it.
fn listen(world: &World) -> UnixListener {
    let dir = world.runtime.join("sandbox-deck");
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    UnixListener::bind(dir.join("api.sock")).expect("binding the stand-in API socket")
}

/// Serves one connection with `serve` on a thread.
fn serve_one(listener: UnixListener, serve: impl FnOnce(UnixStream) + Send + 'static) {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accepting the bridge");
        serve(stream);
    });
}

/// Runs `sandbox-deck bridge` with `input` on stdin (then closed, unless `keep_stdin_open`)
/// and returns its output, failing the test when it does not end within [`DEADLINE`].
fn bridge(world: &World, input: Vec<u8>, keep_stdin_open: bool) -> Output {
    let mut child = world
        .command()
        .arg("bridge")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // The engine may close first: a broken pipe here is that test's point.
        let _ = stdin.write_all(&input);
        if keep_stdin_open {
            std::thread::sleep(DEADLINE);
        }
    });
    let (done, finished) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = stderr.read_to_end(&mut err);
        let _ = done.send((out, err));
    });
    let (stdout, stderr) = finished
        .recv_timeout(DEADLINE)
        .expect("the bridge did not end (a half-close lost?)");
    let status = child.wait().expect("waiting for the bridge");
    if !keep_stdin_open {
        writer.join().expect("the writer");
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Bytes of every value, in an order no short cycle repeats (xorshift).
fn binary_payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_large_binary_payload_goes_through_the_bridge_both_ways_unchanged() {
    let world = World::new();
    // Echoes until our end of input, then closes: the bridge ends only if its end of stdin
    // reached the engine as a half-close.
    serve_one(listen(&world), |mut stream| {
        let mut reader = stream.try_clone().unwrap();
        std::io::copy(&mut reader, &mut stream).expect("echoing");
    });
    let payload = binary_payload(8 * 1024 * 1024);
    assert!(
        (0..=255u8).all(|b| payload.contains(&b)),
        "every byte value"
    );
    let out = bridge(&world, payload.clone(), false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), payload.len());
    assert!(out.stdout == payload, "the bytes came back changed");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_end_of_stdin_reaches_the_engine_and_its_later_reply_still_arrives() {
    let world = World::new();
    serve_one(listen(&world), |mut stream| {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).expect("reading to our end");
        // The reply comes after the client's half is closed, and a while later.
        std::thread::sleep(Duration::from_millis(200));
        write!(stream, "got {} bytes", got.len()).unwrap();
    });
    let out = bridge(&world, vec![0u8; 1000], false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got 1000 bytes");
}

/// The engine closes first, having read our input (`read_first`) or with it unread (the
/// connection is then reset rather than ended); either way the bridge delivers what the
/// engine sent and ends with status 0, while its stdin is still open.
fn engine_closes_first(read_first: bool) {
    let world = World::new();
    serve_one(listen(&world), move |mut stream| {
        if read_first {
            let mut hello = [0u8; 5];
            stream.read_exact(&mut hello).unwrap();
        } else {
            // Our input arrives and stays unread.
            std::thread::sleep(Duration::from_millis(300));
        }
        stream.write_all(b"bye").unwrap();
    });
    let started = Instant::now();
    let out = bridge(&world, b"hello".to_vec(), true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"bye");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_engine_closing_first_ends_the_bridge_with_status_0() {
    engine_closes_first(true);
}

#[test]
fn the_engine_closing_with_our_input_unread_ends_the_bridge_with_status_0_too() {
    engine_closes_first(false);
}

/// A stand-in engine: notes its pid, then per `mode` binds the socket and greets every
/// client (`serve`), exits 3 (`fail`) or never answers (`mute`).
const STAND_IN: &str = r#"
import os, socket, sys, time
sock_path, pids, mode = sys.argv[1:4]
with open(pids, "a") as f:
    f.write(f"{os.getpid()}\n")
if mode == "fail":
    sys.exit(3)
if mode == "mute":
    time.sleep(60)
    sys.exit(0)
time.sleep(0.3)  # a slow start widens any race between two starters
s = socket.socket(socket.AF_UNIX)
s.bind(sock_path)
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"engine\n")
    c.close()
"#;

/// The system's python3 itself: a wrapper on PATH (pyenv's shim) sets variables of its
/// own, which would read as leaks of ours.
fn python() -> PathBuf {
    let system = PathBuf::from("/usr/bin/python3");
    if system.exists() {
        return system;
    }
    common::which("python3").expect("python3")
}

struct Engine {
    starter: Starter,
    pids: PathBuf,
}

impl Engine {
    fn new(world: &World, mode: &str) -> Option<Engine> {
        if !common::prerequisites(&["python3"]) {
            return None;
        }
        let dir = world.path("run/sandbox-deck");
        std::fs::create_dir_all(&dir).unwrap();
        let script = world.path("stand-in-engine.py");
        std::fs::write(&script, STAND_IN).unwrap();
        let socket = dir.join("api.sock");
        let pids = world.path("engine-pids");
        let command = EngineCommand {
            program: python(),
            args: vec![
                script.into(),
                socket.clone().into(),
                pids.clone().into(),
                mode.into(),
            ],
        };
        let starter = Starter {
            socket,
            log_file: world.path("state/sandbox-deck/log/sandbox-deck.log"),
            lock: dir.join("serve-start.lock"),
            command,
            env: vec!["XDG_RUNTIME_DIR".into()],
            placement: Some(Placement::Direct),
            timeout: Duration::from_secs(5),
        };
        Some(Engine { starter, pids })
    }

    fn pids(&self) -> Vec<u32> {
        common::read(&self.pids)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn greeting(mut stream: UnixStream) -> String {
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn environ_keys(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.split('=').next().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn a_client_that_finds_no_engine_starts_one_detached_and_the_next_connects_to_it() {
    let world = World::new();
    let Some(engine) = Engine::new(&world, "serve") else {
        return;
    };
    assert!(service::connect(&engine.starter.socket).unwrap().is_none());
    let stream = service::connect_or_start(&engine.starter).expect("starting the stand-in");
    assert_eq!(greeting(stream), "engine\n");
    let pids = engine.pids();
    assert_eq!(pids.len(), 1, "one engine started");
    let pid = pids[0];
    // Its own session (our terminal's hangup and Ctrl-C never reach it), stdio on /dev/null.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(pid as i32))).unwrap();
    assert_eq!(sid.as_raw() as u32, pid, "a session of its own");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    // Its environment is rebuilt from the allowlist, whatever ours holds.
    let allowed: Vec<&str> = sandbox_deck::host::HOST_ENV
        .iter()
        .copied()
        .chain(engine.starter.env.iter().map(String::as_str))
        .collect();
    let ours: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert!(
        ours.iter().any(|k| !allowed.contains(&k.as_str())),
        "the test's own environment has keys outside the allowlist (the check can fail)"
    );
    let theirs = environ_keys(pid);
    assert!(theirs.iter().any(|k| k == "PATH"), "{theirs:?}");
    for key in &theirs {
        assert!(
            allowed.contains(&key.as_str()),
            "{key} leaked into the engine"
        );
    }

    let again = service::connect_or_start(&engine.starter).expect("connecting again");
    assert_eq!(greeting(again), "engine\n");
    assert_eq!(engine.pids(), [pid], "no second engine");
}

#[test]
fn two_clients_starting_at_once_start_one_engine() {
    let world = World::new();
    let Some(engine) = Engine::new(&world, "serve") else {
        return;
    };
    let starters: Vec<_> = (0..3)
        .map(|_| {
            let starter = engine.starter.clone();
            std::thread::spawn(move || service::connect_or_start(&starter).map(greeting))
        })
        .collect();
    for starter in starters {
        assert_eq!(starter.join().unwrap().expect("a connection"), "engine\n");
    }
    assert_eq!(engine.pids().len(), 1, "{:?}", engine.pids());
}

#[test]
fn an_engine_that_fails_to_start_is_reported_at_once_with_its_log() {
    let world = World::new();
    let Some(engine) = Engine::new(&world, "fail") else {
        return;
    };
    let started = Instant::now();
    let err = service::connect_or_start(&engine.starter).expect_err("it exits 3");
    assert!(started.elapsed() < engine.starter.timeout, "not waited out");
    assert_eq!(err.kind(), "engine_unavailable");
    let text = err.to_string();
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(text.contains("sandbox-deck.log"), "{text}");
    assert!(matches!(err, DeckError::EngineUnavailable { .. }));
}

#[test]
fn an_engine_that_never_answers_is_given_up_after_the_timeout_and_ended() {
    let world = World::new();
    let Some(mut engine) = Engine::new(&world, "mute") else {
        return;
    };
    engine.starter.timeout = Duration::from_secs(1);
    let err = service::connect_or_start(&engine.starter).expect_err("nobody answers");
    assert_eq!(err.kind(), "engine_unavailable");
    assert!(
        err.to_string().contains("did not answer within 1s"),
        "{err}"
    );
    let pids = engine.pids();
    assert_eq!(pids.len(), 1);
    assert!(!common::is_running(pids[0]), "the stuck engine was ended");
}
