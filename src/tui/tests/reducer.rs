//! Key → action → state and effects, with no terminal and no engine.

use super::*;
use crate::tui::action::{Effect, Op};
use crate::tui::form::Field;
use crate::tui::keymap::Context;
use crate::tui::sort::SortColumn;
use crate::tui::state::{Focus, Overlay, Tab};

fn selected(state: &State) -> &str {
    state.selected.as_deref().unwrap_or("")
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
    let effects = press(&mut state, "s");
    assert_eq!(effects, [Effect::Run(Op::Stop, "api".into())]);
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
            name: "api".into(),
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
    state.selected = Some("web".into());
    assert!(press(&mut state, "s").is_empty());
    assert_eq!(
        state.flash.as_ref().map(|f| f.text.as_str()),
        Some("web is already stopped")
    );
    assert_eq!(
        press(&mut state, "S"),
        [Effect::Run(Op::Start, "web".into())]
    );
}

#[test]
fn r_restarts_and_a_failure_is_flashed_as_an_error() {
    let mut state = state();
    assert_eq!(
        press(&mut state, "r"),
        [Effect::Run(Op::Restart, "api".into())]
    );
    update(
        &mut state,
        Action::Done {
            op: Op::Restart,
            name: "api".into(),
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
    assert_eq!(confirm.op, Op::Remove { force: true });
    assert_eq!(state.context(), Context::Confirm);
    assert_eq!(
        press(&mut state, "y"),
        [Effect::Run(Op::Remove { force: true }, "api".into())]
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
    assert_eq!(press(&mut state, "<Enter>"), [Effect::Attach("api".into())]);
    assert_eq!(press(&mut state, "a"), [Effect::Attach("api".into())]);
}

#[test]
fn enter_on_a_stopped_or_dead_sandbox_offers_start_instead() {
    for name in ["web", "legacy"] {
        let mut state = state();
        state.selected = Some(name.into());
        assert!(press(&mut state, "<Enter>").is_empty());
        let Some(Overlay::Confirm(confirm)) = &state.overlay else {
            panic!("no offer to start {name}");
        };
        assert_eq!(confirm.op, Op::Start);
        assert!(confirm.question.contains(name) && confirm.question.contains("start"));
        assert_eq!(
            press(&mut state, "<Enter>"),
            [Effect::Run(Op::Start, name.into())]
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
    assert_eq!(
        press(&mut state, "<Enter>"),
        [Effect::Run(Op::Stop, "api".into())]
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
    assert_eq!(
        update(&mut state, Action::MonitorTick),
        [Effect::Refresh, Effect::SampleHost]
    );
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
            name: "api".into(),
            result: Ok("$ ".into()),
        },
    );
    assert_eq!(
        update(&mut state, Action::PreviewTick),
        [Effect::Capture("api".into())]
    );
    update(
        &mut state,
        Action::Captured {
            name: "api".into(),
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
    state.selected = Some("web".into());
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
            name: "api".into(),
            result: Ok("$ ".into()),
        },
    );
    // worker has exited but its last screen is kept: moving there captures it now.
    assert_eq!(press(&mut state, "G"), [Effect::Capture("worker".into())]);
    update(
        &mut state,
        Action::Captured {
            name: "worker".into(),
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
    assert_eq!(request.0.name.as_deref(), Some("my-app"));
    assert_eq!(
        request.0.project_dir,
        std::path::Path::new("/home/dev/src/My_App")
    );
    assert!(matches!(
        request.0.payload,
        crate::sandbox::Payload::Shell { .. }
    ));
    assert_eq!(request.0.network, Some(true));
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
    assert_eq!(
        press(&mut state, "x"),
        [Effect::Run(Op::Stop, "api".into())]
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
    let sample = |busy: u64, total: u64| HostStats {
        hostname: "devbox".into(),
        cpu_busy: busy,
        cpu_total: total,
        mem_total_kib: 1 << 24,
        mem_available_kib: 1 << 23,
    };
    let mut state = state();
    update(&mut state, Action::HostSampled(sample(100, 1000)));
    update(&mut state, Action::HostSampled(sample(110, 1100)));
    assert_eq!(state.cpu_percent, Some(10.0));
    state.dirty = false;
    update(&mut state, Action::HostSampled(sample(120, 1200)));
    assert!(!state.dirty, "still 10 %");
    update(&mut state, Action::HostSampled(sample(170, 1300)));
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
    assert_eq!(
        press(&mut state, "s"),
        [Effect::Run(Op::Stop, "api".into())]
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
            Effect::WatchScreen(w) => Some((w.name.clone(), w.fps)),
            _ => None,
        })
        .collect()
}

fn stops(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StopScreen(name) => Some(name.clone()),
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
            name: "api".into(),
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
            name: "api".into(),
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
            name: "api".into(),
            image: image.clone(),
        },
    );
    assert!(state.screen.image.is_none());
    press(&mut state, "[");
    update(
        &mut state,
        Action::ScreenFrame {
            name: "api".into(),
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
            name: "api".into(),
            result: Ok(()),
        },
    );
    assert_eq!(stops(&effects), ["api"]);
    assert_eq!(watches(&effects), [("api".to_string(), 1.0)]);
}

#[test]
fn shift_f_starts_without_resuming_and_a_start_failure_flashes_its_summary() {
    let mut state = state();
    state.selected = Some("web".into());
    assert_eq!(
        press(&mut state, "F"),
        [Effect::Run(Op::StartFresh, "web".into())]
    );
    let error = "sandbox \"web\" ended as soon as it started (exit status 1): bad flag\n\
                 its last lines:\nstarting\nbad flag";
    update(
        &mut state,
        Action::Done {
            op: Op::StartFresh,
            name: "web".into(),
            result: Err(error.into()),
        },
    );
    let flash = state.flash.as_ref().expect("a flash");
    assert!(flash.error);
    assert_eq!(
        flash.text,
        "sandbox \"web\" ended as soon as it started (exit status 1): bad flag"
    );
    state.selected = Some("api".into());
    assert!(press(&mut state, "F").is_empty(), "api runs already");
}
