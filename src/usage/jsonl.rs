//! Parsing a chunk of a Claude Code JSONL log. Most lines cannot matter (user turns, tool
//! results, snapshots): a byte search rejects them before any JSON parsing, and the lines that
//! pass are read by [`scan`] into borrowed structs, the message content skipped unparsed.

use std::borrow::Cow;
use std::sync::Arc;

use memchr::memmem;
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::Tokens;

mod scan;

/// One assistant response's usage, as read from one line (before deduplication).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    /// `message.id`, or `requestId` when the line has no message id; `None`: cannot be deduped.
    pub key: Option<Arc<str>>,
    pub timestamp_ms: i64,
    pub model: Arc<str>,
    pub session: Arc<str>,
    pub cwd: Arc<str>,
    pub sidechain: bool,
    pub tokens: Tokens,
    pub cost_usd: Option<f64>,
}

/// `Claude AI usage limit reached|<unix seconds>`, seen on a line written at `seen_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitNotice {
    pub seen_ms: i64,
    pub resets_at: i64,
}

#[derive(Debug, Default)]
pub struct Chunk {
    pub entries: Vec<RawEntry>,
    pub counts: LineCounts,
    /// Bytes up to and including the last newline: a last line without its newline is still
    /// being written and is read again next time.
    pub consumed: usize,
}

/// A string that borrows from the line unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Text<'a>>,
    #[serde(rename = "requestId", borrow, default)]
    request_id: Option<Text<'a>>,
    #[serde(rename = "sessionId", borrow, default)]
    session_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    cwd: Option<Text<'a>>,
    #[serde(rename = "isSidechain", default)]
    is_sidechain: Option<bool>,
    #[serde(rename = "isApiErrorMessage", default)]
    is_api_error: Option<bool>,
    #[serde(rename = "costUSD", default)]
    cost_usd: Option<f64>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    model: Option<Text<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

/// Per-chunk string sharing: a file repeats the same model, session and cwd on every line.
#[derive(Default)]
pub struct Interner {
    map: foldhash::HashMap<Box<str>, Arc<str>>,
    /// The strings handed out last, compared before the map is hashed into: a line's model,
    /// session and cwd are nearly always the previous line's.
    recent: [Option<Arc<str>>; 4],
    next: usize,
}

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.recent.iter().flatten().find(|a| ***a == *s) {
            return a.clone();
        }
        let a = match self.map.get(s) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(s);
                self.map.insert(s.into(), a.clone());
                a
            }
        };
        self.recent[self.next % self.recent.len()] = Some(a.clone());
        self.next += 1;
        a
    }
}

/// The byte patterns of the pre-filter. They hold whatever whitespace the writer used.
pub struct Filter {
    assistant: memmem::Finder<'static>,
    usage: memmem::Finder<'static>,
    limit: memmem::Finder<'static>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            assistant: memmem::Finder::new(b"\"assistant\""),
            usage: memmem::Finder::new(b"\"usage\""),
            limit: memmem::Finder::new(b"limit reached|"),
        }
    }
}

/// Parses the complete lines of `bytes` (a file read from some offset).
pub fn parse_chunk(bytes: &[u8], filter: &Filter, interner: &mut Interner) -> Chunk {
    let mut chunk = Chunk::default();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes) {
        parse_line(&bytes[start..end], filter, interner, &mut chunk);
        start = end + 1;
    }
    chunk.consumed = start;
    chunk
}

/// A line longer than this is skipped (counted as malformed) without ever being held whole.
/// What counting needs are assistant lines, bounded by the model's output (far below this);
/// only tool results and planted files grow past it.
pub const LINE_CAP: usize = 4 << 20;
/// How much is read at a time.
const BLOCK: usize = 256 << 10;

/// Bounds for [`parse_stream`].
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub line_cap: usize,
    pub block: usize,
    /// Stop reading (between blocks) once this has passed; what was read counts.
    pub deadline: Option<std::time::Instant>,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            line_cap: LINE_CAP,
            block: BLOCK,
            deadline: None,
        }
    }
}

/// What [`parse_stream`] did.
#[derive(Debug, Default)]
pub struct Streamed {
    /// The lines, merged; `chunk.consumed` is unused here (see `consumed`).
    pub chunk: Chunk,
    /// Bytes handled for good: complete lines, and the part read of a line over the cap.
    /// A last line without its newline is not consumed: it is read again next time.
    pub consumed: u64,
    pub bytes_read: u64,
    /// The deadline passed before the end of the input.
    pub stopped_early: bool,
}

/// Parses `reader` to its end with memory bounded by `line_cap + block`, whatever it holds:
/// a line over the cap is counted as malformed and skipped up to its newline.
pub fn parse_stream<R: std::io::Read>(
    mut reader: R,
    limits: &StreamLimits,
    filter: &Filter,
    interner: &mut Interner,
) -> std::io::Result<Streamed> {
    let mut out = Streamed::default();
    let mut buf: Vec<u8> = Vec::new();
    // Inside a line over the cap: everything up to the next newline is dropped unread.
    let mut discarding = false;
    loop {
        if limits
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            out.stopped_early = true;
            break;
        }
        // Read into the spare capacity: nothing is zeroed first.
        buf.reserve(limits.block);
        let n = std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut reader, limits.block as u64),
            &mut buf,
        )?;
        if n == 0 {
            break;
        }
        out.bytes_read += n as u64;
        let mut start = 0;
        if discarding {
            match memchr::memchr(b'\n', &buf) {
                Some(i) => {
                    start = i + 1;
                    discarding = false;
                }
                None => {
                    out.consumed += buf.len() as u64;
                    buf.clear();
                    continue;
                }
            }
        }
        let part = parse_chunk(&buf[start..], filter, interner);
        let used = start + part.consumed;
        out.chunk.merge(part);
        out.consumed += used as u64;
        buf.drain(..used);
        if buf.len() > limits.line_cap {
            out.chunk.counts.lines += 1;
            out.chunk.counts.malformed += 1;
            out.consumed += buf.len() as u64;
            buf.clear();
            discarding = true;
        }
    }
    Ok(out)
}

impl Chunk {
    /// Adds what `other` (the next part of the same file) found.
    fn merge(&mut self, other: Chunk) {
        self.entries.extend(other.entries);
        self.counts += other.counts;
    }
}

/// What a file's lines came to besides its entries; kept per file by the index and its cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCounts {
    /// Lines that are not JSON objects, or relevant lines that failed to parse.
    pub malformed: u64,
    /// Assistant lines with usage that lack what counting needs (a timestamp).
    pub skipped: u64,
    /// `<synthetic>` messages (Claude Code's own notices): never counted.
    pub synthetic: u64,
    pub lines: u64,
    /// The last usage-limit notice.
    pub limit: Option<LimitNotice>,
}

/// The counts of a file's next part added to those of the parts before.
impl std::ops::AddAssign for LineCounts {
    fn add_assign(&mut self, other: LineCounts) {
        self.malformed += other.malformed;
        self.skipped += other.skipped;
        self.synthetic += other.synthetic;
        self.lines += other.lines;
        self.limit = LimitNotice::latest(self.limit, other.limit);
    }
}

impl LimitNotice {
    /// The notice seen last of two (the later one wins a tie).
    pub fn latest(a: Option<LimitNotice>, b: Option<LimitNotice>) -> Option<LimitNotice> {
        match (a, b) {
            (Some(a), Some(b)) if a.seen_ms > b.seen_ms => Some(a),
            (a, None) => a,
            (_, b) => b,
        }
    }
}

fn parse_line(line: &[u8], filter: &Filter, interner: &mut Interner, chunk: &mut Chunk) {
    let line = line.trim_ascii();
    if line.is_empty() {
        return;
    }
    chunk.counts.lines += 1;
    let relevant = filter.assistant.find(line).is_some()
        && (filter.usage.find(line).is_some() || filter.limit.find(line).is_some());
    if !relevant {
        // Lines that cannot matter are only checked for their shape.
        if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
            chunk.counts.malformed += 1;
        }
        return;
    }
    let parsed: Line<'_> = match scan::line(line) {
        Ok(parsed) => parsed,
        Err(_) => {
            chunk.counts.malformed += 1;
            return;
        }
    };
    if parsed.kind.as_ref().map(|k| k.0.as_ref()) != Some("assistant") {
        return;
    }
    let Some(message) = parsed.message else {
        return;
    };
    let timestamp_ms = parsed
        .timestamp
        .as_ref()
        .and_then(|t| parse_timestamp(&t.0));
    let model = message.model.as_ref().map_or("", |m| m.0.as_ref());
    if model == "<synthetic>" {
        chunk.counts.synthetic += 1;
        if parsed.is_api_error == Some(true)
            && let Some(resets_at) = limit_reset(line, filter)
            && let Some(seen_ms) = timestamp_ms
            && chunk.counts.limit.is_none_or(|l| l.seen_ms <= seen_ms)
        {
            chunk.counts.limit = Some(LimitNotice { seen_ms, resets_at });
        }
        return;
    }
    let Some(usage) = message.usage else {
        return;
    };
    let Some(timestamp_ms) = timestamp_ms else {
        chunk.counts.skipped += 1;
        return;
    };
    let (cache_write_5m, cache_write_1h) = cache_writes(&usage);
    let key = message
        .id
        .as_ref()
        .or(parsed.request_id.as_ref())
        .map(|t| Arc::from(t.0.as_ref()));
    chunk.entries.push(RawEntry {
        key,
        timestamp_ms,
        model: interner.get(model),
        session: interner.get(parsed.session_id.as_ref().map_or("", |s| s.0.as_ref())),
        cwd: interner.get(parsed.cwd.as_ref().map_or("", |s| s.0.as_ref())),
        sidechain: parsed.is_sidechain.unwrap_or(false),
        tokens: Tokens {
            input: usage.input_tokens.unwrap_or(0),
            output: usage.output_tokens.unwrap_or(0),
            cache_write_5m,
            cache_write_1h,
            cache_read: usage.cache_read_input_tokens.unwrap_or(0),
        },
        cost_usd: parsed.cost_usd,
    });
}

/// The cache writes of a response, (5-minute, 1-hour): the split when it adds up, else
/// every write a 5-minute one.
fn cache_writes(usage: &Usage) -> (u64, u64) {
    let cache_total = usage.cache_creation_input_tokens.unwrap_or(0);
    let one_hour = usage
        .cache_creation
        .as_ref()
        .and_then(|c| c.ephemeral_1h_input_tokens)
        .unwrap_or(0);
    let five_min_split = usage
        .cache_creation
        .as_ref()
        .and_then(|c| c.ephemeral_5m_input_tokens);
    match five_min_split {
        Some(five) if five + one_hour == cache_total => (five, one_hour),
        _ => (
            cache_total.saturating_sub(one_hour),
            one_hour.min(cache_total),
        ),
    }
}

/// The unix time after `limit reached|` in the line, if any.
fn limit_reset(line: &[u8], filter: &Filter) -> Option<i64> {
    let at = filter.limit.find(line)? + b"limit reached|".len();
    let digits: &[u8] = &line[at..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

/// ISO-8601 to unix milliseconds; the common `2025-01-02T03:04:05.678Z` without chrono's
/// general parser.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let fixed = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b.last() == Some(&b'Z');
    if fixed {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            std::str::from_utf8(&b[r]).ok()?.parse().ok()
        };
        let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
        let mut ms = date.and_time(time).and_utc().timestamp_millis();
        if b[19] == b'.' {
            let frac = &b[20..b.len() - 1];
            if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut millis = 0i64;
            for i in 0..3 {
                millis = millis * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
            ms += millis;
        } else if b.len() != 20 {
            return None;
        }
        return Some(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Chunk {
        parse_chunk(
            text.as_bytes(),
            &Filter::default(),
            &mut Interner::default(),
        )
    }

    #[test]
    fn the_prefilter_does_not_depend_on_whitespace() {
        let compact = r#"{"type":"assistant","timestamp":"2025-01-02T03:04:05.678Z","requestId":"req_1","sessionId":"s","cwd":"/p","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":1,"output_tokens":2}}}"#;
        let spaced = r#"{ "type" : "assistant", "timestamp": "2025-01-02T03:04:05.678Z", "requestId": "req_1", "sessionId": "s", "cwd": "/p", "message": { "id": "msg_1", "model": "claude-sonnet-4-5", "usage" : { "input_tokens": 1, "output_tokens": 2 } } }"#;
        for line in [compact, spaced] {
            let c = parse(&format!("{line}\n"));
            assert_eq!(c.entries.len(), 1, "{line}");
            assert_eq!(c.entries[0].tokens.output, 2);
            assert_eq!(c.entries[0].timestamp_ms, 1_735_787_045_678);
        }
    }

    #[test]
    fn a_partial_last_line_is_not_consumed() {
        let c = parse("{\"type\":\"user\"}\n{\"type\":\"assis");
        assert_eq!(c.consumed, "{\"type\":\"user\"}\n".len());
        assert_eq!(c.counts.lines, 1);
        assert_eq!(c.counts.malformed, 0);
    }

    #[test]
    fn escaped_strings_are_read_too() {
        let line = r#"{"type":"assistant","timestamp":"2025-01-02T03:04:05Z","sessionId":"s","cwd":"/p/a \"q\"","message":{"id":"msg_\u0031","model":"m","usage":{"input_tokens":1}}}"#;
        let c = parse(&format!("{line}\n"));
        assert_eq!(c.entries.len(), 1);
        assert_eq!(&*c.entries[0].cwd, "/p/a \"q\"");
        assert_eq!(c.entries[0].key.as_deref(), Some("msg_1"));
    }

    #[test]
    fn timestamps_parse_in_every_form() {
        assert_eq!(
            parse_timestamp("2025-01-02T03:04:05Z"),
            Some(1_735_787_045_000)
        );
        assert_eq!(
            parse_timestamp("2025-01-02T03:04:05.6Z"),
            Some(1_735_787_045_600)
        );
        assert_eq!(
            parse_timestamp("2025-01-02T04:04:05.678+01:00"),
            Some(1_735_787_045_678)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn the_limit_reset_time_is_read_from_synthetic_error_lines() {
        let line = r#"{"type":"assistant","timestamp":"2025-01-02T03:04:05Z","isApiErrorMessage":true,"message":{"id":"x","model":"<synthetic>","content":[{"type":"text","text":"Claude AI usage limit reached|1735790400"}],"usage":{"input_tokens":0,"output_tokens":0}}}"#;
        let c = parse(&format!("{line}\n"));
        assert!(c.entries.is_empty());
        assert_eq!(c.counts.synthetic, 1);
        assert_eq!(c.counts.limit.unwrap().resets_at, 1_735_790_400);
    }
    /// An assistant line with usage, or one of the shapes a log (or an attacker) has.
    fn any_line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            (0u32..50, 0u64..1000).prop_map(|(id, out)| format!(
                r#"{{"type":"assistant","timestamp":"2025-01-02T03:04:05Z","sessionId":"s","cwd":"/p","message":{{"id":"m{id}","model":"m","usage":{{"input_tokens":1,"output_tokens":{out}}}}}}}"#
            )),
            Just(r#"{"type":"user","message":{"content":"hi"}}"#.to_owned()),
            Just(r#"{"type":"assistant","usage":"#.to_owned()),
            "[^\n]{0,40}",
            proptest::collection::vec(any::<u8>(), 0..60)
                .prop_map(|b| String::from_utf8_lossy(&b).replace('\n', " ")),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Arbitrary bytes never panic, and only whole lines are consumed.
        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let c = parse_chunk(&bytes, &Filter::default(), &mut Interner::default());
            proptest::prop_assert!(c.consumed <= bytes.len());
            proptest::prop_assert!(c.consumed == 0 || bytes[c.consumed - 1] == b'\n');
            proptest::prop_assert!(!bytes[c.consumed..].contains(&b'\n'));
        }

        /// Read in blocks of any size, the stream finds what one parse of the whole finds,
        /// and a line over the cap is dropped alone.
        #[test]
        fn streaming_matches_one_parse_and_caps_lines(
            lines in proptest::collection::vec(any_line(), 0..30),
            block in 1usize..64,
            tail in "[^\n]{0,20}",
        ) {
            let mut text = lines.join("\n");
            if !lines.is_empty() {
                text.push('\n');
            }
            text.push_str(&tail);
            let whole = parse_chunk(text.as_bytes(), &Filter::default(), &mut Interner::default());
            // The unfinished last line is a line too: the cap is above every one.
            let longest = lines.iter().map(String::len).max().unwrap_or(0).max(tail.len());
            let limits = StreamLimits { line_cap: longest + 1, block, deadline: None };
            let s = parse_stream(text.as_bytes(), &limits, &Filter::default(), &mut Interner::default()).unwrap();
            proptest::prop_assert_eq!(s.chunk.entries.len(), whole.entries.len());
            proptest::prop_assert_eq!(s.chunk.counts.lines, whole.counts.lines);
            proptest::prop_assert_eq!(s.chunk.counts.malformed, whole.counts.malformed);
            proptest::prop_assert_eq!(s.consumed as usize, whole.consumed);
            proptest::prop_assert_eq!(s.bytes_read as usize, text.len());
            // With a cap below a long line, that line is counted malformed and the rest
            // of the lines still count.
            let huge = format!("{}\n", "x".repeat(200));
            let with_huge = format!("{huge}{text}");
            let capped = StreamLimits { line_cap: 100.max(longest + 1), block, deadline: None };
            let s = parse_stream(with_huge.as_bytes(), &capped, &Filter::default(), &mut Interner::default()).unwrap();
            proptest::prop_assert_eq!(s.chunk.entries.len(), whole.entries.len());
            proptest::prop_assert_eq!(s.chunk.counts.malformed, whole.counts.malformed + 1);
            proptest::prop_assert_eq!(s.consumed as usize, huge.len() + whole.consumed);
        }
    }

    /// What a parsed line says, to compare the scanner's reading with serde's.
    type View = (
        [Option<String>; 5],
        [Option<bool>; 2],
        Option<u64>,
        Option<(Option<String>, Option<String>, Option<[Option<u64>; 6]>)>,
    );

    fn view(l: &Line<'_>) -> View {
        let t = |t: &Option<Text<'_>>| t.as_ref().map(|t| t.0.to_string());
        (
            [
                t(&l.kind),
                t(&l.timestamp),
                t(&l.request_id),
                t(&l.session_id),
                t(&l.cwd),
            ],
            [l.is_sidechain, l.is_api_error],
            l.cost_usd.map(f64::to_bits),
            l.message.as_ref().map(|m| {
                (
                    t(&m.id),
                    t(&m.model),
                    m.usage.as_ref().map(|u| {
                        let c = u.cache_creation.as_ref();
                        [
                            u.input_tokens,
                            u.output_tokens,
                            u.cache_creation_input_tokens,
                            u.cache_read_input_tokens,
                            c.and_then(|c| c.ephemeral_5m_input_tokens),
                            c.and_then(|c| c.ephemeral_1h_input_tokens),
                        ]
                    }),
                )
            }),
        )
    }

    /// A message's usage: plain, or any of the shapes the scanner leaves to serde_json.
    fn usage() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let count = prop_oneof![
            (0u64..200_000).prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("0".to_owned()),
            Just("007".to_owned()),
            Just("-0".to_owned()),
            Just("-3".to_owned()),
            Just("1.0".to_owned()),
            Just("2e3".to_owned()),
            Just("18446744073709551615".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just(r#""12""#.to_owned()),
            Just("true".to_owned()),
        ];
        let member = prop_oneof![
            count.clone().prop_map(|n| format!(r#""input_tokens":{n}"#)),
            count.clone().prop_map(|n| format!(r#""output_tokens":{n}"#)),
            count.clone().prop_map(|n| format!(r#""cache_read_input_tokens":{n}"#)),
            count.clone().prop_map(|n| format!(r#""cache_creation_input_tokens":{n}"#)),
            (count.clone(), count.clone()).prop_map(|(a, b)| format!(
                r#""cache_creation":{{"ephemeral_5m_input_tokens":{a},"ephemeral_1h_input_tokens":{b}}}"#
            )),
            count.clone().prop_map(|n| format!(
                r#""cache_creation":{{"ephemeral_1h_input_tokens":{n},"x":[{{}}]}}"#
            )),
            Just(r#""cache_creation":null"#.to_owned()),
            Just(r#""cache_creation":[1,2]"#.to_owned()),
            Just(r#""service_tier":"standard","server_tool_use":{"web_search_requests":0}"#.to_owned()),
            Just(r#""input_\u0074okens":4"#.to_owned()),
        ];
        prop_oneof![
            8 => proptest::collection::vec(member, 0..6)
                .prop_map(|m| format!("{{{}}}", m.join(","))),
            1 => Just("null".to_owned()),
            1 => Just("[1,2,3,4]".to_owned()),
            1 => Just(r#""none""#.to_owned()),
        ]
    }

    /// A line that is nearly what Claude Code writes, every field optional, in any order,
    /// with content that nests, escapes and repeats field names.
    fn assistant_line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let text = prop_oneof![
            Just("plain".to_owned()),
            Just(r#"with \"quotes\" and \\ and \u00e9 and \ud83d\ude00"#.to_owned()),
            Just(r#"a \"usage\":{\"input_tokens\":9} inside"#.to_owned()),
            "[a-z \\-é😀]{0,12}",
        ];
        let content = prop_oneof![
            text.clone().prop_map(|t| format!("\"{t}\"")),
            text.clone().prop_map(|t| format!(
                r#"[{{"type":"text","text":"{t}"}},{{"type":"tool_use","input":{{"model":"x","usage":{{"a":[1,2.5e3,-0,true,null,{{}}]}}}}}}]"#
            )),
            Just("[]".to_owned()),
            Just("null".to_owned()),
        ];
        let field = prop_oneof![
            Just(r#""type":"assistant""#.to_owned()),
            Just(r#""type":null"#.to_owned()),
            Just(r#""timestamp":"2025-01-02T03:04:05.678Z""#.to_owned()),
            Just(r#""requestId":"req_1""#.to_owned()),
            text.clone().prop_map(|t| format!(r#""sessionId":"{t}""#)),
            text.clone().prop_map(|t| format!(r#""cwd":"/p/{t}""#)),
            Just(r#""isSidechain":true"#.to_owned()),
            Just(r#""isSidechain":"yes""#.to_owned()),
            Just(r#""isApiErrorMessage":false"#.to_owned()),
            Just(r#""costUSD":0.012813000000000001"#.to_owned()),
            Just(r#""costUSD":12"#.to_owned()),
            Just(r#""gitBranch":"main","version":"2.0.14""#.to_owned()),
            (content, 0u64..100_000, usage()).prop_map(|(c, n, u)| format!(
                r#""message":{{"content":{c},"id":"msg_{n}","model":"claude-sonnet-4-5","usage":{u},"role":"assistant"}}"#
            )),
            Just(r#""message":{"usage":null,"model":null}"#.to_owned()),
            Just(r#""message":{"usage":{"input_tokens":-1}}"#.to_owned()),
        ];
        (proptest::collection::vec(field, 0..8), 0usize..4).prop_map(|(fields, spaces)| {
            let sep = [",", ", ", " ,\t", ",\n"][spaces];
            format!("{{{}}}", fields.join(sep))
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The scanner accepts exactly the lines serde accepts and reads the same fields,
        /// on lines as written and on lines mangled at any byte.
        #[test]
        fn the_scanner_reads_what_serde_reads(
            line in assistant_line(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            mangle in 0u8..4,
        ) {
            let mut bytes = line.into_bytes();
            let at = cut.index(bytes.len().max(1)).min(bytes.len());
            match mangle {
                1 => bytes.truncate(at),
                2 if at < bytes.len() => bytes[at] = byte,
                3 => bytes.insert(at, byte),
                _ => {}
            }
            let ours = scan::line(&bytes).map(|l| view(&l)).ok();
            let serde = serde_json::from_slice::<Line<'_>>(&bytes).map(|l| view(&l)).ok();
            proptest::prop_assert_eq!(ours, serde, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The same for the usage object alone, which the scanner reads itself when plain.
        #[test]
        fn the_scanner_reads_usage_as_serde_does(
            usage in usage(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            mangle in 0u8..4,
        ) {
            let mut bytes = format!(r#"{{"type":"assistant","message":{{"usage":{usage}}}}}"#)
                .into_bytes();
            let at = cut.index(bytes.len().max(1)).min(bytes.len());
            match mangle {
                1 => bytes.truncate(at),
                2 if at < bytes.len() => bytes[at] = byte,
                3 => bytes.insert(at, byte),
                _ => {}
            }
            let ours = scan::line(&bytes).map(|l| view(&l)).ok();
            let serde = serde_json::from_slice::<Line<'_>>(&bytes).map(|l| view(&l)).ok();
            proptest::prop_assert_eq!(ours, serde, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn the_scanner_refuses_what_serde_refuses() {
        for bad in [
            r#"{"type":"assistant","type":"assistant"}"#,
            r#"{"message":{"id":"a","id":"b"}}"#,
            "{\"cwd\":\"a\u{1}b\"}",
            "{\"x\":\"a\u{1}b\"}",
            r#"{"cwd":"\ud800"}"#,
            r#"{"x":"\u12"}"#,
            r#"{"cwd":"\x"}"#,
            r#"{"costUSD":01}"#,
            r#"{"costUSD":1e999}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"message":{"usage":{"input_tokens":1,"input_tokens":2}}}"#,
        ] {
            assert!(scan::line(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                serde_json::from_slice::<Line<'_>>(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
        // A skipped value nests as deep as it likes, in both; unclosed, it is refused.
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[{\"b\":".repeat(100_000),
            "1".to_owned() + &"}]".repeat(100_000)
        );
        assert!(scan::line(deep.as_bytes()).is_ok());
        assert!(serde_json::from_slice::<Line<'_>>(deep.as_bytes()).is_ok());
        let open = format!("{{\"a\":{}}}", "[".repeat(1_000_000));
        assert!(scan::line(open.as_bytes()).is_err());
        // Invalid UTF-8 where a skipped string has it is let pass, as serde_json does.
        let mut latin1 = br#"{"type":"assistant","x":"caf"#.to_vec();
        latin1.extend_from_slice(b"\xe9\"}");
        assert!(scan::line(&latin1).is_ok());
        assert!(serde_json::from_slice::<Line<'_>>(&latin1).is_ok());
    }

    #[test]
    fn a_passed_deadline_stops_the_stream_with_nothing_lost() {
        let text = "{\"type\":\"user\"}\n".repeat(100);
        let limits = StreamLimits {
            deadline: Some(std::time::Instant::now()),
            ..StreamLimits::default()
        };
        let s = parse_stream(
            text.as_bytes(),
            &limits,
            &Filter::default(),
            &mut Interner::default(),
        )
        .unwrap();
        assert!(s.stopped_early);
        assert_eq!((s.consumed, s.bytes_read), (0, 0), "read again next time");
    }
}
