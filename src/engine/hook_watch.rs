//! Hook events without polling (issue 15): one inotify instance (through `notify`) watches
//! the status dir of every running agent, and a write to its events file wakes the status
//! worker ([`Topic::Agents`]) at once. The dir, not the file: the hooks append with `>>`,
//! which makes the file when it is missing, and the host trims it by rewriting.
//!
//! The dir is bound read-write into the sandbox, so a sandbox can make it busy; each event
//! only bumps a counter, and the workers take at most one round per wake-up (see
//! [`super::wake`]), so what it can cost is bounded by the workers' pace, not by its writes.
//! When inotify cannot be had (no instance left, a dir not watchable), the worker's timer
//! still reads every events file: slower, never wrong.

use std::collections::HashMap;
use std::path::PathBuf;

use notify::{EventKind, RecursiveMode, Watcher};

use super::Deck;
use super::wake::{Topic, Wakeups};
use crate::sandbox::{SandboxId, SandboxRecord, SandboxState};

/// The watched status dirs, by sandbox.
#[derive(Default)]
pub struct HookWatch {
    watcher: Option<notify::RecommendedWatcher>,
    /// Whether making the watcher failed (then nothing is tried again: the timer reads).
    unavailable: bool,
    watched: HashMap<SandboxId, PathBuf>,
}

impl HookWatch {
    /// Watches the status dir of every running agent of `records` and lets go of those of
    /// sandboxes in `records` that no longer run. A caller asking about one sandbox leaves
    /// the others' watches as they are.
    pub fn keep(&mut self, deck: &Deck, records: &[SandboxRecord]) {
        self.make_watcher(deck.wakeups());
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let watched = &mut self.watched;
        watched.retain(|id, dir| {
            let keep = match records.iter().find(|r| &r.id == id) {
                Some(record) => record.state == SandboxState::Running,
                // Not asked about: kept unless the sandbox was removed.
                None => dir.exists(),
            };
            if !keep && let Err(e) = watcher.unwatch(dir) {
                tracing::debug!("unwatching {}: {e}", dir.display());
            }
            keep
        });
        for record in records
            .iter()
            .filter(|r| r.runs_agent() && r.state == SandboxState::Running)
        {
            if watched.contains_key(&record.id) {
                continue;
            }
            let dir = deck.paths.sandbox(&record.id).status_dir();
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(record.id.clone(), dir);
                }
                // Tried again on the next round; the timer reads the file meanwhile.
                Err(e) => tracing::debug!("watching {}: {e}", dir.display()),
            }
        }
    }

    /// How many status dirs are watched (for tests).
    pub fn watched(&self) -> usize {
        self.watched.len()
    }

    fn make_watcher(&mut self, wakeups: &Wakeups) {
        if self.watcher.is_none() && !self.unavailable {
            let wakeups = wakeups.clone();
            let made = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| is_write(&e.kind)) {
                    wakeups.wake(Topic::Agents);
                }
            });
            match made {
                Ok(watcher) => self.watcher = Some(watcher),
                Err(e) => {
                    tracing::warn!("no inotify for the hook events (polling them instead): {e}");
                    self.unavailable = true;
                }
            }
        }
    }
}

/// An event that can mean new content. Opens and reads (ours, of the same file) are not:
/// waking on them would make every round wake the next.
pub(crate) fn is_write(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        // An overflowed queue says "look again" (its Rescan flag): a wake is the safe answer.
        EventKind::Any | EventKind::Other => true,
    }
}
