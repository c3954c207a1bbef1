//! The incremental index: what has been read from each log file, and the deduplicated set of
//! responses across all of them.
//!
//! A refresh stats every directory and file (directories whose mtime did not change are not
//! listed again), and reads a file only from where it stopped last time. A file whose inode
//! changed, that shrank, or whose fingerprint (a hash of its first bytes and of the bytes just
//! before the offset) no longer matches was replaced or rewritten: its entries are dropped and
//! it is read again from the start.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::jsonl::{Filter, Interner, LineCounts, RawEntry, StreamLimits, parse_stream};
use crate::error::{IoContext, Result};
use crate::untrusted::{OpenError, SkipReason, SkippedFile, open_regular_beneath};

mod cache;
mod ordered;

/// Maps keyed by paths and message ids: what a refresh hashes most.
type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<T> = foldhash::HashSet<T>;

/// Bytes hashed at the start of a file and just before its offset.
const HEAD_LEN: u64 = 1024;
const TAIL_LEN: u64 = 256;
/// A file or directory changed this recently may change again within the same mtime tick,
/// so an unchanged mtime is not trusted until it is older than this.
const RACY_NS: i64 = 2_000_000_000;
const MAX_DEPTH: usize = 8;
/// A log file bigger than this is not read at all: no Claude Code session comes near it, and
/// a sparse file a sandbox planted can claim any size.
pub const MAX_LOG_BYTES: u64 = 2 << 30;
/// How long one refresh may read. A file not finished by then is read on from where it
/// stopped at the next refresh, and is listed as skipped (`time_budget`) meanwhile.
pub const TIME_BUDGET: Duration = Duration::from_secs(10);
/// A directory lists at most this many entries, and a scan walks at most [`MAX_DIRS`]
/// directories and keeps at most [`MAX_LOGS`] logs: what a sandbox can make the walk cost
/// is bounded too (Claude Code keeps one file per session, far below these).
pub const MAX_DIR_ENTRIES: usize = 50_000;
pub const MAX_DIRS: usize = 20_000;
pub const MAX_LOGS: usize = 200_000;

/// What one refresh did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RefreshStats {
    pub files: usize,
    /// Files read from their last offset.
    pub files_appended: usize,
    /// Files read from the start (new, replaced, truncated or rewritten).
    pub files_reread: usize,
    pub files_removed: usize,
    /// Log bytes read (fingerprint checks not included).
    pub bytes_read: u64,
    /// Bytes read to check fingerprints.
    pub verify_bytes: u64,
    pub new_entries: usize,
    /// Files that were not read (or not to their end), with why.
    pub skipped_files: Vec<SkippedFile>,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

/// Where a log lies, and what its path says about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogPlace {
    pub path: PathBuf,
    /// The session the file belongs to (its name, or the parent's for `subagents/`).
    pub session_hint: String,
    /// The encoded project directory the file lies in.
    pub project_dir_name: String,
}

/// How far a file was read, and what it looked like then: next time a file that only grew
/// is read on from `offset`, one that was replaced or rewritten is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ReadMark {
    id: Identity,
    /// When it was read (0: not to its end, so it never looks unchanged).
    read_at_ns: i64,
    offset: u64,
    /// (length, hash) of its first bytes and of those just before `offset`.
    head: (u64, u64),
    tail: (u64, u64),
}

impl ReadMark {
    /// A file not read yet.
    fn unread(id: Identity) -> ReadMark {
        ReadMark {
            id,
            read_at_ns: 0,
            offset: 0,
            head: (0, 0),
            tail: (0, 0),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FileState {
    pub place: LogPlace,
    /// The last scan that saw this file.
    generation: u64,
    mark: ReadMark,
    pub counts: LineCounts,
    pub entries: Vec<RawEntry>,
    /// Beside each entry: whether it is the copy of its message that counts (the best of
    /// all files', see [`UsageIndex::beats`]); always true for an entry without a key.
    winner: Vec<bool>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    file: u32,
    idx: u32,
}

#[derive(Debug, Clone)]
struct DirListing {
    generation: u64,
    mtime_ns: i64,
    read_at_ns: i64,
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    /// The directory had more than [`MAX_DIR_ENTRIES`] entries: the rest was not listed.
    truncated: bool,
}

pub struct UsageIndex {
    roots: Vec<PathBuf>,
    cache_file: Option<PathBuf>,
    files: Vec<Option<FileState>>,
    by_path: FastMap<PathBuf, u32>,
    index: FastMap<Arc<str>, Vec<Slot>>,
    strings: FastSet<Arc<str>>,
    dirs: FastMap<PathBuf, DirListing>,
    filter: Filter,
    /// Counts scans, to tell what the last one saw from what vanished.
    generation: u64,
    /// Whether the cache file is behind what this index knows.
    dirty: bool,
    /// What the last refresh did not read, with why.
    skipped: Vec<SkippedFile>,
    time_budget: Duration,
    /// The entries of the files loaded from the cache, not decoded yet: a refresh that
    /// finds nothing new decodes them without their keys (all a report needs), and the
    /// keys and the dedupe index are made only once an entry must be added or dropped.
    deferred: Option<cache::Deferred>,
    /// The sums of the cache's body, which holds what this index holds whenever it is not
    /// `dirty`.
    body: Option<cache::BodySum>,
    /// Reports made from that body, that may be printed again.
    memos: Vec<cache::Memo>,
    /// The strings [`UsageIndex::intern`] met last, with their shared copies.
    recent: [Option<(Arc<str>, Arc<str>)>; 3],
}

/// A directory the scan walks: its path, its root's index, its depth below the root.
type DirToWalk = (PathBuf, usize, usize);

/// A file found by the scan, with its stat.
struct Found {
    path: PathBuf,
    root: usize,
    id: Identity,
}

/// What the scan saw at a path: a log to read, or something it will not read.
enum Seen {
    Log(Found),
    Skipped(SkippedFile),
}

enum Outcome {
    Unchanged,
    Gone,
    Failed(SkipReason, String),
    Read {
        /// The time budget ran out before the end of the file.
        incomplete: bool,
        reset: bool,
        /// Where this read stopped (`read_at_ns` is set by the caller).
        mark: ReadMark,
        chunk: super::jsonl::Chunk,
        bytes_read: u64,
        verify_bytes: u64,
    },
}

impl UsageIndex {
    /// An index over `roots` that keeps its state in `cache_file` (when given) between runs.
    pub fn open(roots: Vec<PathBuf>, cache_file: Option<PathBuf>) -> UsageIndex {
        let mut index = UsageIndex {
            roots,
            cache_file,
            files: Vec::new(),
            by_path: FastMap::default(),
            index: FastMap::default(),
            strings: FastSet::default(),
            dirs: FastMap::default(),
            filter: Filter::default(),
            generation: 0,
            dirty: false,
            skipped: Vec::new(),
            time_budget: TIME_BUDGET,
            deferred: None,
            body: None,
            memos: Vec::new(),
            recent: [None, None, None],
        };
        index.load_cache();
        index
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// How long one refresh may spend reading (default [`TIME_BUDGET`]).
    pub fn set_time_budget(&mut self, budget: Duration) {
        self.time_budget = budget;
    }

    /// The files the last refresh did not read, or not to their end, with why.
    pub fn skipped_files(&self) -> &[SkippedFile] {
        &self.skipped
    }

    /// Brings the index up to date with the logs on disk.
    pub fn refresh(&mut self) -> RefreshStats {
        let mut stats = self.refresh_deferred();
        if !self.read_entries() {
            // The cache's entries do not check out: this refresh is the one that reads
            // every log again.
            self.forget();
            stats = self.refresh_deferred();
        }
        self.ensure_entries();
        stats
    }

    /// [`UsageIndex::refresh`], but entries the cache holds stay undecoded when nothing
    /// changed: for a caller that may print a report it [`UsageIndex::remembered`], and
    /// calls [`UsageIndex::ensure_entries`] before [`UsageIndex::report`] otherwise.
    pub fn refresh_deferred(&mut self) -> RefreshStats {
        let started = Instant::now();
        let mut stats = RefreshStats::default();
        let deadline = started + self.time_budget;
        let (found, mut skipped) = self.scan();
        let jobs = self.jobs(&found, &mut stats);
        let scanned = started.elapsed();
        let now = now_ns();
        // Files are read on every core while this thread takes in what they gave, in job
        // order (so file ids do not depend on which read finished first).
        let filter = Filter::default();
        let roots = self.roots.clone();
        ordered::in_order(
            &jobs,
            rayon::current_num_threads(),
            |(f, prev)| read_file(&roots[f.root], &f.path, *prev, &filter, deadline),
            |i, outcome| self.apply(jobs[i].0, outcome, now, &mut stats, &mut skipped),
        );
        tracing::debug!(
            "usage refresh: scan {:?}, read and index {:?}",
            scanned,
            started.elapsed() - scanned
        );
        if stats.files_removed > 0 {
            self.dirty = true;
        }
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        stats.skipped_files = skipped.clone();
        self.skipped = skipped;
        stats.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        stats
    }

    /// Brings the index up to date with `paths` only: the files inotify said changed, no
    /// walk. A directory among them (made since the watch began) has its logs looked at, one
    /// listing. A path outside the roots, too deep, or below a symlink is passed over; a
    /// known file that is gone is dropped. The walk ([`UsageIndex::refresh`]) stays the
    /// safety net for anything inotify did not say.
    pub fn refresh_paths(&mut self, paths: &HashSet<PathBuf>) -> RefreshStats {
        if !self.read_entries() {
            self.forget();
            return self.refresh();
        }
        let started = Instant::now();
        let mut stats = RefreshStats::default();
        let deadline = started + self.time_budget;
        let mut skipped = Vec::new();
        let mut candidates: Vec<(PathBuf, usize)> = Vec::new();
        for path in paths {
            let Some(root) = self.place_of(path) else {
                continue;
            };
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    let listing = list_dir(path, mtime_ns(&meta), now_ns());
                    candidates.extend(listing.files.into_iter().map(|f| (f, root)));
                }
                _ => candidates.push((path.clone(), root)),
            }
        }
        candidates.sort();
        candidates.dedup();
        let mut found: Vec<Found> = Vec::new();
        for (path, root) in candidates {
            if path.extension().is_none_or(|e| e != "jsonl") || self.place_of(&path).is_none() {
                continue;
            }
            stats.files += 1;
            match see(path.clone(), root) {
                Some(Seen::Log(f)) => found.push(f),
                Some(Seen::Skipped(s)) => skipped.push(s),
                None => {
                    if let Some(id) = self.by_path.get(&path).copied() {
                        self.remove_file(id);
                        stats.files_removed += 1;
                        self.dirty = true;
                    }
                }
            }
        }
        let now = now_ns();
        for f in &found {
            let prev = self
                .by_path
                .get(&f.path)
                .and_then(|id| self.files[*id as usize].as_ref())
                .map(|state| state.mark);
            if prev.is_some_and(|mark| unchanged(&mark, &f.id)) {
                continue;
            }
            let outcome = read_file(&self.roots[f.root], &f.path, prev, &self.filter, deadline);
            self.apply(f, outcome, now, &mut stats, &mut skipped);
        }
        // What was said about these paths before is replaced by what was just seen.
        self.skipped
            .retain(|s| !paths.contains(&s.path) && !found.iter().any(|f| f.path == s.path));
        self.skipped.extend(skipped.iter().cloned());
        self.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        stats.skipped_files = skipped;
        self.ensure_entries();
        stats.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        stats
    }

    /// The root `path` lies below, when it is within [`MAX_DEPTH`] of it and no directory
    /// between them is a symlink (the walk follows none either).
    fn place_of(&self, path: &Path) -> Option<usize> {
        let root = self.roots.iter().position(|r| path.starts_with(r))?;
        let rel = path.strip_prefix(&self.roots[root]).ok()?;
        if rel.as_os_str().is_empty() || rel.components().count() > MAX_DEPTH + 1 {
            return None;
        }
        let mut dir = self.roots[root].clone();
        let mut parts = rel.components().peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                break;
            }
            dir.push(part);
            let meta = std::fs::symlink_metadata(&dir).ok()?;
            if !meta.is_dir() {
                return None;
            }
        }
        Some(root)
    }

    /// What to read of what the scan found: the files that changed since they were read (with
    /// their marks), then the new ones in path order, so that their ids (the dedupe
    /// tie-break) are stable. Files the scan no longer found are dropped.
    fn jobs<'f>(
        &mut self,
        found: &'f [Found],
        stats: &mut RefreshStats,
    ) -> Vec<(&'f Found, Option<ReadMark>)> {
        let generation = self.generation;
        let mut changed: Vec<(&Found, Option<ReadMark>)> = Vec::new();
        let mut new: Vec<&Found> = Vec::new();
        for f in found {
            let Some(id) = self.by_path.get(&f.path).copied() else {
                new.push(f);
                continue;
            };
            let Some(state) = self.files[id as usize].as_mut() else {
                continue;
            };
            if state.generation == generation {
                continue; // the same file under two overlapping roots
            }
            state.generation = generation;
            stats.files += 1;
            if !unchanged(&state.mark, &f.id) {
                changed.push((f, Some(state.mark)));
            }
        }
        let mut gone: Vec<u32> = self
            .live_files()
            .filter(|f| f.generation != generation)
            .filter_map(|f| self.by_path.get(&f.place.path).copied())
            .collect();
        // Something to add or drop: the cache's entries are needed. When they do not check
        // out, every file found is new.
        let any = !(changed.is_empty() && new.is_empty() && gone.is_empty());
        if any && !self.read_entries() {
            self.forget();
            changed.clear();
            gone.clear();
            new = found.iter().collect();
            stats.files = 0;
        }
        new.sort_by(|a, b| a.path.cmp(&b.path));
        new.dedup_by(|a, b| a.path == b.path);
        stats.files += new.len();
        for id in gone {
            self.remove_file(id);
            stats.files_removed += 1;
        }
        changed.extend(new.into_iter().map(|f| (f, None)));
        changed
    }

    /// Takes in what reading one file gave (`now`: when the reads began).
    fn apply(
        &mut self,
        found: &Found,
        outcome: Outcome,
        now: i64,
        stats: &mut RefreshStats,
        skipped: &mut Vec<SkippedFile>,
    ) {
        let (incomplete, reset, mark, chunk) = match outcome {
            Outcome::Unchanged => return,
            Outcome::Gone => {
                if let Some(id) = self.by_path.get(&found.path).copied() {
                    self.remove_file(id);
                    stats.files_removed += 1;
                }
                return;
            }
            Outcome::Failed(reason, detail) => {
                skipped.push(SkippedFile {
                    path: found.path.clone(),
                    reason,
                    detail,
                });
                return;
            }
            Outcome::Read {
                incomplete,
                reset,
                mark,
                chunk,
                bytes_read,
                verify_bytes,
            } => {
                stats.bytes_read += bytes_read;
                stats.verify_bytes += verify_bytes;
                stats.new_entries += chunk.entries.len();
                (incomplete, reset, mark, chunk)
            }
        };
        if reset || mark.offset > 0 {
            self.dirty = true;
        }
        if incomplete {
            skipped.push(SkippedFile {
                path: found.path.clone(),
                reason: SkipReason::TimeBudget,
                detail: format!(
                    "read to byte {} of {} within {:?}; the rest next time",
                    mark.offset, mark.id.size, self.time_budget
                ),
            });
        }
        if reset {
            stats.files_reread += 1;
        } else {
            stats.files_appended += 1;
        }
        let file = self.file_id(found, reset);
        let state = self.files[file as usize]
            .as_mut()
            .expect("file_id returns a live slot");
        // An unfinished file must not look unchanged next time.
        let read_at_ns = if incomplete { 0 } else { now };
        state.mark = ReadMark { read_at_ns, ..mark };
        state.counts += chunk.counts;
        for entry in chunk.entries {
            self.add_entry(file, entry);
        }
    }

    /// The slot for a file that was just read; `reset` drops what it had.
    fn file_id(&mut self, found: &Found, reset: bool) -> u32 {
        if let Some(id) = self.by_path.get(&found.path).copied() {
            if reset {
                self.clear_entries(id);
            }
            return id;
        }
        let root = &self.roots[found.root];
        let rel = found.path.strip_prefix(root).unwrap_or(&found.path);
        let project_dir_name = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let session_hint = session_hint(&found.path);
        let id = self.files.len() as u32;
        self.files.push(Some(FileState {
            place: LogPlace {
                path: found.path.clone(),
                session_hint,
                project_dir_name,
            },
            generation: self.generation,
            mark: ReadMark::unread(found.id),
            counts: LineCounts::default(),
            entries: Vec::new(),
            winner: Vec::new(),
        }));
        self.by_path.insert(found.path.clone(), id);
        id
    }

    /// The shared copy of a string the index has seen (a model, session or cwd).
    pub(crate) fn interned(&self, s: &str) -> Option<Arc<str>> {
        self.strings.get(s).cloned()
    }

    /// The shared copy of `s`. The entries of a file share their strings already, so the
    /// last string seen in each `role` (model, session, cwd) is tried first, by address.
    fn intern(&mut self, s: &Arc<str>, role: usize) -> Arc<str> {
        if let Some((seen, shared)) = &self.recent[role]
            && Arc::ptr_eq(seen, s)
        {
            return shared.clone();
        }
        let shared = match self.strings.get(s) {
            Some(existing) => existing.clone(),
            None => {
                self.strings.insert(s.clone());
                s.clone()
            }
        };
        self.recent[role] = Some((s.clone(), shared.clone()));
        shared
    }

    /// Adds one response read from `file`. A file keeps one copy per response (the best, see
    /// [`rank`]); copies in other files stay as candidates so a rewritten file can be dropped.
    fn add_entry(&mut self, file: u32, mut entry: RawEntry) {
        self.ensure_indexed();
        entry.model = self.intern(&entry.model, 0);
        entry.session = self.intern(&entry.session, 1);
        entry.cwd = self.intern(&entry.cwd, 2);
        let state = self.files[file as usize].as_mut().expect("live file");
        let Some(key) = entry.key.clone() else {
            state.entries.push(entry);
            state.winner.push(true);
            return;
        };
        let slots = self.index.entry(key.clone()).or_default();
        if let Some(slot) = slots.iter().find(|s| s.file == file) {
            let existing = &mut state.entries[slot.idx as usize];
            if rank(&entry) <= rank(existing) {
                return;
            }
            *existing = entry;
            if slots.len() == 1 {
                return; // still the only copy: it still counts
            }
        } else {
            slots.push(Slot {
                file,
                idx: state.entries.len() as u32,
            });
            state.entries.push(entry);
            // The only copy so far (most messages): it counts, nothing to compare.
            state.winner.push(slots.len() == 1);
            if slots.len() == 1 {
                return;
            }
        }
        self.elect(&key);
    }

    /// Marks the copy of message `key` that counts, and only it.
    fn elect(&mut self, key: &str) {
        let Some(slots) = self.index.get(key) else {
            return;
        };
        let mut best = slots[0];
        for s in &slots[1..] {
            if self.beats(*s, best) {
                best = *s;
            }
        }
        for s in slots {
            if let Some(state) = self.files[s.file as usize].as_mut() {
                state.winner[s.idx as usize] = s.file == best.file && s.idx == best.idx;
            }
        }
    }

    /// Whether copy `a` of a message counts rather than copy `b`: by [`rank`], then the one
    /// in the file whose path sorts first (so that the choice does not depend on the order
    /// files were first seen in: a cold run, the cache and the engine agree).
    fn beats(&self, a: Slot, b: Slot) -> bool {
        let (ea, eb) = (self.entry(a), self.entry(b));
        match rank(ea).cmp(&rank(eb)) {
            std::cmp::Ordering::Equal => self.path_of(a.file) < self.path_of(b.file),
            order => order == std::cmp::Ordering::Greater,
        }
    }

    fn path_of(&self, file: u32) -> Option<&Path> {
        self.files[file as usize]
            .as_ref()
            .map(|f| f.place.path.as_path())
    }

    fn clear_entries(&mut self, file: u32) {
        self.ensure_indexed();
        let Some(state) = self.files[file as usize].as_mut() else {
            return;
        };
        state.winner.clear();
        let entries = std::mem::take(&mut state.entries);
        state.counts = LineCounts::default();
        state.mark.offset = 0;
        for entry in entries {
            if let Some(key) = entry.key
                && let Some(slots) = self.index.get_mut(&key)
            {
                slots.retain(|s| s.file != file);
                if slots.is_empty() {
                    self.index.remove(&key);
                } else {
                    self.elect(&key);
                }
            }
        }
    }

    fn remove_file(&mut self, file: u32) {
        self.clear_entries(file);
        if let Some(state) = self.files[file as usize].take() {
            self.by_path.remove(&state.place.path);
        }
    }

    /// Decodes the entries the cache held, when not done yet (keys left for later). When
    /// the cache's entries part does not check out, the logs are read again instead.
    pub fn ensure_entries(&mut self) {
        if !self.read_entries() {
            self.forget();
            self.refresh_deferred();
            return;
        }
        if let Some(deferred) = self.deferred.as_mut()
            && !deferred.entries_done
        {
            deferred.decode_entries(&mut self.files);
            deferred.entries_done = true;
        }
    }

    /// Reads the cache's entries part when not done yet, and shares its strings. False when
    /// it does not check out.
    fn read_entries(&mut self) -> bool {
        let Some(deferred) = self.deferred.as_mut() else {
            return true;
        };
        if deferred.is_read() {
            return true;
        }
        if !deferred.read() {
            return false;
        }
        for s in deferred.strings() {
            self.strings.insert(s.clone());
        }
        true
    }

    /// Drops everything the cache gave (its entries part did not check out): every log is
    /// new to the next refresh. The directory listings stay: they came from the checked
    /// stat part, and the last walk brought them up to date.
    fn forget(&mut self) {
        tracing::debug!("usage cache: its entries do not check out; reading the logs again");
        self.files.clear();
        self.by_path.clear();
        self.index.clear();
        self.strings.clear();
        self.recent = [None, None, None];
        self.deferred = None;
        self.body = None;
        self.memos.clear();
        self.dirty = true;
    }

    /// Decodes the cached entries' keys and makes the dedupe index of them, when not done
    /// yet: before anything is added or dropped. The entries part was read by then (see
    /// [`UsageIndex::jobs`] and [`UsageIndex::refresh_paths`]), so this cannot fail.
    fn ensure_indexed(&mut self) {
        debug_assert!(self.deferred.as_ref().is_none_or(cache::Deferred::is_read));
        self.ensure_entries();
        let Some(deferred) = self.deferred.take() else {
            return;
        };
        deferred.decode_keys(&mut self.files);
        for (file, state) in self.files.iter().enumerate() {
            let Some(state) = state else { continue };
            for (idx, entry) in state.entries.iter().enumerate() {
                if let Some(key) = &entry.key {
                    self.index.entry(key.clone()).or_default().push(Slot {
                        file: file as u32,
                        idx: idx as u32,
                    });
                }
            }
        }
    }

    /// Every deduplicated response: per message, the non-sidechain copy with the most tokens.
    /// In a fixed order (files by path, each in file order), so that sums do not depend on
    /// how the index came to be.
    pub(crate) fn winners(&self) -> impl Iterator<Item = &RawEntry> + '_ {
        let mut files: Vec<&FileState> = self.live_files().collect();
        files.sort_unstable_by(|a, b| a.place.path.cmp(&b.place.path));
        files.into_iter().flat_map(|f| {
            f.entries
                .iter()
                .zip(&f.winner)
                .filter(|(_, w)| **w)
                .map(|(e, _)| e)
        })
    }

    fn entry(&self, slot: Slot) -> &RawEntry {
        &self.files[slot.file as usize]
            .as_ref()
            .expect("slots point at live files")
            .entries[slot.idx as usize]
    }

    pub(crate) fn live_files(&self) -> impl Iterator<Item = &FileState> + '_ {
        self.files.iter().flatten()
    }

    /// The newest modification time among files of the project dir named `encoded`.
    pub fn newest_write_ns(&self, encoded: &str) -> Option<i64> {
        self.live_files()
            .filter(|f| f.place.project_dir_name == encoded)
            .map(|f| f.mark.id.mtime_ns)
            .max()
    }

    /// Every log file below the roots, with its stat, and what was seen but will not be
    /// read. Nothing below a root is followed through a symlink.
    fn scan(&mut self) -> (Vec<Found>, Vec<SkippedFile>) {
        self.generation += 1;
        let mut skipped = Vec::new();
        let mut files = self.walk(&mut skipped);
        if files.len() > MAX_LOGS {
            files.sort();
            let left: Vec<PathBuf> = files.drain(MAX_LOGS..).map(|(path, _)| path).collect();
            skipped.extend(over_limit(&left, MAX_LOGS, "logs in all"));
        }
        let seen: Vec<Seen> = files
            .into_par_iter()
            .filter_map(|(path, root)| see(path, root))
            .collect();
        let mut found = Vec::new();
        for s in seen {
            match s {
                Seen::Log(f) => found.push(f),
                Seen::Skipped(s) => skipped.push(s),
            }
        }
        (found, skipped)
    }

    /// The paths below the roots that may be logs, each with its root's index, one level of
    /// the tree at a time, at most [`MAX_DIRS`] directories. Directories whose mtime has not
    /// changed are not listed again.
    fn walk(&mut self, skipped: &mut Vec<SkippedFile>) -> Vec<(PathBuf, usize)> {
        let now = now_ns();
        let generation = self.generation;
        let mut level: Vec<DirToWalk> = self
            .roots
            .iter()
            .enumerate()
            .map(|(i, r)| (r.clone(), i, 0))
            .collect();
        let mut files: Vec<(PathBuf, usize)> = Vec::new();
        let mut walked = 0;
        while !level.is_empty() {
            walked += level.len();
            let mut next = Vec::new();
            for ((dir, root, depth), listing) in self.look(level, now) {
                if let Some(listing) = listing {
                    self.dirs.insert(dir.clone(), listing);
                }
                let Some(listing) = self.dirs.get_mut(&dir) else {
                    continue;
                };
                listing.generation = generation;
                if listing.truncated {
                    skipped.push(SkippedFile {
                        path: dir.clone(),
                        reason: SkipReason::TooLarge,
                        detail: format!("over {MAX_DIR_ENTRIES} entries: the rest is not listed"),
                    });
                }
                files.extend(listing.files.iter().map(|f| (f.clone(), root)));
                if depth < MAX_DEPTH {
                    next.extend(listing.dirs.iter().map(|d| (d.clone(), root, depth + 1)));
                }
            }
            if walked + next.len() > MAX_DIRS {
                next.sort();
                let left: Vec<PathBuf> = next
                    .drain(MAX_DIRS.saturating_sub(walked)..)
                    .map(|(dir, _, _)| dir)
                    .collect();
                skipped.extend(over_limit(&left, MAX_DIRS, "directories in all"));
            }
            level = next;
        }
        self.dirs.retain(|_, l| l.generation == generation);
        files
    }

    /// Stats one level of directories in parallel and lists those that changed since they
    /// were listed (None: the listing kept is still good). What is not a directory is left out.
    fn look(&self, level: Vec<DirToWalk>, now: i64) -> Vec<(DirToWalk, Option<DirListing>)> {
        let dirs = &self.dirs;
        level
            .into_par_iter()
            .filter_map(|(dir, root, depth)| {
                // A root is the user's choice and may be a symlink; nothing below it is.
                let meta = if depth == 0 {
                    std::fs::metadata(&dir)
                } else {
                    std::fs::symlink_metadata(&dir)
                };
                let meta = meta.ok().filter(|m| m.is_dir())?;
                let mtime = mtime_ns(&meta);
                let fresh = dirs
                    .get(&dir)
                    .is_some_and(|l| l.mtime_ns == mtime && l.read_at_ns - l.mtime_ns > RACY_NS);
                let listing = (!fresh).then(|| list_dir(&dir, mtime, now));
                Some(((dir, root, depth), listing))
            })
            .collect()
    }

    /// Writes the index to its cache (atomically: temp files, then renames), when something
    /// changed since it was loaded or last saved.
    pub fn save(&mut self) -> Result<()> {
        let Some(path) = self.cache_file.clone() else {
            return Ok(());
        };
        if !self.dirty && path.exists() {
            return Ok(());
        }
        self.ensure_entries();
        self.ensure_indexed();
        // No log, no body (nor a listing kept): the head alone says the index is empty.
        let body = self
            .live_files()
            .next()
            .is_some()
            .then(|| cache::encode(self.live_files(), &self.dirs));
        let result = cache::save(&path, &self.roots, body)
            .context_io(|| format!("writing the usage cache {}", path.display()));
        self.memos.clear();
        match result {
            Ok(body) => {
                self.body = body;
                self.dirty = false;
                Ok(())
            }
            Err(e) => {
                self.body = None;
                Err(e)
            }
        }
    }

    /// The text of the report kept for `key` (see [`UsageIndex::remembered`]), when it was
    /// made from exactly what this index holds (nothing found changed since the cache was
    /// written) and not after `now_ms`.
    pub(crate) fn kept_report(&self, key: &str, now_ms: i64) -> Option<&str> {
        if self.dirty {
            return None;
        }
        let body = self.body?;
        let memo = self
            .memos
            .iter()
            .find(|m| m.key == key && m.body == body && m.at_ms <= now_ms)?;
        memo.intact().then(|| memo.report.get())
    }

    /// Keeps the report `text` made for `key` at `now_ms` from what this index holds, in the
    /// cache's head (see [`UsageIndex::remember`]); not when the cache is behind the index,
    /// nor when it is too big.
    pub(crate) fn keep_report(&mut self, key: String, text: String, now_ms: i64) -> Result<()> {
        let (Some(path), Some(body)) = (&self.cache_file, self.body) else {
            return Ok(());
        };
        if self.dirty || text.len() > cache::MEMO_MAX {
            return Ok(());
        }
        let raw = serde_json::value::RawValue::from_string(text).map_err(std::io::Error::other);
        let raw = raw.context_io(|| "encoding a usage report".to_owned())?;
        self.memos.retain(|m| m.key != key && m.body == body);
        self.memos
            .insert(0, cache::Memo::new(key, now_ms, body, raw));
        self.memos.truncate(cache::MEMOS);
        cache::save_head(path, &self.roots, Some(body), &self.memos)
            .context_io(|| format!("writing the usage cache {}", path.display()))
    }

    /// Loads the cache when it is ours and intact; anything else starts from scratch.
    fn load_cache(&mut self) {
        let Some(path) = &self.cache_file else {
            return;
        };
        let Some(loaded) = cache::load(path, &self.roots) else {
            return;
        };
        self.dirs.extend(loaded.dirs);
        for state in loaded.files {
            self.by_path
                .insert(state.place.path.clone(), self.files.len() as u32);
            self.files.push(Some(state));
        }
        self.deferred = loaded.deferred;
        self.body = loaded.body;
        self.memos = loaded.memos;
    }
}

/// Dedupe preference: the non-sidechain copy, then the most tokens, then the earliest
/// (then the file whose path sorts first: [`UsageIndex::beats`]).
fn rank(e: &RawEntry) -> (bool, u64, std::cmp::Reverse<i64>) {
    (
        !e.sidechain,
        e.tokens.total(),
        std::cmp::Reverse(e.timestamp_ms),
    )
}

fn session_hint(path: &Path) -> String {
    let parent = path.parent();
    if parent
        .and_then(Path::file_name)
        .is_some_and(|n| n == "subagents")
        && let Some(session) = parent
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
    {
        return session.to_owned();
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn unchanged(prev: &ReadMark, now: &Identity) -> bool {
    prev.id == *now && prev.read_at_ns - prev.id.mtime_ns > RACY_NS
}

/// The entries of `dir` that matter: subdirectories (not symlinks to one), everything named
/// `*.jsonl` that is not a directory, and every symlink, whatever its type: [`see`] sorts
/// those out.
fn list_dir(dir: &Path, mtime_ns: i64, now: i64) -> DirListing {
    let mut listing = DirListing {
        generation: 0,
        mtime_ns,
        read_at_ns: now,
        dirs: Vec::new(),
        files: Vec::new(),
        truncated: false,
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return listing;
    };
    for (i, entry) in entries.flatten().enumerate() {
        if i == MAX_DIR_ENTRIES {
            listing.truncated = true;
            break;
        }
        // The entry's own type: a symlink is reported as one, never followed.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let is_log = path.extension().is_some_and(|e| e == "jsonl");
        if kind.is_dir() {
            listing.dirs.push(path);
        } else if is_log || kind.is_symlink() {
            // Claude Code makes no symlinks here: any symlink, to a file or a directory, is
            // reported as skipped rather than passed over in silence.
            listing.files.push(path);
        }
    }
    listing
}

/// One entry for what is left out when a walk limit is reached (not one per path: there
/// may be millions).
fn over_limit(left_out: &[PathBuf], limit: usize, what: &str) -> Option<SkippedFile> {
    let first = left_out.first()?;
    Some(SkippedFile {
        path: first.clone(),
        reason: SkipReason::TooLarge,
        detail: format!(
            "past the limit of {limit} {what}: this and {} more are not walked or read",
            left_out.len() - 1
        ),
    })
}

/// A log to read when `path` is a regular file of a sane size; otherwise why not.
fn see(path: PathBuf, root: usize) -> Option<Seen> {
    let meta = std::fs::symlink_metadata(&path).ok()?;
    let skip = |reason: SkipReason, detail: String| {
        Some(Seen::Skipped(SkippedFile {
            path: path.clone(),
            reason,
            detail,
        }))
    };
    if meta.file_type().is_symlink() {
        return skip(SkipReason::Symlink, "a symlink (not followed)".into());
    }
    if !meta.is_file() {
        return skip(SkipReason::NotRegular, "not a regular file".into());
    }
    if meta.size() > MAX_LOG_BYTES {
        return skip(
            SkipReason::TooLarge,
            format!(
                "{} bytes, over the {MAX_LOG_BYTES} a log may have",
                meta.size()
            ),
        );
    }
    Some(Seen::Log(Found {
        path,
        root,
        id: identity(&meta),
    }))
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn identity(meta: &std::fs::Metadata) -> Identity {
    Identity {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: mtime_ns(meta),
    }
}

fn now_ns() -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX / 2)
}

/// FNV-1a: a fingerprint, not a defence against anyone.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The hash of `len` bytes at `at`, and how many bytes were read.
fn hash_at(file: &File, at: u64, len: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, at)?;
    Ok(fnv(&buf))
}

/// Reads a log from where it stopped last time (or from the start when it was replaced or
/// rewritten), through [`open_regular_beneath`] and [`parse_stream`]: no symlink, no FIFO or
/// device, memory bounded by the line cap, and no further than its size when opened.
fn read_file(
    root: &Path,
    path: &Path,
    prev: Option<ReadMark>,
    filter: &Filter,
    deadline: Instant,
) -> Outcome {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let (file, meta) = match open_regular_beneath(root, rel) {
        Ok(opened) => opened,
        Err(OpenError::Gone) => return Outcome::Gone,
        Err(OpenError::Refused(reason, detail)) => return Outcome::Failed(reason, detail),
    };
    let id = identity(&meta);
    if id.size > MAX_LOG_BYTES {
        return Outcome::Failed(
            SkipReason::TooLarge,
            format!("{} bytes, over the {MAX_LOG_BYTES} a log may have", id.size),
        );
    }
    let Some(Resume {
        from,
        reset,
        mut head,
        mut verify_bytes,
    }) = resume(&file, prev.as_ref(), &id)
    else {
        return Outcome::Unchanged;
    };
    let mut reader = &file;
    if let Err(e) = std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(from)) {
        return Outcome::Failed(SkipReason::Unreadable, e.to_string());
    }
    let limits = StreamLimits {
        deadline: Some(deadline),
        ..StreamLimits::default()
    };
    let streamed = match parse_stream(
        std::io::Read::take(reader, id.size - from),
        &limits,
        filter,
        &mut Interner::default(),
    ) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(SkipReason::Unreadable, e.to_string()),
    };
    let offset = from + streamed.consumed;
    // The fingerprint: the first bytes (once there are enough of them) and those before the
    // new offset, read back with two small preads.
    if head.0 < HEAD_LEN.min(offset) {
        let len = HEAD_LEN.min(offset);
        verify_bytes += len;
        head = (len, hash_at(&file, 0, len).unwrap_or(0));
    }
    let tail_len = TAIL_LEN.min(offset);
    verify_bytes += tail_len;
    let tail = (
        tail_len,
        hash_at(&file, offset - tail_len, tail_len).unwrap_or(0),
    );
    Outcome::Read {
        incomplete: streamed.stopped_early,
        reset,
        mark: ReadMark {
            id,
            read_at_ns: 0,
            offset,
            head,
            tail,
        },
        bytes_read: streamed.bytes_read,
        chunk: streamed.chunk,
        verify_bytes,
    }
}

/// Where a read starts.
struct Resume {
    from: u64,
    /// From the start: what was read of the file before is dropped.
    reset: bool,
    /// The head fingerprint kept, when reading on.
    head: (u64, u64),
    /// Bytes read to check the fingerprints.
    verify_bytes: u64,
}

/// Reads on from the last offset when the file is the same one (inode), not shorter, and its
/// fingerprints still match; else from the start. None: it has not changed since.
fn resume(file: &File, prev: Option<&ReadMark>, id: &Identity) -> Option<Resume> {
    let mut start = Resume {
        from: 0,
        reset: true,
        head: (0, 0),
        verify_bytes: 0,
    };
    let Some(prev) = prev.filter(|p| p.id.dev == id.dev && p.id.ino == id.ino) else {
        return Some(start);
    };
    if id.size < prev.offset {
        return Some(start);
    }
    if unchanged(prev, id) {
        return None;
    }
    let (head_len, head_hash) = prev.head;
    let (tail_len, tail_hash) = prev.tail;
    let matches =
        |at: u64, len: u64, hash: u64| len == 0 || hash_at(file, at, len).is_ok_and(|h| h == hash);
    let same =
        matches(0, head_len, head_hash) && matches(prev.offset - tail_len, tail_len, tail_hash);
    start.verify_bytes = head_len + tail_len;
    if same {
        start.from = prev.offset;
        start.reset = false;
        start.head = prev.head;
    }
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{GroupBy, Pricing, Query, Report};

    fn line(session: &str, cwd: &str, id: &str, output: u64) -> String {
        let v = serde_json::json!({
            "type": "assistant", "cwd": cwd, "sessionId": session,
            "timestamp": "2025-03-04T05:06:07.000Z", "requestId": format!("req-{id}"),
            "message": {"id": id, "model": "claude-sonnet-4-5-20250929",
                "usage": {"input_tokens": 3, "output_tokens": output,
                    "cache_creation_input_tokens": 7, "cache_read_input_tokens": 11}}
        });
        serde_json::to_string(&v).unwrap() + "\n"
    }

    /// Two sessions in two projects; the second starts with copies of the first's two
    /// responses that tie with them on everything but the session and project they name
    /// (so which copy counts shows), then one of its own and a malformed line.
    fn logs(root: &Path) {
        for (path, text) in [
            (
                "-p/a.jsonl",
                line("a", "/p", "m1", 10) + &line("a", "/p", "m2", 20),
            ),
            (
                "-q/b.jsonl",
                line("b", "/q", "m1", 10)
                    + &line("b", "/q", "m2", 20)
                    + &line("b", "/q", "m3", 30)
                    + "junk\n",
            ),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            age(&path);
        }
    }

    /// Written an hour ago: a file written just now is read again (its mtime may still
    /// change within the same tick), so it never looks unchanged.
    fn age(path: &Path) {
        let file = std::fs::File::options().append(true).open(path).unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        file.set_modified(hour_ago).unwrap();
    }

    fn reports(index: &UsageIndex) -> Vec<String> {
        [
            GroupBy::Project,
            GroupBy::Session,
            GroupBy::Day,
            GroupBy::Model,
            GroupBy::Block,
        ]
        .into_iter()
        .map(|by| {
            let mut q = Query::new(by);
            q.now_ms = 1_800_000_000_000;
            let r: Report = index.report(&Pricing::builtin(), &q);
            serde_json::to_string(&r).unwrap()
        })
        .collect()
    }

    #[test]
    fn cold_cached_and_grown_in_another_order_report_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("projects");
        logs(&root);
        let cache = dir.path().join("cache.json");
        let mut cold = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        cold.refresh();
        cold.save().unwrap();
        let expected = reports(&cold);
        // The tied copies count in the file whose path sorts first: /p's.
        assert!(
            expected[0].contains(r#""key":"/p","input_tokens":6"#),
            "{}",
            expected[0]
        );

        // From the cache, nothing new: the entries without their keys, no dedupe index.
        let mut warm = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        let stats = warm.refresh();
        assert_eq!(stats.bytes_read, 0);
        assert!(warm.index.is_empty() && warm.deferred.is_some());
        assert_eq!(reports(&warm), expected);

        // The same files met in the other order (the later path first, as inotify may
        // name them): the tie goes to the same file.
        let mut grown = UsageIndex::open(vec![root.clone()], None);
        let named = |p: &str| [root.join(p)].into_iter().collect::<HashSet<_>>();
        grown.refresh_paths(&named("-q/b.jsonl"));
        grown.refresh_paths(&named("-p/a.jsonl"));
        assert_eq!(reports(&grown), expected);

        // A change after a lazy load decodes the keys: the copies stay deduplicated.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("-p/a.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut f, line("a", "/p", "m4", 40).as_bytes()).unwrap();
        drop(f);
        let mut reopened = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        reopened.refresh();
        let t = reopened
            .report(&Pricing::builtin(), &Query::new(GroupBy::Day))
            .totals;
        assert_eq!((t.entries, t.output_tokens), (4, 100));
        cold.refresh();
        assert_eq!(reports(&reopened), reports(&cold));
    }

    /// The test logs under a temp dir (kept while the dir lives), and where their cache goes.
    fn logs_in_temp() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("projects");
        logs(&root);
        let cache = dir.path().join("cache.json");
        (dir, root, cache)
    }

    /// Logs under a temp dir, their cache saved, and the report by day kept in it.
    struct Kept {
        dir: tempfile::TempDir,
        root: PathBuf,
        cache: PathBuf,
        day: Query,
        report: Report,
    }

    fn kept_day_report() -> Kept {
        let (dir, root, cache) = logs_in_temp();
        let day = Query::new(GroupBy::Day);
        let mut index = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        index.refresh();
        index.save().unwrap();
        let report = index.report(&Pricing::builtin(), &day);
        index.remember("day".into(), &report, day.now_ms).unwrap();
        Kept {
            dir,
            root,
            cache,
            day,
            report,
        }
    }

    #[test]
    fn a_kept_report_is_printed_again_only_while_nothing_changed() {
        let Kept {
            dir: _dir,
            root,
            cache,
            day,
            report,
        } = kept_day_report();

        let mut warm = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        warm.refresh_deferred();
        let again = warm.remembered("day", day.now_ms).expect("kept");
        assert_eq!(again, report);
        assert!(
            warm.live_files().all(|f| f.entries.is_empty()),
            "nothing decoded to print it"
        );
        assert!(warm.remembered("session", day.now_ms).is_none());
        assert!(
            warm.remembered("day", day.now_ms - 1).is_none(),
            "a clock gone back"
        );

        // One line more: the kept report is not used.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("-q/b.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut f, line("b", "/q", "m9", 1).as_bytes()).unwrap();
        drop(f);
        age(&root.join("-q/b.jsonl"));
        let mut grown = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        grown.refresh_deferred();
        assert!(grown.remembered("day", day.now_ms).is_none());
        grown.save().unwrap();
        assert!(
            grown.remembered("day", day.now_ms).is_none(),
            "made from another body"
        );

        // A report with an active block is not kept: time alone changes it.
        let mut now = Query::new(GroupBy::Day);
        now.now_ms = chrono::DateTime::parse_from_rfc3339("2025-03-04T06:00:00Z")
            .unwrap()
            .timestamp_millis();
        grown.ensure_entries();
        let active = grown.report(&Pricing::builtin(), &now);
        assert!(active.active_block.is_some());
        grown.remember("now".into(), &active, now.now_ms).unwrap();
        assert!(grown.remembered("now", now.now_ms).is_none());
    }

    #[test]
    fn a_damaged_or_torn_cache_is_rebuilt_not_misread() {
        let (_dir, root, cache) = logs_in_temp();
        let mut index = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        let total = index.refresh().bytes_read;
        index.save().unwrap();
        let expected = reports(&index);
        let body_path = cache::body_path(&cache);
        let body = std::fs::read(&body_path).unwrap();
        let head = std::fs::read(&cache).unwrap();
        // One bit of a token count (m3's 30 output tokens, in the entries part) flipped:
        // well-formed, but wrong.
        let mut flipped = body.clone();
        let at = body
            .windows(8)
            .position(|w| w == 30u64.to_le_bytes())
            .expect("m3's output tokens in the body");
        flipped[at] ^= 1;
        // One bit of a file's path (in the stat part) flipped.
        let mut path_flipped = body.clone();
        let at = body
            .windows(7)
            .position(|w| w == b"b.jsonl")
            .expect("a path in the body");
        path_flipped[at] ^= 1;
        // (what, head, body, noticed when the cache is opened rather than when its entries
        // are read)
        let damaged: Vec<(&str, Vec<u8>, Vec<u8>, bool)> = vec![
            ("a flipped bit in an entry", head.clone(), flipped, false),
            ("a flipped bit in a path", head.clone(), path_flipped, true),
            (
                "a torn body",
                head.clone(),
                body[..body.len() - 9].to_vec(),
                true,
            ),
            (
                "garbage",
                head.clone(),
                b"not a cache at all".to_vec(),
                true,
            ),
            ("an empty body", head.clone(), Vec::new(), true),
            (
                "a head that is not JSON",
                b"\0\x01{".to_vec(),
                body.clone(),
                true,
            ),
        ];
        for (what, head, body, at_open) in damaged {
            std::fs::write(&cache, &head).unwrap();
            std::fs::write(&body_path, &body).unwrap();
            let mut reopened = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
            assert_eq!(
                reopened.files.is_empty(),
                at_open,
                "{what}: nothing was taken from it"
            );
            assert_eq!(reopened.refresh().bytes_read, total, "{what}: read again");
            assert_eq!(reports(&reopened), expected, "{what}");
            // And the next save writes a good one.
            reopened.save().unwrap();
            let mut again = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
            assert_eq!(again.refresh().bytes_read, 0, "{what}: rewritten");
        }
        // The body gone: the head alone is not trusted.
        std::fs::remove_file(&body_path).unwrap();
        let mut reopened = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        assert_eq!(reopened.refresh().bytes_read, total);
    }

    /// A run that finds nothing changed reads only the stat part; the entries part is
    /// checked when a change needs it, and a damaged one makes that run read every log.
    #[test]
    fn damaged_entries_are_found_when_a_change_needs_them() {
        let (_dir, root, cache) = logs_in_temp();
        let mut index = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        let total = index.refresh().bytes_read;
        index.save().unwrap();
        let body_path = cache::body_path(&cache);
        let mut body = std::fs::read(&body_path).unwrap();
        let at = body
            .windows(8)
            .position(|w| w == 30u64.to_le_bytes())
            .expect("m3's output tokens in the body");
        body[at] ^= 1;
        std::fs::write(&body_path, &body).unwrap();

        // Nothing changed: the entries part is not read.
        let mut warm = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        assert_eq!(warm.refresh_deferred().bytes_read, 0);
        assert!(warm.deferred.as_ref().is_some_and(|d| !d.is_read()));

        // One line more: its file is read on, the entries do not check out, every log is
        // read again, and the sums are right.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("-p/a.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut f, line("a", "/p", "m4", 40).as_bytes()).unwrap();
        drop(f);
        age(&root.join("-p/a.jsonl"));
        let added = line("a", "/p", "m4", 40).len() as u64;
        let mut grown = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        let stats = grown.refresh_deferred();
        assert_eq!(stats.bytes_read, total + added, "every log read again");
        assert!(grown.deferred.is_none());
        index.refresh();
        assert_eq!(reports(&grown), reports(&index));
        let t = grown
            .report(&Pricing::builtin(), &Query::new(GroupBy::Day))
            .totals;
        assert_eq!((t.entries, t.output_tokens), (4, 100));
    }

    #[test]
    fn a_kept_report_damaged_in_the_head_is_not_printed() {
        let Kept {
            dir: _dir,
            root,
            cache,
            day,
            report: _,
        } = kept_day_report();
        // 60 output tokens in all (10 + 20 + 30): one digit changed, still valid JSON.
        let head = std::fs::read_to_string(&cache).unwrap();
        assert!(head.contains(r#""output_tokens":60"#), "{head}");
        std::fs::write(
            &cache,
            head.replace(r#""output_tokens":60"#, r#""output_tokens":80"#),
        )
        .unwrap();
        let mut warm = UsageIndex::open(vec![root.clone()], Some(cache.clone()));
        warm.refresh_deferred();
        assert!(warm.remembered("day", day.now_ms).is_none());
    }
}
