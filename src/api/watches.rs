//! A client's subscriptions (screens, pane previews, pane output): who gets what the engine
//! pushes for a sandbox, and the handles a caller holds. A handle dropped ends its watch;
//! the engine is told when it was the last of its kind for that sandbox.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Bytes;

use super::client_error::ClientError;
use super::frame;
use super::protocol::Command;
use crate::capture::Frame;
use crate::sandbox::SandboxName;

/// Output chunks an [`OutputStream`] may hold unread before newer ones are dropped.
pub const OUTPUT_BACKLOG: usize = 1024;

/// A pane's text, or why the engine cannot read it now (an [`ClientError::Engine`]).
pub type PreviewUpdate = Result<String, ClientError>;

/// Which subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Screen,
    Preview,
    Output,
}

impl Kind {
    pub(super) fn unsubscribe(self, name: &SandboxName) -> Command {
        let name = name.to_string();
        match self {
            Kind::Screen => Command::UnsubscribeScreen { name },
            Kind::Preview => Command::UnsubscribePreview { name },
            Kind::Output => Command::UnsubscribeOutput { name },
        }
    }
}

/// Every subscription of one client, by kind and sandbox name.
#[derive(Default)]
pub(super) struct Watches {
    pub screens: Registry<watch::Sender<Option<Bytes>>>,
    pub previews: Registry<watch::Sender<Option<PreviewUpdate>>>,
    pub outputs: Registry<mpsc::Sender<Bytes>>,
}

impl Watches {
    /// Removes one watch; true when it was the last of its kind for `name`.
    pub(super) fn remove(&mut self, kind: Kind, name: &SandboxName, key: u64) -> bool {
        match kind {
            Kind::Screen => self.screens.remove(name, key),
            Kind::Preview => self.previews.remove(name, key),
            Kind::Output => self.outputs.remove(name, key),
        }
    }
}

/// Senders by sandbox name, each with a key of its own.
pub(super) struct Registry<T> {
    next_key: u64,
    by_name: HashMap<SandboxName, Vec<(u64, T)>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            next_key: 0,
            by_name: HashMap::new(),
        }
    }
}

impl<T> Registry<T> {
    pub(super) fn add(&mut self, name: &SandboxName, sender: T) -> u64 {
        self.next_key += 1;
        let key = self.next_key;
        self.by_name
            .entry(name.clone())
            .or_default()
            .push((key, sender));
        key
    }

    fn remove(&mut self, name: &SandboxName, key: u64) -> bool {
        let Some(senders) = self.by_name.get_mut(name.as_str()) else {
            return false;
        };
        senders.retain(|(k, _)| *k != key);
        let last = senders.is_empty();
        if last {
            self.by_name.remove(name.as_str());
        }
        last
    }

    pub(super) fn each(&self, name: &str, mut f: impl FnMut(&T)) {
        for (_, sender) in self.by_name.get(name).into_iter().flatten() {
            f(sender);
        }
    }
}

/// What a watch needs of its connection (the client, which owns the registries).
pub(super) trait Subscriptions: Send + Sync {
    /// Ends one watch.
    fn unwatch(&self, kind: Kind, name: &SandboxName, key: u64);
    /// None while connected; why it ended otherwise.
    fn closed(&self) -> Option<ClientError>;
}

/// What every handle holds: its connection, kind, name and key; dropping it ends the watch.
pub(super) struct Watch {
    client: Arc<dyn Subscriptions>,
    kind: Kind,
    name: SandboxName,
    key: u64,
}

impl Watch {
    pub(super) fn new(
        client: Arc<dyn Subscriptions>,
        kind: Kind,
        name: SandboxName,
        key: u64,
    ) -> Watch {
        Watch {
            client,
            kind,
            name,
            key,
        }
    }

    fn ended(&self) -> ClientError {
        self.client.closed().unwrap_or_else(|| ClientError::Closed {
            reason: format!("the watch of {} ended", self.name),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.client.unwatch(self.kind, &self.name, self.key);
    }
}

/// A watched screen: the latest frame the engine sent (older ones are skipped, never
/// queued). Dropping it ends the watch.
pub struct ScreenFrames {
    watch: Watch,
    frames: watch::Receiver<Option<Bytes>>,
}

impl ScreenFrames {
    pub(super) fn new(watch: Watch, frames: watch::Receiver<Option<Bytes>>) -> ScreenFrames {
        ScreenFrames { watch, frames }
    }

    pub fn name(&self) -> &SandboxName {
        &self.watch.name
    }

    /// The newest frame if one arrived since the last call, else None. An error when the
    /// connection ended or a frame could not be decoded.
    pub fn latest_if_changed(&mut self) -> Result<Option<Frame>, ClientError> {
        match self.frames.has_changed() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(_) => return Err(self.watch.ended()),
        }
        let bytes = self.frames.borrow_and_update().clone();
        bytes.map(|b| decode_frame(&b)).transpose()
    }

    /// Waits for the next frame.
    pub async fn next(&mut self) -> Result<Frame, ClientError> {
        loop {
            if self.frames.changed().await.is_err() {
                return Err(self.watch.ended());
            }
            let bytes = self.frames.borrow_and_update().clone();
            if let Some(bytes) = bytes {
                return decode_frame(&bytes);
            }
        }
    }
}

fn decode_frame(bytes: &[u8]) -> Result<Frame, ClientError> {
    frame::decode(bytes)
        .map(|(_, frame)| frame)
        .map_err(ClientError::Malformed)
}

/// A watched pane's text: the latest the engine sent. Dropping it ends the watch.
pub struct PreviewText {
    watch: Watch,
    texts: watch::Receiver<Option<PreviewUpdate>>,
}

impl PreviewText {
    pub(super) fn new(watch: Watch, texts: watch::Receiver<Option<PreviewUpdate>>) -> Self {
        PreviewText { watch, texts }
    }

    pub fn name(&self) -> &SandboxName {
        &self.watch.name
    }

    /// The latest text (or why there is none); None before the first arrived. An error
    /// when the connection ended.
    pub fn latest(&self) -> Option<PreviewUpdate> {
        if self.texts.has_changed().is_err() {
            return Some(Err(self.watch.ended()));
        }
        self.texts.borrow().clone()
    }

    /// Waits for the next text.
    pub async fn next(&mut self) -> PreviewUpdate {
        loop {
            if self.texts.changed().await.is_err() {
                return Err(self.watch.ended());
            }
            if let Some(update) = self.texts.borrow_and_update().clone() {
                return update;
            }
        }
    }
}

/// A pane's output as it is written, chunk by chunk. Dropping it ends the stream.
pub struct OutputStream {
    watch: Watch,
    chunks: mpsc::Receiver<Bytes>,
}

impl OutputStream {
    pub(super) fn new(watch: Watch, chunks: mpsc::Receiver<Bytes>) -> OutputStream {
        OutputStream { watch, chunks }
    }

    pub fn name(&self) -> &SandboxName {
        &self.watch.name
    }

    /// The next chunk; an error once the connection ended.
    pub async fn next(&mut self) -> Result<Bytes, ClientError> {
        match self.chunks.recv().await {
            Some(chunk) => Ok(chunk),
            None => Err(self.watch.ended()),
        }
    }
}
