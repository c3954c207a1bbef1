//! Issue 15: of a hundred rows, only those in sight are drawn, and only their figures (an
//! uptime ticking, a CPU sample) wake the loop or call for a frame.

use std::collections::HashMap;

use super::snapshots::render;
use super::*;
use crate::metrics::SandboxMetrics;
use crate::tui::clock;

/// `count` running sandboxes `s00`, `s01`… (sorted by name: none waits), all up 95 minutes
/// to the second but the ones from `late` on, started 10 s later.
fn many(count: usize, late: usize) -> Vec<SandboxRecord> {
    (0..count)
        .map(|i| {
            let mut r = record(&format!("s{i:02}"), "running", Some(95));
            r.id = sid(i);
            if i >= late {
                r.started_at = r.started_at.map(|t| t + TimeDelta::seconds(10));
            }
            r
        })
        .collect()
}

/// A table 9 rows high (120 × 14: header, borders and footer take the rest).
fn short_table(records: Vec<SandboxRecord>) -> State {
    let mut state = state_sized(120, 14);
    update(&mut state, Action::Loaded(Ok(records)));
    state
}

fn in_sight(state: &State) -> Vec<String> {
    let table = state.table();
    table.visible().iter().map(|r| r.name.to_string()).collect()
}

#[test]
fn the_rows_in_sight_follow_the_selection_as_the_table_scrolls() {
    let mut state = short_table(many(30, 30));
    let first: Vec<String> = (0..9).map(|i| format!("s{i:02}")).collect();
    assert_eq!(in_sight(&state), first);
    state.selected = Some(named("s25"));
    let scrolled: Vec<String> = (17..26).map(|i| format!("s{i:02}")).collect();
    assert_eq!(in_sight(&state), scrolled);
    // Drawn as the window says: the selected row last, the rows above it, none below.
    let screen = render(&state);
    for name in &scrolled {
        assert!(
            screen.contains(name.as_str()),
            "{name} not drawn:\n{screen}"
        );
    }
    for name in ["s16", "s26", "s00"] {
        assert!(!screen.contains(name), "{name} drawn:\n{screen}");
    }
}

#[test]
fn an_uptime_off_screen_does_not_wake_the_clock() {
    // Every row off screen changes its uptime 10 s from now; those in sight in a minute.
    let state = short_table(many(30, 9));
    assert_eq!(in_sight(&state).len(), 9);
    assert_eq!(
        clock::next_change(&state),
        Some(now() + TimeDelta::seconds(60)),
        "woken for a row off screen"
    );
    // In sight, the same row wakes it.
    let mut state = state;
    state.selected = Some(named("s29"));
    assert_eq!(
        clock::next_change(&state),
        Some(now() + TimeDelta::seconds(10))
    );
}

/// The id [`many`] gives `s{i}`.
fn sid(i: usize) -> SandboxId {
    serde_json::from_value(serde_json::json!(format!("{:016x}", 0x5000 + i))).expect("a valid id")
}

/// The same figures for each of `rows` (indices of [`many`]).
fn metrics(rows: impl IntoIterator<Item = usize>, cpu: f64) -> HashMap<SandboxId, SandboxMetrics> {
    rows.into_iter()
        .map(|i| {
            let m = SandboxMetrics {
                processes: 3,
                cpu_percent_of_core: cpu,
                cpu_percent_of_host: cpu / 2.0,
                rss_bytes: 50 << 20,
            };
            (sid(i), m)
        })
        .collect()
}

#[test]
fn a_figure_off_screen_draws_nothing_and_one_in_sight_does() {
    let mut state = short_table(many(30, 30));
    update(&mut state, Action::MetricsSampled(metrics(0..30, 1.0)));
    state.dirty = false;
    let mut off_screen = metrics(0..30, 1.0);
    off_screen.extend(metrics([20, 29], 70.0));
    update(&mut state, Action::MetricsSampled(off_screen.clone()));
    assert!(!state.dirty, "a frame for figures off screen");
    let mut in_sight = off_screen;
    in_sight.extend(metrics([3], 70.0));
    update(&mut state, Action::MetricsSampled(in_sight));
    assert!(state.dirty, "no frame for a figure in sight");
}
