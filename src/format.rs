//! Human-readable text shared by the CLI and the TUI.

use std::borrow::Cow;

use chrono::TimeDelta;

/// Single-quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` as a person would type it in a shell: bare when that is safe, else single-quoted.
pub fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        shell_quote(s)
    }
}

/// `text` made safe to print on a terminal: the one sanitizer for everything a sandbox can
/// influence (hook messages, transcript fields, pane text, file names). Escape sequences are
/// dropped whole (CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and C1 forms, and the short
/// `ESC x` forms), and so is every other control character: C0 but `\n` and `\t`, DEL, C1,
/// and the bidirectional overrides that make text read other than it is. Text without any
/// of them is returned as is.
pub fn printable(text: &str) -> Cow<'_, str> {
    sanitize(text, false)
}

/// [`printable`] for one field of a line (a table cell, a reason): newlines and tabs become
/// spaces too, so a value cannot start a line that looks like another row.
pub fn printable_line(text: &str) -> Cow<'_, str> {
    sanitize(text, true)
}

fn is_unsafe(c: char, one_line: bool) -> bool {
    match c {
        '\n' | '\t' => one_line,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        c => c.is_control(),
    }
}

fn sanitize(text: &str, one_line: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c, one_line)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // `ESC ( B` and the like: intermediates, then one final character.
                Some(' '..='/') => {
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next_if(|c| ('0'..='~').contains(c));
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\n' | '\t' if one_line => out.push(' '),
            c if is_unsafe(c, one_line) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Parameters and intermediates, then the final byte (which ends it).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars
        .next_if(|c| ('0'..='?').contains(c) || (' '..='/').contains(c))
        .is_some()
    {}
    chars.next_if(|c| ('@'..='~').contains(c));
}

/// A control string, up to its terminator (BEL, `ESC \\` or ST) or the end of the text.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\x07' | '\u{9c}' => return,
            '\x1b' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

pub fn human_duration(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// `path` with the home dir as `~`, cut from the left to `width` characters (`…/api`):
/// the end of a project path is the part that tells projects apart.
pub fn shorten_left(path: &str, home: Option<&str>, width: usize) -> String {
    let path = match home {
        Some(home) if !home.is_empty() && path.starts_with(home) => {
            format!("~{}", &path[home.len()..])
        }
        _ => path.to_owned(),
    };
    let count = path.chars().count();
    if count <= width {
        return path;
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = path.chars().skip(count - (width - 1)).collect();
    format!("…{tail}")
}

pub fn kib_as_gib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / (1024.0 * 1024.0))
}

/// Splits `text` into lines of at most `width` characters at spaces (longer words are cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shortened_from_the_left() {
        assert_eq!(
            shorten_left("/home/u/src/api", Some("/home/u"), 20),
            "~/src/api"
        );
        assert_eq!(shorten_left("/srv/projects/api", None, 8), "…cts/api");
        assert_eq!(shorten_left("/a", None, 8), "/a");
    }

    #[test]
    fn nothing_a_sandbox_wrote_reaches_the_terminal_as_a_control() {
        let evil = "a\x1b]52;c;c2VjcmV0\x07b\x1b[2Jc\x1bPtmux;\x1b\x1b]0;t\x07\x1b\\d\x1b(Be\
                    \u{9b}31mf\u{9d}0;title\u{9c}g\x1b]2;unterminated";
        assert_eq!(printable(evil), "abcdefg");
        assert_eq!(printable("x\ry\x08z\x7f\u{202E}w\x00"), "xyzw");
        assert_eq!(printable("two\nlines\tand tabs"), "two\nlines\tand tabs");
        assert_eq!(printable_line("fake\nrow\there"), "fake row here");
        assert!(matches!(printable("plain ünïcode ✻"), Cow::Borrowed(_)));
        // Whatever the input, nothing below 0x20 but \n and \t, no DEL and no C1 is left.
        let every: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let out = printable(&every);
        assert!(
            out.chars()
                .all(|c| c == '\n' || c == '\t' || !c.is_control()),
            "{out:?}"
        );
    }

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(human_duration(TimeDelta::seconds(42)), "42s");
        assert_eq!(human_duration(TimeDelta::seconds(3 * 3600 + 120)), "3h02m");
    }
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn no_control_survives_the_sanitizer(text in "\\PC*|[\\x00-\\x{9f}\\x{202a}-\\x{202e}a-z]{0,80}") {
            let out = printable(&text);
            proptest::prop_assert!(out.chars().all(|c| c == '\n' || c == '\t' || !is_unsafe(c, false)));
            let line = printable_line(&text);
            proptest::prop_assert!(line.chars().all(|c| !is_unsafe(c, true)));
        }
    }
}
