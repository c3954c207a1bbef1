//! Drawing: one function per part of the screen, reading the state and nothing else.

mod confirm;
mod detail;
mod footer;
mod form;
pub mod format;
mod header;
mod help;
mod palette;
mod table;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::state::{Overlay, State};
use super::theme::Theme;

/// The whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &State, theme: &Theme) {
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::draw(frame, header_area, state, theme);
    let (table_area, detail_area) = split_body(body, state);
    table::draw(frame, table_area, state, theme);
    if let Some(area) = detail_area {
        detail::draw(frame, area, state, theme);
    }
    footer::draw(frame, footer_area, state, theme);
    match &state.overlay {
        Some(Overlay::Help { scroll }) => help::draw(frame, frame.area(), state, *scroll, theme),
        Some(Overlay::Palette(p)) => palette::draw(frame, frame.area(), state, p, theme),
        Some(Overlay::Confirm(c)) => confirm::draw(frame, frame.area(), state, c, theme),
        Some(Overlay::Form(f)) => form::draw(frame, frame.area(), state, f, theme),
        None => {}
    }
}

/// Side by side when wide; the detail under the table when narrow; no detail when tiny.
fn split_body(body: Rect, state: &State) -> (Rect, Option<Rect>) {
    if state.wide() {
        let [table, detail] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(body);
        (table, Some(detail))
    } else if state.detail_fits() {
        // Room for the rows (plus border and header), at most 40 % of the height.
        let rows = state.rows().len().max(1) as u16 + 3;
        let table_height = rows.min(body.height * 2 / 5).max(5);
        let [table, detail] =
            Layout::vertical([Constraint::Length(table_height), Constraint::Fill(1)]).areas(body);
        (table, Some(detail))
    } else {
        (body, None)
    }
}
