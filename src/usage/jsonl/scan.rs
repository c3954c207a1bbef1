//! Reading the fields that count out of one line, without building (or even tokenizing)
//! what does not count: most of a line is its message's content, whose strings are skipped
//! with a vectorized search for their closing quote rather than parsed.
//!
//! It answers what `serde_json::from_slice::<Line>` answers: the same fields, and an error for
//! the same lines (not JSON, a field of the wrong type or given twice, invalid escapes or
//! numbers, raw control characters in a string, invalid UTF-8 in a string it keeps or in a
//! field name of the line or its message; like serde_json, it does not look inside the
//! strings it skips for UTF-8, nor limit how deep a skipped value nests). The tests hold it
//! to that on generated and mangled lines.

use std::borrow::Cow;

use super::{CacheCreation, Line, Message, Text, Usage};

/// The line is not what `Line` deserializes from.
#[derive(Debug)]
pub(super) struct Bad;

struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

/// The fields of a line that count, or [`Bad`].
pub(super) fn line(b: &[u8]) -> Result<Line<'_>, Bad> {
    let mut c = Cursor { b, p: 0 };
    let mut out = Line {
        kind: None,
        timestamp: None,
        request_id: None,
        session_id: None,
        cwd: None,
        is_sidechain: None,
        is_api_error: None,
        cost_usd: None,
        message: None,
    };
    let mut seen = 0u16;
    c.ws();
    c.object(|c, key| {
        let bit = match key {
            b"type" => 0,
            b"timestamp" => 1,
            b"requestId" => 2,
            b"sessionId" => 3,
            b"cwd" => 4,
            b"isSidechain" => 5,
            b"isApiErrorMessage" => 6,
            b"costUSD" => 7,
            b"message" => 8,
            _ => return c.skip(),
        };
        if seen & (1 << bit) != 0 {
            return Err(Bad); // a duplicate field
        }
        seen |= 1 << bit;
        match bit {
            0 => out.kind = c.text()?,
            1 => out.timestamp = c.text()?,
            2 => out.request_id = c.text()?,
            3 => out.session_id = c.text()?,
            4 => out.cwd = c.text()?,
            5 => out.is_sidechain = c.boolean()?,
            6 => out.is_api_error = c.boolean()?,
            7 => out.cost_usd = c.number()?,
            _ => out.message = c.message()?,
        }
        Ok(())
    })?;
    c.ws();
    if c.p != b.len() {
        return Err(Bad);
    }
    Ok(out)
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.p) {
            self.p += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), Bad> {
        if self.peek() == Some(c) {
            self.p += 1;
            Ok(())
        } else {
            Err(Bad)
        }
    }

    /// An object's members, each handed to `member` with the cursor on its value (which
    /// `member` must consume).
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Cursor<'a>, &[u8]) -> Result<(), Bad>,
    ) -> Result<(), Bad> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.p += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.key()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, &key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.p += 1,
                Some(b'}') => {
                    self.p += 1;
                    return Ok(());
                }
                _ => return Err(Bad),
            }
        }
    }

    /// The raw inside of the string at the cursor, and whether it has escapes (all checked).
    fn raw_string(&mut self) -> Result<(&'a [u8], bool), Bad> {
        self.eat(b'"')?;
        let start = self.p;
        let mut escaped = false;
        loop {
            let rest = &self.b[self.p..];
            let i = memchr::memchr2(b'"', b'\\', rest).ok_or(Bad)?;
            // A raw control character: the lowest byte, found without an early exit so that
            // it vectorizes.
            if rest[..i].iter().copied().fold(u8::MAX, u8::min) < 0x20 {
                return Err(Bad);
            }
            self.p += i;
            if self.b[self.p] == b'"' {
                let s = &self.b[start..self.p];
                self.p += 1;
                return Ok((s, escaped));
            }
            escaped = true;
            self.escape()?;
        }
    }

    /// One escape at the cursor (on its backslash). What a `\u` escape stands for is checked
    /// only in the strings that are kept (by serde_json, which decodes them).
    fn escape(&mut self) -> Result<(), Bad> {
        match self.b.get(self.p + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.p += 2;
                Ok(())
            }
            Some(b'u') => {
                let hex = self.b.get(self.p + 2..self.p + 6).ok_or(Bad)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(Bad);
                }
                self.p += 6;
                Ok(())
            }
            _ => Err(Bad),
        }
    }

    /// A member name, as bytes: compared with the names that count as they are (an ASCII
    /// name is valid UTF-8 without a look at it; any other is checked, as serde_json does).
    fn key(&mut self) -> Result<Cow<'a, [u8]>, Bad> {
        let before = self.p;
        let (raw, escaped) = self.raw_string()?;
        if !escaped {
            if !raw.is_ascii() {
                std::str::from_utf8(raw).map_err(|_| Bad)?;
            }
            return Ok(Cow::Borrowed(raw));
        }
        serde_json::from_slice::<String>(&self.b[before..self.p])
            .map(|s| Cow::Owned(s.into_bytes()))
            .map_err(|_| Bad)
    }

    /// The string at the cursor, borrowed unless it had escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Bad> {
        let before = self.p;
        let (raw, escaped) = self.raw_string()?;
        if !escaped {
            return std::str::from_utf8(raw).map(Cow::Borrowed).map_err(|_| Bad);
        }
        serde_json::from_slice::<String>(&self.b[before..self.p])
            .map(Cow::Owned)
            .map_err(|_| Bad)
    }

    /// `null` (consumed) or not.
    fn null(&mut self) -> bool {
        if self.b[self.p..].starts_with(b"null") {
            self.p += 4;
            true
        } else {
            false
        }
    }

    fn text(&mut self) -> Result<Option<Text<'a>>, Bad> {
        if self.null() {
            return Ok(None);
        }
        Ok(Some(Text(self.string()?)))
    }

    fn boolean(&mut self) -> Result<Option<bool>, Bad> {
        match self.scalar()? {
            b"null" => Ok(None),
            b"true" => Ok(Some(true)),
            b"false" => Ok(Some(false)),
            _ => Err(Bad),
        }
    }

    fn number(&mut self) -> Result<Option<f64>, Bad> {
        match self.scalar()? {
            b"null" => Ok(None),
            b"true" | b"false" => Err(Bad),
            n => {
                let text = std::str::from_utf8(n).map_err(|_| Bad)?;
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Some)
                    .ok_or(Bad)
            }
        }
    }

    /// `message`: its id, model and usage; its content skipped.
    fn message(&mut self) -> Result<Option<Message<'a>>, Bad> {
        if self.null() {
            return Ok(None);
        }
        let mut m = Message {
            id: None,
            model: None,
            usage: None,
        };
        let mut seen = 0u8;
        self.object(|c, key| {
            let bit = match key {
                b"id" => 0,
                b"model" => 1,
                b"usage" => 2,
                _ => return c.skip(),
            };
            if seen & (1 << bit) != 0 {
                return Err(Bad);
            }
            seen |= 1 << bit;
            match bit {
                0 => m.id = c.text()?,
                1 => m.model = c.text()?,
                _ => m.usage = c.usage()?,
            }
            Ok(())
        })?;
        Ok(Some(m))
    }

    /// `message.usage`, read here when it is plain: null, or an object of plain counts (null
    /// or digits that fit a u64) and members that do not count. Anything else (a float, a
    /// negative or too big a count, a field given twice, an array) is left to serde_json,
    /// which answers what `Line` answers.
    fn usage(&mut self) -> Result<Option<Usage>, Bad> {
        let start = self.p;
        if let Ok(usage) = self.plain_usage() {
            return Ok(usage);
        }
        self.p = start;
        self.skip()?;
        serde_json::from_slice::<Option<Usage>>(&self.b[start..self.p]).map_err(|_| Bad)
    }

    /// [`Cursor::usage`]'s plain case; [`Bad`] also for what serde_json would accept.
    fn plain_usage(&mut self) -> Result<Option<Usage>, Bad> {
        if self.null() {
            return Ok(None);
        }
        let mut u = Usage {
            input_tokens: None,
            output_tokens: None,
            cache_creation_input_tokens: None,
            cache_read_input_tokens: None,
            cache_creation: None,
        };
        let mut seen = 0u8;
        self.object(|c, key| {
            let bit = match key {
                b"input_tokens" => 0,
                b"output_tokens" => 1,
                b"cache_creation_input_tokens" => 2,
                b"cache_read_input_tokens" => 3,
                b"cache_creation" => 4,
                _ => return c.skip(),
            };
            if seen & (1 << bit) != 0 {
                return Err(Bad);
            }
            seen |= 1 << bit;
            match bit {
                0 => u.input_tokens = c.count()?,
                1 => u.output_tokens = c.count()?,
                2 => u.cache_creation_input_tokens = c.count()?,
                3 => u.cache_read_input_tokens = c.count()?,
                _ => u.cache_creation = c.cache_creation()?,
            }
            Ok(())
        })?;
        Ok(Some(u))
    }

    /// `usage.cache_creation` when plain (see [`Cursor::plain_usage`]).
    fn cache_creation(&mut self) -> Result<Option<CacheCreation>, Bad> {
        if self.null() {
            return Ok(None);
        }
        let mut out = CacheCreation {
            ephemeral_5m_input_tokens: None,
            ephemeral_1h_input_tokens: None,
        };
        let mut seen = 0u8;
        self.object(|c, key| {
            let bit = match key {
                b"ephemeral_5m_input_tokens" => 0,
                b"ephemeral_1h_input_tokens" => 1,
                _ => return c.skip(),
            };
            if seen & (1 << bit) != 0 {
                return Err(Bad);
            }
            seen |= 1 << bit;
            let n = c.count()?;
            match bit {
                0 => out.ephemeral_5m_input_tokens = n,
                _ => out.ephemeral_1h_input_tokens = n,
            }
            Ok(())
        })?;
        Ok(Some(out))
    }

    /// A token count when plain: `null`, `0`, or digits without a leading zero that fit a u64.
    fn count(&mut self) -> Result<Option<u64>, Bad> {
        match self.scalar()? {
            b"null" => Ok(None),
            n if n.iter().all(u8::is_ascii_digit) && (n.len() == 1 || n[0] != b'0') => {
                let text = std::str::from_utf8(n).map_err(|_| Bad)?;
                text.parse::<u64>().map(Some).map_err(|_| Bad)
            }
            _ => Err(Bad),
        }
    }

    /// `true`, `false`, `null` or a number, as its bytes.
    fn scalar(&mut self) -> Result<&'a [u8], Bad> {
        let start = self.p;
        while let Some(c) = self.peek() {
            if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.p += 1;
        }
        let s = &self.b[start..self.p];
        if matches!(s, b"true" | b"false" | b"null") || is_number(s) {
            Ok(s)
        } else {
            Err(Bad)
        }
    }

    /// Skips any value at the cursor, however deep it nests (with a stack of what is open,
    /// not recursion: a line of a million `[` is a malformed line, not a crash).
    fn skip(&mut self) -> Result<(), Bad> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.ws();
            match self.peek().ok_or(Bad)? {
                b'"' => {
                    self.raw_string()?;
                }
                b'{' => {
                    self.p += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.p += 1;
                    } else {
                        open.push(b'}');
                        self.member_name()?;
                        continue;
                    }
                }
                b'[' => {
                    self.p += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.p += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                _ => {
                    self.scalar()?;
                }
            }
            // After a value: the next one, or the end of what encloses it.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.p += 1;
                        if close == b'}' {
                            self.member_name()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.p += 1;
                        open.pop();
                    }
                    _ => return Err(Bad),
                }
            }
        }
    }

    /// A skipped object's member name and its colon.
    fn member_name(&mut self) -> Result<(), Bad> {
        self.ws();
        self.raw_string()?;
        self.ws();
        self.eat(b':')
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_number(s: &[u8]) -> bool {
    let digits = |s: &[u8], i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    let mut i = 0;
    if s.first() == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(s, &mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !digits(s, &mut i) {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(s, &mut i) {
            return false;
        }
    }
    i == s.len()
}
