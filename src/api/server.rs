//! The websocket server on the unix socket: the peer's uid checked (SO_PEERCRED) before the
//! handshake, then hello, snapshot, events and command replies, within the limits below.
//! With `serve --listen`, TCP connections take the same path after their own handshake
//! (`tcp`: Host, Origin and the token instead of the uid).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::dispatch::{Dispatcher, Peer};
use super::hub::{Hub, Membership};
use super::protocol::{Request as ApiRequest, ServerMessage, parse_request};
use super::rate::TokenBucket;
use super::tcp;
use crate::engine::Deck;
use crate::engine::service::{IdleClock, IdlePolicy};
use crate::error::{DeckError, Result};

/// Client → engine limits (SECURITY.md 4.2).
pub const MAX_FRAME: usize = 64 << 10;
pub const MAX_MESSAGE: usize = 1 << 20;
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_CONNECTIONS: usize = 16;
/// Commands per second a connection may send after a burst.
pub const RATE_PER_SECOND: f64 = 20.0;
pub const RATE_BURST: f64 = 50.0;
/// Commands one connection may have running at once; more are answered `busy`.
pub const MAX_IN_FLIGHT: usize = 8;
/// How long one message to a client may take to write before the client is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What `serve` tunes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A connection with no frame (not even a pong) for this long is closed; a ping goes
    /// out at half of it.
    pub idle_timeout: Duration,
    /// When the engine ends by itself (`serve --auto`: no client, no running sandbox).
    pub idle_exit: IdlePolicy,
}

/// What every connection shares.
struct Shared {
    owner: u32,
    hub: Arc<Hub>,
    dispatcher: Dispatcher,
    slots: Arc<Semaphore>,
    settings: Settings,
}

/// Binds the socket (0600) at `path`; refuses when another engine answers there, and
/// removes a stale file (an engine that was killed) otherwise.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DeckError::Host {
                what: "starting the engine".into(),
                detail: format!(
                    "another engine already answers on {} (stop that `sandbox-deck serve` first, or use it)",
                    path.display()
                ),
            });
        }
        std::fs::remove_file(path)
            .map_err(|e| DeckError::io(format!("removing the stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| DeckError::io(format!("listening on {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| DeckError::io(format!("making {} private", path.display()), e))?;
    Ok(listener)
}

/// Serves until `stop`, then removes the socket file. `tcp`: the `--listen` port too.
pub async fn serve(
    listener: UnixListener,
    tcp: Option<tcp::Listener>,
    path: PathBuf,
    deck: Arc<Deck>,
    settings: Settings,
    stop: CancellationToken,
) {
    // Reconciling every couple of seconds: over a kept tmux connection, not a process each.
    deck.keep_tmux_links();
    let hub = Arc::new(Hub::default());
    let changed = Arc::new(Notify::new());
    let (ready, first_reading) = tokio::sync::oneshot::channel();
    let publisher = tokio::spawn(super::publisher::run(
        Arc::clone(&deck),
        Arc::clone(&hub),
        Arc::clone(&changed),
        stop.clone(),
        ready,
    ));
    // Connections wait in the backlog until the snapshot is whole.
    let _ = first_reading.await;
    let shared = Arc::new(Shared {
        owner: nix::unistd::geteuid().as_raw(),
        dispatcher: Dispatcher::new(deck, Arc::clone(&hub), changed),
        hub,
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        settings,
    });
    if shared.settings.idle_exit.exit_after.is_some() {
        tokio::spawn(exit_when_idle(
            Arc::clone(&shared.hub),
            shared.settings.idle_exit,
            stop.clone(),
        ));
    }
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, Arc::clone(&shared), stop.clone()));
                }
                Err(e) => tracing::warn!("accepting an API connection: {e}"),
            },
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok((stream, from)) => {
                    let Some(tcp) = tcp.as_ref() else { continue };
                    // Unjudged handshakes are capped; one over is closed unanswered.
                    let Ok(pending) = Arc::clone(&tcp.pending).try_acquire_owned() else {
                        tracing::debug!("closed a TCP connection from {from}: too many handshakes");
                        continue;
                    };
                    let gate = Arc::clone(&tcp.gate);
                    let shared = Arc::clone(&shared);
                    let stop = stop.clone();
                    connections.spawn(tcp_connection(stream, from, gate, pending, shared, stop));
                }
                Err(e) => tracing::warn!("accepting a TCP API connection: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stop.cancelled() => break,
        }
    }
    // Every client is told why (1001) before the engine goes.
    let closing = async { while connections.join_next().await.is_some() {} };
    // Clients that do not close in time are cut off with the process.
    let _ = tokio::time::timeout(Duration::from_secs(3), closing).await;
    if let Err(e) = publisher.await {
        tracing::warn!("the engine's publisher ended: {e}");
    }
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

/// The next TCP connection, or never when there is no `--listen`.
async fn accept_tcp(
    tcp: Option<&tcp::Listener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match tcp {
        Some(tcp) => tcp.listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Ends an auto-started engine nobody needs: no client and no running sandbox for the
/// configured time, as observed every [`IdlePolicy::check_every`].
async fn exit_when_idle(hub: Arc<Hub>, policy: IdlePolicy, stop: CancellationToken) {
    let mut clock = IdleClock::default();
    let mut tick = tokio::time::interval(policy.check_every());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let clients = hub.clients();
        let running = hub.running();
        let idle_for = clock.observe(Instant::now(), clients, running);
        if policy.should_exit(idle_for, clients, running) {
            tracing::info!("the engine ends: idle for {idle_for:?} with nobody connected");
            stop.cancel();
            return;
        }
    }
}

/// One connection, from the uid check to its end.
async fn connection(stream: UnixStream, shared: Arc<Shared>, stop: CancellationToken) {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            tracing::warn!("reading an API peer's credentials: {e}");
            return;
        }
    };
    if uid != shared.owner {
        // Closed before the handshake: another user learns nothing but that it was refused.
        tracing::warn!("refused an API connection from uid {uid}");
        return;
    }
    let slot = Arc::clone(&shared.slots).try_acquire_owned();
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_headers, Some(ws_config()));
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!("an API handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("an API handshake timed out");
            return;
        }
    };
    run(ws, slot, &shared, uid, &format!("uid {uid}"), stop).await;
}

/// One TCP connection (`serve --listen`): its handshake judged by `tcp`, then the same
/// session as on the unix socket. The token is the owner's, so its commands are audited
/// under the engine's own uid.
async fn tcp_connection(
    stream: TcpStream,
    from: std::net::SocketAddr,
    gate: Arc<tcp::Gate>,
    pending: OwnedSemaphorePermit,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let handshake = tcp::handshake(stream, from, &gate, ws_config());
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Some(ws)) => ws,
        Ok(None) => return,
        Err(_) => {
            tracing::debug!("a TCP API handshake from {from} timed out");
            return;
        }
    };
    drop(pending);
    // Taken only now, so nobody without the token can hold a connection slot.
    let slot = Arc::clone(&shared.slots).try_acquire_owned();
    let owner = shared.owner;
    run(ws, slot, &shared, owner, &format!("TCP {from}"), stop).await;
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME))
        .max_message_size(Some(MAX_MESSAGE))
}

/// A connection after its handshake: refused when all slots are taken (1008), else served
/// until either side ends it.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    slot: std::result::Result<OwnedSemaphorePermit, TryAcquireError>,
    shared: &Arc<Shared>,
    uid: u32,
    who: &str,
    stop: CancellationToken,
) {
    let Ok(_slot) = slot else {
        close(&mut ws, CloseCode::Policy, "too many connections").await;
        return;
    };
    let member = shared.hub.join();
    let connection = member.connection;
    tracing::info!("API connection {connection} ({who}) opened");
    let why = session(
        &mut ws,
        shared,
        member,
        Peer {
            uid,
            connection,
            read_only: false,
        },
        stop,
    )
    .await;
    shared.hub.leave(connection);
    shared.dispatcher.screens.leave(connection);
    shared.dispatcher.previews.leave(connection);
    shared.dispatcher.outputs.leave(connection);
    if let Some((code, reason)) = why {
        close(&mut ws, code, reason).await;
    }
    tracing::info!("API connection {connection} closed");
}

/// Refuses any browser: a web page has no business on this socket.
// The signature is tungstenite's callback's; the large error is its HTTP response.
#[allow(clippy::result_large_err)]
fn check_headers(
    request: &Request,
    response: Response,
) -> std::result::Result<Response, ErrorResponse> {
    if request.headers().contains_key("origin") {
        let mut refusal = ErrorResponse::new(Some("browser origins are refused".into()));
        *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
        return Err(refusal);
    }
    Ok(response)
}

/// The message loop. Returns the close code and reason when the engine ends it.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    shared: &Arc<Shared>,
    mut member: Membership,
    peer: Peer,
    stop: CancellationToken,
) -> Option<(CloseCode, &'static str)> {
    let idle = shared.settings.idle_timeout;
    let mut ping = tokio::time::interval(idle / 2);
    ping.tick().await;
    let mut last_seen = Instant::now();
    let mut bucket = TokenBucket::new(RATE_PER_SECOND, RATE_BURST);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let ordered = subscriptions_in_order(Arc::clone(shared), peer);
    loop {
        tokio::select! {
            out = member.queue.recv() => {
                let message = out?;
                match tokio::time::timeout(SEND_TIMEOUT, ws.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => return Some((CloseCode::Policy, "too slow")),
                }
            }
            incoming = ws.next() => {
                last_seen = Instant::now();
                let message = match incoming {
                    None => return None,
                    Some(Err(e)) => return close_code_of(&e),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Text(text) => {
                        if !bucket.take() {
                            return Some((CloseCode::Policy, "rate limit"));
                        }
                        command(shared, peer, (&in_flight, &ordered), text.as_str());
                    }
                    Message::Binary(_) => {
                        return Some((CloseCode::Unsupported, "commands are JSON text frames"));
                    }
                    Message::Close(_) => return None,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() >= idle {
                    return Some((CloseCode::Away, "idle"));
                }
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    return None;
                }
            }
            () = member.dropped.cancelled() => return Some((CloseCode::Policy, "too slow")),
            () = stop.cancelled() => return Some((CloseCode::Away, "the engine stops")),
        }
    }
}

/// A connection's subscription commands, waiting to run one after the other.
type Ordered = mpsc::UnboundedSender<(ApiRequest, OwnedSemaphorePermit)>;

/// Runs a connection's subscription commands in the order they came, each after the last
/// ended: a client that drops a watch and makes it again must not find the two swapped. Ends
/// with the connection (the sender is dropped).
fn subscriptions_in_order(shared: Arc<Shared>, peer: Peer) -> Ordered {
    let (tx, mut rx) = mpsc::unbounded_channel::<(ApiRequest, OwnedSemaphorePermit)>();
    tokio::spawn(async move {
        while let Some((request, permit)) = rx.recv().await {
            let reply = shared
                .dispatcher
                .run(peer, request.id, request.command)
                .await;
            shared.hub.send(peer.connection, &reply);
            drop(permit);
        }
    });
    tx
}

/// Parses one text message and runs it as a task (subscriptions in order, see
/// [`subscriptions_in_order`]); the reply goes through the client's queue.
fn command(
    shared: &Arc<Shared>,
    peer: Peer,
    (in_flight, ordered): (&Arc<Semaphore>, &Ordered),
    text: &str,
) {
    let request = match parse_request(text) {
        Ok(request) => request,
        Err(r) => {
            let reply = ServerMessage::error(r.id, r.kind, r.message);
            shared.hub.send(peer.connection, &reply);
            return;
        }
    };
    let Ok(permit) = Arc::clone(in_flight).try_acquire_owned() else {
        let reply = ServerMessage::error(
            Some(request.id),
            "busy",
            format!("at most {MAX_IN_FLIGHT} commands at once on one connection"),
        );
        shared.hub.send(peer.connection, &reply);
        return;
    };
    if request.command.is_subscription() {
        // Fails only when the connection is ending.
        let _ = ordered.send((request, permit));
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let reply = shared
            .dispatcher
            .run(peer, request.id, request.command)
            .await;
        shared.hub.send(peer.connection, &reply);
        drop(permit);
    });
}

/// The close code for a read error (RFC 6455 7.4.1); None when the peer just went away.
fn close_code_of(error: &WsError) -> Option<(CloseCode, &'static str)> {
    match error {
        WsError::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
        WsError::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8")),
        WsError::Capacity(_) => Some((CloseCode::Size, "message too big")),
        _ => None,
    }
}

/// Says why, then closes; a peer that does not read gets no more than the timeout.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: CloseCode,
    reason: &'static str,
) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may be gone already: the connection ends either way.
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
}
