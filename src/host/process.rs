//! Processes identified by pid *and* start time, so a recycled pid is never taken for ours.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot.
    pub start_time: u64,
}

/// The parts of `/proc/<pid>/stat` we use. This module is the one reader of `/proc/<pid>/stat`
/// and `/proc/<pid>/comm` (tests and benches come here too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Field 2, the kernel's name for the process (at most 15 bytes; the process picks it).
    pub name: String,
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), `T` (stopped)...
    pub state: char,
    pub ppid: u32,
    /// User plus system time so far (fields 14 and 15), in clock ticks.
    pub cpu_ticks: u64,
    /// User plus system time of its children it has waited for (fields 16 and 17).
    pub reaped_children_ticks: u64,
    /// Field 22: clock ticks after boot.
    pub start_time: u64,
}

/// `/proc/<pid>/stat` now; None when there is no such process.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// `comm` (field 2) may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        name: text.get(open + 1..close)?.to_owned(),
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        cpu_ticks: number(11)? + number(12)?,
        reaped_children_ticks: number(13)? + number(14)?,
        start_time: number(19)?,
    })
}

/// `/proc/<pid>/comm` without its newline: the same name as [`Stat::name`].
pub fn name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
}

/// The parent of `pid`, if `pid` exists.
pub fn parent(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.ppid)
}

/// Exists and has not finished (a zombie has finished; only its parent's bookkeeping remains).
pub fn is_running(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// `pid` and its ancestors, nearest first, up to (not including) pid 1, at most `limit`.
pub fn ancestry(pid: u32, limit: usize) -> Vec<Stat> {
    let mut found = Vec::new();
    let mut next = Some(pid);
    while let Some(pid) = next.filter(|p| *p > 1 && found.len() < limit) {
        let Some(stat) = stat(pid) else { break };
        next = Some(stat.ppid);
        found.push(stat);
    }
    found
}

/// Every pid in `/proc` now.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

impl ProcRef {
    /// The process with this pid as it is now, if it exists.
    pub fn of(pid: u32) -> Option<ProcRef> {
        stat(pid).map(|s| ProcRef {
            pid,
            start_time: s.start_time,
        })
    }

    /// True while this very process runs (a zombie has finished running).
    pub fn is_alive(&self) -> bool {
        stat(self.pid)
            .is_some_and(|s| s.start_time == self.start_time && s.state != 'Z' && s.state != 'X')
    }

    /// Alive and asleep in the kernel (state `S`): blocked on a timer, a terminal or a
    /// socket, as a settled program is.
    pub fn is_waiting(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start_time == self.start_time && s.state == 'S')
    }

    pub fn signal(&self, signal: Signal) -> bool {
        self.is_alive() && kill(Pid::from_raw(self.pid as i32), signal).is_ok()
    }

    /// SIGTERM, then SIGKILL if it has not gone after `grace`. Returns once it is gone.
    pub fn terminate(&self, grace: Duration) {
        if !self.signal(Signal::SIGTERM) {
            return;
        }
        if !wait_until(grace, || !self.is_alive()) {
            self.signal(Signal::SIGKILL);
            wait_until(Duration::from_secs(2), || !self.is_alive());
        }
    }

    /// Every live process below this one, found by walking parent pids in `/proc`.
    pub fn descendants(&self) -> Vec<ProcRef> {
        if !self.is_alive() {
            return Vec::new();
        }
        ProcessTree::read().descendants(self)
    }
}

/// Who is whose parent, read from `/proc` once: walking many trees (every sandbox's, on each
/// metrics sample) costs one scan of `/proc` rather than one each.
pub struct ProcessTree {
    children: HashMap<u32, Vec<ProcRef>>,
}

impl ProcessTree {
    pub fn read() -> ProcessTree {
        let mut children: HashMap<u32, Vec<ProcRef>> = HashMap::new();
        for (pid, stat) in all_processes() {
            children.entry(stat.ppid).or_default().push(ProcRef {
                pid,
                start_time: stat.start_time,
            });
        }
        ProcessTree { children }
    }

    /// The processes below `root` when the tree was read.
    pub fn descendants(&self, root: &ProcRef) -> Vec<ProcRef> {
        let mut found = Vec::new();
        let mut queue = vec![root.pid];
        while let Some(parent) = queue.pop() {
            for child in self.children.get(&parent).into_iter().flatten() {
                // A pid cycle cannot happen in one kernel snapshot, but a torn read of
                // `/proc` could show one: never walk a pid twice.
                if child.pid != root.pid && !found.contains(child) {
                    queue.push(child.pid);
                    found.push(*child);
                }
            }
        }
        found
    }
}

fn all_processes() -> Vec<(u32, Stat)> {
    pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// What a metrics sample needs of `/proc/<pid>/stat`, read by a [`StatReader`] without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), `T` (stopped)...
    pub state: u8,
    pub ppid: u32,
    /// User plus system time so far (fields 14 and 15), in clock ticks.
    pub cpu_ticks: u64,
    /// Field 22: clock ticks after boot.
    pub start_time: u64,
    /// Field 24: resident pages.
    pub rss_pages: u64,
    /// Field 38, the signal its parent gets when it ends, is -1 for a thread that is not
    /// its process's first: `/proc/<tid>/stat` answers for such a thread too, though `/proc`
    /// does not list it.
    pub thread: bool,
}

impl Sample {
    pub fn proc_ref(&self, pid: u32) -> ProcRef {
        ProcRef {
            pid,
            start_time: self.start_time,
        }
    }

    /// Still running (a zombie has finished running).
    pub fn is_running(&self) -> bool {
        self.state != b'Z' && self.state != b'X'
    }
}

/// A `stat` file opened by [`StatReader::probe`], to keep ([`StatReader::keep`]) or drop.
pub struct Probed(std::fs::File);

/// Reads `/proc/<pid>/stat`, `/proc/<pid>/status` and `/proc/loadavg` into buffers it keeps,
/// so a reader that is kept (one per metrics sampler) allocates nothing per read once warm.
///
/// The `stat` of a process followed from sample to sample ([`StatReader::sample_kept`]) stays
/// open and is read again with `pread`: no path lookup in `/proc`, which is most of what an
/// open costs (issue 15). An open `/proc/<pid>` file belongs to the process it was opened
/// for, not to its pid: once that process is reaped, a read fails (`ESRCH`) even if the pid
/// was handed out again, and the path is then opened anew for whoever has the pid now.
pub struct StatReader {
    /// Where `proc` is mounted: `/proc`, or another pid namespace's (tests).
    root: String,
    path: String,
    buf: Vec<u8>,
    /// The kept `stat` files by pid, each with the round it was last read in.
    kept: HashMap<u32, (std::fs::File, u64)>,
    round: u64,
    /// `/proc/loadavg`, kept open the same way.
    loadavg: Option<std::fs::File>,
    /// At most this many files kept open: a quarter of the soft limit on open files, looked
    /// up again when reached (the limit may have been raised since).
    max_kept: usize,
    /// How many `/proc` paths were opened (for tests: a kept file is read without one).
    opened: u64,
}

impl Default for StatReader {
    fn default() -> StatReader {
        StatReader::new()
    }
}

impl StatReader {
    pub fn new() -> StatReader {
        StatReader::at("/proc")
    }

    /// A reader of the `proc` mounted at `root` (another pid namespace's, seen through
    /// `/proc/<pid>/root/proc`).
    pub fn at(root: &str) -> StatReader {
        StatReader {
            root: root.to_owned(),
            path: String::with_capacity(32),
            buf: Vec::with_capacity(1024),
            kept: HashMap::new(),
            round: 0,
            loadavg: None,
            max_kept: max_kept_files(),
            opened: 0,
        }
    }

    fn read(&mut self, pid: Option<u32>, file: &str) -> bool {
        use std::io::Read as _;
        self.buf.clear();
        self.open(pid, file)
            .is_some_and(|mut f| f.read_to_end(&mut self.buf).is_ok())
    }

    fn open(&mut self, pid: Option<u32>, file: &str) -> Option<std::fs::File> {
        self.set_path(pid, file);
        self.opened += 1;
        std::fs::File::open(&self.path).ok()
    }

    /// How many `/proc` paths this reader opened so far (for tests).
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Whether another file may be kept open, the soft limit looked up again when the last
    /// count says no.
    fn room_to_keep(&mut self) -> bool {
        if self.kept.len() >= self.max_kept {
            self.max_kept = max_kept_files();
        }
        self.kept.len() < self.max_kept
    }

    fn set_path(&mut self, pid: Option<u32>, file: &str) {
        use std::fmt::Write as _;
        self.path.clear();
        let root = &self.root;
        let _ = match pid {
            Some(pid) => write!(self.path, "{root}/{pid}/{file}"),
            None => write!(self.path, "{root}/{file}"),
        };
    }

    /// `/proc/<pid>/stat` now; None when there is no such process. The file is opened,
    /// read and closed: for a pid probed once.
    pub fn sample(&mut self, pid: u32) -> Option<Sample> {
        if !self.read(Some(pid), "stat") {
            return None;
        }
        parse_sample(&self.buf)
    }

    /// The same for a process followed between samples: its `stat` is kept open and read
    /// again in place. Files not read since the last [`StatReader::close_unread`] are closed
    /// then.
    pub fn sample_kept(&mut self, pid: u32) -> Option<Sample> {
        if let Some((file, round)) = self.kept.get_mut(&pid) {
            *round = self.round;
            if pread_whole(file, &mut self.buf).is_ok()
                && let Some(sample) = parse_sample(&self.buf)
            {
                return Some(sample);
            }
            // Its process was reaped: the pid may be someone else's now.
            self.kept.remove(&pid);
        }
        if !self.room_to_keep() {
            return self.sample(pid);
        }
        let file = self.open(Some(pid), "stat")?;
        pread_whole(&file, &mut self.buf).ok()?;
        let sample = parse_sample(&self.buf)?;
        self.kept.insert(pid, (file, self.round));
        Some(sample)
    }

    /// `/proc/<pid>/stat` now, with the file still open: a pid probed that turns out to be
    /// one to follow is kept ([`StatReader::keep`]) without opening its path again.
    pub fn probe(&mut self, pid: u32) -> Option<(Sample, Probed)> {
        let file = self.open(Some(pid), "stat")?;
        pread_whole(&file, &mut self.buf).ok()?;
        Some((parse_sample(&self.buf)?, Probed(file)))
    }

    /// Keeps a probed file open, as [`StatReader::sample_kept`] would have (unless the
    /// reader keeps as many as it may, or already keeps one for `pid`).
    pub fn keep(&mut self, pid: u32, probed: Probed) {
        if !self.kept.contains_key(&pid) && self.room_to_keep() {
            self.kept.insert(pid, (probed.0, self.round));
        }
    }

    /// [`ProcRef::is_alive`] through a kept `stat` file.
    pub fn is_alive(&mut self, process: &ProcRef) -> bool {
        self.sample_kept(process.pid)
            .is_some_and(|s| s.start_time == process.start_time && s.is_running())
    }

    /// Closes the kept files not read since the last call: their processes left the trees.
    pub fn close_unread(&mut self) {
        let round = self.round;
        self.kept.retain(|_, (_, read)| *read == round);
        self.round += 1;
    }

    /// How many `stat` files are kept open (for tests).
    pub fn kept(&self) -> usize {
        self.kept.len()
    }

    /// Whether `pid` is a process (a thread group's leader), not another thread of one:
    /// `/proc/<tid>/stat` answers for a thread too, though `/proc` does not list it.
    pub fn is_process(&mut self, pid: u32) -> bool {
        self.sample(pid).is_some_and(|s| !s.thread)
    }

    /// The last pid the kernel handed out in our pid namespace (the fifth field of
    /// `/proc/loadavg`): every process started since a reading has a pid after it, unless
    /// the counter wrapped.
    pub fn last_pid(&mut self) -> Option<u32> {
        if self.loadavg.is_none() {
            self.set_path(None, "loadavg");
            self.loadavg = std::fs::File::open(&self.path).ok();
        }
        let read = self
            .loadavg
            .as_ref()
            .is_some_and(|f| pread_whole(f, &mut self.buf).is_ok());
        if !read {
            self.loadavg = None;
            return None;
        }
        let text = std::str::from_utf8(&self.buf).ok()?;
        text.split_whitespace().nth(4)?.parse().ok()
    }
}

/// The whole of a `/proc` file from its start into `buf`, with `pread`: a `/proc` file
/// shows its contents as they are at a read from offset 0, so one kept open is read again
/// this way. These files (`stat`, `loadavg`) are made whole at a read from 0, so a read
/// that leaves room in `buf` got all of it: one system call.
fn pread_whole(file: &std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    buf.clear();
    buf.reserve(1024);
    loop {
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        let room = buf.len() - len;
        let read = file.read_at(&mut buf[len..], len as u64);
        let n = *read.as_ref().unwrap_or(&0);
        buf.truncate(len + n);
        read?;
        if n < room {
            return Ok(());
        }
        buf.reserve(1024);
    }
}

/// A quarter of the soft limit on open files (at most 4096): the rest stays for the
/// engine's sockets, pipes and logs.
fn max_kept_files() -> usize {
    let soft = open_files_limit().map_or(1024, |l| l.rlim_cur);
    usize::try_from(soft / 4).unwrap_or(4096).min(4096)
}

/// This process's limits on open files (soft, hard).
pub fn open_files_limit() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we hand it, which lives across the call.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit)
}

/// How far [`raise_open_files_limit`] raises the soft limit: a quarter of it is the 4096
/// `stat` files a metrics sampler keeps at most, and a child (which inherits it) that
/// loops over every possible descriptor is not slowed by a limit in the millions.
pub const OPEN_FILES_WANTED: u64 = 16_384;

/// Raises this process's soft limit on open files towards the hard limit (up to
/// [`OPEN_FILES_WANTED`]), never lowering it: the soft limit is often 1,024 while the hard
/// one is far higher, and at 100 sandboxes a metrics sampler keeps a `stat` file open for
/// each of about 500 processes (issue 15). Returns the soft limit now.
pub fn raise_open_files_limit() -> u64 {
    let Some(limit) = open_files_limit() else {
        return 1024;
    };
    let wanted = OPEN_FILES_WANTED.min(limit.rlim_max);
    if wanted <= limit.rlim_cur {
        return limit.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we hand it, which lives across the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        wanted
    } else {
        limit.rlim_cur
    }
}

/// The fields of a [`Sample`], counted after the last `)` (the name may hold anything).
pub fn parse_sample(text: &[u8]) -> Option<Sample> {
    let close = text.iter().rposition(|b| *b == b')')?;
    let mut fields = text
        .get(close + 1..)?
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty());
    let number =
        |field: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(field?).ok()?.parse().ok() };
    let state = *fields.next()?.first()?;
    let ppid = u32::try_from(number(fields.next())?).ok()?;
    // Fields 5..=13, then utime (14) and stime (15).
    let mut fields = fields.skip(9);
    let cpu_ticks = number(fields.next())? + number(fields.next())?;
    // Fields 16..=21, then starttime (22), vsize (23), rss (24).
    let mut fields = fields.skip(6);
    let start_time = number(fields.next())?;
    let _vsize = fields.next()?;
    let rss_pages = number(fields.next())?;
    // Fields 25..=37, then exit_signal (38).
    let thread = fields.nth(13)? == b"-1";
    Some(Sample {
        state,
        ppid,
        cpu_ticks,
        start_time,
        rss_pages,
        thread,
    })
}

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.name, "a) b (c)");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.cpu_ticks, 0);
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.start_time, 98765);
    }

    #[test]
    fn the_sample_reader_agrees_with_stat_and_tells_a_thread_from_a_process() {
        let line = b"1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 98765 \
            1000 42 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let sample = parse_sample(line).unwrap();
        assert!(!sample.thread);
        let thread_line = String::from_utf8_lossy(line).replace(" 17 1 ", " -1 1 ");
        assert!(parse_sample(thread_line.as_bytes()).unwrap().thread);
        assert_eq!(
            (
                sample.state,
                sample.ppid,
                sample.cpu_ticks,
                sample.start_time,
                sample.rss_pages
            ),
            (b'S', 1, 12, 98765, 42)
        );
        let me = std::process::id();
        let mut reader = StatReader::new();
        let own = reader.sample(me).unwrap();
        let full = stat(me).unwrap();
        assert_eq!((own.ppid, own.start_time), (full.ppid, full.start_time));
        assert!(own.rss_pages > 0);
        assert!(reader.is_process(me));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as u32;
            tx.send(tid).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let tid = rx.recv().unwrap();
        assert!(
            reader.sample(tid).is_some(),
            "a thread answers at /proc/<tid>/stat"
        );
        assert!(!reader.is_process(tid), "but is no process");
        thread.join().unwrap();
        let last = reader.last_pid().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let after = reader.last_pid().unwrap();
        assert!(
            after >= child.id() || after < last,
            "{last} {after} {}",
            child.id()
        );
        let _ = child.wait();
    }

    /// A shell as init of a pid namespace of its own (unshare), whose `sleep` gets pid 2,
    /// and after it is reaped, pid 2 again for a new `sleep` (the namespace's last pid
    /// set back); its `proc` seen from here through `/proc/<pid>/root/proc`.
    struct PidNamespace {
        unshare: std::process::Child,
        init: u32,
        lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    }

    impl PidNamespace {
        fn start() -> PidNamespace {
            use std::io::BufRead as _;
            use std::process::{Command, Stdio};
            let script = "sleep 300 & echo $!; read go; kill $!; wait; sleep 0.05; \
                          echo 1 > /proc/sys/kernel/ns_last_pid; sleep 300 & echo $!; read end";
            let mut unshare = Command::new("unshare")
                .args([
                    "--user",
                    "--map-root-user",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                ])
                .args(["sh", "-c", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("unshare (util-linux)");
            let stdout = unshare.stdout.take().unwrap();
            let mut lines = std::io::BufReader::new(stdout).lines();
            assert_eq!(lines.next().unwrap().unwrap(), "2", "the first sleep");
            let me = unshare.id();
            let children = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"));
            let init = children.unwrap().trim().parse().unwrap();
            PidNamespace {
                unshare,
                init,
                lines,
            }
        }

        fn proc_root(&self) -> String {
            format!("/proc/{}/root/proc", self.init)
        }

        /// Kills and reaps the sleep, and starts another: the pid it got.
        fn replace_the_sleep(&mut self) -> String {
            use std::io::Write as _;
            writeln!(self.unshare.stdin.as_mut().unwrap(), "go").unwrap();
            self.lines.next().unwrap().unwrap()
        }
    }

    impl Drop for PidNamespace {
        fn drop(&mut self) {
            // The namespace's init killed, the kernel kills the rest of it.
            let _ = kill(Pid::from_raw(self.init as i32), Signal::SIGKILL);
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }

    #[test]
    fn a_kept_stat_file_never_reads_another_process_that_got_its_pid() {
        let mut ns = PidNamespace::start();
        let mut reader = StatReader::at(&ns.proc_root());
        let first = reader.sample_kept(2).expect("the first sleep");
        assert_eq!(reader.kept(), 1);
        // Read again in place: the same process.
        assert_eq!(reader.sample_kept(2).unwrap().start_time, first.start_time);
        assert_eq!(ns.replace_the_sleep(), "2", "the pid was handed out again");
        let second = reader.sample_kept(2).expect("the new sleep, read anew");
        assert_ne!(second.start_time, first.start_time, "not the old process");
        let opened = reader.sample(2).unwrap();
        // What a fresh open of the path reads: the same process (its state and CPU time
        // may move between the two reads; its start and parent cannot).
        assert_eq!(
            (second.start_time, second.ppid),
            (opened.start_time, opened.ppid),
            "what a fresh open of the path reads"
        );
        assert_eq!(reader.kept(), 1, "the old file was let go");
        // One not read in a round is closed at its end.
        reader.close_unread();
        reader.close_unread();
        assert_eq!(reader.kept(), 0);
    }

    #[test]
    fn a_kept_liveness_check_sees_its_process_end() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let process = ProcRef::of(child.id()).unwrap();
        let mut reader = StatReader::new();
        assert!(reader.is_alive(&process));
        reader.close_unread();
        assert_eq!(reader.kept(), 1, "read in the round that ended: kept");
        reader.close_unread();
        assert_eq!(reader.kept(), 0, "not read since: closed");
        assert!(reader.is_alive(&process), "opened again");
        let impostor = ProcRef {
            start_time: process.start_time + 1,
            ..process
        };
        assert!(
            !reader.is_alive(&impostor),
            "another start time is another process"
        );
        child.kill().unwrap();
        // A zombie has finished running; reaped, its kept file answers no more.
        assert!(wait_until(Duration::from_secs(5), || !reader.is_alive(&process)));
        let _ = child.wait();
        assert!(!reader.is_alive(&process));
        assert_eq!(
            reader.kept(),
            0,
            "a reaped process's file is let go at once"
        );
    }

    #[test]
    fn stat_and_comm_agree_and_ancestry_starts_with_the_process_itself() {
        let me = std::process::id();
        let own = stat(me).unwrap();
        assert_eq!(Some(own.name.clone()), name(me));
        assert_eq!(parent(me), Some(own.ppid));
        assert!(is_running(me));
        assert!(pids().contains(&me));
        let line = ancestry(me, 32);
        assert_eq!(line[0].start_time, own.start_time);
        assert!(
            line.windows(2).all(|w| w[0].ppid > 1),
            "pid 1 is never listed"
        );
        assert_eq!(ancestry(me, 1).len(), 1);
    }

    #[test]
    fn a_recycled_pid_is_not_taken_for_ours() {
        let me = ProcRef::of(std::process::id()).unwrap();
        assert!(me.is_alive());
        let impostor = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!impostor.is_alive());
    }

    #[test]
    fn descendants_and_terminate_cover_a_whole_tree() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let parent = ProcRef::of(child.id()).unwrap();
        assert!(wait_until(Duration::from_secs(5), || parent
            .descendants()
            .len()
            == 2));
        let tree = parent.descendants();
        for p in &tree {
            p.terminate(Duration::from_secs(2));
        }
        let _ = child.wait(); // reaps it; its status is not the point
        assert!(tree.iter().all(|p| !p.is_alive()));
    }
}
