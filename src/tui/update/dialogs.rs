//! The overlays: the new-sandbox form, the confirm dialog, the palette and help.

use super::table::run;
use super::{flash, flash_error, on_command};
use crate::sandbox::{SandboxName, SandboxRecord};
use crate::tui::action::Effect;
use crate::tui::command::Command;
use crate::tui::form::Field;
use crate::tui::keymap::Context;
use crate::tui::palette::{self, Target};
use crate::tui::state::{Confirm, Focus, OnYes, Overlay, State};
use crate::tui::views::help;

pub(super) fn on_form_command(state: &mut State, command: Command) -> Vec<Effect> {
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
                return vec![Effect::Create(Box::new(request))];
            }
            Err((field, message)) => {
                form.field = field;
                form.error = Some((field, message));
            }
        },
        Command::Complete if form.field == Field::Dir && form.dir_settled() => form.move_field(1),
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

pub(super) fn on_created(state: &mut State, result: Result<SandboxRecord, String>) -> Vec<Effect> {
    match result {
        Ok(record) => {
            state.overlay = None;
            state.filter_text.clear();
            state.selected = Some(record.name.clone());
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

/// The form's folder is missing: ask to make it, naming it; the form comes back after.
pub(super) fn on_project_dir_missing(state: &mut State, dir: String) -> Vec<Effect> {
    let Some(Overlay::Form(form)) = state.overlay.take() else {
        return Vec::new();
    };
    let mut form = Box::new(form);
    form.submitting = false;
    state.overlay = Some(Overlay::Confirm(Confirm {
        question: format!("{dir} does not exist. Create this folder and the sandbox?"),
        yes: OnYes::CreateProjectDir(form),
    }));
    Vec::new()
}

pub(super) fn on_confirm_command(state: &mut State, command: Command) -> Vec<Effect> {
    let Some(Overlay::Confirm(confirm)) = state.overlay.take() else {
        return Vec::new();
    };
    match (command, confirm.yes) {
        (Command::Submit, OnYes::Run(op, name)) => run(state, op, name),
        (Command::Submit, OnYes::CreateProjectDir(mut form)) => {
            let request = form.request(state.settings.default_options.clone());
            match request {
                Ok(request) => {
                    form.submitting = true;
                    state.overlay = Some(Overlay::Form(*form));
                    vec![Effect::CreateWithDir(Box::new(request))]
                }
                Err((field, message)) => {
                    form.error = Some((field, message));
                    state.overlay = Some(Overlay::Form(*form));
                    Vec::new()
                }
            }
        }
        // No to making the folder: back to the form, to fix the path.
        (_, OnYes::CreateProjectDir(form)) => {
            state.overlay = Some(Overlay::Form(*form));
            Vec::new()
        }
        _ => Vec::new(),
    }
}

pub(super) fn on_palette_command(state: &mut State, command: Command) -> Vec<Effect> {
    let Some(Overlay::Palette(query)) = &state.overlay else {
        return Vec::new();
    };
    let entries = palette::entries(&state.keymap, &state.rows_unfiltered(), &query.query);
    let Some(Overlay::Palette(palette)) = &mut state.overlay else {
        return Vec::new();
    };
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
            let chosen = entries.into_iter().nth(palette.selected).map(|e| e.target);
            state.overlay = None;
            match chosen {
                Some(Target::Command(command)) => return on_command(state, Context::List, command),
                Some(Target::Sandbox(name)) => jump_to(state, name),
                None => {}
            }
        }
        _ => state.overlay = None,
    }
    Vec::new()
}

/// Selects a sandbox the palette found; a filter that hides it is dropped.
fn jump_to(state: &mut State, name: SandboxName) {
    state.selected = Some(name);
    if state.selected_index().is_none() {
        state.filter_text.clear();
    }
    state.focus = Focus::Table;
}

pub(super) fn on_help_command(state: &mut State, command: Command) -> Vec<Effect> {
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

/// What Tab found for the dir field.
pub(super) fn on_completed(state: &mut State, input: &str, candidates: Vec<String>) -> Vec<Effect> {
    if let Some(Overlay::Form(form)) = &mut state.overlay {
        form.complete(input, candidates);
    }
    Vec::new()
}
