//! The reducer: `update(state, action) -> effects`. No I/O, no clock, no terminal: the
//! world comes in as actions and goes out as effects, so every rule here is testable.

use chrono::TimeDelta;
use crossterm::event::{KeyCode, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::layout::Rect;

use super::action::{Action, CreateRequestEq, Effect, Op};
use super::command::Command;
use super::form::{Field, Form};
use super::keymap::{Context, Key};
use super::palette::{self, Palette};
use super::state::{Confirm, Flash, Focus, Overlay, Preview, State, Tab};
use super::views::format::human_duration;
use super::views::{Areas, help};
use crate::engine::host_stats::HostStats;
use crate::sandbox::{SandboxRecord, SandboxState};

/// How long a flash message stays in the bottom bar.
const FLASH_SECONDS: i64 = 4;
/// The header shows memory in tenths of a GiB.
const TENTH_GIB_IN_KIB: u64 = 1024 * 1024 / 10;

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    let may_change_view = matches!(
        action,
        Action::Key(_) | Action::Mouse(_) | Action::Resize(..) | Action::Loaded(_)
    );
    let mut effects = reduce(state, action);
    if may_change_view && let Some(capture) = capture_if_missing(state) {
        effects.push(capture);
    }
    effects
}

/// A sandbox that just came into view gets its pane captured now, not at the next tick.
fn capture_if_missing(state: &mut State) -> Option<Effect> {
    let name = state.preview_target()?.to_owned();
    let shown = state.preview.as_ref().is_some_and(|p| p.name == name);
    if shown || state.capture_in_flight {
        return None;
    }
    state.capture_in_flight = true;
    Some(Effect::Capture(name))
}

fn reduce(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(event) if event.kind == KeyEventKind::Release => Vec::new(),
        Action::Key(event) => on_key(state, Key::from_event(&event)),
        // Dialogs are keyboard-only; a stray click must not change what is behind them.
        Action::Mouse(_) if state.overlay.is_some() => Vec::new(),
        Action::Mouse(event) => match event.kind {
            MouseEventKind::ScrollDown => on_command(state, Context::List, Command::Down),
            MouseEventKind::ScrollUp => on_command(state, Context::List, Command::Up),
            MouseEventKind::Down(MouseButton::Left) => {
                click(state, event.column, event.row);
                Vec::new()
            }
            _ => Vec::new(),
        },
        Action::Paste(text) => {
            for c in text.chars().filter(|c| !c.is_control()) {
                type_char(state, c);
            }
            Vec::new()
        }
        Action::Resize(width, height) => {
            state.size = (width, height);
            state.dirty = true;
            Vec::new()
        }
        Action::Tick(now) => {
            // Redraw for the clock only when an uptime as shown changes (each second for
            // the first minute, then each minute).
            let shown = |at| {
                state
                    .records
                    .iter()
                    .filter(|r| r.state == SandboxState::Running)
                    .filter_map(|r| r.started_at.map(|t| human_duration(at - t)))
                    .collect::<Vec<_>>()
            };
            if shown(now) != shown(state.now) {
                state.dirty = true;
            }
            state.now = now;
            if state.flash.as_ref().is_some_and(|f| f.until <= now) {
                state.flash = None;
                state.dirty = true;
            }
            Vec::new()
        }
        Action::MonitorTick => vec![Effect::Refresh, Effect::SampleHost],
        Action::PreviewTick => match state.preview_target() {
            Some(name) if !state.capture_in_flight => {
                let name = name.to_owned();
                state.capture_in_flight = true;
                vec![Effect::Capture(name)]
            }
            _ => Vec::new(),
        },
        Action::Loaded(Ok(records)) => {
            if !state.loaded || records != state.records {
                state.records = records;
                state.loaded = true;
                state.dirty = true;
                keep_selection_visible(state);
            }
            Vec::new()
        }
        Action::Loaded(Err(message)) => {
            flash_error(state, message);
            Vec::new()
        }
        Action::HostSampled(stats) => {
            let cpu = state
                .host
                .as_ref()
                .and_then(|previous| stats.cpu_percent_since(previous));
            // Redraw only when the header would read differently.
            let shown = |cpu: Option<f64>, host: Option<&HostStats>| {
                (
                    cpu.map(|c| c.round() as i64),
                    host.map(|h| {
                        (
                            h.hostname.clone(),
                            h.mem_total_kib,
                            h.mem_available_kib / TENTH_GIB_IN_KIB,
                        )
                    }),
                )
            };
            if shown(cpu, Some(&stats)) != shown(state.cpu_percent, state.host.as_ref()) {
                state.dirty = true;
            }
            state.cpu_percent = cpu;
            state.host = Some(stats);
            Vec::new()
        }
        Action::Captured { name, result } => {
            state.capture_in_flight = false;
            let preview = Preview {
                name,
                screen: result,
            };
            if state.preview.as_ref() != Some(&preview) {
                state.preview = Some(preview);
                state.dirty = true;
            }
            Vec::new()
        }
        Action::Done { op, name, result } => {
            state.busy.retain(|(n, _)| *n != name);
            match result {
                Ok(_) => flash(state, format!("{} {name}", op.words().1)),
                Err(message) => flash_error(state, message),
            }
            vec![Effect::Refresh]
        }
        Action::Created(result) => on_created(state, result),
        Action::Completed { input, candidates } => {
            if let Some(Overlay::Form(form)) = &mut state.overlay {
                form.complete(&input, candidates);
                state.dirty = true;
            }
            Vec::new()
        }
        Action::Attached { name, result } => {
            state.dirty = true;
            match result {
                Ok(()) => flash(state, format!("back from {name}")),
                Err(message) => flash_error(state, message),
            }
            vec![Effect::Refresh]
        }
    }
}

fn on_key(state: &mut State, key: Key) -> Vec<Effect> {
    let context = state.context();
    match state.keymap.command(context, key) {
        Some(command) => on_command(state, context, command),
        None => {
            match key.code {
                KeyCode::Char(c) if !key.ctrl && !key.alt => type_char(state, c),
                KeyCode::Backspace => backspace(state),
                _ => {}
            }
            Vec::new()
        }
    }
}

/// Typing into whichever text field has the focus.
fn type_char(state: &mut State, c: char) {
    match &mut state.overlay {
        Some(Overlay::Form(form)) => form.type_char(c),
        Some(Overlay::Palette(palette)) => {
            palette.query.push(c);
            palette.selected = 0;
        }
        None if state.filter_editing => {
            state.filter_text.push(c);
            keep_selection_visible(state);
        }
        _ => return,
    }
    state.dirty = true;
}

fn backspace(state: &mut State) {
    match &mut state.overlay {
        Some(Overlay::Form(form)) => form.backspace(),
        Some(Overlay::Palette(palette)) => {
            palette.query.pop();
            palette.selected = 0;
        }
        None if state.filter_editing => {
            state.filter_text.pop();
            keep_selection_visible(state);
        }
        _ => return,
    }
    state.dirty = true;
}

pub fn on_command(state: &mut State, context: Context, command: Command) -> Vec<Effect> {
    state.dirty = true;
    match command {
        Command::Noop => return Vec::new(),
        Command::Quit => {
            state.quit = true;
            return vec![Effect::Quit];
        }
        Command::Help => {
            state.overlay = Some(Overlay::Help { scroll: 0 });
            return Vec::new();
        }
        Command::Palette => {
            state.overlay = Some(Overlay::Palette(Palette::default()));
            return Vec::new();
        }
        _ => {}
    }
    match context {
        Context::List | Context::Detail => on_table_command(state, command),
        Context::Filter if command == Command::Clear => {
            state.filter_text.clear();
            keep_selection_visible(state);
            Vec::new()
        }
        Context::Filter => {
            state.filter_editing = false;
            if command == Command::Cancel {
                state.filter_text.clear();
                keep_selection_visible(state);
            }
            Vec::new()
        }
        Context::Form => on_form_command(state, command),
        Context::Confirm => on_confirm_command(state, command),
        Context::Palette => on_palette_command(state, command),
        Context::Help => {
            let last = u16::try_from(help::line_count(state)).unwrap_or(u16::MAX);
            if let Some(Overlay::Help { scroll }) = &mut state.overlay {
                match command {
                    Command::Down => *scroll = scroll.saturating_add(1).min(last),
                    Command::Up => *scroll = scroll.saturating_sub(1),
                    _ => state.overlay = None,
                }
            }
            Vec::new()
        }
    }
}

fn on_table_command(state: &mut State, command: Command) -> Vec<Effect> {
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
        Command::TabNext | Command::TabPrev => {
            state.tab = match state.tab {
                Tab::Agent => Tab::Info,
                Tab::Info => Tab::Agent,
            };
        }
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

fn run(state: &mut State, op: Op, name: String) -> Vec<Effect> {
    flash(state, format!("{} {name}…", op.words().0));
    state.busy.push((name.clone(), op));
    vec![Effect::Run(op, name)]
}

fn on_form_command(state: &mut State, command: Command) -> Vec<Effect> {
    let Some(Overlay::Form(form)) = &mut state.overlay else {
        return Vec::new();
    };
    if form.submitting && command != Command::Cancel {
        return Vec::new();
    }
    match command {
        Command::Submit => match form.request(state.settings.default_options.clone()) {
            Ok(request) => {
                form.submitting = true;
                form.error = None;
                return vec![Effect::Create(Box::new(CreateRequestEq(request)))];
            }
            Err((field, message)) => {
                form.field = field;
                form.error = Some((field, message));
            }
        },
        Command::Complete if form.field == Field::Dir => {
            return vec![Effect::CompletePath(form.dir.clone())];
        }
        Command::Complete | Command::FieldNext => form.move_field(1),
        Command::FieldPrev => form.move_field(-1),
        Command::Toggle => form.toggle(),
        Command::Clear => form.clear_field(),
        Command::Cancel => state.overlay = None,
        _ => {}
    }
    Vec::new()
}

fn on_created(state: &mut State, result: Result<SandboxRecord, String>) -> Vec<Effect> {
    state.dirty = true;
    match result {
        Ok(record) => {
            state.overlay = None;
            state.filter_text.clear();
            state.selected = Some(record.name.to_string());
            flash(state, format!("created {}", record.name));
            if !state.records.iter().any(|r| r.name == record.name) {
                state.records.push(record);
            }
            vec![Effect::Refresh]
        }
        Err(message) => {
            if let Some(Overlay::Form(form)) = &mut state.overlay {
                form.submitting = false;
                form.engine_error(message);
            } else {
                flash_error(state, message);
            }
            vec![Effect::Refresh]
        }
    }
}

fn on_confirm_command(state: &mut State, command: Command) -> Vec<Effect> {
    let Some(Overlay::Confirm(confirm)) = state.overlay.take() else {
        return Vec::new();
    };
    match command {
        Command::Submit => run(state, confirm.op, confirm.name),
        _ => Vec::new(),
    }
}

fn on_palette_command(state: &mut State, command: Command) -> Vec<Effect> {
    let Some(Overlay::Palette(palette)) = &mut state.overlay else {
        return Vec::new();
    };
    let entries = palette::entries(&state.keymap, &palette.query);
    match command {
        Command::Down => {
            palette.selected = (palette.selected + 1).min(entries.len().saturating_sub(1));
        }
        Command::Up => palette.selected = palette.selected.saturating_sub(1),
        Command::Clear => {
            palette.query.clear();
            palette.selected = 0;
        }
        Command::Submit => {
            let chosen = entries.get(palette.selected).map(|e| e.command);
            state.overlay = None;
            if let Some(command) = chosen {
                return on_command(state, Context::List, command);
            }
        }
        _ => state.overlay = None,
    }
    Vec::new()
}

/// A click on a table row selects it; a click in the detail pane focuses it.
fn click(state: &mut State, x: u16, y: u16) {
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
fn keep_selection_visible(state: &mut State) {
    if state.selected_index().is_none() {
        state.selected = state.rows().first().map(|r| r.name.to_string());
    }
}

fn flash(state: &mut State, text: String) {
    state.flash = Some(Flash {
        text,
        error: false,
        until: state.now + TimeDelta::seconds(FLASH_SECONDS),
    });
    state.dirty = true;
}

fn flash_error(state: &mut State, text: String) {
    state.flash = Some(Flash {
        text,
        error: true,
        // Errors stay longer: they usually say what to do next.
        until: state.now + TimeDelta::seconds(FLASH_SECONDS * 3),
    });
    state.dirty = true;
}
