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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// The dirs written to since the last [`HookWatch::take_changes`].
    changed: Arc<Mutex<Changed>>,
    /// Watched since the last [`HookWatch::keep`]: written to before, unseen by inotify.
    just_watched: HashSet<SandboxId>,
}

/// What inotify said since the last look.
#[derive(Debug, Default)]
struct Changed {
    dirs: HashSet<PathBuf>,
    /// It may have missed something (its queue overflowed, an error): read every file.
    all: bool,
}

/// Which events files to read again this round: those of the dirs written to, and any not
/// watched (inotify cannot vouch for it).
#[derive(Debug, Default)]
pub struct HookChanges {
    dirs: HashSet<PathBuf>,
    all: bool,
}

impl HookWatch {
    /// Watches the status dir of every running agent of `records` and lets go of those of
    /// sandboxes in `records` that no longer run. A caller asking about one sandbox leaves
    /// the others' watches as they are.
    pub fn keep(&mut self, deck: &Deck, records: &[SandboxRecord]) {
        self.make_watcher(deck.wakeups());
        self.just_watched.clear();
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
                    self.just_watched.insert(record.id.clone());
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

    /// What was written since the last look (the list starts again empty). Take it before
    /// reading the files: a write after the look is in the next one.
    pub fn take_changes(&self) -> HookChanges {
        let mut changed = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        let taken = std::mem::take(&mut *changed);
        HookChanges {
            dirs: taken.dirs,
            all: taken.all || self.watcher.is_none(),
        }
    }

    /// Whether `id`'s events file may have changed since its last reading, by `changes`.
    pub fn may_have_changed(&self, changes: &HookChanges, id: &SandboxId) -> bool {
        match self.watched.get(id) {
            Some(dir) => {
                changes.all || changes.dirs.contains(dir) || self.just_watched.contains(id)
            }
            None => true,
        }
    }

    fn make_watcher(&mut self, wakeups: &Wakeups) {
        if self.watcher.is_none() && !self.unavailable {
            let wakeups = wakeups.clone();
            let changed = Arc::clone(&self.changed);
            let made = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let mut seen = changed.lock().unwrap_or_else(|p| p.into_inner());
                match event {
                    Ok(event) if event.need_rescan() => seen.all = true,
                    Ok(event) if is_write(&event.kind) => {
                        // The file's dir; a path that may be the dir itself, both.
                        for path in &event.paths {
                            seen.dirs.extend(path.parent().map(Path::to_path_buf));
                            if path
                                .file_name()
                                .is_none_or(|n| n != crate::paths::STATUS_EVENTS)
                            {
                                seen.dirs.insert(path.clone());
                            }
                        }
                    }
                    Ok(_) => return,
                    Err(_) => seen.all = true,
                }
                drop(seen);
                wakeups.wake(Topic::Agents);
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
