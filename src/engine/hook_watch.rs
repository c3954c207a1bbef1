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
//!
//! The same instance watches each agent's transcript dirs (one per usage root), so the
//! status round lists them only when something in them was written
//! ([`HookWatch::transcripts_may_have_changed`]) instead of every round for every agent. A
//! transcript write does not wake the round (Claude writes many while it works; the round's
//! timer reads the freshness), and a dir that does not exist yet is looked for every round
//! until it does (a `stat`, not a listing: a dir that is not there holds no transcript, and
//! once there it is watched and listed that round).

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
    /// Each running agent's transcript dirs, watched or not yet there.
    transcripts: HashMap<SandboxId, TranscriptDirs>,
}

/// One agent's transcript dirs: the project's dir under each usage root.
#[derive(Debug, Default)]
struct TranscriptDirs {
    /// Watched: a write in one shows in [`Changed::dirs`].
    watched: Vec<PathBuf>,
    /// Not watched: missing (or a link, which is never listed), looked for every round.
    unwatched: Vec<PathBuf>,
    /// Whether one of `unwatched` is a dir whose watch failed: then it is listed every round.
    polled: bool,
    /// A dir became watched in the last [`HookWatch::keep`]: written to before, unseen.
    fresh: bool,
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
        self.keep_transcripts(records, &super::status::usage_roots());
    }

    /// [`HookWatch::keep`] for the agents' transcript dirs under `roots`.
    fn keep_transcripts(&mut self, records: &[SandboxRecord], roots: &[PathBuf]) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let hooks = &self.watched;
        self.transcripts.retain(|id, dirs| {
            // Not asked about: kept while its status dir is (the sandbox was not removed).
            let running = records.iter().find(|r| &r.id == id).map_or_else(
                || hooks.contains_key(id),
                |r| r.state == SandboxState::Running,
            );
            if !running {
                for dir in &dirs.watched {
                    let _ = watcher.unwatch(dir); // gone with its dir: nothing to undo
                }
            }
            running
        });
        for record in records
            .iter()
            .filter(|r| r.runs_agent() && r.state == SandboxState::Running)
        {
            // Looked up before an entry is made: no id copied per agent per round.
            if !self.transcripts.contains_key(&record.id) {
                let dirs = TranscriptDirs {
                    unwatched: transcript_dirs(roots, record.project_dir.as_path()),
                    ..TranscriptDirs::default()
                };
                self.transcripts.insert(record.id.clone(), dirs);
            }
            let Some(dirs) = self.transcripts.get_mut(&record.id) else {
                continue;
            };
            dirs.fresh = false;
            dirs.polled = false;
            let mut i = 0;
            while i < dirs.unwatched.len() {
                let dir = &dirs.unwatched[i];
                // The sandbox writes there: a link is never watched (nor listed).
                let is_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
                if is_dir && watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                    let dir = dirs.unwatched.swap_remove(i);
                    dirs.watched.push(dir);
                    dirs.fresh = true;
                } else {
                    dirs.polled |= is_dir;
                    i += 1;
                }
            }
        }
    }

    /// Whether any transcript of `id`'s project may have been written since the last look,
    /// by `changes`: a write inotify saw, a dir there but not watched (listed every round), a
    /// dir just watched, an agent not known to the watch, or no watch at all. A dir missing
    /// at the last [`HookWatch::keep`] holds nothing: no listing for it (issue 15: at 100
    /// agents that was most of the status round).
    pub fn transcripts_may_have_changed(&self, changes: &HookChanges, id: &SandboxId) -> bool {
        match self.transcripts.get(id) {
            Some(dirs) => {
                changes.all
                    || dirs.fresh
                    || dirs.polled
                    || dirs.watched.iter().any(|d| changes.dirs.contains(d))
            }
            None => true,
        }
    }

    /// A watched transcript dir that is gone (its watch with it) is looked for again.
    pub fn forget_missing_transcripts(&mut self, id: &SandboxId) {
        if let Some(dirs) = self.transcripts.get_mut(id) {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut dirs.watched)
                .into_iter()
                .partition(|d| !d.is_dir());
            dirs.watched = kept;
            dirs.unwatched.extend(gone);
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
                let mut wake = true;
                match event {
                    Ok(event) if event.need_rescan() => seen.all = true,
                    Ok(event) if is_write(&event.kind) => {
                        wake = !event.paths.iter().all(|p| is_transcript(p));
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
                if wake {
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

/// Whether `path` is a Claude transcript (a `.jsonl` that is not a hooks' events file).
fn is_transcript(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "jsonl")
        && path
            .file_name()
            .is_some_and(|n| n != crate::paths::STATUS_EVENTS)
}

/// The transcript dirs of `project`: its dir under each usage root.
fn transcript_dirs(roots: &[PathBuf], project: &Path) -> Vec<PathBuf> {
    let encoded = crate::usage::encode_project_dir(project);
    roots.iter().map(|root| root.join(&encoded)).collect()
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Waits until inotify has told the watch about `id`'s transcripts, or `wait` passed.
    fn told(watch: &HookWatch, id: &SandboxId, wait: Duration) -> bool {
        let end = Instant::now() + wait;
        loop {
            if watch.transcripts_may_have_changed(&watch.take_changes(), id) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_transcript_dir_is_listed_again_only_when_written_and_looked_for_until_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("projects");
        let project = dir.path().join("app");
        std::fs::create_dir_all(&root).unwrap();
        let record = SandboxRecord::example("app", &project);
        let id = record.id.clone();
        let roots = vec![root.clone()];
        let mut watch = HookWatch::default();
        watch.make_watcher(&Wakeups::default());
        assert!(watch.watcher.is_some(), "inotify is available here");
        let round = |watch: &mut HookWatch| {
            watch.keep_transcripts(std::slice::from_ref(&record), &roots);
            let changed = watch.transcripts_may_have_changed(&watch.take_changes(), &id);
            if changed {
                watch.forget_missing_transcripts(&id);
            }
            changed
        };
        // No transcript dir yet: looked for every round, but nothing to list (the first
        // look at an agent reads all the same: it is unknown to the round).
        assert!(!round(&mut watch));
        assert!(!round(&mut watch));
        // It appears: just watched, so read once; then quiet.
        let transcripts = root.join(crate::usage::encode_project_dir(&project));
        std::fs::create_dir(&transcripts).unwrap();
        assert!(round(&mut watch), "a dir just watched is read");
        assert!(!round(&mut watch), "nothing written: not read");
        assert!(!round(&mut watch));
        // A transcript written: the next look says so, once.
        std::fs::write(transcripts.join("s1.jsonl"), "{}\n").unwrap();
        assert!(
            told(&watch, &id, Duration::from_secs(5)),
            "inotify saw the write"
        );
        assert!(!round(&mut watch), "told once");
        // The dir removed (its watch with it): looked for again until it is back.
        std::fs::remove_dir_all(&transcripts).unwrap();
        assert!(
            told(&watch, &id, Duration::from_secs(5)),
            "inotify saw the removal"
        );
        watch.forget_missing_transcripts(&id);
        assert!(
            !round(&mut watch) && !round(&mut watch),
            "missing: looked for, not listed"
        );
        std::fs::create_dir(&transcripts).unwrap();
        assert!(round(&mut watch), "back: watched and read at once");
        std::fs::write(transcripts.join("s2.jsonl"), "{}\n").unwrap();
        assert!(told(&watch, &id, Duration::from_secs(5)), "watched again");
    }

    #[test]
    fn a_link_in_place_of_the_transcript_dir_is_never_watched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("projects");
        let elsewhere = dir.path().join("elsewhere");
        let project = dir.path().join("app");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        let record = SandboxRecord::example("app", &project);
        let transcripts = root.join(crate::usage::encode_project_dir(&project));
        std::os::unix::fs::symlink(&elsewhere, &transcripts).unwrap();
        let mut watch = HookWatch::default();
        watch.make_watcher(&Wakeups::default());
        for _ in 0..3 {
            watch.keep_transcripts(std::slice::from_ref(&record), std::slice::from_ref(&root));
            // Never listed (`newest_transcript_ms` skips a link), so never read for it.
            assert!(!watch.transcripts_may_have_changed(&watch.take_changes(), &record.id));
        }
        assert!(watch.transcripts[&record.id].watched.is_empty());
        // Replaced by a real dir: watched and read.
        std::fs::remove_file(&transcripts).unwrap();
        std::fs::create_dir(&transcripts).unwrap();
        watch.keep_transcripts(std::slice::from_ref(&record), std::slice::from_ref(&root));
        assert!(watch.transcripts_may_have_changed(&watch.take_changes(), &record.id));
        assert_eq!(watch.transcripts[&record.id].watched.len(), 1);
    }

    #[test]
    fn transcripts_do_not_wake_the_round_and_hook_events_do() {
        assert!(is_transcript(Path::new("/p/-app/9f1c.jsonl")));
        assert!(!is_transcript(Path::new("/s/status/events.jsonl")));
        assert!(!is_transcript(Path::new("/s/status")));
    }
}
