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
        preview: Duration::from_secs(1),
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
