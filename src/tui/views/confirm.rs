//! A yes/no question that names the sandbox it is about.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::footer::hint_spans;
use crate::tui::keymap::Context;
use crate::tui::state::{Confirm, State};
use crate::tui::theme::Theme;
use crate::tui::widgets::popup;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, confirm: &Confirm, theme: &Theme) {
    let outer = popup::centered(area, 56, 7);
    let inner = popup::open(frame, outer, "Confirm", theme);
    let [question, _, keys] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(confirm.question.clone(), theme.fg(theme.text)))
            .wrap(Wrap { trim: true }),
        question,
    );
    frame.render_widget(
        Paragraph::new(Line::from(hint_spans(state, Context::Confirm, theme))),
        keys,
    );
}
