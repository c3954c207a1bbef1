//! The sandbox table: moving, sorting, filtering, and the commands about a sandbox.

use ratatui::layout::Rect;

use super::flash;
use crate::sandbox::{SandboxRecord, SandboxState};
use crate::tui::action::{Effect, Op};
use crate::tui::command::Command;
use crate::tui::form::Form;
use crate::tui::palette::Palette;
use crate::tui::state::{Confirm, Focus, Overlay, State};
use crate::tui::views::Areas;

pub(super) fn on_table_command(state: &mut State, command: Command) -> Vec<Effect> {
    match command {
        Command::Down => move_selection(state, 1),
        Command::Up => move_selection(state, -1),
        Command::Top => move_selection(state, isize::MIN),
        Command::Bottom => move_selection(state, isize::MAX),
        Command::New => {
            let mut dir = state.settings.start_dir.display().to_string();
            if !dir.ends_with('/') {
                dir.push('/');
            }
            let form = Form::new(dir, state.settings.default_network);
            state.overlay = Some(Overlay::Form(form));
        }
        Command::Filter => {
            state.filter_editing = true;
            state.focus = Focus::Table;
        }
        Command::FocusNext | Command::FocusPrev => {
            state.focus = match state.focus {
                Focus::Table if state.detail_fits() => Focus::Detail,
                _ => Focus::Table,
            };
        }
        Command::TabNext => state.tab = state.tab.step(1),
        Command::TabPrev => state.tab = state.tab.step(-1),
        Command::Fullscreen if state.selected_record().is_none() => {
            flash(state, "no sandbox selected: n makes one".into());
        }
        Command::Fullscreen => state.fullscreen = true,
        Command::SortPicker => {
            state.overlay = Some(Overlay::Palette(Palette {
                query: "sort".into(),
                selected: 0,
            }));
        }
        Command::Sort(column) => {
            state.sort_reversed = state.sort == column && !state.sort_reversed;
            state.sort = column;
            let order = if state.sort_reversed {
                " (reversed)"
            } else {
                ""
            };
            flash(state, format!("sorted by {column}{order}"));
        }
        Command::Back => {
            if !state.filter_text.is_empty() {
                state.filter_text.clear();
                keep_selection_visible(state);
            } else {
                state.focus = Focus::Table;
            }
        }
        _ => return on_sandbox_command(state, command),
    }
    Vec::new()
}

/// Keys in the fullscreen screen view: Esc (or z again) goes back; the rest act as in the table.
pub(super) fn on_screen_command(state: &mut State, command: Command) -> Vec<Effect> {
    match command {
        Command::Back | Command::Fullscreen => {
            state.fullscreen = false;
            Vec::new()
        }
        other => on_table_command(state, other),
    }
}

/// Commands about the selected sandbox.
fn on_sandbox_command(state: &mut State, command: Command) -> Vec<Effect> {
    let Some(record) = state.selected_record().cloned() else {
        flash(state, "no sandbox selected: n makes one".into());
        return Vec::new();
    };
    let name = record.name.to_string();
    if let Some(op) = state.busy_with(&name) {
        flash(state, format!("{name} is busy {}", op.words().0));
        return Vec::new();
    }
    match command {
        Command::Attach => attach(state, &record),
        Command::Stop if !record.is_running() && record.state != SandboxState::Exited => {
            flash(state, format!("{name} is already {}", record.state));
            Vec::new()
        }
        Command::Stop => run(state, Op::Stop, name),
        Command::Start if record.is_running() => {
            flash(state, format!("{name} is already {}", record.state));
            Vec::new()
        }
        Command::Start => run(state, Op::Start, name),
        Command::StartFresh if record.is_running() => {
            flash(state, format!("{name} is already {}", record.state));
            Vec::new()
        }
        Command::StartFresh => run(state, Op::StartFresh, name),
        Command::Restart => run(state, Op::Restart, name),
        Command::Delete => {
            let running = record.is_running();
            let question = if running {
                format!("Delete sandbox {name}? It is running: it will be stopped first.")
            } else {
                format!("Delete sandbox {name} and its files?")
            };
            state.overlay = Some(Overlay::Confirm(Confirm {
                name,
                op: Op::Remove { force: running },
                question,
            }));
            Vec::new()
        }
        Command::CopyName => {
            flash(state, format!("copied {name}"));
            vec![Effect::CopyToClipboard(name)]
        }
        _ => Vec::new(),
    }
}

/// Attach where there is a session; offer start where there is none.
fn attach(state: &mut State, record: &SandboxRecord) -> Vec<Effect> {
    let name = record.name.to_string();
    if !record.managed {
        flash(
            state,
            format!("{name} runs in the terminal that launched it"),
        );
        return Vec::new();
    }
    match record.state {
        SandboxState::Running | SandboxState::Exited => vec![Effect::Attach(name)],
        SandboxState::Starting => {
            flash(state, format!("{name} is still starting"));
            Vec::new()
        }
        SandboxState::Stopped | SandboxState::Dead => {
            let question = format!("{name} is {}: start it?", record.state);
            state.overlay = Some(Overlay::Confirm(Confirm {
                name,
                op: Op::Start,
                question,
            }));
            Vec::new()
        }
    }
}

pub(super) fn run(state: &mut State, op: Op, name: String) -> Vec<Effect> {
    flash(state, format!("{} {name}…", op.words().0));
    state.busy.push((name.clone(), op));
    vec![Effect::Run(op, name)]
}

/// A click on a table row selects it; a click in the detail pane focuses it.
pub(super) fn click(state: &mut State, x: u16, y: u16) {
    let areas = Areas::of(Rect::new(0, 0, state.size.0, state.size.1), state);
    if let Some(index) = areas.table_row_at(x, y, state) {
        state.selected = state.rows().get(index).map(|r| r.name.to_string());
        state.focus = Focus::Table;
        state.dirty = true;
    } else if areas.detail.is_some_and(|d| d.contains((x, y).into())) {
        state.focus = Focus::Detail;
        state.dirty = true;
    }
}

fn move_selection(state: &mut State, step: isize) {
    let count = state.rows().len();
    if count == 0 {
        return;
    }
    let current = state.selected_index().unwrap_or(0) as isize;
    let next = current.saturating_add(step).clamp(0, count as isize - 1) as usize;
    state.selected = state.rows().get(next).map(|r| r.name.to_string());
}

/// After the rows changed: keep the selection if it is still shown, else take the first row.
pub(super) fn keep_selection_visible(state: &mut State) {
    if state.selected_index().is_none() {
        state.selected = state.rows().first().map(|r| r.name.to_string());
    }
}

/// Keys while typing a filter: Enter keeps it, Esc drops it, C-u empties it.
pub(super) fn on_filter_command(state: &mut State, command: Command) -> Vec<Effect> {
    match command {
        Command::Clear => {}
        Command::Cancel => state.filter_editing = false,
        _ => {
            state.filter_editing = false;
            return Vec::new();
        }
    }
    state.filter_text.clear();
    keep_selection_visible(state);
    Vec::new()
}
