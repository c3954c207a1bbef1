//! Screen feeds: one task per watched sandbox that keeps its display connection open,
//! captures at the wanted rate, and sends back only changed frames, already encoded.
//! Capturing, converting, scaling and encoding all run on the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ratatui::layout::Size;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};

use super::action::Action;
use super::graphics::{Graphics, ScreenImage};
use super::state::ScreenWatch;
use crate::capture::Frame;
use crate::engine::Deck;
use crate::engine::screen::ScreenCapturer;

struct Feed {
    settings: watch::Sender<ScreenWatch>,
    task: JoinHandle<()>,
}

pub struct Feeds {
    deck: Arc<Deck>,
    graphics: Arc<Graphics>,
    tx: UnboundedSender<Action>,
    feeds: HashMap<String, Feed>,
}

impl Feeds {
    pub fn new(deck: Arc<Deck>, graphics: Graphics, tx: UnboundedSender<Action>) -> Feeds {
        Feeds {
            deck,
            graphics: Arc::new(graphics),
            tx,
            feeds: HashMap::new(),
        }
    }

    /// Starts the feed of `watch.name`, or hands a running one its new rate and size.
    pub fn watch(&mut self, watch: ScreenWatch) {
        if let Some(feed) = self.feeds.get(&watch.name)
            && !feed.task.is_finished()
        {
            feed.settings.send_replace(watch);
            return;
        }
        let name = watch.name.clone();
        let (settings, receiver) = watch::channel(watch);
        let task = tokio::spawn(run(
            Arc::clone(&self.deck),
            Arc::clone(&self.graphics),
            receiver,
            self.tx.clone(),
        ));
        self.feeds.insert(name, Feed { settings, task });
    }

    /// Ends the feed; the display connection closes once a capture in progress returns.
    pub fn stop(&mut self, name: &str) {
        if let Some(feed) = self.feeds.remove(name) {
            feed.task.abort();
        }
    }
}

impl Drop for Feeds {
    fn drop(&mut self) {
        for feed in self.feeds.values() {
            feed.task.abort();
        }
    }
}

async fn run(
    deck: Arc<Deck>,
    graphics: Arc<Graphics>,
    mut settings: watch::Receiver<ScreenWatch>,
    tx: UnboundedSender<Action>,
) {
    let mut current = settings.borrow_and_update().clone();
    let name = current.name.clone();
    let lost = |message: String| Action::ScreenLost {
        name: name.clone(),
        message,
    };
    let connect_name = name.clone();
    let connect = tokio::task::spawn_blocking(move || deck.screen_capturer(&connect_name)).await;
    let mut capturer = match connect {
        Ok(Ok(capturer)) => capturer,
        Ok(Err(e)) => {
            tracing::warn!("watching the screen failed: {}", crate::error::report(&e));
            // Here and below: the receiver is gone only when the TUI is quitting.
            let _ = tx.send(lost(e.to_string()));
            return;
        }
        Err(_) => return,
    };
    // Kitty keeps images by id: one id for this pane, so each frame replaces the last.
    let image_id = getrandom::u32().unwrap_or(0x5d_0001) | 1;
    let mut last: Option<Arc<Frame>> = None;
    let mut ticks = interval(current.fps);
    loop {
        tokio::select! {
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = settings.borrow_and_update().clone();
                if next.fps != current.fps {
                    ticks = interval(next.fps);
                }
                let resized = next.cells != current.cells;
                current = next;
                // A new size redraws the frame we have rather than waiting for a change.
                if resized && let Some(frame) = last.clone() {
                    let graphics = Arc::clone(&graphics);
                    let cells = size(current.cells);
                    let encoded = tokio::task::spawn_blocking(move || {
                        graphics.encode(&frame, cells, image_id)
                    })
                    .await;
                    if let Ok(Ok(image)) = encoded {
                        let _ = tx.send(Action::ScreenFrame { name: name.clone(), image });
                    }
                }
            }
            _ = ticks.tick() => {
                let graphics = Arc::clone(&graphics);
                let cells = size(current.cells);
                let step = tokio::task::spawn_blocking(move || {
                    let result = capture_and_encode(&mut capturer, &graphics, cells, image_id);
                    (capturer, result)
                })
                .await;
                let Ok((back, result)) = step else {
                    return;
                };
                capturer = back;
                match result {
                    Ok(None) => {}
                    Ok(Some((frame, image))) => {
                        last = Some(frame);
                        // A frame that cannot be encoded (no room) is kept for the next size.
                        if let Some(image) = image
                            && tx.send(Action::ScreenFrame { name: name.clone(), image }).is_err()
                        {
                            return;
                        }
                    }
                    Err(message) => {
                        // No retry loop: the reducer shows it and asks the monitor to look.
                        tracing::warn!("the screen feed stopped: {message}");
                        let _ = tx.send(lost(message));
                        return;
                    }
                }
            }
        }
    }
}

/// A changed frame, and its image when it could be encoded.
type Captured = (Arc<Frame>, Option<ScreenImage>);

/// One capture; a frame equal to the last one stops here, before any conversion.
fn capture_and_encode(
    capturer: &mut ScreenCapturer,
    graphics: &Graphics,
    cells: Size,
    image_id: u32,
) -> Result<Option<Captured>, String> {
    let Some(frame) = capturer.capture_if_changed().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let image = graphics.encode(&frame, cells, image_id).ok();
    Ok(Some((Arc::new(frame), image)))
}

fn interval(fps: f64) -> Interval {
    let period = Duration::from_secs_f64(1.0 / fps.clamp(0.01, 60.0));
    let mut ticks = tokio::time::interval(period);
    // A slow capture or a pause never turns into a burst of captures.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

fn size((width, height): (u16, u16)) -> Size {
    Size::new(width, height)
}
