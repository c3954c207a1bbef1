//! Key → action → state and effects, with no terminal and no engine.

use super::*;
use crate::tui::action::{Effect, Op};
use crate::tui::form::Field;
use crate::tui::keymap::Context;
use crate::tui::sort::SortColumn;
use crate::tui::state::{Focus, OnYes, Overlay, Tab};

fn selected(state: &State) -> &str {
    state.selected.as_ref().map_or("", |n| n.as_str())
}

fn names(state: &State) -> Vec<String> {
    state.rows().iter().map(|r| r.name.to_string()).collect()
}

#[test]
fn j_k_g_and_shift_g_move_the_selection() {
    let mut state = state();
    assert_eq!(names(&state), ["api", "ci", "legacy", "web", "worker"]);
    assert_eq!(selected(&state), "api");
    press(&mut state, "j");
    assert_eq!(selected(&state), "ci");
    press(&mut state, "<Down>");
    assert_eq!(selected(&state), "legacy");
    press(&mut state, "k");
    assert_eq!(selected(&state), "ci");
    press(&mut state, "G");
    assert_eq!(selected(&state), "worker");
    press(&mut state, "j");
    assert_eq!(selected(&state), "worker", "the selection stops at the end");
    press(&mut state, "g");
    assert_eq!(selected(&state), "api");
}

#[test]
fn s_stops_the_selected_sandbox_through_an_effect() {
    let mut state = state();
    assert!(press(&mut state, "s").is_empty(), "s asks first");
    let effects = press(&mut state, "y");
    assert_eq!(effects, [Effect::Run(Op::Stop, named("api"))]);
    assert_eq!(state.busy_with("api"), Some(Op::Stop));
    assert_eq!(
        state.flash.as_ref().map(|f| f.text.as_str()),
        Some("stopping api…")
    );
    // A second press while it is busy does nothing but say so.
    assert!(press(&mut state, "s").is_empty());
    let mut stopped = record("api", "stopped", None);
    stopped.exit_status = Some(0);
    let effects = update(
        &mut state,
        Action::Done {
            op: Op::Stop,
            name: named("api"),
            result: Ok(stopped),
        },
    );
    assert_eq!(effects, [Effect::Refresh]);
    assert_eq!(state.busy_with("api"), None);
    assert_eq!(
        state.flash.as_ref().map(|f| f.text.as_str()),
        Some("stopped api")
    );
}

#[test]
fn stopping_a_stopped_sandbox_only_says_so() {
    let mut state = state();
    state.selected = Some(named("web"));
    assert!(press(&mut state, "s").is_empty());
    assert_eq!(
        state.flash.as_ref().map(|f| f.text.as_str()),
        Some("web is already stopped")
    );
    assert_eq!(
        press(&mut state, "S"),
        [Effect::Run(Op::Start, named("web"))]
    );
}

#[test]
fn r_restarts_and_a_failure_is_flashed_as_an_error() {
    let mut state = state();
    assert!(press(&mut state, "r").is_empty(), "r asks first");
    assert_eq!(
        press(&mut state, "<Enter>"),
        [Effect::Run(Op::Restart, named("api"))]
    );
    update(
        &mut state,
        Action::Done {
            op: Op::Restart,
            name: named("api"),
            result: Err("tmux failed".into()),
        },
    );
    let flash = state.flash.clone().expect("a flash");
    assert!(flash.error);
    assert_eq!(flash.text, "tmux failed");
}

#[test]
fn d_asks_first_naming_the_sandbox_and_y_deletes() {
    let mut state = state();
    assert!(press(&mut state, "d").is_empty());
    let Some(Overlay::Confirm(confirm)) = &state.overlay else {
        panic!("no confirm dialog: {:?}", state.overlay);
    };
    assert!(confirm.question.contains("api"), "{}", confirm.question);
    assert_eq!(
        confirm.yes,
        OnYes::Run(Op::Remove { force: true }, named("api"))
    );
    assert_eq!(state.context(), Context::Confirm);
    assert_eq!(
        press(&mut state, "y"),
        [Effect::Run(Op::Remove { force: true }, named("api"))]
    );
    assert!(state.overlay.is_none());
}

#[test]
fn n_or_esc_in_the_confirm_dialog_deletes_nothing() {
    let mut state = state();
    press(&mut state, "d");
    assert!(press(&mut state, "n").is_empty());
    assert!(state.overlay.is_none());
    press(&mut state, "d");
    assert!(press(&mut state, "<Esc>").is_empty());
    assert!(state.overlay.is_none());
}

#[test]
fn enter_attaches_a_running_sandbox() {
    let mut state = state();
    assert_eq!(press(&mut state, "<Enter>"), [Effect::Attach(named("api"))]);
    assert_eq!(press(&mut state, "a"), [Effect::Attach(named("api"))]);
}

#[test]
fn enter_on_a_stopped_dead_or_exited_sandbox_offers_start_instead() {
    for name in ["web", "legacy", "worker"] {
        let mut state = state();
        state.selected = Some(named(name));
        assert!(press(&mut state, "<Enter>").is_empty());
        let Some(Overlay::Confirm(confirm)) = &state.overlay else {
            panic!("no offer to start {name}");
        };
        assert_eq!(confirm.yes, OnYes::Run(Op::Start, named(name)));
        assert!(confirm.question.contains(name) && confirm.question.contains("start"));
        assert_eq!(
            press(&mut state, "<Enter>"),
            [Effect::Run(Op::Start, named(name))]
        );
    }
}

#[test]
fn the_filter_takes_text_fields_and_inversion() {
    let mut state = state();
    press(&mut state, "/");
    assert_eq!(state.context(), Context::Filter);
    type_text(&mut state, "state:running");
    assert_eq!(names(&state), ["api"]);
    state.filter_text = "!state:running".into();
    assert_eq!(names(&state), ["ci", "legacy", "web", "worker"]);
    state.filter_text = "backend:bubblewrap wor".into();
    assert_eq!(names(&state), ["worker"]);
    state.filter_text = "backend:vm".into();
    assert!(names(&state).is_empty());
    state.filter_text.clear();
    type_text(&mut state, "src/we");
    assert_eq!(names(&state), ["web"]);
    press(&mut state, "<Enter>");
    assert_eq!(state.context(), Context::List);
    assert_eq!(state.filter_text, "src/we", "Enter keeps the filter");
    assert_eq!(
        selected(&state),
        "web",
        "the selection moves into the filtered rows"
    );
    press(&mut state, "<Esc>");
    assert_eq!(names(&state).len(), 5, "Esc clears the filter");
}

#[test]
fn typing_in_the_filter_does_not_run_table_keys() {
    let mut state = state();
    press(&mut state, "/");
    assert!(type_text(&mut state, "sdq").is_empty());
    assert_eq!(state.filter_text, "sdq");
    assert!(!state.quit);
    press(&mut state, "<Backspace>");
    assert_eq!(state.filter_text, "sd");
}

#[test]
fn shift_letters_sort_and_the_same_letter_reverses() {
    let mut state = state();
    press(&mut state, "T");
    assert_eq!(state.sort, SortColumn::State);
    assert_eq!(names(&state), ["legacy", "worker", "ci", "api", "web"]);
    press(&mut state, "T");
    assert!(state.sort_reversed);
    assert_eq!(names(&state).first().map(String::as_str), Some("web"));
    press(&mut state, "U");
    assert_eq!(names(&state).first().map(String::as_str), Some("api"));
}

#[test]
fn o_opens_the_palette_on_the_sort_commands() {
    let mut state = state();
    press(&mut state, "o");
    let Some(Overlay::Palette(palette)) = &state.overlay else {
        panic!("no palette");
    };
    assert_eq!(palette.query, "sort");
    press(&mut state, "<Enter>");
    assert!(state.overlay.is_none());
}

#[test]
fn the_palette_runs_a_fuzzily_matched_command() {
    let mut state = state();
    press(&mut state, "<C-k>");
    assert_eq!(state.context(), Context::Palette);
    type_text(&mut state, "stp");
    assert!(press(&mut state, "<Enter>").is_empty(), "stop asks first");
    assert_eq!(
        press(&mut state, "y"),
        [Effect::Run(Op::Stop, named("api"))]
    );
    assert!(state.overlay.is_none());
    press(&mut state, ":");
    type_text(&mut state, "quit");
    assert_eq!(press(&mut state, "<Enter>"), [Effect::Quit]);
}

#[test]
fn question_mark_opens_help_and_esc_closes_it() {
    let mut state = state();
    press(&mut state, "?");
    assert_eq!(state.overlay, Some(Overlay::Help { scroll: 0 }));
    press(&mut state, "j");
    assert_eq!(state.overlay, Some(Overlay::Help { scroll: 1 }));
    press(&mut state, "<Esc>");
    assert!(state.overlay.is_none());
}

#[test]
fn tab_moves_the_focus_and_brackets_switch_tabs() {
    let mut state = state();
    press(&mut state, "]");
    assert_eq!(state.tab, Tab::Screen);
    press(&mut state, "]");
    assert_eq!(state.tab, Tab::Usage);
    press(&mut state, "]");
    assert_eq!(state.tab, Tab::Info);
    press(&mut state, "]");
    assert_eq!(state.tab, Tab::Agent, "the tabs wrap around");
    press(&mut state, "[");
    assert_eq!(state.tab, Tab::Info);
    press(&mut state, "<Tab>");
    assert_eq!(state.focus, Focus::Detail);
    assert_eq!(state.context(), Context::Detail);
    press(&mut state, "h");
    assert_eq!(state.tab, Tab::Usage);
    press(&mut state, "<Esc>");
    assert_eq!(state.focus, Focus::Table);
}

#[test]
fn y_copies_the_name() {
    let mut state = state();
    assert_eq!(
        press(&mut state, "y"),
        [Effect::CopyToClipboard("api".into())]
    );
}

#[test]
fn q_quits() {
    let mut state = state();
    assert_eq!(press(&mut state, "q"), [Effect::Quit]);
    assert!(state.quit);
}

#[test]
fn the_monitor_refreshes_the_table_without_a_key() {
    let mut state = state();
    state.dirty = false;
    assert_eq!(update(&mut state, Action::MonitorTick), [Effect::Refresh]);
    // The same records again: nothing to redraw.
    update(&mut state, Action::Loaded(Ok(records())));
    assert!(!state.dirty);
    let mut changed = records();
    changed[0] = record("api", "stopped", None);
    update(&mut state, Action::Loaded(Ok(changed)));
    assert!(state.dirty);
    assert_eq!(
        state.selected_record().map(|r| r.state.as_str()),
        Some("stopped")
    );
}

#[test]
fn a_removed_sandbox_hands_the_selection_on() {
    let mut state = state();
    let rest: Vec<_> = records()
        .into_iter()
        .filter(|r| r.name.as_str() != "api")
        .collect();
    update(&mut state, Action::Loaded(Ok(rest)));
    assert_eq!(selected(&state), "ci");
}

#[test]
fn the_preview_is_captured_only_while_visible() {
    let mut state = state();
    // The first load already asked for the selected sandbox's pane.
    assert!(state.capture_in_flight);
    assert!(
        update(&mut state, Action::PreviewTick).is_empty(),
        "one capture at a time"
    );
    update(
        &mut state,
        Action::Captured {
            target: target("api"),
            result: Ok("$ ".into()),
        },
    );
    assert_eq!(
        update(&mut state, Action::PreviewTick),
        [Effect::Capture(target("api"))]
    );
    update(
        &mut state,
        Action::Captured {
            target: target("api"),
            result: Ok("$ ".into()),
        },
    );
    press(&mut state, "]");
    assert!(
        update(&mut state, Action::PreviewTick).is_empty(),
        "the Info tab hides it"
    );
    press(&mut state, "[");
    press(&mut state, "?");
    assert!(
        update(&mut state, Action::PreviewTick).is_empty(),
        "help covers it"
    );
    press(&mut state, "<Esc>");
    state.selected = Some(named("web"));
    assert!(
        update(&mut state, Action::PreviewTick).is_empty(),
        "a stopped sandbox has no pane"
    );
    let mut tiny = state_sized(80, 12);
    tiny.capture_in_flight = false;
    assert!(
        update(&mut tiny, Action::PreviewTick).is_empty(),
        "no room for the detail pane"
    );
}

#[test]
fn a_sandbox_coming_into_view_is_captured_at_once() {
    let mut state = state();
    update(
        &mut state,
        Action::Captured {
            target: target("api"),
            result: Ok("$ ".into()),
        },
    );
    // worker has exited but its last screen is kept: moving there captures it now.
    assert_eq!(press(&mut state, "G"), [Effect::Capture(target("worker"))]);
    update(
        &mut state,
        Action::Captured {
            target: target("worker"),
            result: Ok("done".into()),
        },
    );
    assert!(press(&mut state, "k").is_empty(), "web has no pane");
}

#[test]
fn the_form_defaults_the_name_and_submits_a_create_request() {
    let mut state = state();
    press(&mut state, "n");
    assert_eq!(state.context(), Context::Form);
    type_text(&mut state, "My_App");
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    assert_eq!(form.dir, "/home/dev/src/My_App");
    assert_eq!(form.name, "my-app");
    // Up from the first field wraps to "Runs": switch to a shell.
    press(&mut state, "<Up>");
    press(&mut state, "<Space>");
    let effects = press(&mut state, "<Enter>");
    let [Effect::Create(request)] = effects.as_slice() else {
        panic!("no create: {effects:?}");
    };
    assert_eq!(request.name.as_deref(), Some("my-app"));
    assert_eq!(
        request.project_dir,
        std::path::Path::new("/home/dev/src/My_App")
    );
    assert!(matches!(
        request.payload,
        crate::sandbox::Payload::Shell { .. }
    ));
    assert_eq!(request.network, Some(crate::sandbox::Network::Proxy));
    // The engine made it: the form closes and the new sandbox is selected.
    let effects = update(
        &mut state,
        Action::Created(Ok(record("my-app", "running", Some(0)))),
    );
    assert_eq!(effects, [Effect::Refresh]);
    assert!(state.overlay.is_none());
    assert_eq!(selected(&state), "my-app");
}

#[test]
fn the_form_shows_the_engines_messages_inline() {
    let mut state = state();
    press(&mut state, "n");
    press(&mut state, "<Down>");
    type_text(&mut state, "Bad_Name");
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    let (field, message) = form.error.clone().expect("an inline error");
    assert_eq!(field, Field::Name);
    assert!(
        message.starts_with("invalid sandbox name \"srcBad_Name\""),
        "{message}"
    );
    assert!(
        press(&mut state, "<Enter>").is_empty(),
        "a bad name is not submitted"
    );
    // An error the engine finds on submit lands under its field.
    let Some(Overlay::Form(form)) = &mut state.overlay else {
        panic!("no form");
    };
    form.name = "ok".into();
    form.error = None;
    assert_eq!(press(&mut state, "<Enter>").len(), 1);
    update(
        &mut state,
        Action::Created(Err(
            "invalid project directory \"/nope\": it does not exist".into(),
        )),
    );
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("the form closed on an error");
    };
    assert_eq!(form.field, Field::Dir);
    assert!(!form.submitting);
    assert!(
        form.error
            .as_ref()
            .is_some_and(|(_, m)| m.contains("does not exist"))
    );
}

#[test]
fn tab_in_the_dir_field_asks_for_completions() {
    let mut state = state();
    press(&mut state, "n");
    type_text(&mut state, "ap");
    assert_eq!(
        press(&mut state, "<Tab>"),
        [Effect::CompletePath("/home/dev/src/ap".into())]
    );
    update(
        &mut state,
        Action::Completed {
            input: "/home/dev/src/ap".into(),
            candidates: vec!["/home/dev/src/api".into()],
        },
    );
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    assert_eq!(form.dir, "/home/dev/src/api/");
    assert_eq!(form.name, "api");
    press(&mut state, "<Esc>");
    assert!(state.overlay.is_none());
}

#[test]
fn a_user_keymap_changes_dispatch() {
    let mut state = state();
    state.keymap = Keymap::from_layers(Some((
        "[[list]]\non = \"x\"\nrun = \"stop\"\ndesc = \"halt\"\n",
        "test",
    )))
    .expect("a valid keymap");
    // ui.confirm = false: stop acts at once.
    state.settings.confirm = false;
    assert_eq!(
        press(&mut state, "x"),
        [Effect::Run(Op::Stop, named("api"))]
    );
}

#[test]
fn key_releases_are_ignored() {
    let mut state = state();
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = crossterm::event::KeyEventKind::Release;
    assert!(update(&mut state, Action::Key(release)).is_empty());
    assert!(!state.quit);
}

#[test]
fn ctrl_u_erases_the_field_being_typed() {
    let mut state = state();
    press(&mut state, "n");
    press(&mut state, "<C-u>");
    type_text(&mut state, "/srv/app");
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    assert_eq!(form.dir, "/srv/app");
    assert_eq!(form.name, "app");
}

#[test]
fn a_click_selects_a_row_and_the_wheel_moves() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut state = state();
    let click = |row: u16| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 10,
        row,
        modifiers: KeyModifiers::NONE,
    };
    // Line 0 is the header, 1 the border, 2 the column titles: line 5 is the third row.
    update(&mut state, Action::Mouse(click(5)));
    assert_eq!(selected(&state), "legacy");
    update(&mut state, Action::Mouse(click(2)));
    assert_eq!(
        selected(&state),
        "legacy",
        "a click on the titles selects nothing"
    );
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        ..click(0)
    };
    update(&mut state, Action::Mouse(wheel));
    assert_eq!(selected(&state), "web");
}

#[test]
fn the_clock_redraws_only_when_a_shown_uptime_changes() {
    let mut state = state();
    state.dirty = false;
    // api has run 95 minutes: shown as 1h35m until the next minute.
    update(&mut state, Action::Tick(now() + TimeDelta::seconds(1)));
    assert!(!state.dirty);
    update(&mut state, Action::Tick(now() + TimeDelta::seconds(60)));
    assert!(state.dirty);
}

#[test]
fn a_host_sample_redraws_only_when_the_header_changes() {
    use crate::engine::host_stats::HostStats;
    let sample = |cpu: Option<f64>| HostStats {
        hostname: "devbox".into(),
        cpu_percent: cpu,
        mem_total_kib: 1 << 24,
        mem_available_kib: 1 << 23,
    };
    let mut state = state();
    update(&mut state, Action::HostSampled(sample(None)));
    update(&mut state, Action::HostSampled(sample(Some(10.0))));
    assert_eq!(state.cpu_percent, Some(10.0));
    state.dirty = false;
    update(&mut state, Action::HostSampled(sample(Some(10.2))));
    assert!(!state.dirty, "still 10 %");
    update(&mut state, Action::HostSampled(sample(Some(50.0))));
    assert!(state.dirty, "now 50 %");
}

#[test]
fn help_scrolls_no_further_than_its_last_line() {
    let mut state = state();
    press(&mut state, "?");
    for _ in 0..500 {
        press(&mut state, "j");
    }
    let Some(Overlay::Help { scroll }) = state.overlay else {
        panic!("no help");
    };
    assert!(scroll > 10 && scroll < 200, "{scroll}");
}

#[test]
fn a_termination_signal_quits_like_q() {
    let mut state = state();
    assert_eq!(update(&mut state, Action::Terminate), [Effect::Quit]);
    assert!(state.quit);
}

#[test]
fn the_detail_pane_keeps_the_tables_keys() {
    let mut state = state();
    press(&mut state, "<Tab>");
    assert_eq!(state.context(), Context::Detail);
    press(&mut state, "s");
    assert_eq!(
        press(&mut state, "y"),
        [Effect::Run(Op::Stop, named("api"))]
    );
    press(&mut state, "j");
    assert_eq!(selected(&state), "ci");
    // Its own bindings come first: l is "next tab" here.
    press(&mut state, "l");
    assert_eq!(state.tab, Tab::Screen);
}

fn watches(effects: &[Effect]) -> Vec<(String, f64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::WatchScreen(w) => Some((w.name.to_string(), w.fps)),
            _ => None,
        })
        .collect()
}

/// The names of the sandboxes whose feeds stop (effects name them by id).
fn stops(effects: &[Effect]) -> Vec<String> {
    let name_of = |stopped: &crate::sandbox::SandboxId| {
        ["api", "web", "worker", "legacy", "ci", "docs", "ml"]
            .into_iter()
            .find(|name| id(name) == *stopped)
            .map(str::to_owned)
    };
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StopScreen(id) => name_of(id),
            _ => None,
        })
        .collect()
}

#[test]
fn the_screen_tab_captures_the_selected_sandbox_only_while_it_is_in_sight() {
    let mut state = state();
    assert!(
        watches(&press(&mut state, "j")).is_empty(),
        "Agent tab: nothing"
    );
    press(&mut state, "k");
    let effects = press(&mut state, "]");
    assert_eq!(state.tab, Tab::Screen);
    assert_eq!(watches(&effects), [("api".to_string(), 1.0)]);
    assert!(stops(&effects).is_empty());
    let cells = state.screen.watching.as_ref().map(|w| w.cells).unwrap();
    assert!(cells.0 > 10 && cells.1 > 5, "{cells:?}");
    // Moving to a sandbox without a display stops the capture and starts none.
    let effects = press(&mut state, "j");
    assert_eq!(stops(&effects), ["api"]);
    assert!(watches(&effects).is_empty());
    let effects = press(&mut state, "k");
    assert_eq!(watches(&effects), [("api".to_string(), 1.0)]);
    // Keys that change nothing on screen ask for nothing.
    assert!(watches(&update(&mut state, Action::MonitorTick)).is_empty());
    let effects = press(&mut state, "]");
    assert_eq!(state.tab, Tab::Usage);
    assert_eq!(stops(&effects), ["api"]);
    assert!(state.screen.watching.is_none());
}

#[test]
fn z_shows_the_screen_fullscreen_at_the_faster_rate_and_esc_returns() {
    let mut state = state();
    let effects = press(&mut state, "z");
    assert!(state.fullscreen);
    assert_eq!(state.context(), Context::Screen);
    assert_eq!(watches(&effects), [("api".to_string(), 4.0)]);
    let cells = state.screen.watching.as_ref().map(|w| w.cells).unwrap();
    assert_eq!(cells, (120, 28), "all but the title and the hints");
    // j moves to the next sandbox, which has no display: no capture.
    assert_eq!(stops(&press(&mut state, "j")), ["api"]);
    assert!(state.screen.watching.is_none());
    press(&mut state, "k");
    let effects = press(&mut state, "<Esc>");
    assert!(!state.fullscreen);
    assert_eq!(stops(&effects), ["api"], "back on the Agent tab");
    // From the Screen tab, fullscreen only changes the rate and the size.
    press(&mut state, "]");
    let effects = press(&mut state, "z");
    assert_eq!(watches(&effects), [("api".to_string(), 4.0)]);
    assert!(stops(&effects).is_empty());
    let effects = press(&mut state, "z");
    assert_eq!(watches(&effects), [("api".to_string(), 1.0)]);
    assert!(!state.fullscreen);
}

#[test]
fn a_screen_under_help_or_the_palette_is_not_captured() {
    let mut state = state();
    press(&mut state, "]");
    assert_eq!(stops(&press(&mut state, "?")), ["api"]);
    assert_eq!(
        watches(&press(&mut state, "<Esc>")),
        [("api".to_string(), 1.0)]
    );
}

#[test]
fn a_resize_asks_the_running_feed_for_frames_of_the_new_size() {
    let mut state = state();
    press(&mut state, "z");
    let effects = update(&mut state, Action::Resize(80, 24));
    assert!(stops(&effects).is_empty());
    assert_eq!(
        effects,
        [Effect::WatchScreen(crate::tui::state::ScreenWatch {
            id: id("api"),
            name: named("api"),
            fps: 4.0,
            cells: (80, 22),
        })]
    );
}

#[test]
fn a_display_that_went_away_is_shown_once_and_not_retried() {
    let mut state = state();
    press(&mut state, "]");
    let effects = update(
        &mut state,
        Action::ScreenLost {
            id: id("api"),
            message: "display :13 is gone".into(),
        },
    );
    assert_eq!(effects, [Effect::Refresh], "the monitor is asked to look");
    assert!(state.screen.lost.is_some());
    // The registry has not noticed yet: no new feed, no error loop.
    assert!(watches(&update(&mut state, Action::Loaded(Ok(records())))).is_empty());
    assert!(watches(&update(&mut state, Action::MonitorTick)).is_empty());
    // Then the monitor marks it dead: the feed is let go.
    let mut now = records();
    now[0] = record("api", "dead", None);
    let effects = update(&mut state, Action::Loaded(Ok(now)));
    assert_eq!(stops(&effects), ["api"]);
}

#[test]
fn frames_of_a_screen_no_longer_watched_are_dropped() {
    let mut state = state();
    press(&mut state, "]");
    let frame = crate::capture::Frame {
        width: 4,
        height: 4,
        rgb: vec![9; 48],
    };
    let image = crate::tui::graphics::Graphics::halfblocks()
        .encode(&frame, ratatui::layout::Size::new(10, 10), 1)
        .unwrap();
    press(&mut state, "]");
    update(
        &mut state,
        Action::ScreenFrame {
            id: id("api"),
            image: image.clone(),
        },
    );
    assert!(state.screen.image.is_none());
    press(&mut state, "[");
    update(
        &mut state,
        Action::ScreenFrame {
            id: id("api"),
            image,
        },
    );
    assert!(state.screen.image.is_some());
}

#[test]
fn a_terminal_that_cannot_show_the_forced_protocol_captures_nothing() {
    let mut state = state();
    state.settings.images = crate::tui::graphics::ImageSupport {
        protocol: "kitty",
        unsupported: Some(("kitty", "halfblocks")),
    };
    assert!(watches(&press(&mut state, "]")).is_empty());
    assert!(watches(&press(&mut state, "z")).is_empty());
}

#[test]
fn back_from_attach_the_screen_feed_starts_afresh() {
    let mut state = state();
    press(&mut state, "]");
    let effects = update(
        &mut state,
        Action::Attached {
            name: named("api"),
            result: Ok(()),
        },
    );
    assert_eq!(stops(&effects), ["api"]);
    assert_eq!(watches(&effects), [("api".to_string(), 1.0)]);
}

fn flash_text(state: &State) -> &str {
    state.flash.as_ref().map_or("", |f| f.text.as_str())
}

fn question(state: &State) -> &str {
    match &state.overlay {
        Some(Overlay::Confirm(confirm)) => &confirm.question,
        other => panic!("no question: {other:?}"),
    }
}

#[test]
fn s_and_r_ask_naming_the_sandbox_and_ui_confirm_off_acts_at_once() {
    let mut state = state();
    assert!(press(&mut state, "s").is_empty());
    assert_eq!(question(&state), "Stop sandbox api?");
    assert!(press(&mut state, "n").is_empty(), "no stops nothing");
    assert!(state.overlay.is_none() && state.busy.is_empty());
    assert!(press(&mut state, "r").is_empty());
    assert_eq!(question(&state), "Restart sandbox api?");
    assert!(press(&mut state, "<Esc>").is_empty());
    assert!(state.busy.is_empty());

    state.settings.confirm = false;
    assert_eq!(
        press(&mut state, "s"),
        [Effect::Run(Op::Stop, named("api"))]
    );
    assert!(state.overlay.is_none());
    // Delete asks even then: it removes files.
    state.selected = Some(named("web"));
    assert!(press(&mut state, "d").is_empty());
    assert!(question(&state).contains("Delete sandbox web"));
}

#[test]
fn shift_s_in_fullscreen_on_an_exited_sandbox_starts_it() {
    let mut state = state();
    state.selected = Some(named("worker"));
    press(&mut state, "z");
    assert_eq!(state.context(), Context::Screen);
    assert_eq!(
        press(&mut state, "S"),
        [Effect::Run(Op::Start, named("worker"))]
    );
    assert!(state.fullscreen, "the view stays, to watch it come up");
}

fn preview_of(state: &mut State, name: &str, screen: &str) {
    update(
        state,
        Action::Captured {
            target: target(name),
            result: Ok(screen.into()),
        },
    );
}

#[test]
fn page_up_scrolls_the_agent_preview_back_and_page_down_returns() {
    let mut state = state_sized(120, 30);
    let screen: String = (1..=60).map(|i| format!("line {i}\n")).collect();
    preview_of(&mut state, "api", &screen);
    assert_eq!(state.preview_scroll, 0);
    press(&mut state, "<PageUp>");
    let first = state.preview_scroll;
    assert!(first > 0, "scrolled back");
    press(&mut state, "<C-u>");
    assert!(state.preview_scroll > first);
    for _ in 0..20 {
        press(&mut state, "<PageUp>");
    }
    let top = state.preview_scroll;
    press(&mut state, "<PageUp>");
    assert_eq!(state.preview_scroll, top, "it stops at the first line");
    for _ in 0..20 {
        press(&mut state, "<PageDown>");
    }
    assert_eq!(
        state.preview_scroll, 0,
        "back at the bottom, following the pane"
    );
    // Another sandbox starts at its bottom.
    press(&mut state, "<PageUp>");
    press(&mut state, "j");
    assert_eq!(state.preview_scroll, 0);
    // Away from the Agent tab there is nothing to scroll.
    press(&mut state, "4");
    press(&mut state, "<PageUp>");
    assert_eq!(state.preview_scroll, 0);
    assert!(
        flash_text(&state).contains("Agent tab"),
        "{}",
        flash_text(&state)
    );
}

#[test]
fn a_preview_that_fits_does_not_scroll_and_long_lines_count_as_wrapped() {
    let mut state = state_sized(120, 30);
    preview_of(&mut state, "api", "short\n");
    press(&mut state, "<PageUp>");
    assert_eq!(state.preview_scroll, 0);
    // Five lines of 400 characters wrap to many more rows than the pane has.
    let long: String = (0..5).map(|_| format!("{}\n", "x".repeat(400))).collect();
    preview_of(&mut state, "api", &long);
    press(&mut state, "<PageUp>");
    assert!(state.preview_scroll > 0);
}

#[test]
fn the_wheel_over_the_agent_preview_scrolls_it() {
    use crossterm::event::{KeyModifiers, MouseEvent, MouseEventKind};
    let mut state = state_sized(120, 30);
    let screen: String = (1..=60).map(|i| format!("line {i}\n")).collect();
    preview_of(&mut state, "api", &screen);
    let wheel = |kind, column| {
        Action::Mouse(MouseEvent {
            kind,
            column,
            row: 10,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut state, wheel(MouseEventKind::ScrollUp, 100));
    assert_eq!(state.preview_scroll, 3);
    assert_eq!(selected(&state), "api");
    update(&mut state, wheel(MouseEventKind::ScrollDown, 100));
    assert_eq!(state.preview_scroll, 0);
    // Over the table the wheel still moves the selection.
    update(&mut state, wheel(MouseEventKind::ScrollDown, 10));
    assert_eq!(selected(&state), "ci");
}

#[test]
fn the_palette_jumps_to_a_sandbox_by_name() {
    let mut state = state();
    press(&mut state, "/");
    type_text(&mut state, "state:running");
    press(&mut state, "<Enter>");
    assert_eq!(names(&state), ["api"]);
    press(&mut state, ":");
    type_text(&mut state, "legac");
    assert!(press(&mut state, "<Enter>").is_empty());
    assert_eq!(selected(&state), "legacy");
    assert!(
        state.filter_text.is_empty(),
        "the filter hiding it is dropped"
    );
    assert!(state.overlay.is_none());
    // A sandbox the filter shows keeps the filter.
    press(&mut state, "/");
    type_text(&mut state, "w");
    press(&mut state, "<Enter>");
    press(&mut state, "<C-k>");
    type_text(&mut state, "worker");
    press(&mut state, "<Enter>");
    assert_eq!(selected(&state), "worker");
    assert_eq!(state.filter_text, "w");
}

fn metrics_for(state: &mut State, figures: &[(&str, f64, u64)]) {
    let mut metrics = std::collections::HashMap::new();
    for (name, cpu, rss) in figures {
        let id = state
            .records
            .iter()
            .find(|r| r.name.as_str() == *name)
            .map(|r| r.id.clone())
            .expect("a known sandbox");
        metrics.insert(
            id,
            crate::metrics::SandboxMetrics {
                processes: 2,
                cpu_percent_of_core: *cpu,
                cpu_percent_of_host: *cpu / 2.0,
                rss_bytes: *rss,
            },
        );
    }
    update(state, Action::MetricsSampled(metrics));
}

#[test]
fn c_and_m_sort_by_cpu_and_memory_and_names_sort_naturally() {
    let mut state = state();
    // Ids of their own (the test records derive theirs from the name's length and initial).
    let with_id = |mut r: SandboxRecord, id: &str| {
        r.id = serde_json::from_value(serde_json::json!(id)).expect("an id");
        r
    };
    let running = |name: &str| {
        let id = format!(
            "{:0>16}",
            name.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        );
        with_id(record(name, "running", Some(5)), &id)
    };
    update(
        &mut state,
        Action::Loaded(Ok(vec![
            running("s10"),
            running("s2"),
            running("s1"),
            record("idle", "stopped", None),
        ])),
    );
    press(&mut state, "N");
    assert_eq!(names(&state), ["idle", "s1", "s2", "s10"]);
    // The stopped one still has an old sample: it must not count.
    metrics_for(
        &mut state,
        &[
            ("s1", 5.0, 900),
            ("s2", 80.0, 100),
            ("s10", 20.0, 500),
            ("idle", 99.0, 9999),
        ],
    );
    press(&mut state, "C");
    assert_eq!(state.sort, SortColumn::Cpu);
    assert_eq!(names(&state), ["s2", "s10", "s1", "idle"]);
    press(&mut state, "M");
    assert_eq!(names(&state), ["s1", "s10", "s2", "idle"]);
    press(&mut state, "M");
    assert_eq!(
        names(&state),
        ["idle", "s2", "s10", "s1"],
        "M again reverses"
    );
}

#[test]
fn after_a_delete_the_selection_stays_where_it_was() {
    let mut state = state();
    press(&mut state, "j");
    press(&mut state, "j");
    assert_eq!(selected(&state), "legacy");
    let rest: Vec<_> = records()
        .into_iter()
        .filter(|r| r.name.as_str() != "legacy")
        .collect();
    update(&mut state, Action::Loaded(Ok(rest)));
    assert_eq!(selected(&state), "web", "the next row, not the top");
    press(&mut state, "G");
    let rest: Vec<_> = records()
        .into_iter()
        .filter(|r| !["legacy", "worker"].contains(&r.name.as_str()))
        .collect();
    update(&mut state, Action::Loaded(Ok(rest)));
    assert_eq!(
        selected(&state),
        "web",
        "the last row went: the new last one"
    );
}

#[test]
fn number_keys_switch_tabs_in_the_table_the_detail_and_fullscreen() {
    let mut state = state();
    press(&mut state, "2");
    assert_eq!(state.tab, Tab::Screen);
    press(&mut state, "4");
    assert_eq!(state.tab, Tab::Info);
    press(&mut state, "<Tab>");
    press(&mut state, "3");
    assert_eq!(state.tab, Tab::Usage);
    press(&mut state, "1");
    assert_eq!(state.tab, Tab::Agent);
    let hints = state.keymap.hints(Context::List);
    assert!(hints.contains(&("1-4".into(), "tabs".into())), "{hints:?}");
    assert!(
        hints.contains(&("z".into(), "fullscreen".into())),
        "{hints:?}"
    );
}

#[test]
fn tab_in_the_dir_field_completes_then_moves_on() {
    let mut state = state();
    press(&mut state, "n");
    let effects = press(&mut state, "<Tab>");
    assert_eq!(effects, [Effect::CompletePath("/home/dev/src/".into())]);
    update(
        &mut state,
        Action::Completed {
            input: "/home/dev/src/".into(),
            candidates: vec!["/home/dev/src/api".into()],
        },
    );
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    assert_eq!(form.dir, "/home/dev/src/api/");
    assert_eq!(form.field, Field::Dir);
    assert!(
        press(&mut state, "<Tab>").is_empty(),
        "complete: Tab moves on"
    );
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    assert_eq!(form.field, Field::Name);
    // Nothing to complete (a folder to be made) moves on too.
    press(&mut state, "<S-Tab>");
    type_text(&mut state, "new");
    let effects = press(&mut state, "<Tab>");
    assert_eq!(
        effects,
        [Effect::CompletePath("/home/dev/src/api/new".into())]
    );
    update(
        &mut state,
        Action::Completed {
            input: "/home/dev/src/api/new".into(),
            candidates: vec![],
        },
    );
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("no form");
    };
    assert_eq!(form.field, Field::Name);
}

#[test]
fn a_missing_project_folder_is_offered_and_made_only_on_yes() {
    let mut state = state();
    press(&mut state, "n");
    type_text(&mut state, "fresh");
    let effects = press(&mut state, "<Enter>");
    let [Effect::Create(request)] = effects.as_slice() else {
        panic!("no create: {effects:?}");
    };
    let request = request.clone();
    update(
        &mut state,
        Action::ProjectDirMissing("/home/dev/src/fresh".into()),
    );
    assert!(
        question(&state).contains("/home/dev/src/fresh does not exist"),
        "{}",
        question(&state)
    );
    // No: back to the form, as it was, to fix the path.
    assert!(press(&mut state, "n").is_empty());
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("the form did not come back: {:?}", state.overlay);
    };
    assert_eq!(form.dir, "/home/dev/src/fresh");
    assert!(!form.submitting);
    // Yes: the folder and the sandbox in one go.
    press(&mut state, "<Enter>");
    update(
        &mut state,
        Action::ProjectDirMissing("/home/dev/src/fresh".into()),
    );
    assert_eq!(press(&mut state, "y"), [Effect::CreateWithDir(request)]);
    let Some(Overlay::Form(form)) = &state.overlay else {
        panic!("the form shows while it is made");
    };
    assert!(form.submitting);
}

#[test]
fn a_stopped_sandbox_shows_no_cpu_or_memory() {
    let mut state = state();
    metrics_for(
        &mut state,
        &[("api", 12.0, 1 << 20), ("web", 50.0, 1 << 30)],
    );
    let web = state
        .records
        .iter()
        .find(|r| r.name.as_str() == "web")
        .unwrap();
    assert!(state.live.metrics_of(web).is_none(), "web is stopped");
    let api = state
        .records
        .iter()
        .find(|r| r.name.as_str() == "api")
        .unwrap();
    assert!(state.live.metrics_of(api).is_some());
}

#[test]
fn shift_f_starts_without_resuming_and_a_start_failure_flashes_its_summary() {
    let mut state = state();
    state.selected = Some(named("web"));
    assert_eq!(
        press(&mut state, "F"),
        [Effect::Run(Op::StartFresh, named("web"))]
    );
    let error = "sandbox \"web\" ended as soon as it started (exit status 1): bad flag\n\
                 its last lines:\nstarting\nbad flag";
    update(
        &mut state,
        Action::Done {
            op: Op::StartFresh,
            name: named("web"),
            result: Err(error.into()),
        },
    );
    let flash = state.flash.as_ref().expect("a flash");
    assert!(flash.error);
    assert_eq!(
        flash.text,
        "sandbox \"web\" ended as soon as it started (exit status 1): bad flag"
    );
    state.selected = Some(named("api"));
    assert!(press(&mut state, "F").is_empty(), "api runs already");
}

/// Two hosts' sandboxes as a fleet's handle names them (`name@host`), b down.
fn fleet_state() -> State {
    use crate::engine::{HostLink, LinkState};
    let mut state = state();
    let on = |name: &str, host: &str, id_of: &str| {
        let mut r = record(name, "running", Some(5));
        r.name = SandboxName::on_host(&r.name, host);
        r.id = id(id_of);
        r
    };
    let records = vec![
        on("api", "a", "api"),
        on("api", "b", "apib"),
        on("web", "b", "web"),
    ];
    update(&mut state, Action::Loaded(Ok(records)));
    let links = vec![
        HostLink {
            host: "a".into(),
            state: LinkState::Up,
        },
        HostLink {
            host: "b".into(),
            state: LinkState::Down {
                reason: "connection refused".into(),
                retry_in_secs: 4,
            },
        },
    ];
    update(&mut state, Action::LinksSampled(links));
    state
}

#[test]
fn a_fleet_filters_by_host_counts_per_host_and_greys_a_host_that_is_down() {
    let mut state = fleet_state();
    assert!(state.is_fleet());
    state.filter_text = "host:b".into();
    assert_eq!(names(&state), ["api@b", "web@b"]);
    state.filter_text = "!host:b".into();
    assert_eq!(names(&state), ["api@a"]);
    state.filter_text = "api".into();
    assert_eq!(
        names(&state),
        ["api@a", "api@b"],
        "text matches the bare name"
    );
    state.filter_text.clear();
    let counts: Vec<(&str, usize)> = state
        .host_counts()
        .into_iter()
        .map(|(l, n)| (l.host.as_str(), n))
        .collect();
    assert_eq!(counts, [("a", 1), ("b", 2)]);
    let down: Vec<String> = state
        .records
        .iter()
        .filter(|r| state.host_is_down(r))
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(down, ["api@b", "web@b"]);
    let screen = super::snapshots::render(&state);
    assert!(screen.contains("HOST"), "{screen}");
    assert!(
        screen.contains("b ✕ 2 down (connection refused), again in 4s"),
        "{screen}"
    );
    let row_b = screen
        .lines()
        .find(|l| l.contains("web ") && l.contains(" b "))
        .expect(&screen);
    assert!(row_b.contains("offline"), "{screen}");
}

#[test]
fn one_engine_has_no_host_column() {
    let screen = super::snapshots::render(&state());
    assert!(!screen.contains("HOST"), "{screen}");
}
