//! Pane output subscriptions (`subscribe_output`): each a task that forwards the chunks the
//! engine's pane reader reports for that sandbox, as binary `SDO1` frames, until the client
//! unsubscribes or leaves. A client too slow for its queue is dropped by the hub as for any
//! message; one that lags the pane's fan-out misses chunks, and the log says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_util::sync::CancellationToken;

use super::frame::encode_output;
use super::hub::Hub;
use crate::engine::Deck;
use crate::error::{DeckError, Result};
use crate::sandbox::{SandboxName, SandboxState};

pub struct Outputs {
    deck: Arc<Deck>,
    hub: Arc<Hub>,
    /// Each forwarding task's stop, by connection and sandbox.
    streams: Mutex<HashMap<(u64, SandboxName), CancellationToken>>,
}

impl Outputs {
    pub fn new(deck: Arc<Deck>, hub: Arc<Hub>) -> Outputs {
        Outputs {
            deck,
            hub,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// Streams `name`'s pane output to `connection` from now on; a sandbox that is not
    /// running has none (`wrong_state`). Subscribing twice is one stream.
    pub async fn subscribe(&self, connection: u64, name: SandboxName) -> Result<()> {
        let deck = Arc::clone(&self.deck);
        let of = name.clone();
        let record = tokio::task::spawn_blocking(move || deck.show(of.as_str()))
            .await
            .map_err(|e| DeckError::task("finding the sandbox", e))??;
        if record.state != SandboxState::Running {
            return Err(DeckError::WrongState {
                name: name.to_string(),
                state: record.state.to_string(),
                hint: "only a running sandbox has output; start it first".into(),
            });
        }
        let key = (connection, name.clone());
        let stop = {
            let mut streams = lock(&self.streams);
            if streams.contains_key(&key) {
                return Ok(());
            }
            let stop = CancellationToken::new();
            streams.insert(key, stop.clone());
            stop
        };
        let mut chunks = self.deck.pane_output(&record);
        let hub = Arc::clone(&self.hub);
        tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    chunk = chunks.recv() => chunk,
                    () = stop.cancelled() => return,
                };
                match chunk {
                    Ok(data) => {
                        hub.send_binary(connection, Bytes::from(encode_output(&name, &data)));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!("{name}'s output stream skipped {missed} chunks");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(())
    }

    pub fn unsubscribe(&self, connection: u64, name: &SandboxName) {
        if let Some(stop) = lock(&self.streams).remove(&(connection, name.clone())) {
            stop.cancel();
        }
    }

    /// A connection ended: its streams end.
    pub fn leave(&self, connection: u64) {
        lock(&self.streams).retain(|(c, _), stop| {
            let keep = *c != connection;
            if !keep {
                stop.cancel();
            }
            keep
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
