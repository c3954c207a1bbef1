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
use ratatui::layout::{Constraint, Layout, Rect};

use super::state::{Overlay, State, Tab};
use super::theme::Theme;

/// The whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &State, theme: &Theme) {
    if state.fullscreen {
        let [title, body, footer_area] = fullscreen_layout(frame.area());
        screen::fullscreen(frame, title, body, state, theme);
        footer::draw(frame, footer_area, state, theme);
    } else {
        let areas = Areas::of(frame.area(), state);
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

/// The fullscreen view: a title line, the screen, the key hints.
fn fullscreen_layout(screen: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(screen)
}

/// The cells a sandbox's screen is drawn into now, if one is in sight. The reducer sizes the
/// frames it asks for with it, so views and captures agree.
pub fn screen_area(screen: Rect, state: &State) -> Option<Rect> {
    let area = if state.fullscreen {
        fullscreen_layout(screen)[1]
    } else if state.tab == Tab::Screen {
        detail::body(Areas::of(screen, state).detail?)
    } else {
        return None;
    };
    (area.width > 0 && area.height > 0).then_some(area)
}

/// The Agent tab's body, when it is in sight: the reducer sizes preview scrolling with it.
pub fn agent_area(screen: Rect, state: &State) -> Option<Rect> {
    if state.fullscreen || state.tab != Tab::Agent {
        return None;
    }
    let area = detail::body(Areas::of(screen, state).detail?);
    (area.width > 0 && area.height > 0).then_some(area)
}

/// Where each part of the screen goes; the reducer uses it too, to map mouse clicks.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub detail: Option<Rect>,
    pub footer: Rect,
}

impl Areas {
    pub fn of(screen: Rect, state: &State) -> Areas {
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(screen);
        let (table, detail) = split_body(body, state);
        Areas {
            header,
            table,
            detail,
            footer,
        }
    }

    /// The table row at screen line `y`, given how ratatui scrolls a table to keep the
    /// selected row in view (from the top, just far enough).
    pub fn table_row_at(&self, x: u16, y: u16, state: &State) -> Option<usize> {
        let t = self.table;
        // Border and column header above the first row, border below the last.
        let first = t.y + 2;
        let visible = usize::from(t.height.saturating_sub(3));
        if x <= t.x || x >= t.right().saturating_sub(1) || y < first || visible == 0 {
            return None;
        }
        let offset = state
            .selected_index()
            .map_or(0, |i| (i + 1).saturating_sub(visible));
        let index = offset + usize::from(y - first);
        (usize::from(y - first) < visible && index < state.rows().len()).then_some(index)
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
