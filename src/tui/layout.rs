//! Where each part of the screen goes, from plain figures (the terminal size, the view, the
//! row count). The views draw into these areas and the reducer maps clicks and sizes screen
//! captures with the same ones, so neither needs the other.

use std::ops::Range;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Block;

/// Below this width the detail pane goes under the table.
pub const WIDE_LAYOUT_COLUMNS: u16 = 100;
/// Below this height there is no room for the detail pane at all.
pub const MIN_DETAIL_ROWS: u16 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Agent,
    Screen,
    Usage,
    Info,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Agent, Tab::Screen, Tab::Usage, Tab::Info];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Agent => "Agent",
            Tab::Screen => "Screen",
            Tab::Usage => "Usage",
            Tab::Info => "Info",
        }
    }

    /// The name in the keymap's `tab:<name>` commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Agent => "agent",
            Tab::Screen => "screen",
            Tab::Usage => "usage",
            Tab::Info => "info",
        }
    }

    /// The tab `step` places further, wrapping around.
    pub fn step(self, step: isize) -> Tab {
        let index = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) as isize;
        let count = Tab::ALL.len() as isize;
        Tab::ALL[(index + step).rem_euclid(count) as usize]
    }
}

/// What the layout depends on, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The terminal, in cells.
    pub size: (u16, u16),
    /// The selected sandbox's screen fills the terminal.
    pub fullscreen: bool,
    pub tab: Tab,
    /// Rows the table shows (after the filter).
    pub rows: usize,
}

impl Shape {
    pub fn screen(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    pub fn wide(&self) -> bool {
        wide(self.size)
    }

    pub fn detail_fits(&self) -> bool {
        detail_fits(self.size)
    }

    /// The cells a sandbox's screen is drawn into now, if one is in sight. The reducer sizes
    /// the frames it asks for with it, so views and captures agree.
    pub fn screen_area(&self) -> Option<Rect> {
        let screen = self.screen();
        let area = if self.fullscreen {
            fullscreen(screen)[1]
        } else if self.tab == Tab::Screen {
            detail_body(Areas::of(screen, self).detail?)
        } else {
            return None;
        };
        (area.width > 0 && area.height > 0).then_some(area)
    }

    /// The Agent tab's body, when it is in sight: the reducer sizes preview scrolling with it.
    pub fn agent_area(&self) -> Option<Rect> {
        if self.fullscreen || self.tab != Tab::Agent {
            return None;
        }
        let area = detail_body(Areas::of(self.screen(), self).detail?);
        (area.width > 0 && area.height > 0).then_some(area)
    }
}

/// Whether the detail pane goes beside the table.
pub fn wide((width, _): (u16, u16)) -> bool {
    width >= WIDE_LAYOUT_COLUMNS
}

/// Whether there is room for the detail pane at all.
pub fn detail_fits(size: (u16, u16)) -> bool {
    wide(size) || size.1 >= MIN_DETAIL_ROWS
}

/// The fullscreen view: a title line, the screen, the key hints.
pub fn fullscreen(screen: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(screen)
}

/// The part of the detail pane under its border and the tab titles.
pub fn detail_body(area: Rect) -> Rect {
    let inner = Block::bordered().inner(area);
    Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas::<2>(inner)[1]
}

/// Where each part of the dashboard goes.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub detail: Option<Rect>,
    pub footer: Rect,
}

impl Areas {
    pub fn of(screen: Rect, shape: &Shape) -> Areas {
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(screen);
        let (table, detail) = split_body(body, shape);
        Areas {
            header,
            table,
            detail,
            footer,
        }
    }

    /// The table row at screen line `y`, given how ratatui scrolls a table to keep the
    /// selected row in view (from the top, just far enough).
    pub fn table_row_at(
        &self,
        x: u16,
        y: u16,
        selected: Option<usize>,
        rows: usize,
    ) -> Option<usize> {
        let t = self.table;
        // Border and column header above the first row, border below the last.
        let first = t.y + 2;
        let window = self.table_window(selected, rows);
        if x <= t.x || x >= t.right().saturating_sub(1) || y < first {
            return None;
        }
        let index = window.start + usize::from(y - first);
        window.contains(&index).then_some(index)
    }

    /// The table rows in sight (indices into the table's rows), scrolled as ratatui scrolls
    /// a table to keep the selected row in view: from the top, just far enough. Only these
    /// are drawn, and only their figures can change the screen.
    pub fn table_window(&self, selected: Option<usize>, rows: usize) -> Range<usize> {
        // Border and column header above the first row, border below the last.
        let visible = usize::from(self.table.height.saturating_sub(3));
        let offset = selected.map_or(0, |i| (i + 1).saturating_sub(visible));
        let start = offset.min(rows);
        start..(offset + visible).min(rows)
    }
}

/// Side by side when wide; the detail under the table when narrow; no detail when tiny.
fn split_body(body: Rect, shape: &Shape) -> (Rect, Option<Rect>) {
    if shape.wide() {
        let [table, detail] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(body);
        (table, Some(detail))
    } else if shape.detail_fits() {
        // Room for the rows (plus border and header), at most 40 % of the height.
        let rows = shape.rows.max(1) as u16 + 3;
        let table_height = rows.min(body.height * 2 / 5).max(5);
        let [table, detail] =
            Layout::vertical([Constraint::Length(table_height), Constraint::Fill(1)]).areas(body);
        (table, Some(detail))
    } else {
        (body, None)
    }
}
