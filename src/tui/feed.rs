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
use crate::engine::{EngineHandle, ScreenSource};
use crate::sandbox::SandboxId;

struct Running {
    settings: watch::Sender<ScreenWatch>,
    task: JoinHandle<()>,
}

pub struct Feeds {
    engine: Arc<dyn EngineHandle>,
    graphics: Arc<Graphics>,
    tx: UnboundedSender<Action>,
    /// By sandbox id: a new sandbox of a reused name gets a feed of its own.
    feeds: HashMap<SandboxId, Running>,
}

impl Feeds {
    pub fn new(
        engine: Arc<dyn EngineHandle>,
        graphics: Graphics,
        tx: UnboundedSender<Action>,
    ) -> Feeds {
        Feeds {
            engine,
            graphics: Arc::new(graphics),
            tx,
            feeds: HashMap::new(),
        }
    }

    /// Starts the feed of `watch.name`, or hands a running one its new rate and size.
    pub fn watch(&mut self, watch: ScreenWatch) {
        if let Some(feed) = self.feeds.get(&watch.id)
            && !feed.task.is_finished()
        {
            feed.settings.send_replace(watch);
            return;
        }
        let id = watch.id.clone();
        let (settings, receiver) = watch::channel(watch);
        let task = tokio::spawn(run(
            Arc::clone(&self.engine),
            Arc::clone(&self.graphics),
            receiver,
            self.tx.clone(),
        ));
        self.feeds.insert(id, Running { settings, task });
    }

    /// Ends the feed; the display connection closes once a capture in progress returns.
    pub fn stop(&mut self, id: &SandboxId) {
        if let Some(feed) = self.feeds.remove(id) {
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
    engine: Arc<dyn EngineHandle>,
    graphics: Arc<Graphics>,
    mut settings: watch::Receiver<ScreenWatch>,
    tx: UnboundedSender<Action>,
) {
    let current = settings.borrow_and_update().clone();
    let name = current.name.clone();
    let connect = tokio::task::spawn_blocking(move || engine.subscribe_screen(&name)).await;
    let mut feed = Feed {
        id: current.id.clone(),
        current,
        graphics,
        tx,
        // Kitty keeps images by id: one id for this pane, so each frame replaces the last.
        image_id: getrandom::u32().unwrap_or(0x5d_0001) | 1,
        last: None,
    };
    let mut capturer = match connect {
        Ok(Ok(capturer)) => capturer,
        Ok(Err(e)) => {
            tracing::warn!("watching the screen failed: {}", crate::error::report(&e));
            feed.lost(e.to_string());
            return;
        }
        Err(_) => return,
    };
    let mut ticks = interval(feed.current.fps);
    loop {
        tokio::select! {
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = settings.borrow_and_update().clone();
                if next.fps != feed.current.fps {
                    ticks = interval(next.fps);
                }
                feed.set(next).await;
            }
            _ = ticks.tick() => match feed.capture(capturer).await {
                Some(back) => capturer = back,
                None => return,
            },
        }
    }
}

/// One feed's task state: what it is asked for and the last frame it captured.
struct Feed {
    id: SandboxId,
    current: ScreenWatch,
    graphics: Arc<Graphics>,
    tx: UnboundedSender<Action>,
    image_id: u32,
    last: Option<Arc<Frame>>,
}

impl Feed {
    fn lost(&self, message: String) {
        // Here and below: the receiver is gone only when the TUI is quitting.
        let _ = self.tx.send(Action::ScreenLost {
            id: self.id.clone(),
            message,
        });
    }

    /// New settings; a new size redraws the frame we have rather than waiting for a change.
    async fn set(&mut self, next: ScreenWatch) {
        let resized = next.cells != self.current.cells;
        self.current = next;
        let Some(frame) = self.last.clone().filter(|_| resized) else {
            return;
        };
        let graphics = Arc::clone(&self.graphics);
        let (cells, image_id) = (size(self.current.cells), self.image_id);
        let encoded =
            tokio::task::spawn_blocking(move || graphics.encode(&frame, cells, image_id)).await;
        if let Ok(Ok(image)) = encoded {
            let id = self.id.clone();
            // The receiver is gone only when the TUI is quitting.
            let _ = self.tx.send(Action::ScreenFrame { id, image });
        }
    }

    /// One capture on the blocking pool; the capturer back, or None when the feed ends.
    async fn capture(
        &mut self,
        mut capturer: Box<dyn ScreenSource>,
    ) -> Option<Box<dyn ScreenSource>> {
        let graphics = Arc::clone(&self.graphics);
        let (cells, image_id) = (size(self.current.cells), self.image_id);
        let (capturer, result) = tokio::task::spawn_blocking(move || {
            let result = capture_and_encode(capturer.as_mut(), &graphics, cells, image_id);
            (capturer, result)
        })
        .await
        .ok()?;
        match result {
            Ok(None) => {}
            Ok(Some((frame, image))) => {
                self.last = Some(frame);
                // A frame that cannot be encoded (no room) is kept for the next size.
                if let Some(image) = image {
                    let id = self.id.clone();
                    self.tx.send(Action::ScreenFrame { id, image }).ok()?;
                }
            }
            Err(message) => {
                // No retry loop: the reducer shows it and asks the monitor to look.
                tracing::warn!("the screen feed stopped: {message}");
                self.lost(message);
                return None;
            }
        }
        Some(capturer)
    }
}

/// A changed frame, and its image when it could be encoded.
type Captured = (Arc<Frame>, Option<ScreenImage>);

/// One capture; a frame equal to the last one stops here, before any conversion.
fn capture_and_encode(
    capturer: &mut dyn ScreenSource,
    graphics: &Graphics,
    cells: Size,
    image_id: u32,
) -> Result<Option<Captured>, String> {
    let Some(frame) = capturer.next_if_changed()? else {
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
