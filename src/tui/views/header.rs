//! The top line: the host, its CPU and memory, and how many sandboxes are in each state.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::format::kib_as_gib;
use crate::tui::state::State;
use crate::tui::theme::{Theme, state_glyph};

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let mut spans = vec![Span::styled(" sandbox-deck ", theme.title())];
    if let Some(host) = &state.host {
        spans.push(Span::styled(
            host.hostname.clone(),
            theme.fg(theme.text).add_modifier(Modifier::BOLD),
        ));
        let cpu = state
            .cpu_percent
            .map_or("–".to_owned(), |p| format!("{p:.0}%"));
        spans.push(Span::styled(format!("  cpu {cpu}"), theme.fg(theme.muted)));
        if host.mem_total_kib > 0 {
            let used = host.mem_total_kib.saturating_sub(host.mem_available_kib);
            spans.push(Span::styled(
                format!(
                    "  mem {}/{} GiB",
                    kib_as_gib(used),
                    kib_as_gib(host.mem_total_kib)
                ),
                theme.fg(theme.muted),
            ));
        }
    }
    spans.push(Span::raw("   "));
    let counts = state.state_counts();
    if counts.is_empty() && state.loaded {
        spans.push(Span::styled("no sandboxes", theme.fg(theme.muted)));
    }
    // Narrow screens get the glyphs without the words.
    let words = area.width >= 110;
    for (s, n) in counts {
        let text = if words {
            format!("{} {n} {s}  ", state_glyph(s))
        } else {
            format!("{}{n} ", state_glyph(s))
        };
        spans.push(Span::styled(text, theme.state(s)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
