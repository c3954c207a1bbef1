//! The command palette over the table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use crate::tui::palette::{Palette, entries};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::popup;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, palette: &Palette, theme: &Theme) {
    let found = entries(&state.keymap, &state.rows_unfiltered(), &palette.query);
    let height = (found.len() as u16 + 4).clamp(5, 16);
    let mut outer = popup::centered(area, 60, height);
    outer.y = area.y + 2.min(area.height.saturating_sub(outer.height));
    let inner = popup::open(frame, outer, "Commands and sandboxes", theme);
    let [input, list_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    let prompt = Line::from(vec![
        Span::styled("> ", theme.key()),
        Span::styled(format!("{}█", palette.query), theme.fg(theme.text)),
    ]);
    frame.render_widget(Paragraph::new(prompt), input);
    let width = list_area.width as usize;
    let items: Vec<ListItem<'_>> = found
        .iter()
        .map(|e| {
            let pad = width.saturating_sub(e.desc.chars().count() + e.keys.chars().count() + 1);
            ListItem::new(Line::from(vec![
                Span::styled(e.desc.clone(), theme.fg(theme.text)),
                Span::raw(" ".repeat(pad)),
                Span::styled(e.keys.clone(), theme.fg(theme.muted)),
            ]))
        })
        .collect();
    if items.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "no command or sandbox matches",
                theme.fg(theme.muted),
            )),
            list_area,
        );
        return;
    }
    let list = List::new(items).highlight_style(theme.selected());
    let mut list_state = ListState::default().with_selected(Some(palette.selected));
    frame.render_stateful_widget(list, list_area, &mut list_state);
}
