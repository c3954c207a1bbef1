//! Screen subscriptions: one capture per sandbox however many clients watch it, at the
//! fastest rate a subscriber asked for, sent only when the frame changed, as a binary frame
//! (`docs/protocol.md`: magic, name, size, zlib-compressed RGB). A subscriber that joins an
//! existing watch gets the last frame at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_tungstenite::tungstenite::Bytes;
use tokio_util::sync::CancellationToken;

use super::frame::encode;
use super::hub::Hub;
use crate::engine::{Deck, EngineHandle, ScreenSource};
use crate::error::{DeckError, Result};
use crate::sandbox::SandboxName;

pub const MIN_FPS: f64 = 0.2;
pub const MAX_FPS: f64 = 10.0;

struct Watch {
    /// Each subscriber's rate.
    subscribers: HashMap<u64, f64>,
    last: Option<Bytes>,
    stop: CancellationToken,
    /// Captures taken and changed frames sent since the watch began (`screen_stats`).
    captures: u64,
    frames: u64,
}

impl Watch {
    /// The fastest rate any subscriber asked for.
    fn fps(&self) -> f64 {
        self.subscribers.values().copied().fold(MIN_FPS, f64::max)
    }
}

/// One watched screen as `screen_stats` reports it: shows that a screen is captured once
/// per period however many clients watch it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScreenStats {
    pub name: SandboxName,
    pub subscribers: usize,
    /// The rate captures run at: the fastest subscriber's.
    pub fps: f64,
    pub captures: u64,
    /// Captures that found a changed picture, each sent once to every subscriber.
    pub frames: u64,
}

pub struct Screens {
    deck: Arc<Deck>,
    hub: Arc<Hub>,
    watches: Arc<Mutex<HashMap<SandboxName, Watch>>>,
}

impl Screens {
    pub fn new(deck: Arc<Deck>, hub: Arc<Hub>) -> Screens {
        Screens {
            deck,
            hub,
            watches: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Adds `connection` to `name`'s watch, starting the capture if it is the first.
    pub async fn subscribe(&self, connection: u64, name: SandboxName, fps: f64) -> Result<f64> {
        let fps = fps.clamp(MIN_FPS, MAX_FPS);
        {
            let mut watches = lock(&self.watches);
            if let Some(watch) = watches.get_mut(&name) {
                watch.subscribers.insert(connection, fps);
                if let Some(last) = &watch.last {
                    self.hub.send_binary(connection, last.clone());
                }
                return Ok(fps);
            }
        }
        let deck = Arc::clone(&self.deck);
        let of = name.clone();
        let source = tokio::task::spawn_blocking(move || deck.subscribe_screen(&of))
            .await
            .map_err(|e| DeckError::task("connecting to the screen", e))??;
        let stop = CancellationToken::new();
        let mut watches = lock(&self.watches);
        if let Some(watch) = watches.get_mut(&name) {
            // Another subscriber started it meanwhile: this capturer is not needed.
            watch.subscribers.insert(connection, fps);
            return Ok(fps);
        }
        watches.insert(
            name.clone(),
            Watch {
                subscribers: HashMap::from([(connection, fps)]),
                last: None,
                stop: stop.clone(),
                captures: 0,
                frames: 0,
            },
        );
        let capture = Capture {
            name,
            hub: Arc::clone(&self.hub),
            watches: Arc::clone(&self.watches),
        };
        tokio::spawn(capture.run(source, stop));
        Ok(fps)
    }

    pub fn unsubscribe(&self, connection: u64, name: &SandboxName) {
        let mut watches = lock(&self.watches);
        if let Some(watch) = watches.get_mut(name) {
            watch.subscribers.remove(&connection);
            if watch.subscribers.is_empty() {
                watch.stop.cancel();
                watches.remove(name);
            }
        }
    }

    /// Every watched screen, by name.
    pub fn stats(&self) -> Vec<ScreenStats> {
        let watches = lock(&self.watches);
        let mut stats: Vec<ScreenStats> = watches
            .iter()
            .map(|(name, watch)| ScreenStats {
                name: name.clone(),
                subscribers: watch.subscribers.len(),
                fps: watch.fps(),
                captures: watch.captures,
                frames: watch.frames,
            })
            .collect();
        stats.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        stats
    }

    /// A connection ended: out of every watch.
    pub fn leave(&self, connection: u64) {
        let names: Vec<SandboxName> = lock(&self.watches).keys().cloned().collect();
        for name in names {
            self.unsubscribe(connection, &name);
        }
    }
}

/// One sandbox's capture loop.
struct Capture {
    name: SandboxName,
    hub: Arc<Hub>,
    watches: Arc<Mutex<HashMap<SandboxName, Watch>>>,
}

impl Capture {
    async fn run(self, source: Box<dyn ScreenSource>, stop: CancellationToken) {
        let source = Arc::new(Mutex::new(source));
        loop {
            let Some(period) = self.period() else { return };
            let capturer = Arc::clone(&source);
            let name = self.name.clone();
            let taken = tokio::task::spawn_blocking(move || {
                let frame = lock(&capturer).next_if_changed()?;
                Ok::<_, String>(frame.map(|f| encode(&name, &f)))
            })
            .await;
            match taken {
                Ok(Ok(Some(frame))) => {
                    self.count_capture();
                    self.send(Bytes::from(frame));
                }
                Ok(Ok(None)) => self.count_capture(),
                Ok(Err(e)) => {
                    tracing::warn!("capturing {}'s screen: {e}", self.name);
                    self.end();
                    return;
                }
                Err(e) => tracing::warn!("the capture task failed: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// The fastest subscriber's period, or None when nobody watches any more.
    fn period(&self) -> Option<Duration> {
        let watches = lock(&self.watches);
        let fps = watches.get(&self.name)?.fps();
        Some(Duration::from_secs_f64(1.0 / fps))
    }

    fn count_capture(&self) {
        if let Some(watch) = lock(&self.watches).get_mut(&self.name) {
            watch.captures += 1;
        }
    }

    fn send(&self, frame: Bytes) {
        let mut watches = lock(&self.watches);
        if let Some(watch) = watches.get_mut(&self.name) {
            for connection in watch.subscribers.keys() {
                self.hub.send_binary(*connection, frame.clone());
            }
            watch.frames += 1;
            watch.last = Some(frame);
        }
    }

    /// The screen went away (the sandbox stopped): the watch ends; clients see the
    /// sandbox's state change in the events.
    fn end(&self) {
        lock(&self.watches).remove(&self.name);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
