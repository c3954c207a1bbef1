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
