//! A running pane's output as a stream, for whoever subscribes (the API's `subscribe_output`,
//! `logs -f` later): the bytes the server's tmux control client reports for it, fanned out by
//! sandbox id. Nothing is kept for a pane nobody subscribes to, and a subscriber that falls behind
//! misses chunks (it is told how many) rather than holding the reader up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::sandbox::SandboxId;

/// Chunks one subscriber may fall behind before it misses some.
const BACKLOG: usize = 1024;

/// One chunk of a pane's output, shared by every subscriber.
pub type Chunk = Arc<[u8]>;

#[derive(Default)]
pub struct PaneOutput {
    taps: Mutex<HashMap<SandboxId, broadcast::Sender<Chunk>>>,
}

impl PaneOutput {
    /// The output of `id`'s pane from now on.
    pub fn subscribe(&self, id: &SandboxId) -> broadcast::Receiver<Chunk> {
        let mut taps = lock(&self.taps);
        taps.entry(id.clone())
            .or_insert_with(|| broadcast::Sender::new(BACKLOG))
            .subscribe()
    }

    /// Called by the pane's reader with what tmux reported; costs a map lookup when nobody
    /// listens.
    pub fn publish(&self, id: &SandboxId, data: &[u8]) {
        let mut taps = lock(&self.taps);
        let Some(tap) = taps.get(id) else { return };
        if tap.send(Arc::from(data)).is_err() {
            // Every subscriber is gone.
            taps.remove(id);
        }
    }
}

/// Shared by the deck and every pane reader it started.
pub type SharedPaneOutput = Arc<PaneOutput>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_what_is_published_after_they_came_and_nobody_costs_nothing() {
        let output = PaneOutput::default();
        let id: SandboxId = serde_json::from_str("\"00000000deadbeef\"").unwrap();
        output.publish(&id, b"before");
        let mut a = output.subscribe(&id);
        output.publish(&id, b"one");
        assert_eq!(&*a.try_recv().unwrap(), b"one");
        drop(a);
        output.publish(&id, b"nobody");
        assert!(lock(&output.taps).is_empty());
    }
}
