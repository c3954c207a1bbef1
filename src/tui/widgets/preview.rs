//! The pane preview: tmux's ANSI output turned into styled text, bottom lines first in view.

use ansi_to_tui::IntoText;
use ratatui::text::{Line, Text};

/// The last `height` non-trailing-blank lines of `screen`, with its colours; plain text if
/// the escapes cannot be read, and no colour at all when `colour` is false (NO_COLOR).
pub fn render(screen: &str, height: usize, colour: bool) -> Text<'static> {
    let lines: Vec<&str> = screen.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| !strip_ansi(l).trim().is_empty())
        .map_or(0, |i| i + 1);
    let start = end.saturating_sub(height);
    let visible = lines[start..end].join("\n");
    if !colour {
        return Text::from(
            visible
                .lines()
                .map(|l| Line::from(strip_ansi(l)))
                .collect::<Vec<_>>(),
        );
    }
    visible
        .as_bytes()
        .into_text()
        .unwrap_or_else(|_| Text::from(strip_ansi(&visible)))
}

/// The text without escape sequences or other controls: the CLI's sanitizer, so the TUI
/// and the CLI strip the same things.
pub fn strip_ansi(text: &str) -> String {
    crate::format::printable_line(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Color;

    #[test]
    fn colours_are_rendered_and_trailing_blank_lines_dropped() {
        let text = render("$ ls\n\x1b[31mred\x1b[0m file\n\n\n", 10, true);
        assert_eq!(text.lines.len(), 2);
        let red = &text.lines[1].spans[0];
        assert_eq!(red.content, "red");
        assert_eq!(red.style.fg, Some(Color::Red));
    }

    #[test]
    fn only_the_bottom_fits_and_no_color_strips_escapes() {
        let text = render("a\nb\n\x1b[1mc\x1b[0m\n", 2, false);
        let plain: Vec<String> = text.lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(plain, ["b", "c"]);
    }
}
