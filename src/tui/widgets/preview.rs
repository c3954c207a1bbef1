//! The pane preview: tmux's ANSI output turned into styled text, wrapped to the pane's width
//! as a terminal would, bottom lines first in view and scrollable back.

use ansi_to_tui::IntoText;
use ratatui::text::{Line, Span, Text};
use unicode_width::UnicodeWidthChar;

/// The lines to show when the preview is `scroll` lines back from its bottom, `height` of
/// them at most: the wrapped `lines` are cut from the end.
pub fn window(lines: &[Line<'static>], height: usize, scroll: usize) -> Vec<Line<'static>> {
    let end = lines.len().saturating_sub(scroll);
    let start = end.saturating_sub(height);
    lines[start..end].to_vec()
}

/// How far back a preview of `total` lines in `height` rows can scroll: until its first
/// line is at the top, with the last row taken by the "more below" line.
pub fn max_scroll(total: usize, height: usize) -> usize {
    if total <= height {
        0
    } else {
        total + 1 - height
    }
}

/// Every line of `screen` up to its last non-blank one, with its colours, each cut into
/// pieces of `width` columns (long lines wrap instead of being cut off).
pub fn wrapped(screen: &str, width: u16, colour: bool) -> Vec<Line<'static>> {
    let width = usize::from(width.max(1));
    render(screen, colour)
        .lines
        .into_iter()
        .flat_map(|line| hard_wrap(line, width))
        .collect()
}

/// A line cut into rows of at most `width` columns, keeping each piece's style.
fn hard_wrap(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                if !piece.is_empty() {
                    row.push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                rows.push(Line::from(std::mem::take(&mut row)).style(line.style));
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            row.push(Span::styled(piece, span.style));
        }
    }
    rows.push(Line::from(row).style(line.style));
    rows
}

/// The non-trailing-blank lines of `screen`, with its colours; plain text if the escapes
/// cannot be read, and no colour at all when `colour` is false (NO_COLOR).
pub fn render(screen: &str, colour: bool) -> Text<'static> {
    let lines: Vec<&str> = screen.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| !strip_ansi(l).trim().is_empty())
        .map_or(0, |i| i + 1);
    let visible = lines[..end].join("\n");
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
        let text = render("$ ls\n\x1b[31mred\x1b[0m file\n\n\n", true);
        assert_eq!(text.lines.len(), 2);
        let red = &text.lines[1].spans[0];
        assert_eq!(red.content, "red");
        assert_eq!(red.style.fg, Some(Color::Red));
    }

    #[test]
    fn only_the_bottom_fits_and_no_color_strips_escapes() {
        let lines = wrapped("a\nb\n\x1b[1mc\x1b[0m\n", 80, false);
        let plain: Vec<String> = window(&lines, 2, 0).iter().map(|l| l.to_string()).collect();
        assert_eq!(plain, ["b", "c"]);
        assert_eq!(max_scroll(lines.len(), 2), 2);
        assert_eq!(max_scroll(lines.len(), 3), 0, "all of it fits");
        let back: Vec<String> = window(&lines, 1, 2).iter().map(|l| l.to_string()).collect();
        assert_eq!(back, ["a"], "scrolled back to the first line");
    }

    #[test]
    fn long_lines_wrap_keeping_their_colours() {
        let lines = wrapped("\x1b[32mabcdefgh\x1b[0mij\nk", 4, true);
        let plain: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(plain, ["abcd", "efgh", "ij", "k"]);
        assert_eq!(lines[1].spans[0].style.fg, Some(Color::Green));
        let wide = wrapped("日本語です", 4, false);
        let plain: Vec<String> = wide.iter().map(|l| l.to_string()).collect();
        assert_eq!(plain, ["日本", "語で", "す"]);
    }
}
