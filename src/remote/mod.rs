//! Another host's engine, reached as `ssh HOST sandbox-deck bridge` (issue 13): SSH is the
//! authentication, no port is opened. `destination` is the `[user@]host` typed, checked;
//! `ssh_command` the argv (the user's command, then ours); `tunnel` the ssh process whose
//! stdio is the API's byte stream and whose exit says what went wrong; `mirror` one host's engine
//! handle, `fleet` several hosts' behind one handle.

pub mod backoff;
pub mod connection;
pub mod destination;
pub mod fleet;
pub mod fleet_member;
pub mod fleet_usage;
pub mod mirror;
pub mod ssh_command;
pub mod target;
pub mod tunnel;

pub use destination::Destination;
pub use ssh_command::SshCommand;
pub use tunnel::{Tunnel, TunnelStream};
