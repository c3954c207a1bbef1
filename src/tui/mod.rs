//! The control center (issue 4): a keyboard-driven TUI over the `Deck` handle.
//!
//! Flow: every input and every finished task is an [`action::Action`] on one channel;
//! [`update::update`] turns it into state changes and [`action::Effect`]s without any I/O;
//! [`effects`] and [`app`] carry the effects out and report back as actions; [`views`] draw
//! the state, once per batch of actions and only when something changed.

pub mod action;
pub mod app;
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

use crate::config::ImageProtocol;
use crate::engine::{Deck, EngineHandle};
use keymap::Keymap;

/// Opens the TUI on this user's deck and returns when the user quits. `image_protocol`
/// (`--image-protocol`) wins over `ui.image_protocol`.
///
/// The one place that knows the engine is local: from here on the TUI holds the handle.
pub fn run(image_protocol: Option<ImageProtocol>) -> anyhow::Result<()> {
    let deck = Deck::open()?;
    // A broken keymap is reported before the screen is taken over.
    let keymap = Keymap::load(&deck.paths.keymap_file())?;
    let front = app::Front {
        image_protocol: image_protocol.unwrap_or(deck.config.ui.image_protocol),
        ui: deck.config.ui.clone(),
        notify: deck.config.notify.clone(),
        keymap,
    };
    let engine: Arc<dyn EngineHandle> = Arc::new(deck);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The terminal is restored when `app::run` returns. Dropping the runtime then waits for
    // engine calls still running (a stop, a create): they finish rather than stop halfway.
    runtime.block_on(app::run(engine, front))
}
