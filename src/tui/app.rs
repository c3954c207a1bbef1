//! The main loop: wait for an action, feed it and everything queued behind it to the
//! reducer, run the effects, and draw once if anything changed.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::action::{Action, Effect};
use super::effects::Runner;
use super::event::{self, Inputs, Intervals};
use super::graphics::{Graphics, ImageSupport};
use super::keymap::Keymap;
use super::state::{Settings, State};
use super::terminal::{self, Tui};
use super::theme::{ColorSupport, Theme};
use super::update::update;
use super::workers::Workers;
use crate::config::ImageProtocol;
use crate::engine::Deck;

pub async fn run(deck: Deck, keymap: Keymap, image_protocol: ImageProtocol) -> anyhow::Result<()> {
    let deck = Arc::new(deck);
    let theme = Theme::new(&deck.config.ui.theme, ColorSupport::detect());
    let mouse = deck.config.ui.mouse && !terminal::under_mosh();
    let intervals = Intervals {
        monitor: Duration::from_millis(deck.config.monitor.interval_ms),
        preview: Duration::from_millis(deck.config.ui.preview_interval_ms),
    };
    terminal::install_panic_hook();
    let mut tui = Tui::enter(mouse).context("setting up the terminal")?;
    let settings = Settings {
        agent: deck.config.sandbox.agent.clone(),
        default_network: deck.config.sandbox.network,
        paths: deck.paths.clone(),
        start_dir: std::env::current_dir().unwrap_or_else(|_| "/".into()),
        home: std::env::var("HOME").ok(),
        default_options: deck.config.bubblewrap.options(),
        bell: deck.config.notify.bell,
        confirm: deck.config.ui.confirm,
        screen_fps: deck.config.ui.screen_fps,
        screen_fullscreen_fps: deck.config.ui.screen_fullscreen_fps,
        // Until the terminal has said what it can show; nothing is drawn as an image before.
        images: ImageSupport::halfblocks(),
    };
    let mut state = State::new(keymap, settings, chrono::Utc::now(), tui.size()?);
    // The first frame goes out before the terminal is asked anything: a terminal slow to
    // answer (or silent) must not leave the user looking at a blank screen.
    tui.draw(&state, &theme).context("drawing")?;
    // The answer comes in on stdin: ask now, before the input reader starts. Keys typed
    // meanwhile are handed back and go first.
    let (graphics, images, typed) = Graphics::detect(image_protocol);
    state.settings.images = images;
    let (tx, rx) = mpsc::unbounded_channel();
    for key in typed {
        // Cannot fail: `rx` is right here.
        let _ = tx.send(Action::Key(key));
    }
    let runner = Runner::new(Arc::clone(&deck), graphics, tx.clone());
    let workers = Workers::start(Arc::clone(&deck), runner.records(), tx.clone());
    let result = Loop {
        state,
        theme,
        runner,
        deck,
        tx,
        intervals,
    }
    .run(&mut tui, rx)
    .await;
    workers.stop();
    tui.leave().context("restoring the terminal")?;
    result
}

struct Loop {
    state: State,
    theme: Theme,
    runner: Runner,
    deck: Arc<Deck>,
    tx: UnboundedSender<Action>,
    intervals: Intervals,
}

impl Loop {
    async fn run(mut self, tui: &mut Tui, mut rx: UnboundedReceiver<Action>) -> anyhow::Result<()> {
        event::watch_signals(&self.tx);
        let mut inputs = Inputs::start(&self.tx, self.intervals);
        loop {
            if self.state.dirty {
                tui.draw(&self.state, &self.theme).context("drawing")?;
                self.state.dirty = false;
            }
            let Some(first) = rx.recv().await else {
                break;
            };
            let mut effects = update(&mut self.state, first);
            // Everything already queued goes in before the next frame: one draw per batch.
            while let Ok(action) = rx.try_recv() {
                effects.extend(update(&mut self.state, action));
            }
            for effect in effects {
                match effect {
                    Effect::Quit => {
                        inputs.stop().await;
                        return Ok(());
                    }
                    Effect::Attach(name) => {
                        inputs.stop().await;
                        let result = self.attach(tui, &name).await?;
                        inputs = Inputs::start(&self.tx, self.intervals);
                        // Our own loop holds the receiver: it cannot be gone.
                        let _ = self.tx.send(Action::Attached { name, result });
                    }
                    Effect::Bell => {
                        // A terminal set to ignore the bell just ignores it.
                        let _ = tui.bell();
                    }
                    Effect::CopyToClipboard(text) => {
                        // A terminal without OSC 52 just ignores it.
                        let _ = tui.copy(&text);
                    }
                    other => self.runner.run(other),
                }
            }
        }
        inputs.stop().await;
        Ok(())
    }

    /// Gives the terminal to `tmux attach` (or `switch-client`) and takes it back after.
    /// A terminal that cannot be taken back ends the TUI; a failed attach is only reported.
    async fn attach(&mut self, tui: &mut Tui, name: &str) -> anyhow::Result<Result<(), String>> {
        tui.suspend().context("handing the terminal over")?;
        {
            // A courtesy line: a terminal that cannot take it cannot take tmux either, and
            // attaching says so.
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "sandbox-deck: attaching to {name}. C-q (or the tmux prefix, then d) comes back."
            );
            let _ = out.flush();
        }
        let deck = Arc::clone(&self.deck);
        let owned = name.to_owned();
        let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut command = deck.attach_command(&owned).map_err(|e| e.to_string())?;
            let status = command.status().map_err(|e| format!("running tmux: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("tmux attach ended with {status}"))
            }
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        tui.resume().context("taking the terminal back")?;
        if let Ok((width, height)) = tui.size() {
            self.state.size = (width, height);
        }
        self.state.dirty = true;
        Ok(outcome)
    }
}
