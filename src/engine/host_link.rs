//! How a front end of several hosts (`mirror a b c`) reaches each: the state of one host's
//! connection, as the header shows it and as the table greys the rows of a host that is
//! not up. Plain data: it crosses the engine handle like the records do.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLink {
    /// The host as the user typed it (`[user@]host`), which the HOST column shows.
    pub host: String,
    pub state: LinkState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The first connection is being made.
    Connecting,
    Up,
    /// Lost or never made; tried again in `retry_in_secs`.
    Down {
        reason: String,
        retry_in_secs: u64,
    },
    /// A new connection is being made after `attempt` failed or lost ones.
    Reconnecting {
        attempt: u32,
    },
}

impl LinkState {
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Up)
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkState::Connecting => f.write_str("connecting"),
            LinkState::Up => f.write_str("up"),
            LinkState::Down {
                reason,
                retry_in_secs,
            } => write!(f, "down ({reason}), again in {retry_in_secs}s"),
            LinkState::Reconnecting { attempt } => write!(f, "reconnecting (try {attempt})"),
        }
    }
}
