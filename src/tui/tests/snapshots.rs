//! The screens as text, drawn on ratatui's TestBackend and compared with accepted snapshots.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::config::Config;
use crate::tui::theme::{ColorSupport, Theme};
use crate::tui::views;

pub(super) fn render(state: &State) -> String {
    let (width, height) = state.size;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    let theme = Theme::new(&Config::defaults().ui.theme, ColorSupport::TrueColor);
    terminal
        .draw(|frame| views::draw(frame, state, &theme))
        .expect("drawing");
    terminal.backend().to_string()
}

/// The screen with a host sample and the Agent preview of `api` in.
pub(super) fn live_state(width: u16, height: u16) -> State {
    let mut state = state_sized(width, height);
    update(
        &mut state,
        Action::HostSampled(crate::engine::host_stats::HostStats {
            hostname: "devbox".into(),
            cpu_percent: None,
            mem_total_kib: 16 * 1024 * 1024,
            mem_available_kib: 12 * 1024 * 1024,
        }),
    );
    update(
        &mut state,
        Action::HostSampled(crate::engine::host_stats::HostStats {
            hostname: "devbox".into(),
            // (150 - 100) busy of (1200 - 1000) jiffies.
            cpu_percent: Some(25.0),
            mem_total_kib: 16 * 1024 * 1024,
            mem_available_kib: 12 * 1024 * 1024,
        }),
    );
    update(
        &mut state,
        Action::Captured {
            name: "api".into(),
            result: Ok("\x1b[1m✻ Welcome to Claude Code!\x1b[0m\n\n> \x1b[32mfix the failing test\x1b[0m\n\n\x1b[2m  ? for shortcuts\x1b[0m\n\n\n".into()),
        },
    );
    state
}

#[test]
fn the_list_with_every_state_and_the_agent_tab() {
    insta::assert_snapshot!(render(&live_state(120, 30)));
}

#[test]
fn the_info_tab() {
    let mut state = live_state(120, 30);
    // Back from the first tab is the last one.
    press(&mut state, "[");
    // What the engine computed on the last refresh.
    state.start_commands.insert(
        state.selected.clone().unwrap_or_default(),
        "claude --settings /run/sandbox-deck/hook-settings.json --continue".into(),
    );
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_agent_tab_of_a_stopped_sandbox_offers_start() {
    let mut state = live_state(120, 30);
    state.selected = Some("web".into());
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_help_overlay() {
    let mut state = live_state(120, 40);
    press(&mut state, "?");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_palette_filtering_for_sort() {
    let mut state = live_state(120, 30);
    press(&mut state, ":");
    type_text(&mut state, "sort");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_confirm_dialog_names_the_sandbox() {
    let mut state = live_state(120, 30);
    press(&mut state, "d");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_new_sandbox_form_with_a_validation_error() {
    let mut state = live_state(120, 30);
    press(&mut state, "n");
    type_text(&mut state, "api");
    press(&mut state, "<Down>");
    type_text(&mut state, "_X");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_80x24_layout_puts_the_detail_under_the_table() {
    insta::assert_snapshot!(render(&live_state(80, 24)));
}

#[test]
fn a_filter_being_typed_and_a_flash() {
    let mut state = live_state(100, 20);
    press(&mut state, "/");
    type_text(&mut state, "!state:run");
    let typing = render(&state);
    press(&mut state, "<Enter>");
    press(&mut state, "s");
    press(&mut state, "y");
    insta::assert_snapshot!(format!("{typing}\n{}", render(&state)));
}

#[test]
fn an_empty_deck_says_how_to_begin() {
    let mut state = state_sized(80, 24);
    update(&mut state, Action::Loaded(Ok(Vec::new())));
    insta::assert_snapshot!(render(&state));
}

/// Snapshots hold the text; the colours are checked here, cell by cell.
pub(super) fn buffer(state: &State, support: ColorSupport) -> ratatui::buffer::Buffer {
    let (width, height) = state.size;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    let theme = Theme::new(&Config::defaults().ui.theme, support);
    terminal
        .draw(|frame| views::draw(frame, state, &theme))
        .expect("drawing");
    terminal.backend().buffer().clone()
}

#[test]
fn states_have_colours_and_the_preview_keeps_the_panes_colours() {
    use ratatui::style::Color;
    let state = live_state(120, 30);
    let buf = buffer(&state, ColorSupport::TrueColor);
    // Row 3 is `api` (running): its glyph is green, the row has the selection background.
    assert_eq!(buf[(1, 3)].symbol(), "●");
    assert_eq!(buf[(1, 3)].fg, Color::Rgb(0x5f, 0xd7, 0x5f));
    assert_eq!(buf[(5, 3)].bg, Color::Rgb(0x30, 0x3a, 0x4a));
    // The preview's "fix the failing test" was green in the pane (ESC[32m).
    let (x, y) = find(&buf, "fix the failing").expect("the preview text");
    assert_eq!(buf[(x, y)].fg, Color::Green);
    let indexed = buffer(&state, ColorSupport::Indexed);
    assert_eq!(indexed[(1, 3)].fg, Color::Indexed(77));
}

#[test]
fn no_color_draws_without_any_colour() {
    use ratatui::style::{Color, Modifier};
    let state = live_state(120, 30);
    let buf = buffer(&state, ColorSupport::None);
    for cell in buf.content() {
        assert!(matches!(cell.fg, Color::Reset), "{cell:?}");
        assert!(matches!(cell.bg, Color::Reset), "{cell:?}");
    }
    assert!(
        buf[(5, 3)].modifier.contains(Modifier::REVERSED),
        "the selection is reversed"
    );
}

pub(super) fn find(buf: &ratatui::buffer::Buffer, text: &str) -> Option<(u16, u16)> {
    let area = buf.area;
    for y in 0..area.height {
        let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(i) = line.find(text) {
            return Some((line[..i].chars().count() as u16, y));
        }
    }
    None
}

#[test]
fn every_screen_draws_at_any_size_without_panicking() {
    let overlays: [&[&str]; 9] = [
        &[],
        &["?"],
        &[":"],
        &["d"],
        &["n"],
        &["]"],
        &["]", "]"],
        &["z"],
        &["z", "?"],
    ];
    for (width, height) in [
        (1, 1),
        (10, 3),
        (20, 6),
        (40, 10),
        (79, 15),
        (100, 16),
        (300, 90),
    ] {
        for keys in overlays {
            let mut state = live_state(width, height);
            for key in keys {
                press(&mut state, key);
            }
            feed_test_frame(&mut state);
            let _ = render(&state); // only must not panic
        }
    }
}

/// A 640x400 frame: red grows to the right, green downwards, so no two half blocks are
/// the same colour and each cell shows its half-block glyph.
fn gradient() -> crate::capture::Frame {
    let (width, height) = (640u32, 400u32);
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            rgb.extend([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]);
        }
    }
    crate::capture::Frame { width, height, rgb }
}

/// What the feed would send: the test frame in half blocks, sized as the reducer asked.
fn feed_test_frame(state: &mut State) {
    let Some(watch) = state.screen.watching.clone() else {
        return;
    };
    let cells = ratatui::layout::Size::new(watch.cells.0, watch.cells.1);
    if let Ok(image) = crate::tui::graphics::Graphics::halfblocks().encode(&gradient(), cells, 1) {
        update(
            state,
            Action::ScreenFrame {
                name: watch.name,
                image,
            },
        );
    }
}

#[test]
fn the_screen_tab_paints_the_frame_in_half_blocks() {
    use ratatui::style::Color;
    let mut state = live_state(120, 30);
    press(&mut state, "]");
    feed_test_frame(&mut state);
    insta::assert_snapshot!(render(&state));
    let buf = buffer(&state, ColorSupport::TrueColor);
    let painted: Vec<_> = buf
        .content()
        .iter()
        .filter(|c| matches!(c.symbol(), "▀" | "▄"))
        .collect();
    assert!(painted.len() > 300, "only {} half blocks", painted.len());
    // The frame's own colours: red from left to right, green from top to bottom, blue 128.
    let colours: Vec<(u8, u8, u8)> = painted
        .iter()
        .flat_map(|c| [c.fg, c.bg])
        .map(|c| match c {
            Color::Rgb(r, g, b) => (r, g, b),
            other => panic!("{other:?} is not a frame colour"),
        })
        .collect();
    let frame_blue = colours.iter().filter(|c| c.2 == 128).count();
    assert!(
        frame_blue * 10 > colours.len() * 9,
        "{frame_blue} of {}",
        colours.len()
    );
    assert!(colours.iter().any(|c| c.0 < 20 && c.1 < 20));
    assert!(colours.iter().any(|c| c.0 > 230 && c.1 > 230));
}

#[test]
fn the_fullscreen_screen_view() {
    let mut state = live_state(100, 24);
    press(&mut state, "z");
    feed_test_frame(&mut state);
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_screen_tab_of_a_stopped_sandbox_says_it_has_no_display() {
    let mut state = live_state(120, 30);
    press(&mut state, "]");
    state.selected = Some("web".into());
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_screen_tab_waits_for_the_first_frame() {
    let mut state = live_state(120, 30);
    press(&mut state, "]");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_screen_tab_when_the_terminal_cannot_show_the_forced_protocol() {
    let mut state = live_state(120, 30);
    state.settings.images = crate::tui::graphics::ImageSupport {
        protocol: "kitty",
        unsupported: Some(("kitty", "halfblocks")),
    };
    press(&mut state, "]");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_screen_tab_after_the_display_went_away() {
    let mut state = live_state(120, 30);
    press(&mut state, "]");
    update(
        &mut state,
        Action::ScreenLost {
            name: "api".into(),
            message: "display :13 is gone (connection refused)".into(),
        },
    );
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_fullscreen_view_fills_a_large_terminal_keeping_the_aspect_ratio() {
    // A display far smaller than the terminal in pixels (16x5 cells at half blocks' 10x20):
    // it is scaled up to fill the height, and centred.
    let mut state = live_state(140, 40);
    press(&mut state, "z");
    let watch = state.screen.watching.clone().expect("a feed");
    let small = crate::capture::Frame {
        width: 160,
        height: 100,
        // Top and bottom of each cell differ, so every cell is drawn as a half block.
        rgb: (0..100u32)
            .flat_map(|y| (0..160u32).flat_map(move |x| [x as u8, (y * 2) as u8, 128]))
            .collect(),
    };
    let cells = ratatui::layout::Size::new(watch.cells.0, watch.cells.1);
    let image = crate::tui::graphics::Graphics::halfblocks()
        .encode(&small, cells, 1)
        .expect("an image");
    update(
        &mut state,
        Action::ScreenFrame {
            name: watch.name,
            image,
        },
    );
    let buf = buffer(&state, ColorSupport::TrueColor);
    let painted: Vec<(u16, u16)> = (0..40)
        .flat_map(|y| (0..140).map(move |x| (x, y)))
        .filter(|&(x, y)| matches!(buf[(x, y)].symbol(), "▀" | "▄"))
        .collect();
    let rows = painted
        .iter()
        .map(|p| p.1)
        .collect::<std::collections::BTreeSet<_>>();
    let (left, right) = (
        painted.iter().map(|p| p.0).min().unwrap_or(0),
        painted.iter().map(|p| p.0).max().unwrap_or(0),
    );
    assert_eq!(rows.len(), 38, "every row between the title and the hints");
    // 1.6:1 over 38 rows of 1:2 cells is 122 columns, centred in 140.
    assert_eq!(right - left + 1, 122);
    assert_eq!(left, 9);
    insta::assert_snapshot!(render(&state));
}

#[test]
fn the_agent_preview_wraps_long_lines_and_scrolls_back() {
    let mut state = live_state(120, 30);
    let mut screen: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    screen.push_str(&format!("{}END\n", "0123456789".repeat(10)));
    update(
        &mut state,
        Action::Captured {
            name: "api".into(),
            result: Ok(screen),
        },
    );
    let bottom = render(&state);
    assert!(
        bottom.contains("END"),
        "the end of the long line is wrapped into view"
    );
    press(&mut state, "<PageUp>");
    insta::assert_snapshot!(format!("{bottom}\n{}", render(&state)));
}

#[test]
fn the_palette_finds_sandboxes_by_name() {
    let mut state = live_state(120, 30);
    press(&mut state, ":");
    type_text(&mut state, "work");
    insta::assert_snapshot!(render(&state));
}

#[test]
fn stop_asks_naming_the_sandbox() {
    let mut state = live_state(120, 30);
    press(&mut state, "s");
    insta::assert_snapshot!(render(&state));
}
