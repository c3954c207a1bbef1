//! The sandbox table: moving, sorting, filtering, and the commands about a sandbox.

use super::flash;
use crate::sandbox::{SandboxName, SandboxRecord, SandboxState};
use crate::tui::action::{Effect, Op};
use crate::tui::command::Command;
use crate::tui::form::Form;
use crate::tui::layout::Areas;
use crate::tui::palette::Palette;
use crate::tui::state::{Confirm, Focus, Overlay, Preview, State};
use crate::tui::widgets::preview;

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
        Command::ShowTab(tab) => state.tab = tab,
        Command::ScrollUp => scroll_preview(state, Scroll::Back(Step::HalfPage)),
        Command::ScrollDown => scroll_preview(state, Scroll::On(Step::HalfPage)),
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
    let name = record.name.clone();
    if let Some(op) = state.busy_with(name.as_str()) {
        flash(state, format!("{name} is busy {}", op.words().0));
        return Vec::new();
    }
    match command {
        Command::Attach => attach(state, &record),
        Command::Stop if !record.is_running() && record.state != SandboxState::Exited => {
            flash(state, format!("{name} is already {}", record.state));
            Vec::new()
        }
        Command::Stop => ask_or_run(state, Op::Stop, name, "Stop"),
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
        Command::Restart => ask_or_run(state, Op::Restart, name, "Restart"),
        Command::Delete => {
            let running = record.is_running();
            let question = if running {
                format!("Delete sandbox {name}? It is running: it will be stopped first.")
            } else {
                format!("Delete sandbox {name} and its files?")
            };
            let op = Op::Remove { force: running };
            state.overlay = Some(Overlay::Confirm(Confirm::run(op, name, question)));
            Vec::new()
        }
        Command::CopyName => {
            flash(state, format!("copied {name}"));
            vec![Effect::CopyToClipboard(name.to_string())]
        }
        Command::AllowOnce | Command::AllowSession | Command::AllowAlways | Command::DenyHeld => {
            answer_held(state, &record, command)
        }
        _ => Vec::new(),
    }
}

/// Attach where there is a session; offer start where there is none.
fn attach(state: &mut State, record: &SandboxRecord) -> Vec<Effect> {
    let name = record.name.clone();
    if !record.managed {
        flash(
            state,
            format!("{name} runs in the terminal that launched it"),
        );
        return Vec::new();
    }
    match record.state {
        SandboxState::Running => vec![Effect::Attach(name)],
        SandboxState::Starting => {
            flash(state, format!("{name} is still starting"));
            Vec::new()
        }
        // An exited agent's pane is dead: attaching would show its last screen and nothing
        // to type into (the Agent tab shows that screen already).
        SandboxState::Stopped | SandboxState::Dead | SandboxState::Exited => {
            let question = match record.exit_status {
                Some(code) if record.state == SandboxState::Exited => {
                    format!("{name} has exited (status {code}): start it?")
                }
                _ => format!("{name} is {}: start it?", record.state),
            };
            state.overlay = Some(Overlay::Confirm(Confirm::run(Op::Start, name, question)));
            Vec::new()
        }
    }
}

/// Stop and restart ask first, naming the sandbox, unless `ui.confirm` is off.
fn ask_or_run(state: &mut State, op: Op, name: SandboxName, verb: &str) -> Vec<Effect> {
    if !state.settings.confirm {
        return run(state, op, name);
    }
    let question = format!("{verb} sandbox {name}?");
    state.overlay = Some(Overlay::Confirm(Confirm::run(op, name, question)));
    Vec::new()
}

pub(super) fn run(state: &mut State, op: Op, name: SandboxName) -> Vec<Effect> {
    flash(state, format!("{} {name}…", op.words().0));
    state.busy.push((name.clone(), op));
    vec![Effect::Run(op, name)]
}

/// How far the Agent preview moves: half a pane for keys, a few lines for the wheel.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scroll {
    Back(Step),
    On(Step),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    HalfPage,
    Lines(usize),
}

/// Scrolls the Agent preview, never past its first line nor below its bottom.
pub(super) fn scroll_preview(state: &mut State, scroll: Scroll) {
    let Some(area) = state.shape().agent_area() else {
        flash(state, "the Agent tab is not in sight".into());
        return;
    };
    let selected = state.selected_record().map(|r| r.id.clone());
    let total = match state
        .preview
        .as_ref()
        .filter(|p| Some(&p.id) == selected.as_ref())
    {
        Some(Preview {
            screen: Ok(text), ..
        }) => preview::wrapped(text, area.width, false).len(),
        _ => 0,
    };
    let height = usize::from(area.height);
    let max = preview::max_scroll(total, height);
    let lines = |step| match step {
        Step::HalfPage => (height / 2).max(1),
        Step::Lines(n) => n,
    };
    let current = state.preview_scroll.min(max);
    state.preview_scroll = match scroll {
        Scroll::Back(step) => (current + lines(step)).min(max),
        Scroll::On(step) => current.saturating_sub(lines(step)),
    };
}

/// A click on a table row selects it; a click in the detail pane focuses it.
pub(super) fn click(state: &mut State, x: u16, y: u16) {
    let shape = state.shape();
    let areas = Areas::of(shape.screen(), &shape);
    if let Some(index) = areas.table_row_at(x, y, state.selected_index(), shape.rows) {
        state.selected = state.rows().get(index).map(|r| r.name.clone());
        state.focus = Focus::Table;
    } else if areas.detail.is_some_and(|d| d.contains((x, y).into())) {
        state.focus = Focus::Detail;
    }
}

fn move_selection(state: &mut State, step: isize) {
    let count = state.rows().len();
    if count == 0 {
        return;
    }
    let current = state.selected_index().unwrap_or(0) as isize;
    let next = current.saturating_add(step).clamp(0, count as isize - 1) as usize;
    state.selected = state.rows().get(next).map(|r| r.name.clone());
}

/// After the rows changed: keep the selection if it is still shown, else take the first row.
pub(super) fn keep_selection_visible(state: &mut State) {
    keep_selection_near(state, None);
}

/// After the rows changed: keep the selection if it is still shown, else take the row now
/// where it was (`was_at`), so a deleted sandbox hands on to its neighbour, not to the top.
pub(super) fn keep_selection_near(state: &mut State, was_at: Option<usize>) {
    if state.selected_index().is_some() {
        return;
    }
    let rows = state.rows();
    let index = was_at.unwrap_or(0).min(rows.len().saturating_sub(1));
    state.selected = rows.get(index).map(|r| r.name.clone());
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

/// The selected sandbox's oldest held connection answered as `command` says.
fn answer_held(state: &mut State, record: &SandboxRecord, command: Command) -> Vec<Effect> {
    use crate::egress::held::Reply;
    let Some(oldest) = state.live.held_of(record).first() else {
        flash(
            state,
            format!("{} holds no connection for an answer", record.name),
        );
        return Vec::new();
    };
    let reply = match command {
        Command::AllowOnce => Reply::Once,
        Command::AllowSession => Reply::Session,
        Command::AllowAlways => Reply::Always,
        _ => Reply::Deny,
    };
    vec![Effect::AnswerHeld {
        name: record.name.clone(),
        target: oldest.target(),
        reply,
    }]
}

/// The keys that answer a held connection, as the keymap binds them ("v once · x deny").
pub(super) fn answer_keys(state: &State) -> String {
    [
        (Command::AllowOnce, "once"),
        (Command::AllowSession, "session"),
        (Command::AllowAlways, "always"),
        (Command::DenyHeld, "deny"),
    ]
    .into_iter()
    .filter_map(|(command, word)| {
        let key = state
            .keymap
            .key_for(crate::tui::keymap::Context::List, command)?;
        Some(format!("{key} {word}"))
    })
    .collect::<Vec<_>>()
    .join(" · ")
}
