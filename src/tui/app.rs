//! The main loop: wait for an action, feed it and everything queued behind it to the
//! reducer, run the effects, and draw once if anything changed. Generic over the ratatui
//! backend, so a test runs this very loop on a `TestBackend`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ratatui::backend::Backend;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::action::{Action, Effect};
use super::clock;
use super::effects::Runner;
use super::event::{self, Inputs, Intervals};
use super::graphics::{Graphics, ImageSupport};
use super::keymap::Keymap;
use super::layout::Tab;
use super::state::{Settings, State};
use super::terminal::{self, Tui};
use super::theme::{ColorSupport, Theme};
use super::update::update;
use super::workers;
use crate::config::{ImageProtocol, NotifyConfig, UiConfig};
use crate::engine::{EngineHandle, EngineInfo};
use crate::sandbox::SandboxName;

/// The front end's own settings (its user's config): how it looks, which keys do what,
/// how it tells about an agent that waits. What it knows of the engine comes from the
/// engine handle.
pub struct Front {
    pub ui: UiConfig,
    pub notify: NotifyConfig,
    pub keymap: Keymap,
    pub image_protocol: ImageProtocol,
}

pub async fn run(engine: Arc<dyn EngineHandle>, front: Front) -> anyhow::Result<()> {
    let info = engine.info();
    let theme = Theme::new(&front.ui.theme, ColorSupport::detect());
    let mouse = front.ui.mouse && !terminal::under_mosh();
    terminal::install_panic_hook();
    let mut tui = Tui::enter(mouse).context("setting up the terminal")?;
    let image_protocol = front.image_protocol;
    let mut state = initial_state(&info, &front, tui.size()?);
    if !engine.files_are_here() {
        // Another host's sandboxes: our working dir and home mean nothing there. Of
        // several hosts, a new sandbox's dir names its host (`host:/path`): the first one.
        state.settings.start_dir = match engine.links().first() {
            Some(link) => format!("{}:/", link.host).into(),
            None => "/".into(),
        };
        state.settings.home = None;
    }
    // The first frame goes out before the terminal is asked anything: a terminal slow to
    // answer (or silent) must not leave the user looking at a blank screen.
    tui.draw(&state, &theme).context("drawing")?;
    // The answer comes in on stdin: ask now, before the input reader starts. Keys typed
    // meanwhile are handed back and go first.
    let (graphics, images, typed) = Graphics::detect(image_protocol);
    let intervals = intervals(&engine, &info, &front.ui);
    let main = Loop::start(engine, &info, front.notify, (state, theme), tui, graphics);
    main.send(Action::ImagesDetected(images));
    for key in typed {
        main.send(Action::Key(key));
    }
    main.run(intervals).await
}

/// The timers the terminal's loop runs. An engine that pushes (a client of `serve`) says
/// when the records and the preview change: their timers are then a safety net or none.
fn intervals(engine: &Arc<dyn EngineHandle>, info: &EngineInfo, ui: &UiConfig) -> Intervals {
    let pushed = workers::pushed(engine.as_ref());
    Intervals {
        monitor: if pushed {
            workers::PUSHED_SAFETY_NET
        } else {
            Duration::from_millis(info.monitor_interval_ms)
        },
        preview: (!pushed).then(|| Duration::from_millis(ui.preview_interval_ms)),
        info: pushed.then(|| Duration::from_millis(info.monitor_interval_ms)),
        read_terminal: true,
    }
}

/// The state before anything is loaded: settings from the engine's info and the front
/// end's config.
pub fn initial_state(info: &EngineInfo, front: &Front, size: (u16, u16)) -> State {
    let settings = Settings {
        agent: info.agent.clone(),
        default_network: info.default_network,
        paths: info.paths(),
        start_dir: std::env::current_dir().unwrap_or_else(|_| "/".into()),
        home: std::env::var("HOME").ok(),
        default_options: info.default_options.clone(),
        bell: front.notify.bell,
        confirm: front.ui.confirm,
        screen_fps: front.ui.screen_fps,
        screen_fullscreen_fps: front.ui.screen_fullscreen_fps,
        // Until the terminal has said what it can show; nothing is drawn as an image before.
        images: ImageSupport::halfblocks(),
    };
    State::new(front.keymap.clone(), settings, chrono::Utc::now(), size)
}

pub struct Loop<B: Backend> {
    pub tui: Tui<B>,
    pub state: State,
    theme: Theme,
    runner: Runner,
    engine: Arc<dyn EngineHandle>,
    tx: UnboundedSender<Action>,
    rx: UnboundedReceiver<Action>,
    /// Ends the refresh task and the workers.
    cancel: CancellationToken,
    /// When the records were last asked for (the Info tab's poll counts from it).
    refreshed: tokio::time::Instant,
}

/// What one batch of actions asked of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

impl<B: Backend> Loop<B> {
    /// Starts the refresh task and the workers (the terminal's inputs and timers start in
    /// [`Loop::run`]).
    pub fn start(
        engine: Arc<dyn EngineHandle>,
        info: &EngineInfo,
        notify: NotifyConfig,
        (state, theme): (State, Theme),
        tui: Tui<B>,
        graphics: Graphics,
    ) -> Loop<B> {
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let (records, records_rx) = watch::channel(Vec::new());
        let runner = Runner::start(
            Arc::clone(&engine),
            graphics,
            notify,
            tx.clone(),
            records,
            cancel.clone(),
        );
        workers::start(&engine, info, &records_rx, &tx, &cancel);
        Loop {
            tui,
            state,
            theme,
            runner,
            engine,
            tx,
            rx,
            cancel,
            refreshed: tokio::time::Instant::now(),
        }
    }

    pub fn send(&self, action: Action) {
        // The receiver lives as long as the loop.
        let _ = self.tx.send(action);
    }

    /// The terminal's inputs and the timers, feeding this loop.
    pub fn inputs(&self, intervals: Intervals) -> Inputs {
        Inputs::start(&self.tx, intervals)
    }

    /// Runs until the user quits, then restores the terminal.
    pub async fn run(mut self, intervals: Intervals) -> anyhow::Result<()> {
        event::watch_signals(&self.tx);
        let mut inputs = self.inputs(intervals);
        let result = loop {
            match self.step(&mut inputs, intervals).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        inputs.stop().await;
        self.cancel.cancel();
        self.tui.leave().context("restoring the terminal")?;
        result
    }

    /// Draws if something changed, then waits for an action (or the next time the clock
    /// changes a figure on screen) and takes it with everything queued behind it: one draw
    /// per batch, and no wake-up while nothing is due.
    pub async fn step(
        &mut self,
        inputs: &mut Inputs,
        intervals: Intervals,
    ) -> anyhow::Result<Flow> {
        if self.state.dirty {
            self.tui.draw(&self.state, &self.theme).context("drawing")?;
            self.state.dirty = false;
        }
        let due = clock::next_change(&self.state);
        let poll = intervals
            .info
            .filter(|_| self.state.tab == Tab::Info)
            .map(|every| self.refreshed + every);
        let first = tokio::select! {
            action = self.rx.recv() => match action {
                Some(action) => action,
                None => return Ok(Flow::Quit),
            },
            () = sleep_until(due) => Action::Tick(chrono::Utc::now()),
            () = at(poll) => Action::MonitorTick,
        };
        // The clock no longer ticks every second: what an action reckons from now (a
        // flash's end) needs the time it came at.
        self.state.now = chrono::Utc::now();
        let mut effects = update(&mut self.state, first);
        while let Ok(action) = self.rx.try_recv() {
            effects.extend(update(&mut self.state, action));
        }
        for effect in effects {
            match effect {
                Effect::Quit => return Ok(Flow::Quit),
                Effect::Attach(name) => {
                    std::mem::replace(inputs, Inputs::none()).stop().await;
                    let result = self.attach(&name).await?;
                    *inputs = Inputs::start(&self.tx, intervals);
                    self.send(Action::Attached { name, result });
                }
                Effect::Bell => {
                    // A terminal set to ignore the bell just ignores it.
                    let _ = self.tui.bell();
                }
                Effect::CopyToClipboard(text) => {
                    // A terminal without OSC 52 just ignores it.
                    let _ = self.tui.copy(&text);
                }
                other => {
                    if matches!(other, Effect::Refresh) {
                        self.refreshed = tokio::time::Instant::now();
                    }
                    self.runner.run(other);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Gives the terminal to `tmux attach` (or `switch-client`) and takes it back after.
    /// A terminal that cannot be taken back ends the TUI; a failed attach is only reported.
    async fn attach(&mut self, name: &SandboxName) -> anyhow::Result<Result<(), String>> {
        self.tui.suspend().context("handing the terminal over")?;
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
        let engine = Arc::clone(&self.engine);
        let owned = name.clone();
        let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let attach = engine.attach_command(&owned).map_err(|e| e.to_string())?;
            let status = attach
                .command()
                .status()
                .map_err(|e| format!("running tmux: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("tmux attach ended with {status}"))
            }
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        self.tui.resume().context("taking the terminal back")?;
        // What the terminal showed is gone: the reducer learns its size again, and redraws.
        if let Ok((width, height)) = self.tui.size() {
            self.send(Action::Resize(width, height));
        }
        Ok(outcome)
    }
}

/// Sleeps until `when`; for ever without one.
async fn at(when: Option<tokio::time::Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until the wall-clock time `due`; for ever without one.
async fn sleep_until(due: Option<chrono::DateTime<chrono::Utc>>) {
    let Some(due) = due else {
        return std::future::pending().await;
    };
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
}

impl<B: Backend> Drop for Loop<B> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
