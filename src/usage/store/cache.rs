//! The index's cache between runs, in two files: `usage-cache.json`, a small JSON document
//! (version, roots, the lengths and checksums of the body's two parts, the last reports made
//! from it), and its body beside it (`usage-cache.bin`), laid out by hand so that a run with
//! nothing new reads little of it, with no parsing to speak of.
//!
//! The body, little-endian throughout, in two parts each with its own length and checksum:
//!
//! ```text
//! stat part:
//!   magic "SDUB", version u32
//!   dirs:     u32 count, each path, mtime i64, read_at i64, truncated u8,
//!             u32 + paths (subdirectories), u32 + paths (files)
//!   files:    u32 count, each path, session hint, project dir name, read mark (10 x 8),
//!             line counts (4 x u64, limit flag u8, 2 x i64), entry count u32
//! entries part:
//!   strings:  u32 count, each bytes          (models, sessions, cwds: entries index them)
//!   entries:  every file's entries in file order, ENTRY_LEN bytes each: time i64,
//!             model u32, session u32, cwd u32, flags u8 (sidechain, winner, has cost),
//!             5 token counts u64, cost f64
//!   keys:     one per entry in the same order: u32 length (u32::MAX: none), bytes
//! ```
//!
//! "bytes" and "path" are a u32 length and the bytes. A run reads the stat part, all it
//! needs to tell whether anything changed; when nothing did and a report for its query was
//! kept, it prints that and never reads the entries part (4/5 of the body). The entries come
//! before their keys so that a run that needs the entries but changes nothing never decodes
//! a key: its report needs only which entry won each message id, which the winner flag
//! says. The keys (and the dedupe index built of them) are decoded once something must be
//! added or dropped.
//!
//! Anything that does not check out (another version, another set of roots, a length or
//! checksum that does not match, an index out of range) makes the cache ignored: the logs
//! are read again, never misread. The entries part is checked when it is read; the file
//! stays open from the stat part's read, so both parts come from the same body even when
//! another run replaces it meanwhile.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{DirListing, FileState, Identity, LogPlace, ReadMark};
use crate::usage::Tokens;
use crate::usage::jsonl::{LimitNotice, LineCounts, RawEntry};

/// The cache's shape: a cache of another version is not read but rebuilt from the logs.
/// 2: a file's place, read mark and line counts each an object of their own (all JSON).
/// 3: a JSON head naming a binary body (this module).
/// 4: the body in two parts, what a run with nothing new reads first.
pub const CACHE_VERSION: u32 = 4;
const MAGIC: &[u8; 4] = b"SDUB";
const ENTRY_LEN: usize = 8 + 4 * 3 + 1 + 8 * 5 + 8;
const NO_KEY: u32 = u32::MAX;
const SIDECHAIN: u8 = 1;
const WINNER: u8 = 2;
const HAS_COST: u8 = 4;

/// `usage-cache.json`: what the body must be to be read, and the last reports made from it.
#[derive(Serialize, Deserialize)]
struct Head {
    version: u32,
    roots: Vec<PathBuf>,
    /// The body's parts; None: the index was empty, there is no body.
    body: Option<BodySum>,
    #[serde(default)]
    reports: Vec<Memo>,
}

/// A report made from the index exactly as the body holds it, for a query (its key, see
/// `Deck::usage_report`): printed again as long as nothing was found changed. Only reports
/// that time alone cannot change are kept (no active block; see [`Memo::usable`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct Memo {
    pub key: String,
    /// When it was made (unix ms): a clock gone back does not reuse it.
    pub at_ms: i64,
    /// The body it was made from.
    pub body: BodySum,
    pub report: Box<RawValue>,
    /// The checksum of `report`'s text: a head damaged into other valid JSON is not
    /// printed.
    pub sum: u64,
}

impl Memo {
    pub fn new(key: String, at_ms: i64, body: BodySum, report: Box<RawValue>) -> Memo {
        let sum = checksum(report.get().as_bytes());
        Memo {
            key,
            at_ms,
            body,
            report,
            sum,
        }
    }

    /// Whether its report is the text it was kept with.
    pub fn intact(&self) -> bool {
        checksum(self.report.get().as_bytes()) == self.sum
    }
}

/// The (length, checksum) of each part of a body: the stat part, then the entries part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodySum {
    pub stat: (u64, u64),
    pub entries: (u64, u64),
}

/// How many reports the head keeps (the latest first).
pub const MEMOS: usize = 4;
/// A report bigger than this is not kept (it costs more to parse than to make).
pub const MEMO_MAX: usize = 256 << 10;

/// Where the body of the cache at `head` lies.
pub fn body_path(head: &Path) -> PathBuf {
    head.with_extension("bin")
}

/// A checksum of the whole body, 32 bytes at a time in four independent lanes (fast enough
/// to run on every load; it catches a torn or damaged body, not anyone who means it).
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x0000_0100_0000_01b3;
    let mut lanes = [0x9e37_79b9_7f4a_7c15u64 ^ bytes.len() as u64; 4];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            *lane = (*lane ^ w).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut h = lanes
        .iter()
        .fold(0u64, |h, lane| (h ^ lane).wrapping_mul(K).rotate_left(29));
    for b in blocks.remainder() {
        h = (h ^ u64::from(*b)).wrapping_mul(K);
    }
    h
}

/// What the stat part of a cache held: the entries are read and decoded when needed.
pub struct Loaded {
    pub body: Option<BodySum>,
    pub memos: Vec<Memo>,
    pub dirs: Vec<(PathBuf, DirListing)>,
    pub files: Vec<FileState>,
    pub deferred: Option<Deferred>,
}

/// The entries part of a body whose stat part was loaded: not read until needed.
pub struct Deferred {
    /// The body, open since its stat part was read.
    file: std::fs::File,
    /// Where the entries part starts, and its (length, checksum).
    at: u64,
    sum: (u64, u64),
    /// The number of entries of each file, in file order.
    counts: Vec<u32>,
    part: Option<EntriesPart>,
    /// The entries were put into their files (without keys).
    pub entries_done: bool,
}

/// The entries part, read and checked.
struct EntriesPart {
    bytes: Vec<u8>,
    strings: Vec<Arc<str>>,
    entries_at: usize,
    keys_at: usize,
}

/// Reads the cache at `head` when it is ours, of this version, for `roots`, and its stat
/// part intact (the entries part is checked when [`Deferred::read`] reads it).
pub fn load(head: &Path, roots: &[PathBuf]) -> Option<Loaded> {
    let text = std::fs::read(head).ok()?;
    let head_doc: Head = serde_json::from_slice(&text).ok()?;
    if head_doc.version != CACHE_VERSION || head_doc.roots != roots {
        return None;
    }
    let Some(sum) = head_doc.body else {
        return Some(Loaded {
            body: None,
            memos: Vec::new(),
            dirs: Vec::new(),
            files: Vec::new(),
            deferred: None,
        });
    };
    let file = std::fs::File::open(body_path(head)).ok()?;
    // A body of another length is torn or another one: not worth reading.
    if file.metadata().ok()?.len() != sum.stat.0.checked_add(sum.entries.0)? {
        return None;
    }
    let bytes = read_part(&file, 0, sum.stat)?;
    let (dirs, files, counts) = decode_stat(&bytes)?;
    Some(Loaded {
        body: Some(sum),
        memos: head_doc.reports,
        dirs,
        files,
        deferred: Some(Deferred {
            file,
            at: sum.stat.0,
            sum: sum.entries,
            counts,
            part: None,
            entries_done: false,
        }),
    })
}

/// The `len` bytes at `at` of `file` when their checksum is `sum` (read into a buffer that
/// is not zeroed first).
fn read_part(file: &std::fs::File, at: u64, (len, sum): (u64, u64)) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(usize::try_from(len).ok()?).ok()?;
    let mut reader = file;
    reader.seek(SeekFrom::Start(at)).ok()?;
    reader.take(len).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == len && checksum(&bytes) == sum).then_some(bytes)
}

/// Writes the head and the body (each to a temp file, then renamed over the old one; the
/// body first, so that a head always names a body at least as new as itself, and the
/// checksum tells a reader that raced the two renames).
/// Returns the body's sums.
pub fn save(
    head: &Path,
    roots: &[PathBuf],
    body: Option<Body>,
) -> std::io::Result<Option<BodySum>> {
    let sum = body.as_ref().map(Body::sum);
    match &body {
        Some(b) => write_atomically(&body_path(head), &b.bytes)?,
        None => match std::fs::remove_file(body_path(head)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        },
    }
    save_head(head, roots, sum, &[])?;
    Ok(sum)
}

/// Writes the head alone: the body it names is already there.
pub fn save_head(
    head: &Path,
    roots: &[PathBuf],
    body: Option<BodySum>,
    memos: &[Memo],
) -> std::io::Result<()> {
    let doc = Head {
        version: CACHE_VERSION,
        roots: roots.to_vec(),
        body,
        reports: memos.to_vec(),
    };
    let text = serde_json::to_vec(&doc).map_err(std::io::Error::other)?;
    write_atomically(head, &text)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let done = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        // The write's error is the one to report; this only tidies up after it.
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// A bounds-checked reader over the body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(self.u64()? as i64)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn path(&mut self) -> Option<PathBuf> {
        Some(PathBuf::from(OsStr::from_bytes(self.bytes()?)))
    }
    fn paths(&mut self) -> Option<Vec<PathBuf>> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(self.buf.len()));
        for _ in 0..n {
            out.push(self.path()?);
        }
        Some(out)
    }
}

/// The stat part's directories, files, and each file's entry count; None unless it is
/// exactly that.
type StatPart = (Vec<(PathBuf, DirListing)>, Vec<FileState>, Vec<u32>);

fn decode_stat(bytes: &[u8]) -> Option<StatPart> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(4)? != MAGIC || r.u32()? != CACHE_VERSION {
        return None;
    }
    let n = r.u32()? as usize;
    let mut dirs = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        let path = r.path()?;
        let listing = DirListing {
            generation: 0,
            mtime_ns: r.i64()?,
            read_at_ns: r.i64()?,
            truncated: r.u8()? != 0,
            dirs: r.paths()?,
            files: r.paths()?,
        };
        dirs.push((path, listing));
    }
    let n = r.u32()? as usize;
    let mut files = Vec::with_capacity(n.min(bytes.len()));
    let mut counts = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        let (state, entries) = file(&mut r)?;
        files.push(state);
        counts.push(entries);
    }
    (r.pos == bytes.len()).then_some((dirs, files, counts))
}

/// The entries part, checked to the end: every string index in range, every key UTF-8,
/// as many entries and keys as the stat part's `counts` say, nothing after them.
fn decode_entries_part(bytes: Vec<u8>, counts: &[u32]) -> Option<EntriesPart> {
    let mut r = Reader {
        buf: &bytes,
        pos: 0,
    };
    let n = r.u32()? as usize;
    let mut strings: Vec<Arc<str>> = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        strings.push(Arc::from(std::str::from_utf8(r.bytes()?).ok()?));
    }
    let entries_at = r.pos;
    let total: usize = counts.iter().map(|c| *c as usize).sum();
    let entries = r.take(total.checked_mul(ENTRY_LEN)?)?;
    for e in entries.chunks_exact(ENTRY_LEN) {
        let index = |at: usize| u32::from_le_bytes(e[at..at + 4].try_into().unwrap_or_default());
        if [8, 12, 16]
            .iter()
            .any(|at| index(*at) as usize >= strings.len())
        {
            return None;
        }
    }
    let keys_at = r.pos;
    for _ in 0..total {
        let len = r.u32()?;
        if len != NO_KEY {
            std::str::from_utf8(r.take(len as usize)?).ok()?;
        }
    }
    if r.pos != bytes.len() {
        return None;
    }
    Some(EntriesPart {
        bytes,
        strings,
        entries_at,
        keys_at,
    })
}

fn file(r: &mut Reader<'_>) -> Option<(FileState, u32)> {
    let place = LogPlace {
        path: r.path()?,
        session_hint: r.text()?,
        project_dir_name: r.text()?,
    };
    let id = Identity {
        dev: r.u64()?,
        ino: r.u64()?,
        size: r.u64()?,
        mtime_ns: r.i64()?,
    };
    let mark = ReadMark {
        id,
        read_at_ns: r.i64()?,
        offset: r.u64()?,
        head: (r.u64()?, r.u64()?),
        tail: (r.u64()?, r.u64()?),
    };
    let mut counts = LineCounts {
        malformed: r.u64()?,
        skipped: r.u64()?,
        synthetic: r.u64()?,
        lines: r.u64()?,
        limit: None,
    };
    let has_limit = r.u8()? != 0;
    let limit = LimitNotice {
        seen_ms: r.i64()?,
        resets_at: r.i64()?,
    };
    counts.limit = has_limit.then_some(limit);
    let entries = r.u32()?;
    let state = FileState {
        place,
        generation: 0,
        mark,
        counts,
        entries: Vec::new(),
        winner: Vec::new(),
    };
    Some((state, entries))
}

impl Deferred {
    /// Reads and checks the entries part, once. False when it does not check out: the
    /// body is damaged or torn, and nothing of it may be used.
    pub fn read(&mut self) -> bool {
        if self.part.is_none() {
            self.part = read_part(&self.file, self.at, self.sum)
                .and_then(|bytes| decode_entries_part(bytes, &self.counts));
        }
        self.part.is_some()
    }

    /// Whether [`Deferred::read`] read it.
    pub fn is_read(&self) -> bool {
        self.part.is_some()
    }

    /// The strings the entries part holds (none before it was read).
    pub fn strings(&self) -> &[Arc<str>] {
        self.part.as_ref().map_or(&[], |p| &p.strings)
    }

    /// Puts each file's entries (keys left out) and winner flags into `files`, the files
    /// the body listed, in its order. Nothing before [`Deferred::read`].
    pub fn decode_entries(&self, files: &mut [Option<FileState>]) {
        let Some(part) = &self.part else { return };
        let mut at = part.entries_at;
        let get = |i: u32| part.strings[i as usize].clone();
        for (state, n) in files.iter_mut().zip(&self.counts) {
            let n = *n as usize;
            let records = &part.bytes[at..at + n * ENTRY_LEN];
            at += n * ENTRY_LEN;
            let Some(state) = state else { continue };
            state.entries.reserve_exact(n);
            state.winner.reserve_exact(n);
            for e in records.chunks_exact(ENTRY_LEN) {
                let u32_at =
                    |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap_or_default());
                let u64_at =
                    |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().unwrap_or_default());
                let flags = e[20];
                state.entries.push(RawEntry {
                    key: None,
                    timestamp_ms: u64_at(0) as i64,
                    model: get(u32_at(8)),
                    session: get(u32_at(12)),
                    cwd: get(u32_at(16)),
                    sidechain: flags & SIDECHAIN != 0,
                    tokens: Tokens {
                        input: u64_at(21),
                        output: u64_at(29),
                        cache_write_5m: u64_at(37),
                        cache_write_1h: u64_at(45),
                        cache_read: u64_at(53),
                    },
                    cost_usd: (flags & HAS_COST != 0).then(|| f64::from_bits(u64_at(61))),
                });
                state.winner.push(flags & WINNER != 0);
            }
        }
    }

    /// Puts the keys into the entries [`Deferred::decode_entries`] decoded.
    pub fn decode_keys(&self, files: &mut [Option<FileState>]) {
        let Some(part) = &self.part else { return };
        let mut r = Reader {
            buf: &part.bytes,
            pos: part.keys_at,
        };
        for (state, n) in files.iter_mut().zip(&self.counts) {
            for i in 0..*n as usize {
                let len = r.u32().unwrap_or(NO_KEY);
                let key = if len == NO_KEY {
                    None
                } else {
                    r.take(len as usize)
                        .map(|b| Arc::from(String::from_utf8_lossy(b).as_ref()))
                };
                if let Some(entry) = state.as_mut().and_then(|s| s.entries.get_mut(i)) {
                    entry.key = key;
                }
            }
        }
    }
}

/// A body writer.
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.u64(v as u64);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.out.extend_from_slice(b);
    }
    fn paths(&mut self, paths: &[PathBuf]) {
        self.u32(paths.len() as u32);
        for p in paths {
            self.bytes(p.as_os_str().as_bytes());
        }
    }
}

/// A body to write: its bytes, the stat part first.
pub struct Body {
    bytes: Vec<u8>,
    stat_len: usize,
}

impl Body {
    fn sum(&self) -> BodySum {
        let (stat, entries) = self.bytes.split_at(self.stat_len);
        BodySum {
            stat: (stat.len() as u64, checksum(stat)),
            entries: (entries.len() as u64, checksum(entries)),
        }
    }
}

/// The body for `files` (in the order they will be read back) and the directory listings.
pub fn encode<'a>(
    files: impl Iterator<Item = &'a FileState>,
    dirs: &super::FastMap<PathBuf, DirListing>,
) -> Body {
    let mut e = Encoder::default();
    for f in files {
        e.file(f);
    }
    let mut w = Writer::default();
    w.out.extend_from_slice(MAGIC);
    w.u32(CACHE_VERSION);
    let mut dir_list: Vec<(&PathBuf, &DirListing)> = dirs.iter().collect();
    dir_list.sort_by(|a, b| a.0.cmp(b.0));
    w.u32(dir_list.len() as u32);
    for (path, l) in dir_list {
        w.bytes(path.as_os_str().as_bytes());
        w.i64(l.mtime_ns);
        w.i64(l.read_at_ns);
        w.u8(u8::from(l.truncated));
        w.paths(&l.dirs);
        w.paths(&l.files);
    }
    w.u32(e.n_files);
    w.out.extend_from_slice(&e.files.out);
    let stat_len = w.out.len();
    w.u32(e.strings.len() as u32);
    for s in &e.strings {
        w.bytes(s.as_bytes());
    }
    w.out.extend_from_slice(&e.records.out);
    w.out.extend_from_slice(&e.keys.out);
    Body {
        bytes: w.out,
        stat_len,
    }
}

/// The parts of a body being written, and its string table.
#[derive(Default)]
struct Encoder<'a> {
    strings: Vec<&'a Arc<str>>,
    lookup: super::FastMap<*const u8, u32>,
    /// The last string of each role (model, session, cwd) and its index: entries repeat
    /// their strings (interned: the same address), so it is tried before the map.
    recent: [Option<(*const u8, u32)>; 3],
    n_files: u32,
    files: Writer,
    records: Writer,
    keys: Writer,
}

impl<'a> Encoder<'a> {
    fn file(&mut self, f: &'a FileState) {
        self.n_files += 1;
        let w = &mut self.files;
        w.bytes(f.place.path.as_os_str().as_bytes());
        w.bytes(f.place.session_hint.as_bytes());
        w.bytes(f.place.project_dir_name.as_bytes());
        let m = &f.mark;
        for v in [m.id.dev, m.id.ino, m.id.size, m.id.mtime_ns as u64] {
            w.u64(v);
        }
        for v in [
            m.read_at_ns as u64,
            m.offset,
            m.head.0,
            m.head.1,
            m.tail.0,
            m.tail.1,
        ] {
            w.u64(v);
        }
        let c = &f.counts;
        for v in [c.malformed, c.skipped, c.synthetic, c.lines] {
            w.u64(v);
        }
        w.u8(u8::from(c.limit.is_some()));
        let limit = c.limit.unwrap_or(LimitNotice {
            seen_ms: 0,
            resets_at: 0,
        });
        w.i64(limit.seen_ms);
        w.i64(limit.resets_at);
        w.u32(f.entries.len() as u32);
        for (e, winner) in f.entries.iter().zip(&f.winner) {
            self.entry(e, *winner);
        }
    }

    fn index_of(&mut self, s: &'a Arc<str>, role: usize) -> u32 {
        let ptr = s.as_ptr();
        if let Some((p, i)) = self.recent[role]
            && p == ptr
        {
            return i;
        }
        let strings = &mut self.strings;
        let i = *self.lookup.entry(ptr).or_insert_with(|| {
            strings.push(s);
            strings.len() as u32 - 1
        });
        self.recent[role] = Some((ptr, i));
        i
    }

    fn entry(&mut self, e: &'a RawEntry, winner: bool) {
        let strings = [
            self.index_of(&e.model, 0),
            self.index_of(&e.session, 1),
            self.index_of(&e.cwd, 2),
        ];
        let r = &mut self.records;
        r.i64(e.timestamp_ms);
        for i in strings {
            r.u32(i);
        }
        let mut flags = 0;
        if e.sidechain {
            flags |= SIDECHAIN;
        }
        if winner {
            flags |= WINNER;
        }
        if e.cost_usd.is_some() {
            flags |= HAS_COST;
        }
        r.u8(flags);
        let t = &e.tokens;
        for v in [
            t.input,
            t.output,
            t.cache_write_5m,
            t.cache_write_1h,
            t.cache_read,
        ] {
            r.u64(v);
        }
        r.u64(e.cost_usd.unwrap_or(0.0).to_bits());
        match e.key.as_deref() {
            // A line is capped far below u32::MAX bytes, and so is its message id.
            Some(k) => self.keys.bytes(k.as_bytes()),
            None => self.keys.u32(NO_KEY),
        }
    }
}
