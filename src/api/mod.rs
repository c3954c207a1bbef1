//! The engine as a service (D6, D7): a websocket API on a unix socket in the runtime dir.
//! `protocol` is the wire format (`docs/protocol.md`); `server` the socket, the peer check
//! and the limits; `hub` the clients and the engine's current truth, `live` how a reading
//! becomes events, `publisher` the one monitor loop; `dispatch` runs commands through the
//! engine handle, `audit` logs the mutating ones, `rate` is the per-connection limit;
//! `screens` captures a watched sandbox's screen once for all its subscribers; `tcp` is
//! the optional loopback listener of `serve --listen` (Host, Origin, token).
//! The other side: `client` speaks the protocol over any stream and keeps the engine's truth
//! (`model`); `frame` is the binary screen frame both sides share.

pub mod audit;
pub mod client;
pub mod client_error;
pub mod dispatch;
pub mod frame;
pub mod hub;
pub mod live;
pub mod model;
pub mod notified;
pub mod outputs;
pub mod previews;
pub mod protocol;
pub mod publisher;
pub mod rate;
pub mod remote;
pub mod screens;
pub mod server;
pub mod tcp;
pub mod watches;
