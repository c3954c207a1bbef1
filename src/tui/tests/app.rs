//! The real main loop on a `TestBackend`, over a real `Deck` in temp XDG dirs: what the
//! user sees once the engine has answered, drawn by the same loop, workers and refresh task
//! the terminal gets.

use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;

use super::*;
use crate::config::{Config, ImageProtocol};
use crate::engine::{Deck, EngineHandle};
use crate::tui::app::{Front, Loop, initial_state};
use crate::tui::event::Intervals;
use crate::tui::graphics::Graphics;
use crate::tui::terminal::Tui;
use crate::tui::theme::{ColorSupport, Theme};

fn empty_deck(root: &std::path::Path) -> Deck {
    deck_with(root, "")
}

fn deck_with(root: &std::path::Path, config: &str) -> Deck {
    std::fs::create_dir_all(root.join("config")).expect("the config dir");
    std::fs::write(root.join("config/config.toml"), config).expect("the config");
    let paths = Paths {
        state_dir: root.join("state"),
        config_dir: root.join("config"),
        runtime_dir: root.join("run"),
    };
    let config = Config::load(&paths.config_file()).expect("the default config");
    Deck::with(paths, config).expect("a deck in temp dirs")
}

#[tokio::test(flavor = "current_thread")]
async fn the_real_loop_draws_an_empty_deck_once_the_engine_has_answered() {
    let root = tempfile::tempdir().expect("a temp dir");
    let deck = empty_deck(root.path());
    let front = Front {
        ui: deck.config.ui.clone(),
        notify: deck.config.notify.clone(),
        keymap: Keymap::defaults(),
        image_protocol: ImageProtocol::Halfblocks,
    };
    let engine: Arc<dyn EngineHandle> = Arc::new(deck);
    let info = engine.info();
    let tui = Tui::headless(TestBackend::new(90, 14)).expect("a test terminal");
    let state = initial_state(&info, &front, tui.size().expect("its size"));
    let theme = Theme::new(&front.ui.theme, ColorSupport::TrueColor);
    let graphics = Graphics::halfblocks();
    let mut main = Loop::start(engine, &info, front.notify, (state, theme), tui, graphics);
    let intervals = Intervals {
        monitor: Duration::from_millis(100),
        preview: Some(Duration::from_secs(1)),
        info: None,
        read_terminal: false,
    };
    let mut inputs = main.inputs(intervals);
    let drive = async {
        // The first step draws the frame before anything is known; the step after the
        // records came in draws them.
        loop {
            let was_loaded = main.state.loaded;
            main.step(&mut inputs, intervals).await.expect("a step");
            if was_loaded {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), drive)
        .await
        .expect("the engine answers");
    inputs.stop().await;
    let buffer = main.tui.backend().buffer();
    // The header names this machine and its load: everything under it is the deck's.
    let lines: Vec<String> = (1..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

/// Steps the loop until none comes within `quiet` (or 10 s went by); how many did.
async fn steps_until_quiet(
    main: &mut Loop<TestBackend>,
    inputs: &mut crate::tui::event::Inputs,
    intervals: Intervals,
    quiet: Duration,
) -> usize {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut steps = 0;
    while tokio::time::Instant::now() < give_up
        && tokio::time::timeout(quiet, main.step(inputs, intervals))
            .await
            .is_ok()
    {
        steps += 1;
    }
    steps
}

/// Issue 15: a TUI with nothing changing neither wakes nor draws (no clock ticking when no
/// figure on screen depends on it); a key still draws at once.
#[tokio::test(flavor = "current_thread")]
async fn an_idle_loop_neither_wakes_nor_draws_and_a_key_still_draws() {
    let root = tempfile::tempdir().expect("a temp dir");
    // The figures' round (the header's CPU, which moves with this machine's load) and the
    // monitor far apart: within the test, only the first round of each.
    let deck = deck_with(
        root.path(),
        "[metrics]\ninterval_ms = 3600000\n[monitor]\ninterval_ms = 3600000\n",
    );
    let front = Front {
        ui: deck.config.ui.clone(),
        notify: deck.config.notify.clone(),
        keymap: Keymap::defaults(),
        image_protocol: ImageProtocol::Halfblocks,
    };
    let engine: Arc<dyn EngineHandle> = Arc::new(deck);
    let info = engine.info();
    let tui = Tui::headless(TestBackend::new(90, 14)).expect("a test terminal");
    let state = initial_state(&info, &front, tui.size().expect("its size"));
    let theme = Theme::new(&front.ui.theme, ColorSupport::TrueColor);
    let mut main = Loop::start(
        engine,
        &info,
        front.notify,
        (state, theme),
        tui,
        Graphics::halfblocks(),
    );
    let intervals = Intervals {
        monitor: Duration::from_secs(3600),
        preview: None,
        info: None,
        read_terminal: false,
    };
    let mut inputs = main.inputs(intervals);
    // The first answers (records, figures, usage, agent states) come in and are drawn.
    let started = steps_until_quiet(
        &mut main,
        &mut inputs,
        intervals,
        Duration::from_millis(1500),
    )
    .await;
    assert!(
        started > 0 && main.state.loaded,
        "the first answers came in"
    );
    let frames = main.tui.frames();
    let idle = steps_until_quiet(&mut main, &mut inputs, intervals, Duration::from_secs(4)).await;
    assert_eq!(idle, 0, "woken while nothing changed");
    assert_eq!(main.tui.frames(), frames, "drawn while nothing changed");
    main.send(Action::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('?'),
    )));
    let after_key = steps_until_quiet(
        &mut main,
        &mut inputs,
        intervals,
        Duration::from_millis(300),
    )
    .await;
    inputs.stop().await;
    assert_eq!(after_key, 1, "one batch for the key");
    assert_eq!(main.tui.frames(), frames + 1, "the key's frame");
}

/// An engine of the API that greets, answers `info` with `info` (anything else with null),
/// and sends each event `push` gets, on one end of an in-memory stream.
async fn scripted_engine(
    stream: tokio::io::DuplexStream,
    info: crate::engine::EngineInfo,
    mut push: tokio::sync::mpsc::UnboundedReceiver<crate::api::protocol::Event>,
) {
    use crate::api::protocol::{Command, Request, ServerMessage, Snapshot};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let greeting = [
        ServerMessage::hello(1),
        ServerMessage::Snapshot(Snapshot::default()),
    ];
    for message in greeting {
        if ws.send(Message::text(message.to_text())).await.is_err() {
            return;
        }
    }
    loop {
        let reply = tokio::select! {
            message = ws.next() => {
                let Some(Ok(message)) = message else { return };
                let Ok(request) = serde_json::from_str::<Request>(message.to_text().unwrap_or(""))
                else {
                    continue;
                };
                let result = match request.command {
                    Command::Info {} => serde_json::to_value(&info).unwrap_or_default(),
                    _ => serde_json::Value::Null,
                };
                ServerMessage::Ok { id: request.id, result }
            }
            event = push.recv() => match event {
                Some(event) => ServerMessage::Event { event },
                None => return,
            },
        };
        if ws.send(Message::text(reply.to_text())).await.is_err() {
            return;
        }
    }
}

/// A handle that counts the host's stats asked of it: one per figures round.
struct Counting {
    inner: Arc<dyn EngineHandle>,
    host_reads: std::sync::atomic::AtomicUsize,
}

impl EngineHandle for Counting {
    fn info(&self) -> crate::engine::EngineInfo {
        self.inner.info()
    }
    fn list(&self) -> crate::error::Result<Vec<SandboxRecord>> {
        self.inner.list()
    }
    fn execute(&self, action: crate::engine::Action) -> crate::error::Result<SandboxRecord> {
        self.inner.execute(action)
    }
    fn restart(&self, name: &SandboxName, fresh: bool) -> crate::error::Result<SandboxRecord> {
        self.inner.restart(name, fresh)
    }
    fn start_commands(
        &self,
        records: &[SandboxRecord],
    ) -> std::collections::HashMap<SandboxId, String> {
        self.inner.start_commands(records)
    }
    fn host_stats(&self) -> crate::engine::host_stats::HostStats {
        self.host_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.host_stats()
    }
    fn preview(&self, name: &SandboxName) -> crate::error::Result<String> {
        self.inner.preview(name)
    }
    fn agent_states(&self, records: &[SandboxRecord]) -> Vec<crate::engine::AgentReading> {
        self.inner.agent_states(records)
    }
    fn metrics(
        &self,
        records: &[SandboxRecord],
    ) -> Option<std::collections::HashMap<SandboxId, crate::metrics::SandboxMetrics>> {
        self.inner.metrics(records)
    }
    fn usage_summary(&self) -> crate::engine::usage::UsageSummary {
        self.inner.usage_summary()
    }
    fn attach_command(
        &self,
        name: &SandboxName,
    ) -> crate::error::Result<crate::engine::AttachCommand> {
        self.inner.attach_command(name)
    }
    fn subscribe_screen(
        &self,
        name: &SandboxName,
    ) -> crate::error::Result<Box<dyn crate::engine::ScreenSource>> {
        self.inner.subscribe_screen(name)
    }
    fn wakeups(&self) -> Option<crate::engine::wake::Wakeups> {
        self.inner.wakeups()
    }
    fn pushes_readings(&self) -> bool {
        self.inner.pushes_readings()
    }
}

/// Issue 15: a client of `serve` reads the metrics and the host's stats when the engine
/// pushes them, not on a timer of its own beside the engine's (here 50 ms apart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figures_are_read_when_the_engine_pushes_them_not_on_a_timer() {
    use std::sync::atomic::Ordering::SeqCst;
    let root = tempfile::tempdir().expect("a temp dir");
    let mut info = empty_deck(root.path()).info();
    // Faster than a config may set: a timer would show as many rounds.
    info.metrics_interval_ms = 50;
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (push, pushed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(scripted_engine(theirs, info, pushed));
    let client = crate::api::client::Client::connect(ours)
        .await
        .expect("connected");
    let remote = crate::api::remote::RemoteEngine::new(client, None, 1.0)
        .await
        .expect("the engine's info");
    let counting = Arc::new(Counting {
        inner: Arc::new(remote),
        host_reads: Default::default(),
    });
    let engine: Arc<dyn EngineHandle> = counting.clone();
    let info = engine.info();
    assert_eq!(info.metrics_interval_ms, 50);
    let (_records, records_rx) = tokio::sync::watch::channel(Vec::new());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::tui::workers::start(&engine, &info, &records_rx, &tx, &cancel);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rounds = counting.host_reads.load(SeqCst);
    assert!(
        rounds <= 1,
        "{rounds} figures rounds in 1 s with nothing pushed"
    );
    let host = crate::engine::host_stats::HostStats {
        cpu_percent: Some(42.0),
        ..Default::default()
    };
    push.send(crate::api::protocol::Event::HostStats { host })
        .expect("the engine runs");
    let sampled = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(action) = rx.recv().await {
            if let Action::HostSampled(stats) = action
                && stats.cpu_percent == Some(42.0)
            {
                return;
            }
        }
    })
    .await;
    cancel.cancel();
    assert!(sampled.is_ok(), "the pushed figures were not read");
    let rounds = counting.host_reads.load(SeqCst);
    assert!(rounds <= 2, "{rounds} figures rounds for one push");
}
