//! What the world reports: the clock, the monitor, host samples, captures, finished tasks.

use chrono::{DateTime, Utc};

use super::table::keep_selection_near;
use super::{flash, flash_error};
use crate::engine::host_stats::HostStats;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};
use crate::tui::action::{Effect, Op, Target};
use crate::tui::graphics::ScreenImage;
use crate::tui::state::{Preview, State};

pub(super) fn on_tick(state: &mut State, now: DateTime<Utc>) -> Vec<Effect> {
    state.now = now;
    if state.flash.as_ref().is_some_and(|f| f.until <= now) {
        state.flash = None;
    }
    Vec::new()
}

pub(super) fn on_preview_tick(state: &mut State) -> Vec<Effect> {
    match state.preview_target() {
        Some(target) if !state.capture_in_flight => {
            state.capture_in_flight = true;
            vec![Effect::Capture(target)]
        }
        _ => Vec::new(),
    }
}

pub(super) fn on_loaded(
    state: &mut State,
    result: Result<Vec<SandboxRecord>, String>,
) -> Vec<Effect> {
    match result {
        Ok(records) if !state.loaded || records != state.records => {
            let was_at = state.selected_index();
            state.records = records;
            state.loaded = true;
            keep_selection_near(state, was_at);
        }
        Ok(_) => {}
        Err(message) => flash_error(state, message),
    }
    Vec::new()
}

pub(super) fn on_host_sampled(state: &mut State, stats: HostStats) -> Vec<Effect> {
    let cpu = stats.cpu_percent;
    state.cpu_percent = cpu;
    state.host = Some(stats);
    Vec::new()
}

pub(super) fn on_captured(
    state: &mut State,
    target: Target,
    screen: Result<String, String>,
) -> Vec<Effect> {
    state.capture_in_flight = false;
    state.preview = Some(Preview {
        id: target.id,
        screen,
    });
    Vec::new()
}

pub(super) fn on_done(
    state: &mut State,
    op: Op,
    name: &SandboxName,
    result: Result<SandboxRecord, String>,
) -> Vec<Effect> {
    state.busy.retain(|(n, _)| n != name);
    match result {
        Ok(_) => flash(state, format!("{} {name}", op.words().1)),
        Err(message) => flash_error(state, message),
    }
    vec![Effect::Refresh]
}

pub(super) fn on_attached(
    state: &mut State,
    name: &SandboxName,
    result: Result<(), String>,
) -> Vec<Effect> {
    match result {
        Ok(()) => flash(state, format!("back from {name}")),
        Err(message) => flash_error(state, message),
    }
    let mut effects = vec![Effect::Refresh];
    // The terminal dropped its images with the screen: start the feed afresh, so the first
    // frame is sent again rather than only the next change.
    if let Some(watch) = state.screen.watching.take() {
        state.screen.image = None;
        effects.push(Effect::StopScreen(watch.id));
    }
    effects
}

/// Only the latest frame of the screen still watched is kept.
pub(super) fn on_screen_frame(state: &mut State, id: SandboxId, image: ScreenImage) -> Vec<Effect> {
    if state.screen.watching.as_ref().is_some_and(|w| w.id == id) {
        state.screen.image = Some((id, image));
        state.screen.lost = None;
    }
    Vec::new()
}

/// A display that went away is said once, and the monitor is asked to look (it marks the
/// sandbox dead if it is); the feed is not restarted until the screen comes into sight again.
pub(super) fn on_screen_lost(state: &mut State, id: SandboxId, message: String) -> Vec<Effect> {
    if state.screen.watching.as_ref().is_none_or(|w| w.id != id) {
        return Vec::new();
    }
    state.screen.image = None;
    state.screen.lost = Some((id, message));
    vec![Effect::Refresh]
}
