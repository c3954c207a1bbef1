//! The bottom bar: the filter being typed, a flash message, or the focused context's key
//! hints, generated from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::command::Command;
use crate::tui::keymap::Context;
use crate::tui::state::State;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let line = if state.filter_editing {
        let mut spans = vec![
            Span::styled(" / ", theme.key()),
            Span::styled(format!("{}█", state.filter_text), theme.fg(theme.text)),
            Span::raw("  "),
        ];
        spans.extend(hint_spans(state, Context::Filter, theme));
        Line::from(spans)
    } else if let Some(flash) = &state.flash {
        let style = if flash.error {
            theme.fg(theme.error)
        } else {
            theme.fg(theme.accent)
        };
        Line::styled(format!(" {}", flash.text), style)
    } else {
        let mut spans = vec![Span::raw(" ")];
        spans.extend(fitting_hints(state, area.width.saturating_sub(1), theme));
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// `key desc` pairs for `context`, as the keymap says.
pub fn hint_spans(state: &State, context: Context, theme: &Theme) -> Vec<Span<'static>> {
    state
        .keymap
        .hints(context)
        .into_iter()
        .flat_map(|(key, desc)| {
            [
                Span::styled(key, theme.key()),
                Span::styled(format!(" {desc}  "), theme.fg(theme.muted)),
            ]
        })
        .collect()
}

/// As many whole hints as fit in `width`, always keeping the one that opens help.
fn fitting_hints(state: &State, width: u16, theme: &Theme) -> Vec<Span<'static>> {
    let context = state.context();
    let help = state
        .keymap
        .key_for(context, Command::Help)
        .map(|k| (k.to_string(), "help".to_string()));
    let cost = |(key, desc): &(String, String)| key.chars().count() + desc.chars().count() + 3;
    let mut budget = usize::from(width) - help.as_ref().map_or(0, cost).min(usize::from(width));
    let mut kept = Vec::new();
    for hint in state.keymap.hints(context) {
        if help.as_ref().is_some_and(|h| h.0 == hint.0) {
            continue;
        }
        if cost(&hint) > budget {
            break;
        }
        budget -= cost(&hint);
        kept.push(hint);
    }
    kept.extend(help);
    kept.into_iter()
        .flat_map(|(key, desc)| {
            [
                Span::styled(key, theme.key()),
                Span::styled(format!(" {desc}  "), theme.fg(theme.muted)),
            ]
        })
        .collect()
}
