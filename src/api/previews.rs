//! Preview subscriptions: a watched sandbox's pane text (with colours) read once per round
//! however many clients watch it, and sent as a `preview` message only when it changed.
//! Reading is cheap while nothing happens: the engine's pane watch captures again only a
//! pane tmux reported output for. The pane's output itself wakes its reader (issue 15), at
//! most once per [`OUTPUT_GAP`], and so does a session that came or went; between them the
//! reader sleeps, with a slow tick ([`SAFETY_EVERY`]) as the safety net for what changes a
//! screen without output (a pane that died). A reader without the pane's output (the
//! sandbox not found when it began) looks every [`PREVIEW_EVERY`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::protocol::{PreviewError, ServerMessage};
use crate::engine::Deck;
use crate::engine::wake::Topic;
use crate::error::{DeckError, Result};
use crate::sandbox::SandboxName;

/// How often a watched pane is looked at when its output cannot wake the reader.
pub const PREVIEW_EVERY: Duration = Duration::from_millis(200);
/// How often a watched pane whose output wakes the reader is looked at all the same.
pub const SAFETY_EVERY: Duration = Duration::from_secs(2);
/// After output, the pane is read this much later: what comes in a burst is one reading,
/// and a pane that never stops printing is read at most about sixty times a second.
const OUTPUT_GAP: Duration = Duration::from_millis(16);

/// What a watched pane showed last: its text, or why there is none.
type Seen = std::result::Result<String, PreviewError>;

struct Watch {
    subscribers: HashSet<u64>,
    last: Option<Seen>,
    stop: CancellationToken,
}

pub struct Previews {
    deck: Arc<Deck>,
    hub: Arc<Hub>,
    watches: Arc<Mutex<HashMap<SandboxName, Watch>>>,
}

impl Previews {
    pub fn new(deck: Arc<Deck>, hub: Arc<Hub>) -> Previews {
        Previews {
            deck,
            hub,
            watches: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Adds `connection` to `name`'s watch (a sandbox that exists), starting the reading
    /// loop if it is the first; a joiner gets the last text at once.
    pub async fn subscribe(&self, connection: u64, name: SandboxName) -> Result<()> {
        let deck = Arc::clone(&self.deck);
        let of = name.clone();
        tokio::task::spawn_blocking(move || deck.show(of.as_str()))
            .await
            .map_err(|e| DeckError::task("finding the sandbox", e))??;
        let mut watches = lock(&self.watches);
        if let Some(watch) = watches.get_mut(&name) {
            watch.subscribers.insert(connection);
            if let Some(last) = &watch.last {
                self.hub.send(connection, &message(&name, last.clone()));
            }
            return Ok(());
        }
        let stop = CancellationToken::new();
        watches.insert(
            name.clone(),
            Watch {
                subscribers: HashSet::from([connection]),
                last: None,
                stop: stop.clone(),
            },
        );
        let reader = Reader {
            name,
            deck: Arc::clone(&self.deck),
            hub: Arc::clone(&self.hub),
            watches: Arc::clone(&self.watches),
        };
        tokio::spawn(reader.run(stop));
        Ok(())
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

    /// A connection ended: out of every watch.
    pub fn leave(&self, connection: u64) {
        let names: Vec<SandboxName> = lock(&self.watches).keys().cloned().collect();
        for name in names {
            self.unsubscribe(connection, &name);
        }
    }
}

/// One pane's reading loop.
struct Reader {
    name: SandboxName,
    deck: Arc<Deck>,
    hub: Arc<Hub>,
    watches: Arc<Mutex<HashMap<SandboxName, Watch>>>,
}

impl Reader {
    async fn run(self, stop: CancellationToken) {
        let mut output = self.output().await;
        let every = if output.is_some() {
            SAFETY_EVERY
        } else {
            PREVIEW_EVERY
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sessions = self.deck.wakeups().subscribe(Topic::Records);
        loop {
            let printed = async {
                use tokio::sync::broadcast::error::RecvError;
                match output.as_mut() {
                    Some(chunks) => match chunks.recv().await {
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => std::future::pending().await,
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                Ok(()) = sessions.changed() => tick.reset(),
                () = printed => {
                    tokio::time::sleep(OUTPUT_GAP).await;
                    if let Some(chunks) = output.as_mut() {
                        // What came meanwhile is in this reading.
                        while chunks.try_recv().is_ok() {}
                    }
                    tick.reset();
                }
                () = stop.cancelled() => return,
            }
            let deck = Arc::clone(&self.deck);
            let name = self.name.clone();
            let Ok(read) = tokio::task::spawn_blocking(move || deck.preview_often(&name)).await
            else {
                return;
            };
            let seen = read.map_err(|e| PreviewError {
                kind: e.kind().to_owned(),
                message: e.to_string(),
            });
            self.publish(seen);
        }
    }

    /// The pane's output from now on; None if the sandbox cannot be found (the tick reads).
    async fn output(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<crate::engine::pane_output::Chunk>> {
        let deck = Arc::clone(&self.deck);
        let name = self.name.clone();
        let record = tokio::task::spawn_blocking(move || deck.show(name.as_str()))
            .await
            .ok()?
            .ok()?;
        Some(self.deck.pane_output(&record))
    }

    /// Sends `seen` to every subscriber if it differs from the last.
    fn publish(&self, seen: Seen) {
        let mut watches = lock(&self.watches);
        let Some(watch) = watches.get_mut(&self.name) else {
            return;
        };
        if watch.last.as_ref() == Some(&seen) {
            return;
        }
        let message = message(&self.name, seen.clone());
        for connection in &watch.subscribers {
            self.hub.send(*connection, &message);
        }
        watch.last = Some(seen);
    }
}

fn message(name: &SandboxName, seen: Seen) -> ServerMessage {
    let (text, error) = match seen {
        Ok(text) => (Some(text), None),
        Err(error) => (None, Some(error)),
    };
    ServerMessage::Preview {
        name: name.to_string(),
        text,
        error,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
