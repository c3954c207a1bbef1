//! The new-sandbox form.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::format::wrap;
use crate::tui::form::{Field, Form};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::popup;

/// Completions listed under the dir field, at most.
const MAX_COMPLETIONS: usize = 5;
/// Where values start, after the labels.
const INDENT: usize = 15;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, form: &Form, theme: &Theme) {
    let width = 76.min(area.width);
    // The popup's inside is 4 columns narrower (borders and padding).
    let lines = lines(state, form, usize::from(width.saturating_sub(4)), theme);
    let outer = popup::centered(area, width, lines.len() as u16 + 2);
    let inner = popup::open(frame, outer, "New sandbox", theme);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn lines(state: &State, form: &Form, inner_width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for field in Field::ALL {
        lines.push(field_line(form, field, state, theme));
        if field == Field::Dir {
            for c in form.completions.iter().take(MAX_COMPLETIONS) {
                lines.push(Line::styled(
                    format!("{:INDENT$}{c}", ""),
                    theme.fg(theme.muted),
                ));
            }
        }
        if let Some((_, message)) = form.error.as_ref().filter(|(f, _)| *f == field) {
            let width = inner_width.saturating_sub(INDENT).max(20);
            for part in wrap(message, width) {
                lines.push(Line::styled(
                    format!("{:INDENT$}{part}", ""),
                    theme.fg(theme.error),
                ));
            }
        }
    }
    if form.submitting {
        lines.push(Line::raw(""));
        lines.push(Line::styled("creating…", theme.fg(theme.starting)));
    }
    lines
}

fn field_line(form: &Form, field: Field, state: &State, theme: &Theme) -> Line<'static> {
    let focused = form.field == field;
    let value = match field {
        Field::Dir => form.dir.clone(),
        Field::Name => form.name.clone(),
        Field::Backend => "bubblewrap (the only backend so far)".into(),
        Field::Network => network_choice(form.network),
        Field::GhToken => switch(form.gh_token),
        Field::Payload if form.shell => "( ) agent  (•) shell".into(),
        Field::Payload => format!("(•) agent ({})  ( ) shell", state.settings.agent),
    };
    let cursor = if focused && matches!(field, Field::Dir | Field::Name) {
        "█"
    } else {
        ""
    };
    let label_style = if focused {
        theme.key()
    } else {
        theme.fg(theme.muted)
    };
    let value_style = if focused {
        theme.fg(theme.text).add_modifier(Modifier::BOLD)
    } else {
        theme.fg(theme.text)
    };
    Line::from(vec![
        Span::styled(if focused { "› " } else { "  " }, theme.key()),
        Span::styled(format!("{:13}", field.label()), label_style),
        Span::styled(format!("{value}{cursor}"), value_style),
    ])
}

/// The three modes in a row, the chosen one marked (Space cycles through them).
fn network_choice(chosen: crate::sandbox::Network) -> String {
    use crate::sandbox::Network;
    [Network::Proxy, Network::Host, Network::None]
        .iter()
        .map(|mode| {
            let mark = if *mode == chosen { "•" } else { " " };
            format!("({mark}) {mode}")
        })
        .collect::<Vec<_>>()
        .join("  ")
}

fn switch(on: bool) -> String {
    if on {
        "[x] on".into()
    } else {
        "[ ] off".into()
    }
}
