//! Wake-ups (issue 15): what the engine learns the moment it happens instead of at the next
//! poll. The sources bump a counter per topic; a long-lived front end's workers (the TUI's,
//! `serve`'s monitor loop) wait on it beside their timer, which stays only as a slow safety
//! net. Many bumps before a worker looks are one wake-up: a burst costs one round.
//!
//! - [`Topic::Agents`]: a hook appended to a sandbox's events file (inotify on its status
//!   dir, see [`super::hook_watch`]).
//! - [`Topic::Records`]: tmux said a session or a pane came or went (`%sessions-changed`,
//!   `%exit`, a window closed), over the server's control connection ([`super::tmux_link`]).
//! - [`Topic::Usage`]: a Claude transcript grew (inotify on the usage roots, see
//!   [`super::usage::UsageTracker`]).
//! - [`Topic::Preview`]: a client of the engine got a new preview text (the engine reads a
//!   watched pane on its output and pushes it); the TUI draws it without waiting for its tick.
//! - [`Topic::Figures`]: a client of the engine got new metrics or host stats (pushed each
//!   metrics round that changed them); the TUI reads them then instead of on a timer of its own.

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Agents,
    Records,
    Usage,
    Preview,
    Figures,
}

/// The engine's wake-up counters; clones share them.
#[derive(Clone)]
pub struct Wakeups {
    agents: watch::Sender<u64>,
    records: watch::Sender<u64>,
    usage: watch::Sender<u64>,
    preview: watch::Sender<u64>,
    figures: watch::Sender<u64>,
}

impl Default for Wakeups {
    fn default() -> Wakeups {
        Wakeups {
            agents: watch::channel(0).0,
            records: watch::channel(0).0,
            usage: watch::channel(0).0,
            preview: watch::channel(0).0,
            figures: watch::channel(0).0,
        }
    }
}

impl Wakeups {
    fn sender(&self, topic: Topic) -> &watch::Sender<u64> {
        match topic {
            Topic::Agents => &self.agents,
            Topic::Records => &self.records,
            Topic::Usage => &self.usage,
            Topic::Preview => &self.preview,
            Topic::Figures => &self.figures,
        }
    }

    /// Says `topic` changed. Cheap, never blocks on a waiter, callable from any thread.
    pub fn wake(&self, topic: Topic) {
        // send_modify works with no receiver too: a worker that subscribes later sees it.
        self.sender(topic).send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next [`Wakeups::wake`] of `topic`.
    pub fn subscribe(&self, topic: Topic) -> watch::Receiver<u64> {
        self.sender(topic).subscribe()
    }

    /// How many times `topic` was woken so far (for tests and benchmarks).
    pub fn count(&self, topic: Topic) -> u64 {
        *self.sender(topic).borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_wakes_is_one_change_for_a_waiter() {
        let wakeups = Wakeups::default();
        let mut agents = wakeups.subscribe(Topic::Agents);
        let records = wakeups.subscribe(Topic::Records);
        assert!(!agents.has_changed().unwrap());
        for _ in 0..100 {
            wakeups.clone().wake(Topic::Agents);
        }
        assert!(agents.has_changed().unwrap());
        assert!(!records.has_changed().unwrap(), "topics are apart");
        agents.mark_unchanged();
        assert!(!agents.has_changed().unwrap(), "one round for the burst");
        assert_eq!(wakeups.count(Topic::Agents), 100);
        wakeups.wake(Topic::Records);
        assert!(records.has_changed().unwrap());
    }
}
