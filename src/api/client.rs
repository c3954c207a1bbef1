//! A client of the engine's API (`docs/protocol.md`) over any byte stream: the unix socket
//! here, `ssh -T host sandbox-deck bridge` elsewhere (its stdout and stdin joined with
//! [`tokio::io::join`]). It does the handshake, checks the protocol version, keeps the
//! engine's truth (the snapshot with every pushed event applied) and matches replies to
//! requests by id; screen frames go to their watchers. Reconnecting is the caller's: when
//! the connection ends, every waiting request fails with [`ClientError::Closed`] and
//! [`Client::closed`] says why.
//!
//! One task (spawned on the current tokio runtime) owns the connection; a [`Client`] is a
//! cheap handle to it and may be cloned and used from async code and from plain threads
//! alike ([`Reply`] is a future and has a blocking [`Reply::wait`]).
//!
//! ```ignore
//! let client = Client::connect(stream).await?;
//! let stopped = client.send(Command::Stop { name: "api".into() }).await?;
//! let running = client.model().borrow().sandboxes.len();
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
pub use tokio_tungstenite::tungstenite::client::IntoClientRequest;
pub use tokio_tungstenite::tungstenite::handshake::client::Request as HandshakeRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

pub use super::client_error::ClientError;
use super::frame;
use super::protocol::{Command, Event, PROTOCOL_VERSION, Request, Snapshot};
use super::watches::{Kind, OUTPUT_BACKLOG, Subscriptions, Watch, Watches};
pub use super::watches::{OutputStream, PreviewText, PreviewUpdate, ScreenFrames};
use crate::sandbox::SandboxName;

/// How long the handshake, the hello and the snapshot may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Events a slow [`Client::events`] receiver may fall behind before it misses some (the
/// model never misses any).
const EVENT_BACKLOG: usize = 1024;

/// What the engine said first: its protocol version, what it offers, its version and this
/// connection's number (as its audit log names it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub capabilities: Vec<String>,
    pub engine: String,
    pub connection: u64,
}

impl Hello {
    pub fn offers(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// A connection to the engine. Dropping the last clone (and every [`ScreenFrames`]) closes
/// it.
#[derive(Clone)]
pub struct Client {
    hello: Arc<Hello>,
    outgoing: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
}

/// What the connection's task and its handles share.
struct Shared {
    next_id: AtomicU64,
    pending: Mutex<Pending>,
    model: watch::Sender<Snapshot>,
    events: broadcast::Sender<Event>,
    watches: Mutex<Watches>,
    /// Told which kind of thing each pushed event changed (see [`Client::wake_on_events`]).
    wakeups: std::sync::OnceLock<crate::engine::wake::Wakeups>,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Result<Value, ClientError>>>,
    /// Set once, when the connection ended.
    closed: Option<ClientError>,
}

impl Client {
    /// Handshakes on `stream`, reads the hello (refusing another protocol version, see
    /// [`ClientError::VersionMismatch`]) and the snapshot, and starts the connection's task
    /// on the current tokio runtime. At most [`CONNECT_TIMEOUT`].
    pub async fn connect<S>(stream: S) -> Result<Client, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let request = "ws://localhost/"
            .into_client_request()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Client::connect_with(stream, request).await
    }

    /// [`Client::connect`] with a handshake request of the caller's: the TCP listener of
    /// `serve --listen` wants its `Host` and an `Authorization: Bearer` header.
    pub async fn connect_with<S>(
        stream: S,
        request: HandshakeRequest,
    ) -> Result<Client, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (ws, hello, snapshot) = tokio::time::timeout(CONNECT_TIMEOUT, open(stream, request))
            .await
            .map_err(|_| {
                ClientError::Transport(format!(
                    "the engine did not greet within {CONNECT_TIMEOUT:?}"
                ))
            })??;
        let (outgoing, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Pending::default()),
            model: watch::Sender::new(snapshot),
            events: broadcast::Sender::new(EVENT_BACKLOG),
            watches: Mutex::new(Watches::default()),
            wakeups: std::sync::OnceLock::new(),
        });
        tokio::spawn(pump(ws, queue, CloseOnDrop(Arc::clone(&shared))));
        Ok(Client {
            hello: Arc::new(hello),
            outgoing,
            shared,
        })
    }

    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Sends `command`; the [`Reply`] resolves to the `ok` result or the error.
    pub fn send(&self, command: Command) -> Reply {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = lock(&self.shared.pending);
            if let Some(why) = &pending.closed {
                // `rx` is handed back below: this send cannot fail.
                let _ = tx.send(Err(why.clone()));
                return Reply { rx };
            }
            pending.waiting.insert(id, tx);
        }
        let text = serde_json::to_string(&Request { id, command })
            .map_err(|e| ClientError::Malformed(format!("encoding a command: {e}")));
        match text {
            Ok(text) => {
                // A send fails only when the task is gone, which fails the waiters itself.
                let _ = self.outgoing.send(Message::text(text));
            }
            Err(e) => {
                if let Some(tx) = lock(&self.shared.pending).waiting.remove(&id) {
                    // Only a caller that stopped waiting is gone: nobody to tell.
                    let _ = tx.send(Err(e));
                }
            }
        }
        Reply { rx }
    }

    /// The engine's truth as last pushed. `borrow()` it to read, `changed().await` to wait
    /// for the next change.
    pub fn model(&self) -> watch::Receiver<Snapshot> {
        self.shared.model.subscribe()
    }

    /// Every event from now on, in order, after it was applied to the model. A receiver
    /// that falls more than 1024 behind is told it lagged (read the model then).
    /// From now on each pushed event wakes its topic in `wakeups` (records, agent states,
    /// usage), after the model has it: a front end's workers read the model at once instead
    /// of at their next tick. Set once per connection.
    pub fn wake_on_events(&self, wakeups: crate::engine::wake::Wakeups) {
        let _ = self.shared.wakeups.set(wakeups);
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Watches `name`'s screen at up to `fps` frames a second (the engine clamps it). The
    /// reply says whether the engine accepted (a sandbox that is not running is
    /// `wrong_state`); frames arrive in the returned [`ScreenFrames`] until it is dropped.
    pub fn subscribe_screen(&self, name: &SandboxName, fps: f64) -> (ScreenFrames, Reply) {
        let (tx, rx) = watch::channel(None);
        let key = lock(&self.shared.watches).screens.add(name, tx);
        let reply = self.send(Command::SubscribeScreen {
            name: name.to_string(),
            fps: Some(fps),
        });
        let watch = Watch::new(Arc::new(self.clone()), Kind::Screen, name.clone(), key);
        (ScreenFrames::new(watch, rx), reply)
    }

    /// Watches `name`'s pane text (with ANSI colours): the engine sends it when it changed,
    /// and the returned [`PreviewText`] keeps the latest until it is dropped.
    pub fn subscribe_preview(&self, name: &SandboxName) -> (PreviewText, Reply) {
        let (tx, rx) = watch::channel(None);
        let key = lock(&self.shared.watches).previews.add(name, tx);
        let reply = self.send(Command::SubscribePreview {
            name: name.to_string(),
        });
        let watch = Watch::new(Arc::new(self.clone()), Kind::Preview, name.clone(), key);
        (PreviewText::new(watch, rx), reply)
    }

    /// Streams `name`'s pane output (a running sandbox's) from now on, into the returned
    /// [`OutputStream`] until it is dropped.
    pub fn subscribe_output(&self, name: &SandboxName) -> (OutputStream, Reply) {
        let (tx, rx) = mpsc::channel(OUTPUT_BACKLOG);
        let key = lock(&self.shared.watches).outputs.add(name, tx);
        let reply = self.send(Command::SubscribeOutput {
            name: name.to_string(),
        });
        let watch = Watch::new(Arc::new(self.clone()), Kind::Output, name.clone(), key);
        (OutputStream::new(watch, rx), reply)
    }

    /// None while connected; why it ended otherwise.
    pub fn closed(&self) -> Option<ClientError> {
        lock(&self.shared.pending).closed.clone()
    }
}

impl Subscriptions for Client {
    /// Ends a watch; the engine is told when it was the last one of its kind and name.
    fn unwatch(&self, kind: Kind, name: &SandboxName, key: u64) {
        let last = lock(&self.shared.watches).remove(kind, name, key);
        if last && self.closed().is_none() {
            // Nobody waits for the reply: the watch is gone either way.
            drop(self.send(kind.unsubscribe(name)));
        }
    }

    fn closed(&self) -> Option<ClientError> {
        Client::closed(self)
    }
}

/// The engine's answer to one command: a future, or [`Reply::wait`] from a plain thread.
#[must_use = "a reply says whether the command succeeded"]
pub struct Reply {
    rx: oneshot::Receiver<Result<Value, ClientError>>,
}

impl Reply {
    /// Blocks this thread until the reply arrives. Not from async code (use `.await`).
    pub fn wait(self) -> Result<Value, ClientError> {
        self.rx.blocking_recv().unwrap_or_else(|_| Err(gone()))
    }

    /// [`Reply::wait`], the result read as `T`.
    pub fn wait_for<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        self.wait().and_then(decode)
    }
}

impl Future for Reply {
    type Output = Result<Value, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(gone())))
    }
}

/// A command's result as the type it has (records, readings, …).
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Malformed(e.to_string()))
}

pub(super) fn gone() -> ClientError {
    ClientError::Closed {
        reason: "the connection's task ended".into(),
    }
}

type Ws<S> = WebSocketStream<S>;

/// The handshake, the hello (version checked first) and the snapshot.
async fn open<S>(
    stream: S,
    request: HandshakeRequest,
) -> Result<(Ws<S>, Hello, Snapshot), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, None)
        .await
        .map_err(|e| ClientError::Transport(format!("the websocket handshake: {e}")))?;
    let hello = first_text(&mut ws).await?;
    let hello = match check_hello(&hello) {
        Ok(hello) => hello,
        Err(e) => {
            let frame = CloseFrame {
                code: CloseCode::Protocol,
                reason: "protocol version".into(),
            };
            // The refusal is `e`; the close frame is a courtesy to an engine that may be gone.
            let _ = ws.close(Some(frame)).await;
            return Err(e);
        }
    };
    let snapshot = first_text(&mut ws).await?;
    let snapshot = match serde_json::from_str::<Value>(&snapshot) {
        Ok(Value::Object(mut fields)) if fields.get("type") == Some(&"snapshot".into()) => {
            fields.remove("type");
            decode::<Snapshot>(Value::Object(fields))?
        }
        _ => {
            return Err(ClientError::Malformed(
                "the second message is no snapshot".into(),
            ));
        }
    };
    Ok((ws, hello, snapshot))
}

/// The version is read before anything else of the hello, whose shape may differ in
/// another version.
fn check_hello(text: &str) -> Result<Hello, ClientError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ClientError::Malformed(format!("the hello: {e}")))?;
    if value.get("type").and_then(Value::as_str) != Some("hello") {
        return Err(ClientError::Malformed(
            "the first message is no hello".into(),
        ));
    }
    let protocol = value.get("protocol").and_then(Value::as_u64);
    if protocol != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(ClientError::VersionMismatch {
            engine: protocol.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
            engine_version: value
                .get("engine")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            client: PROTOCOL_VERSION,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        });
    }
    let mut fields = value;
    if let Some(map) = fields.as_object_mut() {
        map.remove("type");
    }
    // A newer engine of the same protocol may add fields: read only ours.
    decode(fields)
}

/// The next text message during the greeting; pings are answered by tungstenite.
async fn first_text<S>(ws: &mut Ws<S>) -> Result<String, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => {
                return Err(ClientError::Closed {
                    reason: close_reason(frame.as_ref()),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
            None => {
                return Err(ClientError::Closed {
                    reason: "the engine closed the stream before greeting".into(),
                });
            }
        }
    }
}

fn close_reason(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if !f.reason.is_empty() => format!("{} ({})", f.reason, u16::from(f.code)),
        Some(f) => format!("close code {}", u16::from(f.code)),
        None => "the engine closed the connection".into(),
    }
}

/// The connection's task: writes what the handles queue, reads what the engine sends, and
/// fails every waiter when it ends. It may also be dropped unfinished, even never polled
/// (its runtime shuts down): `ending`, an argument so it lives in the future from the start,
/// tells the waiters then, or a thread blocked on a reply would wait for ever.
async fn pump<S>(mut ws: Ws<S>, mut queue: mpsc::UnboundedReceiver<Message>, ending: CloseOnDrop)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = &ending.0;
    let why = loop {
        tokio::select! {
            out = queue.recv() => match out {
                Some(message) => {
                    if let Err(e) = ws.send(message).await {
                        break ClientError::Transport(e.to_string());
                    }
                }
                None => {
                    // We are closing: an engine that does not answer the close is left.
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    break ClientError::Closed { reason: "this client closed it".into() };
                }
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Err(e) = shared.receive(text.as_str()) {
                        break e;
                    }
                }
                Some(Ok(Message::Binary(bytes))) => shared.binary(bytes),
                Some(Ok(Message::Close(frame))) => {
                    break ClientError::Closed { reason: close_reason(frame.as_ref()) };
                }
                // tungstenite queued the pong; it goes out with the next write or flush.
                Some(Ok(Message::Ping(_))) => {
                    let _ = ws.flush().await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break ClientError::Transport(e.to_string()),
                None => break ClientError::Closed { reason: "the stream ended".into() },
            },
        }
    };
    tracing::debug!("the API connection ended: {why}");
    shared.close(why);
}

impl Shared {
    /// One text message from the engine. An error ends the connection: the model could
    /// no longer be trusted.
    fn receive(&self, text: &str) -> Result<(), ClientError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ClientError::Malformed(format!("not JSON: {e}")))?;
        match value.get("type").and_then(Value::as_str) {
            Some("ok") => self.reply(&value, Ok(value.get("result").cloned().unwrap_or_default())),
            Some("error") => {
                let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
                let error = ClientError::Engine {
                    kind: text("kind").to_owned(),
                    message: text("message").to_owned(),
                };
                self.reply(&value, Err(error));
            }
            Some("event") => self.event(value.get("event").cloned().unwrap_or_default())?,
            Some("preview") => self.preview(value)?,
            Some("snapshot") => {
                let mut fields = value;
                if let Some(map) = fields.as_object_mut() {
                    map.remove("type");
                }
                let snapshot = decode::<Snapshot>(fields)?;
                self.model.send_replace(snapshot);
            }
            // A newer engine's message of a kind this client does not know.
            other => tracing::debug!("ignored an API message of type {other:?}"),
        }
        Ok(())
    }

    fn reply(&self, message: &Value, result: Result<Value, ClientError>) {
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            // Only a message we sent that was not even a request: nobody waits for it.
            tracing::warn!("the engine could not read a message of ours: {result:?}");
            return;
        };
        if let Some(waiter) = lock(&self.pending).waiting.remove(&id) {
            // A caller that stopped waiting has no use for the reply.
            let _ = waiter.send(result);
        }
    }

    /// Applies a known event to the model and passes it on; unknown kinds are skipped
    /// (`docs/protocol.md`, "Versions").
    fn event(&self, event: Value) -> Result<(), ClientError> {
        let kind = event.get("kind").and_then(Value::as_str).unwrap_or("");
        // From the borrowed value: a metrics event carries every sandbox's figures, not
        // worth a copy of the tree (issue 15).
        let event = match Event::deserialize(&event) {
            Ok(event) => event,
            Err(_) if !KNOWN_EVENTS.contains(&kind) => {
                tracing::debug!("ignored an API event of kind {kind:?}");
                return Ok(());
            }
            Err(e) => return Err(ClientError::Malformed(format!("a {kind} event: {e}"))),
        };
        let topic = topic_of(&event);
        // Copied only for a follower of events (the TUI follows none).
        let followed = (self.events.receiver_count() > 0).then(|| event.clone());
        self.model.send_modify(|model| model.apply(event));
        if let Some(wakeups) = self.wakeups.get() {
            wakeups.wake(topic);
        }
        if let Some(event) = followed {
            // A follower that left meanwhile: nothing lost.
            let _ = self.events.send(event);
        }
        Ok(())
    }

    /// Hands a binary frame to the watchers of its sandbox: a screen undecoded (a watcher
    /// decodes only the frame it shows), output as its bytes.
    fn binary(&self, bytes: Bytes) {
        let watches = lock(&self.watches);
        if let Some(name) = frame::name_of(&bytes) {
            watches.screens.each(name, |w| {
                w.send_replace(Some(bytes.clone()));
            });
        } else if let Some((name, data)) = frame::decode_output(&bytes) {
            let chunk = bytes.slice_ref(data);
            // A stream whose reader does not keep up misses chunks: the engine never waits.
            watches
                .outputs
                .each(name, |w| drop(w.try_send(chunk.clone())));
        } else {
            tracing::debug!("ignored a binary message of an unknown kind");
        }
    }

    /// A `preview` message to the watchers of its pane.
    fn preview(&self, message: Value) -> Result<(), ClientError> {
        let preview: PreviewMessage = decode(message)?;
        let update = match (preview.text, preview.error) {
            (Some(text), _) => Ok(text),
            (None, Some(e)) => Err(ClientError::Engine {
                kind: e.kind,
                message: e.message,
            }),
            (None, None) => Ok(String::new()),
        };
        lock(&self.watches).previews.each(&preview.name, |w| {
            w.send_replace(Some(update.clone()));
        });
        if let Some(wakeups) = self.wakeups.get() {
            wakeups.wake(crate::engine::wake::Topic::Preview);
        }
        Ok(())
    }

    /// The end: every waiting request fails with `why`, every screen watch ends.
    fn close(&self, why: ClientError) {
        let (why, waiting) = {
            let mut pending = lock(&self.pending);
            // The first reason stays.
            let why = pending.closed.get_or_insert(why).clone();
            (why, std::mem::take(&mut pending.waiting))
        };
        for (_, waiter) in waiting {
            // Only callers that stopped waiting are gone: nobody to tell.
            let _ = waiter.send(Err(why.clone()));
        }
        *lock(&self.watches) = Watches::default();
        // A front end that reads only on pushes would not call again by itself, and its next
        // call is what reconnects (`RemoteEngine`): woken a moment later, once an engine
        // that was killed is gone.
        if let Some(wakeups) = self.wakeups.get().cloned() {
            let _ = std::thread::Builder::new()
                .name("deck-closed".into())
                .spawn(move || {
                    std::thread::sleep(RECONNECT_AFTER_CLOSE);
                    wakeups.wake(crate::engine::wake::Topic::Records);
                });
        }
    }
}

/// Ends the connection's state when the task ends, however it ends.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(ClientError::Closed {
            reason: "the client's runtime ended".into(),
        });
    }
}

/// A `preview` message (`docs/protocol.md`).
#[derive(serde::Deserialize)]
struct PreviewMessage {
    name: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    error: Option<super::protocol::PreviewError>,
}

/// The event kinds of this protocol version; any other is a newer engine's and skipped.
const KNOWN_EVENTS: &[&str] = &[
    "sandbox_added",
    "sandbox_changed",
    "sandbox_removed",
    "agent_state",
    "metrics",
    "usage",
    "host_stats",
];

/// How long after the connection ended a front end woken by pushes is told to call again.
const RECONNECT_AFTER_CLOSE: Duration = Duration::from_secs(1);

/// The wake-up topic an event bumps.
fn topic_of(event: &Event) -> crate::engine::wake::Topic {
    use crate::engine::wake::Topic;
    match event {
        Event::SandboxAdded { .. }
        | Event::SandboxChanged { .. }
        | Event::SandboxRemoved { .. } => Topic::Records,
        // Held connections are read by the TUI's worker on the agents' beat.
        Event::AgentState { .. } | Event::Held { .. } => Topic::Agents,
        Event::Usage { .. } => Topic::Usage,
        // The figures round reads them when they come, not on a timer of its own.
        Event::Metrics { .. } | Event::HostStats { .. } => Topic::Figures,
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine that greets and then never answers, on one end of an in-memory stream.
    async fn silent_engine(stream: tokio::io::DuplexStream) {
        let mut ws = tokio_tungstenite::accept_async(stream)
            .await
            .expect("handshake");
        let hello = super::super::protocol::ServerMessage::hello(1).to_text();
        let snapshot =
            super::super::protocol::ServerMessage::Snapshot(Snapshot::default()).to_text();
        ws.send(Message::text(hello)).await.expect("hello");
        ws.send(Message::text(snapshot)).await.expect("snapshot");
        while ws.next().await.is_some() {}
    }

    #[test]
    fn a_thread_waiting_for_a_reply_is_released_when_the_runtime_ends() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let client = runtime.block_on(async {
            tokio::spawn(silent_engine(theirs));
            Client::connect(ours).await.expect("connected")
        });
        let reply = client.send(Command::List {});
        let (done, ended) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = done.send(reply.wait());
        });
        drop(runtime);
        let result = ended
            .recv_timeout(Duration::from_secs(5))
            .expect("the waiting thread was released");
        assert_eq!(result.expect_err("no reply").kind(), "engine_unavailable");
        waiter.join().expect("the waiter");
        assert!(client.closed().is_some());
    }

    #[test]
    fn another_protocol_version_is_refused_naming_both() {
        let hello = r#"{"type":"hello","protocol":2,"capabilities":[],"engine":"9.0.0","connection":1,"new":true}"#;
        let error = check_hello(hello).expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains("version 2") && text.contains("9.0.0"),
            "{text}"
        );
        assert!(
            text.contains(&format!("version {PROTOCOL_VERSION}")),
            "{text}"
        );
        assert_eq!(error.kind(), "protocol_version");
    }

    #[test]
    fn a_hello_of_this_version_may_carry_more_fields() {
        let hello = format!(
            r#"{{"type":"hello","protocol":{PROTOCOL_VERSION},"capabilities":["screens"],"engine":"0.1.0","connection":3,"later":1}}"#
        );
        let hello = check_hello(&hello).expect("accepted");
        assert_eq!(hello.connection, 3);
        assert!(hello.offers("screens") && !hello.offers("mirror"));
    }
}
