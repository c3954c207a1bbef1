//! Drawing: one function per part of the screen, reading the state and nothing else.

mod confirm;
mod detail;
mod footer;
mod form;
mod header;
pub mod help;
mod palette;
mod screen;
mod table;
mod usage;

use ratatui::Frame;

use super::layout::{self, Areas};
use super::state::{Overlay, State};
use super::theme::Theme;

/// The whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &State, theme: &Theme) {
    if state.fullscreen {
        let [title, body, footer_area] = layout::fullscreen(frame.area());
        screen::fullscreen(frame, title, body, state, theme);
        footer::draw(frame, footer_area, state, theme);
    } else {
        let areas = Areas::of(frame.area(), &state.shape());
        header::draw(frame, areas.header, state, theme);
        table::draw(frame, areas.table, state, theme);
        if let Some(area) = areas.detail {
            detail::draw(frame, area, state, theme);
        }
        footer::draw(frame, areas.footer, state, theme);
    }
    match &state.overlay {
        Some(Overlay::Help { scroll }) => help::draw(frame, frame.area(), state, *scroll, theme),
        Some(Overlay::Palette(p)) => palette::draw(frame, frame.area(), state, p, theme),
        Some(Overlay::Confirm(c)) => confirm::draw(frame, frame.area(), state, c, theme),
        Some(Overlay::Form(f)) => form::draw(frame, frame.area(), state, f, theme),
        None => {}
    }
}
