//! The log file: `$XDG_STATE_HOME/sandbox-deck/log/sandbox-deck.log` (mode 0600 in a 0700
//! dir), for what the terminal cannot show: the TUI draws on it, and stderr is for the CLI's
//! own error messages. `SANDBOX_DECK_LOG` sets the level in `EnvFilter` syntax (`debug`,
//! `sandbox_deck::engine=trace,info`); the default is `info`.
//!
//! The file is rotated by size, not by day (a quiet deck would keep a file a day, a busy one
//! could fill a disk in one): at [`MAX_BYTES`] it becomes `.1`, the older ones move up, and
//! only [`KEEP`] of them stay. `tracing-appender` rotates only by time, and a size-capped
//! writer is forty lines, so it is ours ([`RotatingFile`]) rather than another dependency.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

use crate::paths::Paths;

/// The variable that sets the level, in `EnvFilter` syntax.
pub const ENV: &str = "SANDBOX_DECK_LOG";
/// The current file's name in [`dir`]; rotated ones get `.1` (newest) to `.KEEP`.
pub const FILE_NAME: &str = "sandbox-deck.log";
/// A file is rotated before a line would take it past this size.
pub const MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Rotated files kept besides the current one: at most `(KEEP + 1) * MAX_BYTES` on disk.
pub const KEEP: u32 = 3;

/// Where the log files are.
pub fn dir(paths: &Paths) -> PathBuf {
    paths.state_dir.join("log")
}

/// Sets up the log for this process; called once, first thing in `main`. It never fails
/// and never writes to the terminal: without a usable state dir (no HOME, a dir we refuse)
/// sandbox-deck runs as before, unlogged. Nothing is created until a line is logged.
pub fn init() {
    let Ok(paths) = Paths::from_env() else {
        return;
    };
    let (filter, bad_filter) = filter_from_env();
    let writer = RotatingFile::new(dir(&paths), FILE_NAME, MAX_BYTES, KEEP);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(Mutex::new(writer))
        .with_ansi(false)
        .with_timer(TimeAndPid)
        .with_env_filter(filter)
        // Its default reports a failed write on stderr, which may be the TUI's terminal.
        .log_internal_errors(false)
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        // Only when a subscriber is already set (init called twice): keep the first.
        return;
    }
    if let Some(why) = bad_filter {
        tracing::warn!("{ENV} is not a valid filter ({why}); logging at info");
    }
    tracing::debug!(
        version = %env!("CARGO_PKG_VERSION"),
        command = %std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default(),
        "started"
    );
}

/// The filter `SANDBOX_DECK_LOG` asks for, or `info` (and why) when it is not valid.
fn filter_from_env() -> (EnvFilter, Option<String>) {
    let info = || EnvFilter::default().add_directive(LevelFilter::INFO.into());
    let asked = std::env::var(ENV).unwrap_or_default();
    if asked.trim().is_empty() {
        return (info(), None);
    }
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    match builder.parse(&asked) {
        Ok(filter) => (filter, None),
        Err(e) => (info(), Some(e.to_string())),
    }
}

/// Several processes share the file (the TUI, each CLI call, the git sync helpers): each
/// line carries the writer's pid after the time.
struct TimeAndPid;

impl FormatTime for TimeAndPid {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " [{}]", std::process::id())
    }
}

/// An append-only file rotated by size. Opened on the first write (so a run that logs
/// nothing creates nothing), in a private dir, mode 0600, close-on-exec (Rust's default: it
/// never reaches a sandbox). A write that fails is dropped: the log must never stop the deck.
///
/// Other processes append to the same file (`O_APPEND` keeps their lines whole), so the size
/// is asked of the file (one `fstat` a line), not counted. A writer whose file another one
/// already rotated finds it full and reopens the current one instead of rotating again.
pub struct RotatingFile {
    dir: PathBuf,
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    /// Opening failed once: stop trying (and stop paying for it on every line).
    broken: bool,
}

impl RotatingFile {
    pub fn new(dir: PathBuf, name: &str, max_bytes: u64, keep: u32) -> RotatingFile {
        RotatingFile {
            path: dir.join(name),
            dir,
            max_bytes,
            keep,
            file: None,
            broken: false,
        }
    }

    /// The file's `n`th rotated predecessor (1 is the newest).
    pub fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn open(&mut self) -> io::Result<()> {
        crate::host::fs::ensure_private_dir(&self.dir).map_err(io::Error::other)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        self.file = Some(file);
        Ok(())
    }

    /// Moves `name` to `name.1`, `name.1` to `name.2`, …, dropping the oldest; then opens a
    /// fresh `name`. When another process rotated first, only reopens.
    fn rotate(&mut self) -> io::Result<()> {
        let ours = self.file.take().map(|f| f.metadata()).transpose()?;
        let current = fs::metadata(&self.path).ok();
        let still_ours = match (&ours, &current) {
            (Some(a), Some(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if still_ours {
            for n in (1..self.keep).rev() {
                rename_if_present(&self.rotated(n), &self.rotated(n + 1))?;
            }
            if self.keep == 0 {
                fs::remove_file(&self.path)?;
            } else {
                fs::rename(&self.path, self.rotated(1))?;
            }
        }
        self.open()
    }

    fn write_line(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        let len = match &self.file {
            Some(file) => file.metadata()?.len(),
            None => 0,
        };
        if len > 0 && len + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        match self.file.as_mut() {
            Some(file) => file.write_all(buf),
            None => Ok(()),
        }
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Write for RotatingFile {
    /// One call is one formatted line (the fmt layer writes each event at once), so a line
    /// is never split across two files.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.broken && self.write_line(buf).is_err() {
            // Dropped, and no more tries: there is nowhere to report it (see the type's doc).
            self.broken = self.file.is_none();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(w: &RotatingFile) -> Vec<Option<u64>> {
        std::iter::once(w.path.clone())
            .chain((1..=w.keep + 1).map(|n| w.rotated(n)))
            .map(|p| fs::metadata(p).ok().map(|m| m.len()))
            .collect()
    }

    #[test]
    fn nothing_is_created_until_a_line_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut w = RotatingFile::new(dir.clone(), "t.log", 100, 2);
        assert!(!dir.exists());
        w.write_all(b"one\n").unwrap();
        assert_eq!(fs::read_to_string(dir.join("t.log")).unwrap(), "one\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("t.log")), 0o600);
    }

    #[test]
    fn rotation_caps_each_file_and_the_number_of_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = RotatingFile::new(tmp.path().join("log"), "t.log", 100, 2);
        let line = [b'x'; 29].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..50 {
            w.write_all(&line).unwrap();
        }
        // 3 lines (90 bytes) fit in 100; the 4th rotates. The current file, `.1` and `.2`
        // stay; there is never a `.3`.
        assert_eq!(sizes(&w), [Some(60), Some(90), Some(90), None]);
        let total: u64 = sizes(&w).into_iter().flatten().sum();
        assert!(total <= 3 * 100, "{total} bytes kept");
        // Lines stay whole.
        let text = fs::read_to_string(w.rotated(1)).unwrap();
        assert!(text.lines().all(|l| l.len() == 29), "{text:?}");
    }

    #[test]
    fn a_line_longer_than_the_cap_still_lands_in_a_file_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = RotatingFile::new(tmp.path().join("log"), "t.log", 10, 1);
        w.write_all(b"short\n").unwrap();
        w.write_all(b"a line of more than ten bytes\n").unwrap();
        w.write_all(b"next\n").unwrap();
        assert_eq!(fs::read_to_string(&w.path).unwrap(), "next\n");
        assert_eq!(
            fs::read_to_string(w.rotated(1)).unwrap(),
            "a line of more than ten bytes\n"
        );
        assert!(!w.rotated(2).exists());
    }

    #[test]
    fn a_second_writer_reopens_after_another_rotated_instead_of_rotating_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut a = RotatingFile::new(dir.clone(), "t.log", 20, 3);
        let mut b = RotatingFile::new(dir.clone(), "t.log", 20, 3);
        a.write_all(b"a1 456789\n").unwrap();
        b.write_all(b"b1 456789\n").unwrap();
        // The file holds 20 bytes, both writers' lines: `a` rotates it.
        a.write_all(b"a2 456789\n").unwrap();
        // `b` still holds the rotated file, full: it reopens the current one instead of
        // rotating again (which would push `a`'s fresh line down to `.1`).
        b.write_all(b"b2 456789\n").unwrap();
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(a.rotated(1)), "a1 456789\nb1 456789\n");
        assert_eq!(read(a.path.clone()), "a2 456789\nb2 456789\n");
        assert!(!a.rotated(2).exists());
    }

    #[test]
    fn a_dir_it_may_not_use_drops_the_lines_without_failing() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        fs::write(&file, "").unwrap();
        let mut w = RotatingFile::new(file, "t.log", 100, 1);
        assert_eq!(w.write(b"lost\n").unwrap(), 5);
        assert!(w.broken);
    }
}
