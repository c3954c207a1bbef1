//! The sandbox table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::format::shorten_left;
use crate::remote::fleet_usage::record_project_key;
use crate::sandbox::SandboxRecord;
use crate::tui::live::{cpu_text, mem_text, uptime, usd};
use crate::tui::sort::SortColumn;
use crate::tui::state::{Focus, State};
use crate::tui::theme::{Theme, agent_glyph, state_glyph};

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let table = state.table();
    let rows = &table.rows;
    let block = Block::bordered()
        .border_style(border(state, theme))
        .title(title(state, rows.len(), theme));
    if rows.is_empty() {
        let text = if !state.loaded {
            "loading…"
        } else if state.records.is_empty() {
            "No sandboxes yet. Press n to make one."
        } else {
            "Nothing matches the filter. Esc clears it."
        };
        let paragraph = Paragraph::new(Line::styled(format!(" {text}"), theme.fg(theme.muted)));
        frame.render_widget(paragraph.block(block), area);
        return;
    }
    let inner_width = area.width.saturating_sub(2);
    let columns = columns(inner_width, host_width(state));
    let fixed: u16 = columns.iter().map(|c| c.width + 1).sum::<u16>() + 2;
    let project_width = inner_width.saturating_sub(fixed).max(8);
    let home = state.settings.home.as_deref();
    let header = Row::new(
        std::iter::once(Cell::from(""))
            .chain(
                columns
                    .iter()
                    .map(|c| Cell::from(header_label(c.kind, state))),
            )
            .chain(std::iter::once(Cell::from(header_label(
                Kind::Project,
                state,
            )))),
    )
    .style(theme.fg(theme.muted).add_modifier(Modifier::BOLD));
    // Only the rows in sight: ratatui would build every row's cells to show a screenful.
    let table_rows = table.visible().iter().map(|r| {
        let busy = state.busy_with(r.name.as_str());
        // A host that is down: its rows greyed, their state unknown until it is back.
        let offline = state.host_is_down(r);
        let glyph = if offline { "?" } else { state_glyph(r.state) };
        let mut cells = vec![Cell::from(Span::styled(glyph, theme.state(r.state)))];
        for c in &columns {
            cells.push(if offline && c.kind == Kind::State {
                Cell::from("offline")
            } else {
                cell(c.kind, r, state, busy.map(|op| op.words().0), theme)
            });
        }
        let project = r.project_dir.as_path().display().to_string();
        cells.push(Cell::from(shorten_left(
            &project,
            home,
            project_width as usize,
        )));
        let row = Row::new(cells);
        if offline {
            row.style(theme.fg(theme.muted).add_modifier(Modifier::DIM))
        } else {
            row
        }
    });
    let widths = std::iter::once(Constraint::Length(1))
        .chain(columns.iter().map(|c| Constraint::Length(c.width)))
        .chain(std::iter::once(Constraint::Fill(1)));
    // The window keeps the selected row in sight already: within it, no scrolling.
    let selected = table
        .selected
        .and_then(|i| i.checked_sub(table.window.start));
    let widget = Table::new(table_rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected());
    let mut table_state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(widget, area, &mut table_state);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name,
    Host,
    Agent,
    State,
    Uptime,
    Cpu,
    Mem,
    Cost,
    Backend,
    Display,
    Network,
    Project,
}

struct Column {
    kind: Kind,
    width: u16,
}

/// Left to right; `columns` keeps as many as fit, in this order of importance.
const LAYOUT: [(Kind, u16); 10] = [
    (Kind::Name, 14),
    (Kind::Agent, 10),
    (Kind::State, 8),
    (Kind::Uptime, 6),
    (Kind::Cpu, 4),
    (Kind::Mem, 5),
    (Kind::Cost, 6),
    (Kind::Backend, 10),
    (Kind::Display, 4),
    (Kind::Network, 3),
];

/// The project column gets what is left, and at least this.
const MIN_PROJECT: u16 = 8;

/// The HOST column's width when several hosts share the table: the longest host's, within
/// limits; None for one host, whose table looks as it does on that host.
fn host_width(state: &State) -> Option<u16> {
    if !state.is_fleet() {
        return None;
    }
    let longest = state.links.iter().map(|l| l.host.len()).max().unwrap_or(0);
    Some((longest as u16).clamp(4, 16))
}

/// The columns that fit `width` (inside the borders), taken in `LAYOUT` order and shown in
/// it: on a narrow screen network, display and backend give way first, the agent never.
/// HOST, when there is one, follows the name and stays with it.
fn columns(width: u16, host_width: Option<u16>) -> Vec<Column> {
    // The state glyph and its gap come first.
    let mut used = 2 + MIN_PROJECT;
    let mut columns = Vec::new();
    let host = host_width.map(|w| (Kind::Host, w));
    let layout = LAYOUT[..1]
        .iter()
        .copied()
        .chain(host)
        .chain(LAYOUT[1..].iter().copied());
    for (kind, column_width) in layout {
        if !matches!(kind, Kind::Name | Kind::Host) && used + column_width + 1 > width {
            break;
        }
        used += column_width + 1;
        columns.push(Column {
            kind,
            width: column_width,
        });
    }
    columns
}

fn header_label(kind: Kind, state: &State) -> String {
    let (label, sort) = match kind {
        Kind::Name => ("NAME", Some(SortColumn::Name)),
        Kind::Host => ("HOST", None),
        Kind::Agent => ("AGENT", Some(SortColumn::Agent)),
        Kind::State => ("STATE", Some(SortColumn::State)),
        Kind::Uptime => ("UP", Some(SortColumn::Uptime)),
        Kind::Cpu => ("CPU", Some(SortColumn::Cpu)),
        Kind::Mem => ("MEM", Some(SortColumn::Mem)),
        Kind::Cost => ("COST", None),
        Kind::Backend => ("BACKEND", Some(SortColumn::Backend)),
        Kind::Display => ("DISP", None),
        Kind::Network => ("NET", None),
        Kind::Project => ("PROJECT", Some(SortColumn::Project)),
    };
    let text = match sort {
        Some(column) if column == state.sort => {
            format!("{label}{}", if state.sort_reversed { "↓" } else { "↑" })
        }
        _ => label.to_owned(),
    };
    // Figures are right-aligned, and so are their headers.
    match kind {
        Kind::Cpu => format!("{text:>4}"),
        Kind::Mem => format!("{text:>5}"),
        Kind::Cost => format!("{text:>6}"),
        _ => text,
    }
}

fn cell<'a>(
    kind: Kind,
    r: &'a SandboxRecord,
    state: &State,
    busy: Option<&str>,
    theme: &Theme,
) -> Cell<'a> {
    let metrics = state.live.metrics_of(r);
    match kind {
        Kind::Name => Cell::from(r.name.bare()),
        Kind::Host => Cell::from(r.name.split_host().1.unwrap_or_default().to_owned()),
        // A connection held for an answer needs the user more than the agent's state.
        Kind::Agent if !state.live.held_of(r).is_empty() => Cell::from(Span::styled(
            format!(
                "{} net? {}",
                agent_glyph(crate::engine::status::AgentState::Waiting),
                state.live.held_of(r).len()
            ),
            theme.agent(crate::engine::status::AgentState::Waiting),
        )),
        Kind::Agent => match state.live.agent(r) {
            Some(a) => Cell::from(Span::styled(
                format!("{} {}", agent_glyph(a.state), a.state),
                theme.agent(a.state),
            )),
            None => Cell::from("-"),
        },
        Kind::Backend => Cell::from(r.backend.as_str()),
        Kind::State => match busy {
            Some(verb) => Cell::from(Span::styled(format!("{verb}…"), theme.fg(theme.starting))),
            None => Cell::from(Span::styled(r.state.as_str(), theme.state(r.state))),
        },
        Kind::Uptime => Cell::from(uptime(r, state.now)),
        // Right-aligned, so the figures line up.
        Kind::Cpu => right(cpu_text(metrics), 4),
        Kind::Mem => right(mem_text(metrics), 5),
        Kind::Cost => right(
            state
                .live
                .usage
                .as_ref()
                .map(|u| u.for_project(&record_project_key(r)).totals.cost_usd)
                .filter(|c| *c > 0.0)
                .map_or("-".into(), usd),
            6,
        ),
        Kind::Display => Cell::from(r.display.map_or("-".into(), |d| format!(":{d}"))),
        Kind::Network => Cell::from(r.network.as_str()),
        Kind::Project => Cell::from(""),
    }
}

fn right(text: String, width: usize) -> Cell<'static> {
    Cell::from(format!("{text:>width$}"))
}

fn title(state: &State, shown: usize, theme: &Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(" Sandboxes {shown}/{} ", state.records.len()),
        theme.title(),
    )];
    if !state.filter_text.is_empty() {
        spans.push(Span::styled(
            format!("filter: {} ", state.filter_text),
            theme.fg(theme.accent),
        ));
    }
    Line::from(spans)
}

fn border(state: &State, theme: &Theme) -> ratatui::style::Style {
    if state.focus == Focus::Table {
        theme.fg(theme.accent)
    } else {
        theme.fg(theme.muted)
    }
}
