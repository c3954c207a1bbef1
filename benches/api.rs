//! The engine's websocket API (issue 12): `cargo bench --bench api [-- --secs N --runs N]`
//! (idle periods of N seconds, default 30; N round trips per command, default 100).
//!
//! A real `sandbox-deck serve` with ten running sandboxes whose agent is a quiet shell, a
//! client speaking the protocol with tokio-tungstenite over the unix socket, and the bytes
//! it receives counted under the websocket (frame headers and pings included):
//! 1. command round trips (`list`, `show`, `status`), against the same action through the
//!    CLI process (`sandbox-deck … --json`), interleaved run by run, and the time of one
//!    `tmux list-panes -a` process (what reconciling cost before the engine kept a control
//!    client for it);
//! 2. an idle connected client: bytes a second on the wire, and the engine's CPU with no
//!    client and with one (`serve` and every descendant, reaped ones included, and our tmux
//!    server), in percent of one core;
//! 3. one subscribed screen at 1 fps on a sandbox's real Xvfb (a solid root and a window of
//!    text): bytes a second while nothing changes and while a small label changes every
//!    second; then 8 clients on the same screen, with the engine's `screen_stats` showing
//!    one capture per period for all of them;
//! 4. the snapshot of 100 registered (stopped) sandboxes: its size, the time from connect to
//!    snapshot, and the `snapshot` command, against `list --json` through the CLI.
//!
//! Everything runs under its own HOME and XDG dirs in a temp dir (so its own tmux socket).
//! `serve` and the X clients are ended by pid, every sandbox with `rm --force`, the tmux
//! server by its socket; the last line says whether any process of ours was left.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_sandbox-deck");
const SANDBOXES: usize = 10;
const REGISTERED: usize = 100;
const WATCHERS: usize = 8;
const CLI_RUNS: usize = 30;
const SCREEN_SECS: u64 = 20;
/// One command per connection at most this often: under the engine's rate limit.
const PACE: Duration = Duration::from_millis(60);

const ROUND_TRIP_TARGET_MS: f64 = 2.0;
const IDLE_BYTES_TARGET: f64 = 200.0;
const IDLE_CPU_TARGET: f64 = 0.5;

type Res<T> = Result<T, String>;

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn main() {
    let secs = arg("--secs", 30);
    let runs = arg("--runs", 100) as usize;
    // Orphans of what we start (the daemonised tmux server, the sandboxes' Xvfbs once
    // `create` exited) become ours to reap.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let root = tempfile::Builder::new()
        .prefix("sda-")
        .tempdir_in(std::env::temp_dir())
        .expect("a temp dir");
    let base = root.path().canonicalize().expect("the temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut started = Started::default();
    let code = match runtime.block_on(run(&base, secs, runs, &mut started)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            1
        }
    };
    started.end();
    for world in [World::running(&base), World::registered(&base)] {
        world.cleanup();
    }
    let left = ours(&base);
    drop(root);
    for pid in &left {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    if left.is_empty() {
        println!("leftover processes: none");
    } else {
        println!("leftover processes (killed now): {left:?}");
    }
    std::process::exit(if left.is_empty() { code } else { 1 });
}

async fn run(base: &Path, secs: u64, runs: usize, started: &mut Started) -> Res<()> {
    let world = World::running(base);
    world.prepare()?;
    let records = world.create_sandboxes()?;
    let tmux = world.tmux_server().ok_or("no tmux server pid")?;
    let engine = started.engine(Engine::start(&world)?);
    println!(
        "{SANDBOXES} running sandboxes (agent: a quiet shell), engine pid {engine}, tmux \
         server pid {tmux}"
    );
    round_trips(&world, runs).await?;
    idle(&world, engine, tmux, Duration::from_secs(secs)).await?;
    screens(&world, &records[0], engine, tmux, started).await?;
    snapshot_of_registered(base, runs, started).await
}

// ---------------------------------------------------------------------------------------
// The worlds: dirs, the CLI, the engine

/// A HOME and XDG dirs of its own under the bench's temp dir.
struct World {
    base: PathBuf,
}

impl World {
    fn running(base: &Path) -> World {
        World {
            base: base.join("running"),
        }
    }

    fn registered(base: &Path) -> World {
        World {
            base: base.join("registered"),
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.base.join("home"))
            .env("XDG_STATE_HOME", self.base.join("state"))
            .env("XDG_CONFIG_HOME", self.base.join("config"))
            .env("XDG_RUNTIME_DIR", self.base.join("run"))
            .env("LANG", "C.UTF-8")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// `sandbox-deck --json ARGS`, its stdout parsed.
    fn json(&self, args: &[&str]) -> Res<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "sandbox-deck {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    fn socket(&self) -> PathBuf {
        self.base.join("run/sandbox-deck/api.sock")
    }

    fn tmux_socket(&self) -> PathBuf {
        self.base.join("run/sandbox-deck/tmux.sock")
    }

    /// The config: the agent is a quiet shell (its state is read like a real agent's).
    fn prepare(&self) -> Res<()> {
        let bin = self.base.join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        let agent = bin.join("claude");
        std::fs::write(&agent, "#!/bin/sh\nexec sh\n").map_err(|e| e.to_string())?;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let config_dir = self.base.join("config/sandbox-deck");
        std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
        std::fs::write(
            config_dir.join("config.toml"),
            format!("[sandbox]\nagent = \"{}\"\n", agent.display()),
        )
        .map_err(|e| e.to_string())
    }

    fn project(&self, name: &str) -> Res<PathBuf> {
        let dir = self.base.join("projects").join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    fn create_sandboxes(&self) -> Res<Vec<Value>> {
        (0..SANDBOXES)
            .map(|i| {
                let project = self.project(&format!("p{i}"))?;
                self.json(&["create", &project.to_string_lossy()])
            })
            .collect()
    }

    fn tmux_server(&self) -> Option<u32> {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(self.tmux_socket())
            .args(["display-message", "-p", "#{pid}"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    fn cleanup(&self) {
        if let Ok(records) = self.json(&["list"]) {
            for r in records.as_array().into_iter().flatten() {
                if let Some(name) = r["name"].as_str()
                    && r["state"] != "stopped"
                {
                    let _ = self.cli(&["rm", "--force", name]).output();
                }
            }
        }
        if self.tmux_socket().exists() {
            let _ = Command::new("tmux")
                .arg("-S")
                .arg(self.tmux_socket())
                .arg("kill-server")
                .stderr(Stdio::null())
                .output();
        }
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: waitpid on any child, without blocking: reaps what we became parent of.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
}

/// What the bench started itself, ended by pid.
#[derive(Default)]
struct Started {
    children: Vec<Child>,
}

impl Started {
    fn engine(&mut self, engine: Engine) -> u32 {
        let pid = engine.0.id();
        self.children.push(engine.0);
        pid
    }

    fn child(&mut self, child: Child) -> u32 {
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Ends one child by pid: SIGTERM, then SIGKILL after 5 s.
    fn stop(&mut self, pid: u32) {
        let Some(at) = self.children.iter().position(|c| c.id() == pid) else {
            return;
        };
        let mut child = self.children.remove(at);
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn end(&mut self) {
        let pids: Vec<u32> = self.children.iter().map(Child::id).collect();
        for pid in pids.into_iter().rev() {
            self.stop(pid);
        }
    }
}

/// `sandbox-deck serve` of a world (its log in the world's dir).
struct Engine(Child);

impl Engine {
    fn start(world: &World) -> Res<Engine> {
        let log = std::fs::File::create(world.base.join("serve.log")).map_err(|e| e.to_string())?;
        let child = world
            .cli(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting serve: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(world.socket()).is_err() {
            if Instant::now() > deadline {
                return Err("the engine did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Engine(child))
    }
}

// ---------------------------------------------------------------------------------------
// The client: tokio-tungstenite on a unix stream whose received bytes are counted

/// A unix stream counting the bytes read from it: what the client gets on the wire.
struct Counted {
    inner: UnixStream,
    received: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.received.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Messages a client received, by kind (`event:host_stats`, `ping`, `screen` …).
#[derive(Default)]
struct Tally {
    kinds: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, message: &Message) {
        let (kind, bytes) = match message {
            Message::Text(text) => (kind_of(text.as_str()), text.len()),
            Message::Binary(b) => ("screen".to_string(), b.len()),
            Message::Ping(p) => ("ping".to_string(), p.len()),
            Message::Pong(p) => ("pong".to_string(), p.len()),
            Message::Close(_) => ("close".to_string(), 0),
            Message::Frame(_) => ("frame".to_string(), 0),
        };
        let entry = self.kinds.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += bytes as u64;
    }

    fn count(&self, kind: &str) -> u64 {
        self.kinds.get(kind).map_or(0, |k| k.0)
    }

    fn describe(&self) -> String {
        if self.kinds.is_empty() {
            return "nothing".into();
        }
        self.kinds
            .iter()
            .map(|(kind, (n, bytes))| format!("{kind} {n}× ({bytes} B)"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn kind_of(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match v["type"].as_str() {
        Some("event") => format!("event:{}", v["event"]["kind"].as_str().unwrap_or("?")),
        Some(t) => t.to_string(),
        None => "?".into(),
    }
}

struct Client {
    ws: WebSocketStream<Counted>,
    received: Arc<AtomicU64>,
    next_id: u64,
    snapshot_bytes: usize,
}

impl Client {
    /// Connected, with hello and snapshot read.
    async fn connect(socket: &Path) -> Res<Client> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connecting to the engine: {e}"))?;
        let received = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: stream,
            received: Arc::clone(&received),
        };
        let (ws, _) = tokio_tungstenite::client_async("ws://localhost/", counted)
            .await
            .map_err(|e| format!("the handshake: {e}"))?;
        let mut client = Client {
            ws,
            received,
            next_id: 0,
            snapshot_bytes: 0,
        };
        let hello = client.text().await?;
        if hello["type"] != "hello" || hello["protocol"] != 1 {
            return Err(format!("not a protocol 1 hello: {hello}"));
        }
        let snapshot = client.next().await?;
        if !matches!(&snapshot, Message::Text(t) if kind_of(t.as_str()) == "snapshot") {
            return Err("no snapshot after the hello".into());
        }
        client.snapshot_bytes = snapshot.len();
        Ok(client)
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    async fn next(&mut self) -> Res<Message> {
        match self.ws.next().await {
            Some(Ok(message)) => Ok(message),
            Some(Err(e)) => Err(format!("reading from the engine: {e}")),
            None => Err("the engine closed the connection".into()),
        }
    }

    /// The next text message, parsed (pings are answered by tungstenite as it reads).
    async fn text(&mut self) -> Res<Value> {
        loop {
            if let Message::Text(text) = self.next().await? {
                return serde_json::from_str(text.as_str()).map_err(|e| e.to_string());
            }
        }
    }

    async fn send(&mut self, command: Value) -> Res<u64> {
        self.next_id += 1;
        let text = json!({"id": self.next_id, "command": command}).to_string();
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("sending: {e}"))?;
        Ok(self.next_id)
    }

    /// The `ok` result of `command`, skipping events and screen frames; the reply's size.
    async fn call(&mut self, command: Value) -> Res<(Value, usize)> {
        let id = self.send(command.clone()).await?;
        loop {
            let Message::Text(text) = self.next().await? else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            if reply["type"] == "event" || reply["id"] != id {
                continue;
            }
            if reply["type"] != "ok" {
                return Err(format!("{command} was answered {reply}"));
            }
            return Ok((reply["result"].clone(), text.len()));
        }
    }

    /// Everything received for `period`, tallied by kind.
    async fn listen(&mut self, period: Duration) -> Res<Tally> {
        let mut tally = Tally::default();
        let until = tokio::time::Instant::now() + period;
        loop {
            match tokio::time::timeout_at(until, self.next()).await {
                Ok(message) => tally.add(&message?),
                Err(_) => return Ok(tally),
            }
        }
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and CPU

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1]
}

/// Median and p99 in milliseconds.
fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// utime, stime, cutime and cstime of a process, in clock ticks (0 when it is gone).
fn ticks(pid: u32, with_reaped: bool) -> u64 {
    sandbox_deck::host::process::stat(pid).map_or(0, |stat| {
        stat.cpu_ticks
            + if with_reaped {
                stat.reaped_children_ticks
            } else {
                0
            }
    })
}

/// Every descendant of `root` alive now.
fn descendants(root: u32) -> Vec<u32> {
    let all = sandbox_deck::host::process::pids();
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            all.iter()
                .filter(|pid| sandbox_deck::host::process::parent(**pid) == Some(parent)),
        );
        at += 1;
    }
    found.remove(0);
    found
}

/// CPU seconds so far of the engine (itself, its live descendants and the reaped ones,
/// which count in their parent's cutime/cstime) and of the tmux server.
#[derive(Clone, Copy)]
struct Cpu {
    engine: f64,
    tmux: f64,
}

impl Cpu {
    fn now(engine: u32, tmux: u32) -> Cpu {
        // SAFETY: sysconf with a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let tree: u64 = std::iter::once(engine)
            .chain(descendants(engine))
            .map(|pid| ticks(pid, true))
            .sum();
        Cpu {
            engine: tree as f64 / hz,
            tmux: ticks(tmux, false) as f64 / hz,
        }
    }

    /// Percent of one core from `self` to `later` over `period`.
    fn percent_until(&self, later: &Cpu, period: Duration) -> (f64, f64) {
        let pct = |s: f64| 100.0 * s / period.as_secs_f64();
        (pct(later.engine - self.engine), pct(later.tmux - self.tmux))
    }
}

fn cli_ms(world: &World, args: &[&str]) -> Res<f64> {
    let started = Instant::now();
    let out = world.cli(args).output().map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!("sandbox-deck {}: failed", args.join(" ")));
    }
    Ok(ms)
}

// ---------------------------------------------------------------------------------------
// 1. Round trips

async fn round_trips(world: &World, runs: usize) -> Res<()> {
    let mut client = Client::connect(&world.socket()).await?;
    let cases: [(&str, Value, &[&str]); 4] = [
        ("list", json!({"cmd": "list"}), &["--json", "list"]),
        (
            "show p0",
            json!({"cmd": "show", "name": "p0"}),
            &["--json", "show", "p0"],
        ),
        ("status", json!({"cmd": "status"}), &["--json", "status"]),
        (
            "status p0",
            json!({"cmd": "status", "name": "p0"}),
            &["--json", "status", "p0"],
        ),
    ];
    println!(
        "\n1. command round trip over the unix socket ({runs} runs each), against the CLI \
         process ({CLI_RUNS} runs each), interleaved:"
    );
    for (label, command, cli) in cases {
        // Warm-up: the first look attaches tmux control clients.
        client.call(command.clone()).await?;
        cli_ms(world, cli)?;
        let mut api = Vec::with_capacity(runs);
        let mut process = Vec::with_capacity(CLI_RUNS);
        for i in 0..runs {
            let started = Instant::now();
            client.call(command.clone()).await?;
            api.push(started.elapsed().as_secs_f64() * 1000.0);
            if i % (runs / CLI_RUNS).max(1) == 0 && process.len() < CLI_RUNS {
                process.push(cli_ms(world, cli)?);
            }
            // Under the engine's rate limit (20 messages a second after a burst).
            tokio::time::sleep_until((started + PACE).into()).await;
        }
        let (median, p99) = stats(api);
        let (cli_median, cli_p99) = stats(process);
        println!(
            "  {label:<10} API median {median:7.3} ms  p99 {p99:7.3} ms | CLI `{}` median \
             {cli_median:7.1} ms  p99 {cli_p99:7.1} ms | {:5.1}x faster  (target median <= \
             {ROUND_TRIP_TARGET_MS} ms: {})",
            cli.join(" "),
            cli_median / median,
            verdict(median <= ROUND_TRIP_TARGET_MS)
        );
    }
    client.close().await;
    let survey = survey_ms(world)?;
    println!(
        "  (`list`, `show` and `status NAME` reconcile the registry with tmux over the engine's \
         kept control client; the CLI spawns one `tmux list-panes -a` process instead, which \
         takes {survey:.2} ms median here; `status` is answered from the engine's last reading)"
    );
    Ok(())
}

/// The median time of the tmux process `list` and `show` start to reconcile.
fn survey_ms(world: &World) -> Res<f64> {
    let mut samples = Vec::with_capacity(CLI_RUNS);
    for _ in 0..CLI_RUNS {
        let started = Instant::now();
        let out = Command::new("tmux")
            .arg("-S")
            .arg(world.tmux_socket())
            .args([
                "list-panes",
                "-a",
                "-F",
                "#{session_name}\t#{pane_pid}\t#{pane_dead}",
            ])
            .output()
            .map_err(|e| format!("tmux: {e}"))?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err("tmux list-panes failed".into());
        }
    }
    Ok(stats(samples).0)
}

// ---------------------------------------------------------------------------------------
// 2. An idle client

async fn idle(world: &World, engine: u32, tmux: u32, period: Duration) -> Res<()> {
    println!(
        "\n2. idle, {SANDBOXES} running sandboxes, {}s each way:",
        period.as_secs()
    );
    // Let the round trips' work settle first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = Cpu::now(engine, tmux);
    tokio::time::sleep(period).await;
    let (alone, tmux_alone) = before.percent_until(&Cpu::now(engine, tmux), period);
    let mut client = Client::connect(&world.socket()).await?;
    let snapshot = client.snapshot_bytes;
    let (bytes_before, before) = (client.received(), Cpu::now(engine, tmux));
    let tally = client.listen(period).await?;
    let (engine_pct, tmux_pct) = before.percent_until(&Cpu::now(engine, tmux), period);
    let per_second = (client.received() - bytes_before) as f64 / period.as_secs_f64();
    client.close().await;
    println!("  no client:       engine {alone:.3} % of a core, tmux server {tmux_alone:.3} %");
    println!(
        "  one idle client: engine {engine_pct:.3} % of a core, tmux server {tmux_pct:.3} %; \
         engine + tmux {:.3} % (target <= {IDLE_CPU_TARGET} %: {}); with/without a client \
         {:.2}x",
        engine_pct + tmux_pct,
        verdict(engine_pct + tmux_pct <= IDLE_CPU_TARGET),
        engine_pct / alone.max(f64::EPSILON)
    );
    println!(
        "  on the wire: {per_second:.1} B/s (target <= {IDLE_BYTES_TARGET} B/s: {}); received: \
         {}; the snapshot before it: {snapshot} B",
        verdict(per_second <= IDLE_BYTES_TARGET),
        tally.describe()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Screens

/// A sandbox's own Xvfb, reached through its cookie.
struct Display {
    number: u64,
    cookie: PathBuf,
}

impl Display {
    fn of(world: &World, record: &Value) -> Res<Display> {
        let number = record["display"]
            .as_u64()
            .ok_or("the sandbox has no display")?;
        let id = record["id"].as_str().ok_or("the record has no id")?;
        let cookie = world
            .base
            .join("run/sandbox-deck/sandboxes")
            .join(id)
            .join("Xauthority");
        Ok(Display { number, cookie })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", format!(":{}", self.number))
            .env("XAUTHORITY", &self.cookie)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// A mostly static page: a solid root and a window of text.
    fn paint(&self, started: &mut Started) -> Res<()> {
        let status = self
            .command("xsetroot")
            .args(["-solid", "#336699"])
            .status()
            .map_err(|e| format!("xsetroot: {e}"))?;
        if !status.success() {
            return Err("xsetroot failed".into());
        }
        let text = "A mostly static page.\n".repeat(12);
        let page = self
            .command("xmessage")
            .args(["-geometry", "+200+150", &text])
            .spawn()
            .map_err(|e| format!("xmessage: {e}"))?;
        started.child(page);
        Ok(())
    }

    /// A small label whose text changes: one xmessage replaced by the next.
    fn label(&self, started: &mut Started, text: &str) -> Res<u32> {
        let label = self
            .command("xmessage")
            .args(["-geometry", "+900+600", text])
            .spawn()
            .map_err(|e| format!("xmessage: {e}"))?;
        Ok(started.child(label))
    }
}

/// Changes the label every second for `period`, while the clients are read.
async fn ticking(
    display: &Display,
    started: &mut Started,
    clients: &mut [Client],
    period: Duration,
) -> Res<Vec<Tally>> {
    let mut tallies: Vec<Tally> = clients.iter().map(|_| Tally::default()).collect();
    let began = Instant::now();
    let mut label = None;
    let mut tick = 0u64;
    while began.elapsed() < period {
        if let Some(old) = label.take() {
            started.stop(old);
        }
        tick += 1;
        label = Some(display.label(started, &format!("tick {tick}"))?);
        let second = Duration::from_secs(1);
        let reads = clients.iter_mut().map(|c| c.listen(second));
        for (tally, got) in tallies
            .iter_mut()
            .zip(futures_util::future::join_all(reads).await)
        {
            for (kind, (n, bytes)) in got?.kinds {
                let entry = tally.kinds.entry(kind).or_default();
                entry.0 += n;
                entry.1 += bytes;
            }
        }
    }
    if let Some(old) = label {
        started.stop(old);
    }
    Ok(tallies)
}

async fn screen_stats(client: &mut Client) -> Res<(u64, u64, u64)> {
    let (stats, _) = client.call(json!({"cmd": "screen_stats"})).await?;
    let watch = &stats[0];
    let number = |k: &str| watch[k].as_u64().unwrap_or(0);
    Ok((number("subscribers"), number("captures"), number("frames")))
}

async fn subscribe(client: &mut Client, name: &str) -> Res<()> {
    client
        .call(json!({"cmd": "subscribe_screen", "name": name, "fps": 1}))
        .await
        .map(drop)
}

async fn screens(
    world: &World,
    record: &Value,
    engine: u32,
    tmux: u32,
    started: &mut Started,
) -> Res<()> {
    let name = record["name"].as_str().ok_or("a record without a name")?;
    let display = Display::of(world, record)?;
    display.paint(started)?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let period = Duration::from_secs(SCREEN_SECS);
    println!(
        "\n3. the screen of {name} (1280x800, a solid root and a window of text), subscribed at \
         1 fps, {SCREEN_SECS}s each:"
    );
    let mut one = Client::connect(&world.socket()).await?;
    subscribe(&mut one, name).await?;
    // The first frame comes at once; what follows is the steady state.
    let first = one.listen(Duration::from_secs(2)).await?;
    let at = one.received();
    let tally = one.listen(period).await?;
    let bytes = one.received() - at;
    println!(
        "  static page:                      {:8.1} B/s  (the first frame {} B; then {} screen \
         frames; all received: {})",
        bytes as f64 / period.as_secs_f64(),
        first.kinds.get("screen").map_or(0, |k| k.1),
        tally.count("screen"),
        tally.describe()
    );
    let cpu = Cpu::now(engine, tmux);
    let at = one.received();
    let tallies = ticking(&display, started, std::slice::from_mut(&mut one), period).await?;
    let (one_pct, _) = cpu.percent_until(&Cpu::now(engine, tmux), period);
    let (frames, frame_bytes) = tallies[0].kinds.get("screen").copied().unwrap_or_default();
    println!(
        "  a label changing every second:    {:8.1} B/s  ({frames} frames, {:.0} B each on \
         average); engine {one_pct:.2} % of a core",
        (one.received() - at) as f64 / period.as_secs_f64(),
        frame_bytes as f64 / frames.max(1) as f64,
    );
    watchers(world, name, &display, engine, tmux, one_pct, one, started).await
}

/// 8 clients on one screen: one capture per period for all of them.
#[allow(clippy::too_many_arguments)]
async fn watchers(
    world: &World,
    name: &str,
    display: &Display,
    engine: u32,
    tmux: u32,
    one_pct: f64,
    one: Client,
    started: &mut Started,
) -> Res<()> {
    let period = Duration::from_secs(SCREEN_SECS);
    let mut clients = vec![one];
    for _ in 1..WATCHERS {
        let mut client = Client::connect(&world.socket()).await?;
        subscribe(&mut client, name).await?;
        clients.push(client);
    }
    let (subscribers, captures_before, frames_before) = screen_stats(&mut clients[0]).await?;
    let cpu = Cpu::now(engine, tmux);
    let began = Instant::now();
    let tallies = ticking(display, started, &mut clients, period).await?;
    let elapsed = began.elapsed();
    let (pct, _) = cpu.percent_until(&Cpu::now(engine, tmux), period);
    let (_, captures_after, frames_after) = screen_stats(&mut clients[0]).await?;
    let captures = captures_after - captures_before;
    let frames = frames_after - frames_before;
    let received: Vec<u64> = tallies.iter().map(|t| t.count("screen")).collect();
    println!(
        "  {WATCHERS} clients on the same screen ({subscribers} subscribers in screen_stats): \
         {captures} captures in {:.1} s ({:.2} a second, {})",
        elapsed.as_secs_f64(),
        captures as f64 / elapsed.as_secs_f64(),
        verdict(captures as f64 <= elapsed.as_secs_f64() + 2.0)
    );
    println!(
        "    {frames} changed frames encoded once, frames received per client: {received:?}; \
         engine {pct:.2} % of a core vs {one_pct:.2} % with one client ({:.2}x)",
        pct / one_pct.max(f64::EPSILON)
    );
    for client in clients {
        client.close().await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. The snapshot of 100 sandboxes

/// A stopped managed record in the registry's own format (see src/sandbox.rs).
fn stopped_record(i: usize, project: &Path) -> Value {
    let name = format!("r{i:03}");
    json!({
        "name": name,
        "id": format!("{:016x}", 0x5d5e_0000_0000_0000_u64 + i as u64),
        "backend": "bubblewrap",
        "state": "stopped",
        "project_dir": project,
        "display": null,
        "tmux_session": name,
        "network": true,
        "managed": true,
        "created_at": "2026-01-01T12:00:00Z",
        "exit_status": 0,
        "reason": null,
        "payload": { "kind": "shell", "command": ["sleep", "600"] },
        "gh_token": false,
        "started_at": null,
        "agent_ran": false,
        "xvfb": null,
        "launcher": null,
        "profile": null,
    })
}

fn write_registry(world: &World) -> Res<()> {
    let project = world.project("shared")?;
    let file = json!({
        "schema": 1,
        "sandboxes": (0..REGISTERED).map(|i| stopped_record(i, &project)).collect::<Vec<_>>(),
    });
    let dir = world.base.join("state/sandbox-deck");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("registry.json"), text).map_err(|e| e.to_string())
}

async fn snapshot_of_registered(base: &Path, runs: usize, started: &mut Started) -> Res<()> {
    let world = World::registered(base);
    write_registry(&world)?;
    let listed = world.json(&["list"])?;
    if listed.as_array().map(Vec::len) != Some(REGISTERED) {
        return Err("the registry's records were not listed: the format drifted?".into());
    }
    let engine = started.engine(Engine::start(&world)?);
    let cli = ["--json", "list"];
    let list_bytes = world
        .cli(&cli)
        .output()
        .map_err(|e| e.to_string())?
        .stdout
        .len();
    let (mut connects, mut commands, mut process) = (Vec::new(), Vec::new(), Vec::new());
    let (mut snapshot_bytes, mut reply_bytes) = (0, 0);
    for i in 0..runs.min(100) {
        let began = Instant::now();
        let mut client = Client::connect(&world.socket()).await?;
        connects.push(began.elapsed().as_secs_f64() * 1000.0);
        snapshot_bytes = client.snapshot_bytes;
        let began = Instant::now();
        let (snapshot, bytes) = client.call(json!({"cmd": "snapshot"})).await?;
        commands.push(began.elapsed().as_secs_f64() * 1000.0);
        reply_bytes = bytes;
        if snapshot["sandboxes"].as_array().map(Vec::len) != Some(REGISTERED) {
            return Err(format!("the snapshot does not hold {REGISTERED} sandboxes"));
        }
        client.close().await;
        if i % 3 == 0 && process.len() < CLI_RUNS {
            process.push(cli_ms(&world, &cli)?);
        }
    }
    started.stop(engine);
    let (connect, connect_p99) = stats(connects);
    let (command, command_p99) = stats(commands);
    let (cli_median, _) = stats(process);
    println!("\n4. the snapshot of {REGISTERED} registered (stopped) sandboxes:");
    println!(
        "  size: {snapshot_bytes} B ({:.1} KiB; the `snapshot` reply {reply_bytes} B); `list \
         --json` prints {list_bytes} B",
        snapshot_bytes as f64 / 1024.0
    );
    println!(
        "  connect, handshake, hello and snapshot: median {connect:.2} ms, p99 \
         {connect_p99:.2} ms; the `snapshot` command: median {command:.2} ms, p99 \
         {command_p99:.2} ms; `sandbox-deck --json list`: median {cli_median:.1} ms ({:.1}x \
         the connect)",
        cli_median / connect
    );
    Ok(())
}

/// Processes whose command line names our temp dir (Xvfb's -auth, tmux's socket, bwrap).
fn ours(base: &Path) -> Vec<u32> {
    let marker = base.to_string_lossy().into_owned();
    let me = std::process::id();
    sandbox_deck::host::process::pids()
        .into_iter()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .collect()
}
