//! What reaching another host costs (issue 13): `cargo bench --bench remote [-- --secs N]`.
//!
//! A "host" (its own HOME and XDG dirs, ten running shell sandboxes, its engine) behind a
//! real `sshd` on loopback, and a "laptop" whose ssh reaches it: the test suite's fixture
//! (`tests/integration/common/sshd.rs`), so the bench runs the same parts the tests do.
//! Measured in one run, ours against a baseline, alternating so that load from other jobs
//! hits both alike:
//! - a headless command: `show --host` (a new ssh connection and the API) against `show` run
//!   on the host itself;
//! - an action's round trip on a kept connection, what the mirror does per action: `show`
//!   through the ssh tunnel against the same command on the engine's unix socket;
//! - the bytes an idle mirror receives per second with ten sandboxes, and with one screen
//!   watched at 1 fps (counted on the tunnel's stream, before ssh's encryption).
//!
//! - key → frame in the mirror against the host's own TUI, and a fleet of 5 hosts × 20
//!   sandboxes: the idle mirror's CPU and memory (`remote_parts/screen.rs`).
//!
//! Everything it started is ended by pid when the fixture drops; the last line says whether
//! any process of ours was left.

// The tests' fixture, whole: what the bench does not use of it is not an error here.
#[path = "../tests/integration/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "remote_parts/screen.rs"]
mod screen;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::sshd::{RemoteDeck, SshClient, Sshd, ssh_prerequisites};
use common::tui::TuiWorld;
use common::{World, prerequisites};
use sandbox_deck::api::client::Client;
use sandbox_deck::api::protocol::Command;
use sandbox_deck::remote::{Destination, SshCommand, Tunnel};
use sandbox_deck::sandbox::SandboxName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const SANDBOXES: usize = 10;
const CLI_RUNS: usize = 15;
const ROUND_TRIPS: usize = 100;
/// Between two commands on one connection: under the engine's 20 a second.
const PACE: Duration = Duration::from_millis(60);

fn main() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    if !ssh_prerequisites() || !prerequisites(&["tmux", "Xvfb", "bwrap"]) {
        println!("skipped: OpenSSH, tmux, Xvfb and bwrap are needed");
        return;
    }
    let host = TuiWorld::new();
    let sshd = Sshd::start(&host, "bench-host", RemoteDeck::Real).expect("sshd");
    let laptop = TuiWorld::new();
    let ssh = SshClient::new(&laptop, &[&sshd]);
    ssh.configure(&laptop);
    for i in 0..SANDBOXES {
        host.create_idle(&format!("b{i}"));
    }
    headless_commands(&host, &laptop, &sshd.alias);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let ssh_command = SshCommand::parse(&ssh.command_line(), "the bench").expect("ssh");
    let destination = Destination::parse(&sshd.alias).expect("the alias");
    runtime.block_on(kept_connection(&host, &ssh_command, &destination));
    runtime.block_on(idle_bytes(
        &ssh_command,
        &destination,
        Duration::from_secs(secs),
    ));
    screen::key_to_frame(&host, &laptop, &sshd.alias, SANDBOXES);
    screen::fleet_idle(Duration::from_secs(secs));
    drop(ssh);
    drop(sshd);
    drop(laptop);
    let marker = host.root.path().to_string_lossy().into_owned();
    drop(host);
    let left = common::with_marker(&marker);
    println!(
        "leftover processes: {}",
        if left.is_empty() {
            "none".into()
        } else {
            format!("{left:?}")
        }
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, ours: Vec<Duration>, baseline: Vec<Duration>, baseline_name: &str) {
    let (ours, baseline) = (median(ours), median(baseline));
    println!(
        "{what}: median {:.2} ms; {baseline_name}: {:.2} ms; ratio {:.2}",
        ms(ours),
        ms(baseline),
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
}

/// `show --host` from the laptop against `show` on the host, alternating.
fn headless_commands(host: &World, laptop: &World, alias: &str) {
    let timed = |world: &World, args: &[&str]| {
        let started = Instant::now();
        let out = world.run(args);
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    };
    // The first --host starts the host's engine: not timed.
    timed(laptop, &["--json", "show", "--host", alias, "b0"]);
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..CLI_RUNS {
        ours.push(timed(laptop, &["--json", "show", "--host", alias, "b0"]));
        baseline.push(timed(host, &["--json", "show", "b0"]));
    }
    report(
        "show --host (new ssh connection + API)",
        ours,
        baseline,
        "show on the host",
    );
}

/// One `show` after another on a kept connection: over ssh, and on the unix socket.
async fn kept_connection(host: &World, ssh: &SshCommand, destination: &Destination) {
    let (_tunnel, stream) = Tunnel::open(ssh, destination, true).expect("ssh");
    let over_ssh = Client::connect(stream).await.expect("the API over ssh");
    let socket = host.runtime.join("sandbox-deck/api.sock");
    let local = tokio::net::UnixStream::connect(&socket)
        .await
        .expect("the engine's socket");
    let on_socket = Client::connect(local).await.expect("the API on the socket");
    let show = || Command::Show { name: "b0".into() };
    let time = |client: &Client| {
        let reply = client.send(show());
        async move {
            let started = Instant::now();
            reply.await.expect("show");
            started.elapsed()
        }
    };
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..ROUND_TRIPS {
        ours.push(time(&over_ssh).await);
        baseline.push(time(&on_socket).await);
        tokio::time::sleep(PACE).await;
    }
    report(
        "action round trip over ssh (kept connection)",
        ours,
        baseline,
        "on the unix socket",
    );
}

/// Bytes the engine sends an idle client, then one watching a screen at 1 fps.
async fn idle_bytes(ssh: &SshCommand, destination: &Destination, window: Duration) {
    let (_tunnel, stream) = Tunnel::open(ssh, destination, true).expect("ssh");
    let counted = Counting::new(stream);
    let (read, written) = (Arc::clone(&counted.read), Arc::clone(&counted.written));
    let client = Client::connect(counted).await.expect("the API over ssh");
    let measure = |label: String| {
        let (read, written) = (Arc::clone(&read), Arc::clone(&written));
        async move {
            let (r0, w0) = (
                read.load(Ordering::Relaxed),
                written.load(Ordering::Relaxed),
            );
            tokio::time::sleep(window).await;
            let secs = window.as_secs_f64();
            println!(
                "{label}: {:.0} B/s from the engine, {:.0} B/s to it ({}s window)",
                (read.load(Ordering::Relaxed) - r0) as f64 / secs,
                (written.load(Ordering::Relaxed) - w0) as f64 / secs,
                window.as_secs()
            );
        }
    };
    measure(format!("idle mirror, {SANDBOXES} running sandboxes")).await;
    let name = SandboxName::parse("b0").expect("a name");
    let (mut frames, reply) = client.subscribe_screen(&name, 1.0);
    reply.await.expect("a screen watch");
    // The first picture comes whole: what is measured is what follows it.
    let first = frames.next().await.expect("the first frame");
    println!(
        "the first frame of a {}x{} screen arrived",
        first.width, first.height
    );
    measure("one screen watched at 1 fps after its first frame (a still picture)".into()).await;
}

/// A stream that counts the bytes through it.
struct Counting<S> {
    inner: S,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl<S> Counting<S> {
    fn new(inner: S) -> Counting<S> {
        Counting {
            inner,
            read: Arc::default(),
            written: Arc::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
