//! The reducer: `update(state, action) -> effects`. No I/O, no clock, no terminal: the
//! world comes in as actions and goes out as effects, so every rule here is testable.
//! `input` turns keys, mouse and paste into commands, which [`on_command`] hands to the part
//! that owns their context: `table` the sandbox table; `dialogs` the form,
//! the confirm dialog, the palette and help; `world` what the engine and the clock report.

mod dialogs;
mod input;
mod live;
mod table;
mod world;

use chrono::TimeDelta;

use super::action::{Action, Effect, Target};
use super::command::Command;
use super::keymap::Context;
use super::palette::Palette;
use super::state::{Flash, Overlay, Shown, State};

/// How long a flash message stays in the bottom bar.
const FLASH_SECONDS: i64 = 4;

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    let may_change_view = matches!(
        action,
        Action::Key(_) | Action::Mouse(_) | Action::Resize(..) | Action::Loaded(_)
    );
    // Timer ticks, and a capture that brought the text on screen already, change nothing
    // that is shown: not worth comparing the whole screen (a hundred rows) for.
    let idle = match &action {
        Action::PreviewTick | Action::MonitorTick => true,
        Action::Captured { target, result } => state
            .preview
            .as_ref()
            .is_some_and(|p| p.id == target.id && &p.screen == result),
        _ => false,
    };
    let selected_before = state.selected.clone();
    let mut effects = reduce(state, action);
    // Another sandbox's preview starts at its bottom, following its pane.
    if state.selected != selected_before {
        state.preview_scroll = 0;
    }
    if may_change_view && let Some(capture) = capture_if_missing(state) {
        effects.push(capture);
    }
    let synced = sync_screen(state);
    if idle && synced.is_empty() && state.shown.is_some() {
        return effects;
    }
    effects.extend(synced);
    // The one place that decides a redraw: did what the screen shows change?
    let shown = Shown::of(state);
    if state.shown.as_ref() != Some(&shown) {
        state.shown = Some(shown);
        state.dirty = true;
    }
    effects
}

/// Captures follow the eyes (D10): a screen is captured while it is in sight and no longer.
fn sync_screen(state: &mut State) -> Vec<Effect> {
    let wanted = state.screen_wanted();
    if wanted == state.screen.watching {
        return Vec::new();
    }
    let mut effects = Vec::new();
    let old = state.screen.watching.take();
    let same_sandbox = old.as_ref().map(|w| &w.id) == wanted.as_ref().map(|w| &w.id);
    if !same_sandbox {
        if let Some(old) = old {
            effects.push(Effect::StopScreen(old.id));
        }
        state.screen.image = None;
        state.screen.lost = None;
    }
    if let Some(watch) = &wanted {
        effects.push(Effect::WatchScreen(watch.clone()));
    }
    state.screen.watching = wanted;
    effects
}

/// A command in the context it was given in (a key, the mouse or the palette), to the part
/// of the reducer that owns that context.
fn on_command(state: &mut State, context: Context, command: Command) -> Vec<Effect> {
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
        Context::List | Context::Detail => table::on_table_command(state, command),
        Context::Screen => table::on_screen_command(state, command),
        Context::Filter => table::on_filter_command(state, command),
        Context::Form => dialogs::on_form_command(state, command),
        Context::Confirm => dialogs::on_confirm_command(state, command),
        Context::Palette => dialogs::on_palette_command(state, command),
        Context::Help => dialogs::on_help_command(state, command),
    }
}

/// A sandbox that just came into view gets its pane captured now, not at the next tick.
fn capture_if_missing(state: &mut State) -> Option<Effect> {
    let target: Target = state.preview_target()?;
    let shown = state.preview.as_ref().is_some_and(|p| p.id == target.id);
    if shown || state.capture_in_flight {
        return None;
    }
    state.capture_in_flight = true;
    Some(Effect::Capture(target))
}

fn reduce(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(event) => input::on_key(state, &event),
        Action::Mouse(event) => input::on_mouse(state, &event),
        Action::Paste(text) => input::on_paste(state, &text),
        Action::Resize(width, height) => {
            state.size = (width, height);
            state.repaints += 1;
            Vec::new()
        }
        Action::ImagesDetected(images) => {
            state.settings.images = images;
            Vec::new()
        }
        Action::Tick(now) => world::on_tick(state, now),
        Action::Terminate => {
            state.quit = true;
            vec![Effect::Quit]
        }
        Action::MonitorTick => vec![Effect::Refresh],
        Action::PreviewTick => world::on_preview_tick(state),
        Action::Loaded(result) => world::on_loaded(state, result),
        Action::StartCommands(commands) => {
            state.start_commands = commands;
            Vec::new()
        }
        Action::HostSampled(stats) => world::on_host_sampled(state, stats),
        Action::LinksSampled(links) => {
            state.links = links;
            Vec::new()
        }
        Action::Captured { target, result } => world::on_captured(state, target, result),
        Action::Done { op, name, result } => world::on_done(state, op, &name, result),
        Action::Created(result) => dialogs::on_created(state, result),
        Action::ProjectDirMissing(dir) => dialogs::on_project_dir_missing(state, dir),
        Action::Completed { input, candidates } => dialogs::on_completed(state, &input, candidates),
        Action::Attached { name, result } => world::on_attached(state, &name, result),
        Action::ScreenFrame { id, image } => world::on_screen_frame(state, id, image),
        Action::ScreenLost { id, message } => world::on_screen_lost(state, id, message),
        Action::AgentsSampled(readings) => live::on_agents(state, readings),
        Action::MetricsSampled(metrics) => live::on_metrics(state, metrics),
        Action::UsageUpdated(summary) => live::on_usage(state, *summary),
        Action::HeldSampled(held) => live::on_held(state, held),
        Action::Answered {
            name,
            target,
            reply,
            result,
        } => {
            match result {
                Ok(()) => flash(state, format!("{name}: {target} {}", reply.as_str())),
                Err(e) => flash_error(state, format!("{name}: {target}: {e}")),
            }
            Vec::new()
        }
        Action::NotifyFailed(message) => {
            flash_error(state, format!("notify.command failed: {message}"));
            Vec::new()
        }
    }
}

fn flash(state: &mut State, text: String) {
    state.flash = Some(Flash {
        text,
        error: false,
        until: state.now + TimeDelta::seconds(FLASH_SECONDS),
    });
}

fn flash_error(state: &mut State, text: String) {
    // The bar has one line; multi-line errors (a start failure's last lines) say it all in
    // their first.
    let text = text.lines().next().unwrap_or_default().to_owned();
    state.flash = Some(Flash {
        text,
        error: true,
        // Errors stay longer: they usually say what to do next.
        until: state.now + TimeDelta::seconds(FLASH_SECONDS * 3),
    });
}
