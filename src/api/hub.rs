//! The connected clients and the engine's current truth. Every message to a client goes
//! through its bounded queue with `try_send`: a client that does not keep up is dropped,
//! and the engine never waits for one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::live::Live;
use super::protocol::{Event, ServerMessage, Snapshot};
use crate::sandbox::SandboxState;

/// How many messages may wait for one client before it counts as too slow.
pub const SEND_QUEUE: usize = 256;

struct Client {
    queue: mpsc::Sender<Message>,
    /// Cancelled when the client is dropped for being slow.
    dropped: CancellationToken,
}

/// One client's end: its number, its queue and the token that says it was dropped.
pub struct Membership {
    pub connection: u64,
    pub queue: mpsc::Receiver<Message>,
    pub dropped: CancellationToken,
}

#[derive(Default)]
pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    live: Mutex<Live>,
    next: AtomicU64,
}

impl Hub {
    /// A new client: its hello and the snapshot are queued first, under the same lock as
    /// every event, so it misses none and sees none twice.
    pub fn join(&self) -> Membership {
        let connection = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let dropped = CancellationToken::new();
        let live = lock(&self.live);
        // A fresh queue has room for these two.
        let _ = tx.try_send(Message::text(ServerMessage::hello(connection).to_text()));
        let snapshot = ServerMessage::Snapshot(live.snapshot().clone());
        let _ = tx.try_send(Message::text(snapshot.to_text()));
        lock(&self.clients).insert(
            connection,
            Client {
                queue: tx,
                dropped: dropped.clone(),
            },
        );
        drop(live);
        Membership {
            connection,
            queue: rx,
            dropped,
        }
    }

    pub fn leave(&self, connection: u64) {
        lock(&self.clients).remove(&connection);
    }

    /// Whether `connection` is still connected.
    pub fn is_member(&self, connection: u64) -> bool {
        lock(&self.clients).contains_key(&connection)
    }

    pub fn clients(&self) -> usize {
        lock(&self.clients).len()
    }

    /// How many sandboxes run (or start) now.
    pub fn running(&self) -> usize {
        lock(&self.live)
            .snapshot()
            .sandboxes
            .iter()
            .filter(|r| matches!(r.state, SandboxState::Running | SandboxState::Starting))
            .count()
    }

    pub fn snapshot(&self) -> Snapshot {
        lock(&self.live).snapshot().clone()
    }

    /// Changes the truth with `change` and sends the events it returns to every client.
    pub fn update<T>(&self, change: impl FnOnce(&mut Live) -> (Vec<Event>, T)) -> T {
        let mut live = lock(&self.live);
        let (events, rest) = change(&mut live);
        for event in events {
            self.broadcast(&Message::text(ServerMessage::Event { event }.to_text()));
        }
        rest
    }

    fn broadcast(&self, message: &Message) {
        let mut clients = lock(&self.clients);
        clients.retain(|connection, client| keep(*connection, client, message.clone()));
    }

    /// Sends to one client (a reply).
    pub fn send(&self, connection: u64, message: &ServerMessage) {
        self.send_message(connection, Message::text(message.to_text()));
    }

    /// Sends a binary frame (a screen) to one client; the bytes are shared, not copied.
    pub fn send_binary(&self, connection: u64, frame: Bytes) {
        self.send_message(connection, Message::Binary(frame));
    }

    fn send_message(&self, connection: u64, message: Message) {
        let mut clients = lock(&self.clients);
        if let Some(client) = clients.get(&connection)
            && !keep(connection, client, message)
        {
            clients.remove(&connection);
        }
    }
}

/// Queues `text` for a client; false (and the client told to go) when its queue is full.
fn keep(connection: u64, client: &Client, message: Message) -> bool {
    match client.queue.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!("API connection {connection} does not keep up: dropped");
            client.dropped.cancel();
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sandbox::SandboxRecord;

    #[test]
    fn a_client_gets_hello_and_snapshot_then_events() {
        let hub = Hub::default();
        let mut member = hub.join();
        let mut next = || {
            member
                .queue
                .try_recv()
                .expect("a message")
                .into_text()
                .expect("text")
        };
        let hello = next();
        assert!(hello.contains(r#""type":"hello""#), "{hello}");
        let snapshot = next();
        assert!(snapshot.contains(r#""type":"snapshot""#), "{snapshot}");
        let a = SandboxRecord::example("a", Path::new("/tmp/a"));
        hub.update(|live| (live.records(vec![a]), ()));
        let event = next();
        assert!(event.contains("sandbox_added"), "{event}");
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_and_the_others_are_not() {
        let hub = Hub::default();
        let slow = hub.join();
        let mut fast = hub.join();
        for i in 0..SEND_QUEUE + 1 {
            let name = format!("s{i}");
            let record = SandboxRecord::example(&name, Path::new("/tmp/x"));
            hub.update(|live| (live.records(vec![record]), ()));
            while fast.queue.try_recv().is_ok() {}
        }
        assert!(slow.dropped.is_cancelled());
        assert!(!fast.dropped.is_cancelled());
        assert_eq!(hub.clients(), 1);
    }
}
