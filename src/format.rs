//! Human-readable text shared by the CLI and the TUI.

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
    fn durations_read_like_uptime() {
        assert_eq!(human_duration(TimeDelta::seconds(42)), "42s");
        assert_eq!(human_duration(TimeDelta::seconds(3 * 3600 + 120)), "3h02m");
    }
}
