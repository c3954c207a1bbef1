//! Whether a pane's output since its last capture could change what the status patterns
//! read from it (issue 15): a pane that only prints ordinary lines is not captured by the
//! status round, its last text stands.
//!
//! What the patterns read from a pane is only whether its screen shows one of the pattern
//! texts (lowercased, within one line) or a spinner line (which needs the spinner's verb
//! ending, `…`). The gate reads the pane's `%output` bytes and says "capture" when any of
//! these came since the last capture:
//! - a byte outside printable ASCII in the text (`…`, a spinner glyph, a box border, any
//!   letter whose lowercase could be ASCII);
//! - a run of text (printable bytes between two controls) holding [`K`] bytes that, ASCII
//!   lowercased, are [`K`] consecutive bytes of a pattern text; or a run shorter than [`K`]
//!   (a renderer updating a few cells);
//! - a control that can put the cursor back over cells already written or move or erase
//!   cells (a CR not followed by LF, BS, cursor up/back/to a position, restoring the cursor,
//!   reverse index, erasing, inserting or deleting, scroll regions, the alternate screen, a
//!   charset switch, a reset), or any sequence not known to be harmless. What is left: text,
//!   SGR, CR LF, LF, TAB, cursor down/forward, and a few modes (cursor shown, bracketed paste,
//!   mouse, synchronized output) and strings (titles, hyperlinks).
//!
//! And the status round captures anyway when the last capture itself held a non-ASCII
//! character or [`K`] bytes of a pattern ([`Grams::could_show`]), on a layout change, and on
//! the slow safety net ([`super::preview::CAPTURE_SAFETY`]).
//!
//! Why that cannot miss a pattern P appearing (every pattern is at least `3K-2` bytes, else
//! the gate is off): with none of the controls above, the cursor only moves forward, so every
//! cell of P's line written since the last capture was written once, by one run, and every
//! other cell is as captured. A run with `K` or more cells inside P holds `K` bytes of P; a
//! run inside P is shorter than `K` or holds them; so a run that says nothing overlaps P by
//! less than `K` cells and only at one of its two ends, and the captured cells between
//! (fewer than `K` in a row, else the last capture held `K` bytes of P) cannot make up the
//! rest: `3(K-1) < len(P)`. Words redrawn with SGR or cursor-forward between them are runs of
//! their own, each checked. A spinner line needs `…` on the screen: written (non-ASCII) or
//! already captured (non-ASCII). Blank cells and cells skipped by a tab or cursor-forward
//! are captured cells in this count. Output tmux reports for a pane not routed yet (new since
//! the last tending) is seen by no one, as before this gate; a new sandbox's pane has no
//! capture yet and is captured at its first look.

use std::collections::HashSet;

use super::status::Patterns;

/// How many consecutive bytes of a pattern a run must hold to count.
pub const K: usize = 4;

/// Every run of [`K`] bytes of the pattern texts, lowercased.
#[derive(Debug, Clone)]
pub struct Grams {
    set: HashSet<[u8; K]>,
    /// False when a pattern is too short for the argument above (or the spinner's verb
    /// ending is ASCII): then every output counts.
    on: bool,
}

impl Grams {
    pub fn of(patterns: &Patterns) -> Grams {
        let mut set = HashSet::new();
        let mut on = !patterns.spinner_ending().is_ascii();
        for text in patterns.texts() {
            let text = text.to_lowercase();
            on &= text.len() > 3 * (K - 1);
            for w in text.as_bytes().windows(K) {
                if let Ok(gram) = <[u8; K]>::try_from(w) {
                    set.insert(gram);
                }
            }
        }
        Grams { set, on }
    }

    /// Whether the gate may keep a pane's last text at all.
    pub fn on(&self) -> bool {
        self.on
    }

    fn holds(&self, window: &[u8; K]) -> bool {
        self.set.contains(window)
    }

    /// Whether captured `text` could hold (part of) what the patterns look for: a non-ASCII
    /// character or [`K`] bytes of a pattern. Such a pane is captured on any output.
    pub fn could_show(&self, text: &str) -> bool {
        !text.is_ascii()
            || text
                .as_bytes()
                .windows(K)
                .any(|w| <[u8; K]>::try_from(w).is_ok_and(|g| self.holds(&g.map(lower))))
    }
}

fn lower(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Text,
    /// After ESC.
    Escape,
    /// After ESC and an intermediate byte (`ESC ( 0`).
    EscapeMore,
    /// Inside `ESC [`.
    Csi,
    /// Inside a string (OSC, DCS, APC, PM, SOS) until BEL or ST.
    Str,
    /// ESC inside a string.
    StrEscape,
}

/// A pane's output, read for [`Grams`]: what counted so far.
#[derive(Debug, Default)]
pub struct OutputGate {
    state: State,
    /// The last bytes of the current run, lowercased, and how long the run is.
    window: [u8; K],
    run: usize,
    /// A CR came and the next byte decides (LF: harmless).
    cr: bool,
    /// The current CSI's parameter bytes (at most [`CSI_KEEP`]), and whether it had an
    /// intermediate byte or too many parameters.
    params: Vec<u8>,
    odd: bool,
    /// How many times output counted.
    counted: u64,
}

const CSI_KEEP: usize = 16;

impl OutputGate {
    /// Reads one chunk of output.
    pub fn feed(&mut self, grams: &Grams, data: &[u8]) {
        let mut hit = !grams.on();
        for &b in data {
            hit |= self.byte(grams, b);
        }
        if hit {
            self.counted += 1;
        }
    }

    /// How many times output counted, read before a capture: a short run at the end counts
    /// (it may be a few cells updated), and from here on the run is a new one (what came is
    /// on the screen that is captured).
    pub fn mark(&mut self) -> u64 {
        if self.state == State::Text && (1..K).contains(&self.run) {
            self.counted += 1;
        }
        self.run = 0;
        self.counted
    }

    /// Whether `b` counts.
    fn byte(&mut self, grams: &Grams, b: u8) -> bool {
        match self.state {
            State::Text => self.text(grams, b),
            State::Escape => self.escape(b),
            State::EscapeMore => {
                // A charset designation (`ESC ( 0`) or DECALN (`ESC # 8`).
                self.state = State::Text;
                true
            }
            State::Csi => self.csi(b),
            State::Str => {
                match b {
                    0x07 => self.state = State::Text,
                    0x1b => self.state = State::StrEscape,
                    _ => {}
                }
                false
            }
            State::StrEscape => {
                self.state = if b == b'\\' { State::Text } else { State::Str };
                false
            }
        }
    }

    fn text(&mut self, grams: &Grams, b: u8) -> bool {
        let cr = std::mem::take(&mut self.cr);
        if (0x20..0x7f).contains(&b) {
            let mut hit = cr;
            self.window.rotate_left(1);
            self.window[K - 1] = lower(b);
            self.run += 1;
            hit |= self.run >= K && grams.holds(&self.window);
            return hit;
        }
        // Any control ends the run; a short one may be a few cells updated.
        let short = (1..K).contains(&self.run);
        self.run = 0;
        let hit = match b {
            b'\r' => {
                self.cr = true;
                false
            }
            b'\n' | 0x0b | 0x0c | b'\t' | 0x07 | 0x00 | 0x7f => cr && b != b'\n',
            0x1b => {
                self.state = State::Escape;
                cr
            }
            // BS, SO/SI, other C0, and any byte of a non-ASCII character.
            _ => true,
        };
        hit || short
    }

    fn escape(&mut self, b: u8) -> bool {
        self.state = State::Text;
        match b {
            b'[' => {
                self.state = State::Csi;
                self.params.clear();
                self.odd = false;
                false
            }
            b']' | b'P' | b'_' | b'^' | b'X' => {
                self.state = State::Str;
                false
            }
            0x20..=0x2f => {
                self.state = State::EscapeMore;
                false
            }
            // Save the cursor, keypad modes, index down, next line.
            b'7' | b'=' | b'>' | b'D' | b'E' => false,
            // Restore the cursor, reverse index, reset, anything else.
            _ => true,
        }
    }

    fn csi(&mut self, b: u8) -> bool {
        match b {
            0x30..=0x3f => {
                if self.params.len() < CSI_KEEP {
                    self.params.push(b);
                } else {
                    self.odd = true;
                }
                false
            }
            0x20..=0x2f => {
                // `CSI n SP q` (the cursor's shape) is the one with an intermediate we know.
                self.odd |= b != b' ';
                self.params.push(b' ');
                false
            }
            0x40..=0x7e => {
                self.state = State::Text;
                self.odd || !harmless_csi(&self.params, b)
            }
            // A control inside a CSI: tmux acts on it; count it.
            _ => true,
        }
    }
}

/// A CSI that neither moves the cursor back or up nor changes cells: SGR, cursor forward
/// or down, reports, the cursor's shape, and a few modes.
fn harmless_csi(params: &[u8], last: u8) -> bool {
    let space = params.last() == Some(&b' ');
    match last {
        b'q' => space,
        _ if space => false,
        b'm' | b'C' | b'B' | b'E' | b'e' | b'a' | b'I' | b'n' | b'c' | b't' => true,
        b'h' | b'l' => harmless_modes(params),
        _ => false,
    }
}

/// `?25` (cursor shown), `?1` (cursor keys), `?12` (blinking), `?1000`-`?1006` (mouse),
/// `?1004` (focus), `?2004` (bracketed paste), `?2026` (synchronized output).
fn harmless_modes(params: &[u8]) -> bool {
    let Some(rest) = params.strip_prefix(b"?") else {
        return false;
    };
    rest.split(|b| *b == b';').all(|mode| {
        matches!(
            mode,
            b"25"
                | b"1"
                | b"12"
                | b"1000"
                | b"1002"
                | b"1003"
                | b"1004"
                | b"1005"
                | b"1006"
                | b"2004"
                | b"2026"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams() -> Grams {
        Grams::of(&Patterns::builtin())
    }

    /// How many of `chunks` counted.
    fn counted(chunks: &[&[u8]]) -> u64 {
        let grams = grams();
        let mut gate = OutputGate::default();
        for chunk in chunks {
            gate.feed(&grams, chunk);
        }
        gate.mark()
    }

    #[test]
    fn the_shipped_patterns_leave_the_gate_on() {
        assert!(grams().on());
    }

    #[test]
    fn plain_lines_do_not_count() {
        assert_eq!(counted(&[b"line 1\r\n", b"line 2\r\nline 3\r\n"]), 0);
        assert_eq!(counted(&[b"\x1b[1;32mCompiling\x1b[0m foo v0.1.0\r\n"]), 0);
        assert_eq!(
            counted(&[b"warning: unused variable\r\n\tat src/main.rs:3\r\n"]),
            0
        );
    }

    #[test]
    fn a_pattern_split_across_writes_with_escapes_between_counts() {
        // Within one run, across two chunks.
        // A run goes on across chunks: one byte a write, each completes a piece of it.
        assert_eq!(counted(&[b"Do you want to pr", b"o", b"c", b"e"]), 4);
        assert_eq!(counted(&[b"li", b"ne", b" 1\r\n"]), 0);
        // Words apart, SGR and cursor-forward between them, in two chunks.
        assert!(counted(&[b"\x1b[1mDo\x1b[0m\x1b[1C", b"you\x1b[1Cwant\x1b[1Cto"]) > 0);
        // Any case.
        assert_eq!(counted(&[b"ESC TO INTERRUPT\r\n"]), 1);
    }

    #[test]
    fn what_could_rewrite_cells_counts() {
        // Each of these may complete a pattern from cells already on the screen.
        for chunk in [
            &b"abcd\rabcd"[..],
            b"abcdef\x08ghijk",
            b"\x1b[5;1Habcdef",
            b"\x1b[2Dabcdef",
            b"\x1b[Kabcdef",
            b"\x1b[3Pabcdef",
            b"\x1b8abcdef",
            b"\x1bMabcdef",
            b"\x1b[?1049h",
            b"\x1b(0lqqk\x1b(B",
            "\u{2026}".as_bytes(),
            b"ab\x1b[1Ccdef",
        ] {
            assert!(
                counted(&[chunk]) > 0,
                "{:?}",
                String::from_utf8_lossy(chunk)
            );
        }
        // A CR split from its LF across chunks is still CR LF.
        assert_eq!(counted(&[b"line 1\r", b"\nline 2\r\n"]), 0);
        // Titles, hyperlinks, cursor shown, synchronized output: nothing on the screen moves.
        assert_eq!(
            counted(&[b"\x1b]0;title\x07\x1b[?25l\x1b[?2026hline 1\x1b[?2026l\r\n"]),
            0
        );
    }

    #[test]
    fn a_screen_with_part_of_a_pattern_or_any_non_ascii_is_watched_closely() {
        let grams = grams();
        assert!(!grams.could_show("line 1\nline 2\n$ "));
        assert!(grams.could_show("Do you want"));
        assert!(grams.could_show("\u{2736} Tempering\u{2026}"));
    }
}
