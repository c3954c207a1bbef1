//! The control center (issue 4): a keyboard-driven TUI over the `Deck` handle.
//!
//! Flow: every input and every finished task is an [`action::Action`] on one channel;
//! [`update::update`] turns it into state changes and [`action::Effect`]s without any I/O;
//! [`effects`] and [`app`] carry the effects out and report back as actions; [`views`] draw
//! the state, once per batch of actions and only when something changed.

pub mod action;
pub mod app;
pub mod clock;
pub mod command;
pub mod effects;
pub mod event;
pub mod feed;
pub mod filter;
pub mod form;
pub mod graphics;
pub mod keymap;
pub mod layout;
pub mod live;
pub mod output;
pub mod palette;
pub mod sort;
pub mod state;
pub mod terminal;
pub mod terminal_query;
pub mod theme;
pub mod update;
pub mod views;
pub mod widgets;
pub mod workers;

#[cfg(test)]
mod tests;

use anyhow::Context as _;

use std::sync::Arc;

use crate::api::client::Client;
use crate::api::remote::{Reconnect, RemoteEngine, deck_error};
use crate::config::{Config, ImageProtocol, NotifyConfig};
use crate::engine::EngineHandle;
use crate::engine::service::{self, Starter};
use crate::error::{DeckError, Result};
use crate::paths::Paths;
use keymap::Keymap;

/// Opens the TUI as a client of this user's engine (`sandbox-deck serve`, started detached
/// if none answers) and returns when the user quits. `image_protocol` (`--image-protocol`)
/// wins over `ui.image_protocol`.
///
/// The one place that knows where the engine is: from here on the TUI holds the handle.
/// An engine that cannot be started is an error naming its socket and log, never an engine
/// of our own in this process: two engines on one registry would each run the monitor and
/// `notify.command`, and disagree (docs/service.md).
pub fn run(image_protocol: Option<ImageProtocol>) -> anyhow::Result<()> {
    let Setup {
        paths,
        config,
        front,
        screen_fps,
        runtime,
    } = setup(image_protocol)?;
    let starter = Starter::new(&paths, &config)?;
    let first = service::connect_or_start(&starter)?;
    let reconnect = reconnect(starter, runtime.handle().clone());
    let engine = runtime.block_on(async {
        let client = client_on(first).await?;
        RemoteEngine::new(client, Some(reconnect), screen_fps).await
    })?;
    let engine: Arc<dyn EngineHandle> = Arc::new(engine);
    // The terminal is restored when `app::run` returns. Dropping the runtime then waits for
    // engine calls still running (a stop, a create): they finish rather than stop halfway.
    runtime.block_on(app::run(engine, front))
}

/// What every front end starts from: this user's paths and config, this terminal's side, the
/// screen rate to ask engines for, and the runtime the engine handle runs on.
struct Setup {
    paths: Paths,
    config: Config,
    front: app::Front,
    screen_fps: f64,
    runtime: tokio::runtime::Runtime,
}

fn setup(image_protocol: Option<ImageProtocol>) -> anyhow::Result<Setup> {
    let paths = Paths::from_env()?;
    let config = Config::load_system_and_user(&Paths::system_config_file(), &paths.config_file())?;
    let front = front(&paths, &config, image_protocol)?;
    let screen_fps = config.ui.screen_fps.max(config.ui.screen_fullscreen_fps);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(Setup {
        paths,
        config,
        front,
        screen_fps,
        runtime,
    })
}

/// This terminal's side: the user's config, keys and image protocol. A broken keymap is
/// reported before the screen is taken over.
fn front(
    paths: &Paths,
    config: &Config,
    image_protocol: Option<ImageProtocol>,
) -> anyhow::Result<app::Front> {
    Ok(app::Front {
        image_protocol: image_protocol.unwrap_or(config.ui.image_protocol),
        ui: config.ui.clone(),
        // The engine runs `notify.command`, once per event however many TUIs are open;
        // the bell is this terminal's.
        notify: NotifyConfig {
            bell: config.notify.bell,
            command: Vec::new(),
        },
        keymap: Keymap::load(&paths.keymap_file())?,
    })
}

/// The same TUI on another host's engine (`sandbox-deck mirror HOST`, through ssh, or a
/// tunnel's `ws://` end): this
/// laptop's config, keys and terminal, that host's sandboxes.
pub fn mirror(
    target: crate::remote::target::Target,
    options: crate::remote::connection::ConnectOptions,
    image_protocol: Option<ImageProtocol>,
) -> anyhow::Result<()> {
    let Setup {
        front,
        screen_fps,
        runtime,
        ..
    } = setup(image_protocol)?;
    let handle = runtime.handle().clone();
    let engine = runtime.block_on(crate::remote::mirror::MirrorEngine::connect(
        target, options, handle, screen_fps,
    ))?;
    let engine: Arc<dyn EngineHandle> = Arc::new(engine);
    let ran = runtime.block_on(app::run(engine, front));
    // What is still running is a wait on the other host, whose engine finishes its
    // commands by itself: quitting does not wait long for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ran
}

/// The same TUI on several hosts' engines at once (`sandbox-deck mirror a b c`): one
/// table, each host connected (and reconnected) by a task of its own, so the screen is
/// there at once and no host waits on another (see `remote::fleet`).
pub fn fleet(
    targets: Vec<crate::remote::target::Target>,
    options: crate::remote::connection::ConnectOptions,
    image_protocol: Option<ImageProtocol>,
) -> anyhow::Result<()> {
    let Setup {
        paths,
        config,
        front,
        screen_fps,
        runtime,
    } = setup(image_protocol)?;
    let info = crate::engine::EngineInfo::of(&paths, &config);
    let engine = crate::remote::fleet::FleetEngine::start(
        targets,
        &options,
        screen_fps,
        info,
        runtime.handle(),
    );
    let engine: Arc<dyn EngineHandle> = Arc::new(engine);
    let ran = runtime.block_on(app::run(engine, front));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ran
}

/// A client on a connected socket.
async fn client_on(stream: std::os::unix::net::UnixStream) -> Result<Client> {
    stream
        .set_nonblocking(true)
        .map_err(|e| DeckError::io("connecting to the engine", e))?;
    let stream = tokio::net::UnixStream::from_std(stream)
        .map_err(|e| DeckError::io("connecting to the engine", e))?;
    Client::connect(stream).await.map_err(deck_error)
}

/// Connecting again after the engine went away (killed, restarted): the same socket, an
/// engine started if none answers. Called from a blocking thread, never the runtime's.
fn reconnect(starter: Starter, runtime: tokio::runtime::Handle) -> Reconnect {
    Box::new(move || {
        let stream = service::connect_or_start(&starter)?;
        runtime.block_on(client_on(stream))
    })
}
