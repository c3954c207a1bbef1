//! Our own API client (`sandbox_deck::api::client`) against a real `serve`: over the unix
//! socket and over `sandbox-deck bridge`'s stdio (the transport `ssh host sandbox-deck
//! bridge` gives a mirror), the model following pushed events, typed errors, and a screen
//! watch whose pixels are checked.

use std::time::Duration;

use sandbox_deck::api::client::{Client, ClientError};
use sandbox_deck::api::protocol::Command;
use sandbox_deck::sandbox::{SandboxName, SandboxRecord, SandboxState};

use crate::api::{Engine, engine_prerequisites, set_root, shell_sandbox};
use crate::common::{SpawnGuarded, World, prerequisites};

const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Waits until the model satisfies `ready`.
async fn model_until(client: &Client, what: &str, ready: impl Fn(&[SandboxRecord]) -> bool) {
    let mut model = client.model();
    let wait = async {
        while !ready(&model.borrow_and_update().sandboxes) {
            model.changed().await.expect("the connection lives");
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("the model never showed {what}"));
}

fn state_of(records: &[SandboxRecord], name: &str) -> Option<SandboxState> {
    records
        .iter()
        .find(|r| r.name.as_str() == name)
        .map(|r| r.state)
}

#[test]
fn the_client_keeps_the_model_and_gets_typed_replies_over_the_socket() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    shell_sandbox(&world, "c1");
    let engine = Engine::start(&world);
    runtime().block_on(async {
        let stream = tokio::net::UnixStream::connect(&engine.socket)
            .await
            .expect("the socket");
        let client = Client::connect(stream).await.expect("connected");
        assert_eq!(client.hello().protocol, 1);
        assert!(client.hello().offers("screens"));
        assert_eq!(
            state_of(&client.model().borrow().sandboxes, "c1"),
            Some(SandboxState::Running),
            "the snapshot"
        );
        let stopped = client
            .send(Command::Stop { name: "c1".into() })
            .await
            .expect("stopped");
        assert_eq!(stopped["state"], "stopped", "{stopped}");
        // Pushed, not polled: the event comes without asking.
        model_until(&client, "c1 stopped", |r| {
            state_of(r, "c1") == Some(SandboxState::Stopped)
        })
        .await;
        let error = client
            .send(Command::Start {
                name: "nope".into(),
                fresh: false,
            })
            .await
            .expect_err("no such sandbox");
        assert_eq!(error.kind(), "not_found", "{error}");
        assert!(matches!(error, ClientError::Engine { .. }), "{error:?}");
        let error = client
            .send(Command::Stop {
                name: "../x".into(),
            })
            .await
            .expect_err("a bad name");
        assert_eq!(error.kind(), "invalid_name", "{error}");
    });
    // The engine is ended by pid; the client sees the connection end.
    drop(engine);
}

#[test]
fn the_client_works_over_the_bridges_stdio_and_sees_the_engine_go() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    let mut engine = Engine::start(&world);
    let mut bridge = world
        .command()
        .arg("bridge")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn_guarded();
    let input = bridge.stdin.take().expect("stdin");
    let output = bridge.stdout.take().expect("stdout");
    runtime().block_on(async {
        let input = std::fs::File::from(std::os::fd::OwnedFd::from(input));
        let output = std::fs::File::from(std::os::fd::OwnedFd::from(output));
        let input = tokio::net::unix::pipe::Sender::from_file(input).expect("async stdin");
        let output = tokio::net::unix::pipe::Receiver::from_file(output).expect("async stdout");
        let client = Client::connect(tokio::io::join(output, input))
            .await
            .expect("connected through the bridge");
        let records: Vec<SandboxRecord> =
            sandbox_deck::api::client::decode(client.send(Command::List {}).await.expect("a list"))
                .expect("records");
        assert!(records.is_empty());
        let project = world.project("br");
        let created = client
            .send(Command::Create {
                project_dir: project,
                name: Some("br".into()),
                shell: true,
                args: vec!["sleep".into(), "600".into()],
                network: None,
                allow: Vec::new(),
                gh_token: false,
                options: Default::default(),
            })
            .await
            .expect("created");
        assert_eq!(created["name"], "br");
        model_until(&client, "br", |r| state_of(r, "br").is_some()).await;
        // SIGTERM: the engine says goodbye, and a waiting request fails instead of hanging.
        engine.signal(nix::sys::signal::Signal::SIGTERM);
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(why) = client.closed() {
                    return why;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the client saw the end");
        assert_eq!(ended.kind(), "engine_unavailable", "{ended}");
        let late = client.send(Command::List {}).await.expect_err("closed");
        assert_eq!(late.kind(), "engine_unavailable");
    });
    assert_eq!(engine.wait(), Some(0));
    let _ = bridge.wait();
    world.json(&["rm", "--force", "br"]);
}

#[test]
fn a_screen_watch_gets_decoded_frames_and_their_changes() {
    if !engine_prerequisites() || !prerequisites(&["xsetroot"]) {
        return;
    }
    let world = World::new();
    let record = shell_sandbox(&world, "cscr");
    set_root(&world, &record, "#ff8000");
    let engine = Engine::start(&world);
    runtime().block_on(async {
        let stream = tokio::net::UnixStream::connect(&engine.socket)
            .await
            .expect("the socket");
        let client = Client::connect(stream).await.expect("connected");
        let name = SandboxName::parse("cscr").expect("a name");
        let (mut frames, reply) = client.subscribe_screen(&name, 5.0);
        let accepted = reply.await.expect("subscribed");
        assert_eq!(accepted["fps"], 5.0);
        let first = tokio::time::timeout(WAIT, frames.next())
            .await
            .expect("a frame in time")
            .expect("a frame");
        assert_eq!((first.width, first.height), (1280, 800));
        assert_eq!(first.pixel(5, 5), [255, 128, 0]);
        set_root(&world, &record, "#00ff00");
        let changed = tokio::time::timeout(WAIT, frames.next())
            .await
            .expect("a change in time")
            .expect("a frame");
        assert_eq!(changed.pixel(5, 5), [0, 255, 0]);
        // Dropped and watched again at once: the engine runs the unsubscribe and the
        // subscribe in the order they were sent, so frames come again.
        drop(frames);
        for _ in 0..3 {
            let (mut again, reply) = client.subscribe_screen(&name, 5.0);
            reply.await.expect("subscribed again");
            let frame = tokio::time::timeout(WAIT, again.next())
                .await
                .expect("a frame after watching again")
                .expect("a frame");
            assert_eq!(frame.pixel(5, 5), [0, 255, 0]);
        }
        let none = SandboxName::parse("nope").expect("a name");
        let (_gone, reply) = client.subscribe_screen(&none, 1.0);
        assert_eq!(reply.await.expect_err("no sandbox").kind(), "not_found");
    });
}

#[test]
fn previews_and_output_streams_follow_the_pane() {
    if !engine_prerequisites() {
        return;
    }
    let world = World::new();
    world.json(&[
        "create",
        world.project("pv").to_str().expect("utf-8"),
        "--name",
        "pv",
        "--shell",
    ]);
    let engine = Engine::start(&world);
    let session = world.show("pv")["tmux_session"]
        .as_str()
        .expect("a session")
        .to_owned();
    let type_line = |line: &str| {
        world.tmux(&["send-keys", "-t", &session, "-l", line]);
        world.tmux(&["send-keys", "-t", &session, "Enter"]);
    };
    runtime().block_on(async {
        let stream = tokio::net::UnixStream::connect(&engine.socket)
            .await
            .expect("the socket");
        let client = Client::connect(stream).await.expect("connected");
        let name = SandboxName::parse("pv").expect("a name");
        let (mut preview, reply) = client.subscribe_preview(&name);
        reply.await.expect("subscribed to the preview");
        let (mut output, reply) = client.subscribe_output(&name);
        reply.await.expect("subscribed to the output");
        tokio::time::timeout(WAIT, preview.next())
            .await
            .expect("a first text")
            .expect("the pane's text");
        type_line("echo preview-$((6*7))");
        let shown = tokio::time::timeout(WAIT, async {
            loop {
                let text = preview.next().await.expect("a text");
                if text.contains("preview-42") {
                    return text;
                }
            }
        })
        .await
        .expect("the preview shows what the pane printed");
        assert!(shown.contains("preview-42"), "{shown}");
        let mut seen = Vec::new();
        tokio::time::timeout(WAIT, async {
            while !String::from_utf8_lossy(&seen).contains("preview-42") {
                seen.extend_from_slice(&output.next().await.expect("a chunk"));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no output: {}", String::from_utf8_lossy(&seen)));
        let stopped = SandboxName::parse("nope").expect("a name");
        let (_none, reply) = client.subscribe_output(&stopped);
        assert_eq!(reply.await.expect_err("no sandbox").kind(), "not_found");
    });
}
