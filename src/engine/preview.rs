//! The live read-only view of a sandbox's pane for the dashboard (D4): the visible screen
//! with its colours (`capture-pane -e`), never the scrollback.
//!
//! A long-lived front end reads panes through a [`PaneWatch`]: one tmux control client per
//! server, on the watch session every running session's window is linked into (see
//! [`super::tmux_link`]), kept open. A capture goes over it without a process, and only a
//! pane that tmux reported output for (or a layout change anywhere) since the last look is
//! captured again: a silent pane costs nothing. The plain text the status patterns read is
//! captured again only when that output could change what they read
//! ([`super::status_gate`]). The same output, routed by pane, is appended to the sandbox's
//! pane log ([`crate::paths::SandboxFiles::pane_log`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Deck;
use super::status_gate::Grams;
use super::tmux_link::{Link, Target};
use crate::error::Result;
use crate::host::tmux::Tmux;
use crate::host::tmux_control::OutputSink;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord, SandboxState};

impl Deck {
    /// The visible screen of `name`'s pane as text with ANSI colour escapes.
    pub fn capture_pane(&self, name: &str) -> Result<String> {
        let name = SandboxName::parse(name)?;
        // The registry as stored (no reconcile: this runs on every frame) says which server.
        let record = self.registry.load()?.into_iter().find(|r| r.name == name);
        match record {
            Some(record) => self.tmux_of(&record).capture(name.as_str(), 0, true),
            None => self.tmux.capture(name.as_str(), 0, true),
        }
    }

    /// `name`'s record and its pane log: the current file (the old one is
    /// [`PaneLog::rotated`] of it), which may not exist yet.
    pub fn pane_log_of(&self, name: &str) -> Result<(SandboxRecord, PathBuf)> {
        let record = self.show(name)?;
        let path = self.paths.sandbox(&record.id).pane_log();
        Ok((record, path))
    }

    /// The output of `record`'s pane from now on, while the pane is watched (the engine
    /// watches every running pane).
    pub fn pane_output(
        &self,
        record: &SandboxRecord,
    ) -> tokio::sync::broadcast::Receiver<super::pane_output::Chunk> {
        self.trackers.output.subscribe(&record.id)
    }

    /// The record of `name` as stored (no reconcile), for the preview.
    pub(super) fn stored_record(&self, name: &SandboxName) -> Result<Option<SandboxRecord>> {
        Ok(self.registry.load()?.into_iter().find(|r| &r.name == name))
    }
}

/// How long a pane's plain text stands at most while the status gate lets its output pass
/// (see [`super::status_gate`], which says why no pattern can appear unseen): a safety net
/// only, for what changes a screen with neither output nor a layout change. At a hundred
/// printing panes it was most of what the engine asked of tmux at 15 s (six captures a
/// second); now one in 120 s a pane.
pub const CAPTURE_SAFETY: Duration = Duration::from_secs(120);

/// The panes a long-lived front end watches, by sandbox: where their output goes and what
/// was captured last. The control connection is the server's one ([`super::tmux_link`]).
#[derive(Default)]
pub struct PaneWatch {
    panes: HashMap<SandboxId, Watched>,
    /// The status patterns' pieces, for the gate on each pane's output (made on first use).
    grams: Option<Arc<Grams>>,
    /// How many plain captures (for the status patterns) were taken, for tests and benches.
    pub status_captures: u64,
}

struct Watched {
    session: String,
    /// Its server.
    tmux: Tmux,
    target: Arc<Target>,
    /// The plain text (for the status patterns) and the coloured one (for the preview), each
    /// with the pane's output count and the connection's epoch when it was captured.
    plain: Option<Plain>,
    coloured: Option<(Seen, String)>,
}

/// The last plain capture of a pane, and what it was taken after.
struct Plain {
    seen: Seen,
    /// The status gate's mark ([`Target::status_mark`]) when it was taken.
    mark: Option<u64>,
    /// It could show part of a pattern ([`Grams::could_show`]): any output captures again.
    close: bool,
    at: Instant,
    text: String,
}

impl Plain {
    /// Whether this text still says what the status patterns would read from the pane now:
    /// nothing came but output the gate let pass, on the same connection and layout, within
    /// the safety net. Output alone (no layout change) is what `seen` may differ by.
    fn still_reads(&self, seen: Seen, mark: Option<u64>) -> bool {
        if self.seen == seen {
            return true;
        }
        (self.seen.1, self.seen.2) == (seen.1, seen.2)
            && !self.close
            && mark.is_some()
            && self.mark == mark
            && self.at.elapsed() < CAPTURE_SAFETY
    }
}

/// What a capture was taken after: the pane's output count, the link's change epoch and
/// which link it was.
type Seen = (u64, u64, u64);

impl PaneWatch {
    /// Watches every running session of `records` (so their output is logged while someone
    /// watches), and lets go of those of `records` that no longer run and of any other whose
    /// session the connection no longer sees. A caller that asks about one sandbox leaves
    /// the others watched as they are.
    pub fn keep(&mut self, deck: &Deck, records: &[SandboxRecord]) {
        self.panes
            .retain(|id, watched| match records.iter().find(|r| &r.id == id) {
                Some(record) => watchable(record),
                None => deck.tmux_links.saw(&watched.tmux, &watched.session),
            });
        for record in records.iter().filter(|r| watchable(r)) {
            self.entry(deck, record);
        }
        let mut servers: Vec<Tmux> = Vec::new();
        for watched in self.panes.values() {
            if !servers.iter().any(|t| t.socket() == watched.tmux.socket()) {
                servers.push(watched.tmux.clone());
            }
        }
        for tmux in &servers {
            self.link(deck, tmux);
        }
        // A server nobody is watched on any more still has its watch session tended.
        deck.tmux_links.tend();
    }

    /// The visible screen of `record`'s pane (plain, or with colours), captured again only
    /// if tmux said it changed. Without a control connection, a `capture-pane` process.
    pub fn text(&mut self, deck: &Deck, record: &SandboxRecord, colours: bool) -> Result<String> {
        let Some(session) = record.tmux_session.as_deref() else {
            return deck
                .tmux_of(record)
                .capture(record.name.as_str(), 0, colours);
        };
        let fallback = || deck.tmux_of(record).capture(session, 0, colours);
        if !watchable(record) {
            self.panes.remove(&record.id);
            return fallback();
        }
        let (tmux, target) = {
            let watched = self.entry(deck, record);
            (watched.tmux.clone(), Arc::clone(&watched.target))
        };
        // A pane the connection routes already: no need to say again what is watched.
        let link = deck
            .tmux_links
            .current(&tmux)
            .filter(|l| l.routes(session, &target));
        let Some(link) = link.or_else(|| self.link(deck, &tmux)) else {
            return fallback();
        };
        let Some(watched) = self.panes.get_mut(&record.id) else {
            return fallback();
        };
        // Read before capturing: output that comes during the capture marks it stale.
        let seen = (watched.target.changes(), link.epoch(), link.serial());
        if !colours {
            return self.plain_text(deck, record, &link, seen);
        }
        let cache = &mut watched.coloured;
        if let Some((at, text)) = cache.as_ref()
            && *at == seen
        {
            return Ok(text.clone());
        }
        match link.capture(session, colours) {
            Ok(text) => {
                *cache = Some((seen, text.clone()));
                Ok(text)
            }
            Err(e) => {
                tracing::debug!("capturing {session} over the control connection: {e}");
                fallback()
            }
        }
    }

    /// The plain text of a watched pane for the status patterns: captured again only when
    /// what came since could change what they read ([`super::status_gate`]).
    fn plain_text(
        &mut self,
        deck: &Deck,
        record: &SandboxRecord,
        link: &Link,
        seen: Seen,
    ) -> Result<String> {
        let Some(watched) = self.panes.get_mut(&record.id) else {
            return deck.tmux_of(record).capture(record.name.as_str(), 0, false);
        };
        // After `seen`: every chunk counted in it was read by the gate.
        let mark = watched.target.status_mark();
        if let Some(plain) = watched.plain.as_mut()
            && plain.still_reads(seen, mark)
        {
            plain.seen = seen;
            return Ok(plain.text.clone());
        }
        let session = watched.session.clone();
        match link.capture(&session, false) {
            Ok(text) => {
                self.status_captures += 1;
                let close = self.grams.as_ref().is_none_or(|g| g.could_show(&text));
                watched.plain = Some(Plain {
                    seen,
                    mark,
                    close,
                    at: Instant::now(),
                    text: text.clone(),
                });
                Ok(text)
            }
            Err(e) => {
                tracing::debug!("capturing {session} over the control connection: {e}");
                deck.tmux_of(record).capture(&session, 0, false)
            }
        }
    }

    /// The watched pane of `record`, made if need be (anew if its session or server changed).
    fn entry(&mut self, deck: &Deck, record: &SandboxRecord) -> &mut Watched {
        let session = record.tmux_session.clone().unwrap_or_default();
        let tmux = deck.tmux_of(record);
        let grams = Arc::clone(
            self.grams
                .get_or_insert_with(|| Arc::new(Grams::of(&deck.status_patterns))),
        );
        let watched = self
            .panes
            .entry(record.id.clone())
            .or_insert_with(|| Watched {
                session: String::new(),
                tmux: tmux.clone(),
                target: Target::new(Box::new(|_, _| {})),
                plain: None,
                coloured: None,
            });
        if watched.session != session || watched.tmux.socket() != tmux.socket() {
            *watched = Watched {
                session,
                tmux,
                target: Target::gated(pane_log_sink(deck, record), grams),
                plain: None,
                coloured: None,
            };
        }
        watched
    }

    /// The connection to `tmux`'s server, watching every pane of ours there.
    fn link(&self, deck: &Deck, tmux: &Tmux) -> Option<Arc<Link>> {
        let sessions: Vec<(&str, &Arc<Target>)> = self
            .panes
            .values()
            .filter(|w| w.tmux.socket() == tmux.socket())
            .map(|w| (w.session.as_str(), &w.target))
            .collect();
        deck.tmux_links.watch(tmux, &sessions)
    }
}

/// A sandbox whose pane is worth watching: running, in a tmux session.
fn watchable(record: &SandboxRecord) -> bool {
    record.state == SandboxState::Running && record.tmux_session.is_some()
}

/// Where a sandbox's pane output goes: its pane log, if logs are on, and its subscribers.
fn pane_log_sink(deck: &Deck, record: &SandboxRecord) -> OutputSink {
    let max_bytes = deck.config.logs.max_bytes;
    let mut log =
        (max_bytes > 0).then(|| PaneLog::new(deck.paths.sandbox(&record.id).pane_log(), max_bytes));
    let output = std::sync::Arc::clone(&deck.trackers.output);
    let id = record.id.clone();
    Box::new(move |_pane, data| {
        if let Some(log) = &mut log {
            log.append(data);
        }
        output.publish(&id, data);
    })
}

/// A sandbox's pane log: appended to, mode 0600, and rotated to `<name>.1` (one old file
/// kept) before it would grow past `max_bytes`. Its writer holds an exclusive `flock` on it:
/// of two engines watching one pane (a TUI and `serve`), one logs.
pub struct PaneLog {
    path: PathBuf,
    max_bytes: u64,
    file: Option<(std::fs::File, u64)>,
}

impl PaneLog {
    pub fn new(path: PathBuf, max_bytes: u64) -> PaneLog {
        PaneLog {
            path,
            max_bytes,
            file: None,
        }
    }

    /// The old file rotation keeps.
    pub fn rotated(path: &std::path::Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Appends `data`; a failure is logged and the data dropped (the log is best effort).
    pub fn append(&mut self, data: &[u8]) {
        if let Err(e) = self.try_append(data) {
            tracing::debug!("writing the pane log {}: {e}", self.path.display());
            self.file = None;
        }
    }

    fn try_append(&mut self, data: &[u8]) -> std::io::Result<()> {
        let size = match &self.file {
            Some((_, size)) => *size,
            None => match self.open()? {
                Some(size) => size,
                // Another watcher (a TUI beside `serve`) logs the same output.
                None => return Ok(()),
            },
        };
        if size > 0 && size + data.len() as u64 > self.max_bytes {
            self.file = None;
            std::fs::rename(&self.path, Self::rotated(&self.path))?;
            if self.open()?.is_none() {
                return Ok(());
            }
        }
        // A single write bigger than the cap keeps only its end.
        let keep = data.len().min(self.max_bytes as usize);
        let data = &data[data.len() - keep..];
        if let Some((file, size)) = &mut self.file {
            file.write_all(data)?;
            *size += data.len() as u64;
        }
        Ok(())
    }

    /// Opens the log and takes its lock; None (and nothing kept open) when another watcher
    /// holds it, so two watchers of one pane never write its output twice.
    fn open(&mut self) -> std::io::Result<Option<u64>> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)?;
        // SAFETY: flock on a descriptor we own and keep open; the lock goes with the file.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        let size = file.metadata()?.len();
        self.file = Some((file, size));
        Ok(Some(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pane_log_rotates_at_its_cap_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pane.log");
        let mut log = PaneLog::new(path.clone(), 10);
        log.append(b"0123456");
        log.append(b"\xff\xc3(");
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456\xff\xc3(");
        log.append(b"abc");
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(
            std::fs::read(PaneLog::rotated(&path)).unwrap(),
            b"0123456\xff\xc3("
        );
        log.append(b"0123456789XY");
        assert_eq!(std::fs::read(&path).unwrap(), b"23456789XY");
        assert_eq!(std::fs::read(PaneLog::rotated(&path)).unwrap(), b"abc");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// The capture net: a plain text the gate let output pass over stands until
    /// [`CAPTURE_SAFETY`], then reads stale; so does any other change than output.
    #[test]
    fn a_plain_capture_stands_for_gated_output_until_the_safety_net_only() {
        let plain = |age: Duration| Plain {
            seen: (5, 1, 1),
            mark: Some(7),
            close: false,
            at: Instant::now()
                .checked_sub(age)
                .expect("the clock is past the net"),
            text: String::new(),
        };
        let output_only = (9, 1, 1);
        assert!(plain(Duration::ZERO).still_reads(output_only, Some(7)));
        assert!(plain(CAPTURE_SAFETY - Duration::from_secs(1)).still_reads(output_only, Some(7)));
        assert!(
            !plain(CAPTURE_SAFETY + Duration::from_secs(1)).still_reads(output_only, Some(7)),
            "past the net the pane is captured again"
        );
        // Negative controls, inside the net: what the gate did not let pass, a layout
        // change, another connection, a text that could show part of a pattern.
        assert!(!plain(Duration::ZERO).still_reads(output_only, Some(8)));
        assert!(!plain(Duration::ZERO).still_reads(output_only, None));
        assert!(!plain(Duration::ZERO).still_reads((9, 2, 1), Some(7)));
        assert!(!plain(Duration::ZERO).still_reads((9, 1, 2), Some(7)));
        let close = Plain {
            close: true,
            ..plain(Duration::ZERO)
        };
        assert!(!close.still_reads(output_only, Some(7)));
        // Nothing new at all stands whatever its age.
        assert!(plain(CAPTURE_SAFETY * 2).still_reads((5, 1, 1), None));
    }

    #[test]
    fn two_watchers_of_one_pane_log_its_output_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pane.log");
        let mut first = PaneLog::new(path.clone(), 1000);
        let mut second = PaneLog::new(path.clone(), 1000);
        first.append(b"a");
        second.append(b"a");
        assert_eq!(std::fs::read(&path).unwrap(), b"a");
        // The first one gone, the second takes over.
        drop(first);
        second.append(b"b");
        assert_eq!(std::fs::read(&path).unwrap(), b"ab");
    }
}
