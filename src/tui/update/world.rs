//! What the world reports: the clock, the monitor, host samples, captures, finished tasks.

use chrono::{DateTime, Utc};

use super::table::keep_selection_near;
use super::{flash, flash_error};
use crate::engine::host_stats::HostStats;
use crate::format::human_duration;
use crate::sandbox::{SandboxRecord, SandboxState};
use crate::tui::action::{Effect, Op};
use crate::tui::graphics::ScreenImage;
use crate::tui::state::{Preview, State};

/// The header shows memory in tenths of a GiB.
const TENTH_GIB_IN_KIB: u64 = 1024 * 1024 / 10;

pub(super) fn on_tick(state: &mut State, now: DateTime<Utc>) -> Vec<Effect> {
    // Redraw for the clock only when an uptime as shown changes (each second for the
    // first minute, then each minute).
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

pub(super) fn on_preview_tick(state: &mut State) -> Vec<Effect> {
    match state.preview_target() {
        Some(name) if !state.capture_in_flight => {
            let name = name.to_owned();
            state.capture_in_flight = true;
            vec![Effect::Capture(name)]
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
            state.dirty = true;
            keep_selection_near(state, was_at);
        }
        Ok(_) => {}
        Err(message) => flash_error(state, message),
    }
    Vec::new()
}

pub(super) fn on_host_sampled(state: &mut State, stats: HostStats) -> Vec<Effect> {
    let cpu = stats.cpu_percent;
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

pub(super) fn on_captured(
    state: &mut State,
    name: String,
    screen: Result<String, String>,
) -> Vec<Effect> {
    state.capture_in_flight = false;
    let preview = Preview { name, screen };
    if state.preview.as_ref() != Some(&preview) {
        state.preview = Some(preview);
        state.dirty = true;
    }
    Vec::new()
}

pub(super) fn on_done(
    state: &mut State,
    op: Op,
    name: &str,
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
    name: &str,
    result: Result<(), String>,
) -> Vec<Effect> {
    state.dirty = true;
    match result {
        Ok(()) => flash(state, format!("back from {name}")),
        Err(message) => flash_error(state, message),
    }
    let mut effects = vec![Effect::Refresh];
    // The terminal dropped its images with the screen: start the feed afresh, so the first
    // frame is sent again rather than only the next change.
    if let Some(watch) = state.screen.watching.take() {
        state.screen.image = None;
        effects.push(Effect::StopScreen(watch.name));
    }
    effects
}

/// Only the latest frame of the screen still watched is kept.
pub(super) fn on_screen_frame(state: &mut State, name: String, image: ScreenImage) -> Vec<Effect> {
    if state
        .screen
        .watching
        .as_ref()
        .is_some_and(|w| w.name == name)
    {
        state.screen.image = Some((name, image));
        state.screen.lost = None;
        state.dirty = true;
    }
    Vec::new()
}

/// A display that went away is said once, and the monitor is asked to look (it marks the
/// sandbox dead if it is); the feed is not restarted until the screen comes into sight again.
pub(super) fn on_screen_lost(state: &mut State, name: String, message: String) -> Vec<Effect> {
    if state
        .screen
        .watching
        .as_ref()
        .is_none_or(|w| w.name != name)
    {
        return Vec::new();
    }
    state.screen.image = None;
    state.screen.lost = Some((name, message));
    state.dirty = true;
    vec![Effect::Refresh]
}
