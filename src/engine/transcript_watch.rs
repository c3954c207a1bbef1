//! Which Claude transcripts grew, from inotify (issue 15): one recursive watch (through
//! `notify`, symlinks not followed) over each usage root that exists, collecting the paths
//! written since the last look and waking the usage worker ([`Topic::Usage`]). The usage
//! index then reads those files only ([`crate::usage::UsageIndex::refresh_paths`]), with no
//! walk of the roots; the walk stays as the slow safety net, and is what runs whenever the
//! watch cannot be trusted: it could not be made (no inotify watches left), inotify's
//! queue overflowed, too many paths piled up, or a root that was missing has appeared.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use notify::{RecursiveMode, Watcher};

use super::hook_watch::is_write;
use super::wake::{Topic, Wakeups};

/// More changed paths than this between two looks: a walk is cheaper than the list.
const MAX_PENDING: usize = 10_000;

/// What the watch collected since the last [`TranscriptWatch::take`].
#[derive(Default)]
struct Pending {
    paths: HashSet<PathBuf>,
    /// The watch missed something (overflow, error, too many paths): walk.
    rescan: bool,
}

/// What a look at the watch says to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Changes {
    /// Read these files (possibly none).
    Paths(HashSet<PathBuf>),
    /// Walk the roots: the watch cannot say what changed.
    Walk,
}

pub struct TranscriptWatch {
    _watcher: notify::RecommendedWatcher,
    pending: Arc<Mutex<Pending>>,
    /// The roots that did not exist when the watch began: one appearing means a new watch.
    missing: Vec<PathBuf>,
}

impl TranscriptWatch {
    /// Watches every root of `roots` that exists. None when inotify cannot watch them all
    /// (the caller walks instead).
    pub fn new(roots: &[PathBuf], wakeups: &Wakeups) -> Option<TranscriptWatch> {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let sink = Arc::clone(&pending);
        let wakeups = wakeups.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let mut pending = sink.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Ok(event) if event.need_rescan() => pending.rescan = true,
                Ok(event) if is_write(&event.kind) => {
                    pending.paths.extend(event.paths);
                    if pending.paths.len() > MAX_PENDING {
                        pending.paths.clear();
                        pending.rescan = true;
                    }
                }
                Ok(_) => return,
                // A watch limit reached while following new directories, or a read error.
                Err(_) => pending.rescan = true,
            }
            drop(pending);
            wakeups.wake(Topic::Usage);
        };
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = match notify::RecommendedWatcher::new(handler, config) {
            Ok(watcher) => watcher,
            Err(e) => {
                tracing::debug!("no inotify for the usage logs: {e}");
                return None;
            }
        };
        let mut missing = Vec::new();
        for root in roots {
            if !root.is_dir() {
                missing.push(root.clone());
                continue;
            }
            if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
                tracing::debug!("watching {} for the usage: {e}", root.display());
                return None;
            }
        }
        Some(TranscriptWatch {
            _watcher: watcher,
            pending,
            missing,
        })
    }

    /// What changed since the last look; the list starts again empty.
    pub fn take(&self) -> Changes {
        if self.missing.iter().any(|root| root.is_dir()) {
            return Changes::Walk;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let taken = std::mem::take(&mut *pending);
        if taken.rescan {
            Changes::Walk
        } else {
            Changes::Paths(taken.paths)
        }
    }
}
