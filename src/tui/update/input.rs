//! Keys, the mouse and pasted text, turned into commands or typing.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};

use super::table::{self, Scroll, Step};
use crate::tui::action::Effect;
use crate::tui::command::Command;
use crate::tui::keymap::{Context, Key};
use crate::tui::state::{Overlay, State};

/// Lines the Agent preview moves per wheel notch.
const WHEEL_LINES: usize = 3;

pub(super) fn on_key(state: &mut State, event: &KeyEvent) -> Vec<Effect> {
    if event.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let key = Key::from_event(event);
    let context = state.context();
    // The detail pane and the fullscreen view add to the table's keys: s, S, d … still act
    // on the selected sandbox (the screen says "press S to start it").
    let command = state.keymap.command(context, key).or_else(|| {
        matches!(context, Context::Detail | Context::Screen)
            .then(|| state.keymap.command(Context::List, key))
            .flatten()
    });
    match command {
        Some(command) => super::on_command(state, context, command),
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

pub(super) fn on_mouse(state: &mut State, event: &MouseEvent) -> Vec<Effect> {
    // Dialogs are keyboard-only; a stray click must not change what is behind them.
    if state.overlay.is_some() {
        return Vec::new();
    }
    // The wheel over the Agent preview scrolls it; anywhere else it moves the selection.
    let over_preview = !state.fullscreen
        && state
            .shape()
            .agent_area()
            .is_some_and(|area| area.contains((event.column, event.row).into()));
    match event.kind {
        MouseEventKind::ScrollUp if over_preview => {
            table::scroll_preview(state, Scroll::Back(Step::Lines(WHEEL_LINES)));
            Vec::new()
        }
        MouseEventKind::ScrollDown if over_preview => {
            table::scroll_preview(state, Scroll::On(Step::Lines(WHEEL_LINES)));
            Vec::new()
        }
        MouseEventKind::ScrollDown => super::on_command(state, Context::List, Command::Down),
        MouseEventKind::ScrollUp => super::on_command(state, Context::List, Command::Up),
        MouseEventKind::Down(MouseButton::Left) if !state.fullscreen => {
            table::click(state, event.column, event.row);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

pub(super) fn on_paste(state: &mut State, text: &str) -> Vec<Effect> {
    for c in text.chars().filter(|c| !c.is_control()) {
        type_char(state, c);
    }
    Vec::new()
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
            table::keep_selection_visible(state);
        }
        _ => {}
    }
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
            table::keep_selection_visible(state);
        }
        _ => {}
    }
}
