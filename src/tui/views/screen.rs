//! A sandbox's display: in the Screen tab and fullscreen (z). Draws the latest frame that is
//! ready, or says why there is none.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui_image::Image;
use ratatui_image::protocol::Protocol;

use crate::engine::screen::has_screen;
use crate::sandbox::{SandboxRecord, SandboxState};
use crate::tui::command::Command;
use crate::tui::keymap::Context;
use crate::tui::state::State;
use crate::tui::theme::Theme;

/// The Screen tab's body.
pub fn pane(
    frame: &mut Frame<'_>,
    area: Rect,
    state: &State,
    record: &SandboxRecord,
    theme: &Theme,
) {
    match image_or_message(state, record) {
        Ok(()) => draw_image(frame, area, state),
        Err(text) => {
            frame.render_widget(
                Paragraph::new(Line::styled(text, theme.fg(theme.muted))).wrap(Wrap { trim: true }),
                area,
            );
        }
    }
}

/// The fullscreen view: a title line over the selected sandbox's screen.
pub fn fullscreen(frame: &mut Frame<'_>, title: Rect, body: Rect, state: &State, theme: &Theme) {
    let Some(record) = state.selected_record() else {
        frame.render_widget(
            Paragraph::new(Line::styled(" No sandbox selected.", theme.fg(theme.muted))),
            body,
        );
        return;
    };
    let mut spans = vec![Span::styled(
        format!(" {} ", record.name),
        theme.fg(theme.accent).add_modifier(Modifier::BOLD),
    )];
    if let Some((_, image)) = state
        .screen
        .image
        .as_ref()
        .filter(|(id, _)| *id == record.id)
    {
        let (w, h) = image.frame_size;
        spans.push(Span::styled(
            format!(
                "{w}x{h} · {} fps · {}",
                fps(state.settings.screen_fullscreen_fps),
                state.settings.images.protocol
            ),
            theme.fg(theme.muted),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), title);
    pane(frame, body, state, record, theme);
}

fn draw_image(frame: &mut Frame<'_>, area: Rect, state: &State) {
    if let Some((_, image)) = &state.screen.image {
        // Until the frame for a smaller area arrives, half blocks and kitty can be cut to fit;
        // sixel and iTerm2 images cannot and wait for it.
        let clips = matches!(
            *image.protocol,
            Protocol::Halfblocks(_) | Protocol::Kitty(_)
        );
        // Centred: the frame keeps its aspect ratio, so one side usually has room to spare.
        let cells = image.cells;
        let x = area.x + area.width.saturating_sub(cells.width) / 2;
        let y = area.y + area.height.saturating_sub(cells.height) / 2;
        let centred = Rect::new(
            x,
            y,
            cells.width.min(area.width),
            cells.height.min(area.height),
        );
        frame.render_widget(Image::new(&image.protocol).allow_clipping(clips), centred);
    }
}

/// Ok when there is a frame of `record` to draw, else the words to show instead.
fn image_or_message(state: &State, record: &SandboxRecord) -> Result<(), String> {
    let name = record.name.as_str();
    if let Some((asked, instead)) = state.settings.images.unsupported {
        return Err(format!(
            "This terminal can't show {asked} images. Start with --image-protocol {instead} \
             (or set ui.image_protocol = \"{instead}\")."
        ));
    }
    if !has_screen(record) {
        let start = state
            .keymap
            .key_for(Context::List, Command::Start)
            .map_or("start".to_owned(), |k| k.to_string());
        return Err(match record.state {
            SandboxState::Starting => format!("No display yet: {name} is starting…"),
            SandboxState::Running => format!("No display: {name} was launched without one."),
            _ if !record.managed => format!("No display: {name} is {}.", record.state),
            other => format!("No display: {name} is {other}. Press {start} to start it."),
        });
    }
    if let Some((_, why)) = state
        .screen
        .lost
        .as_ref()
        .filter(|(id, _)| *id == record.id)
    {
        return Err(format!("The display of {name} went away: {why}"));
    }
    match &state.screen.image {
        Some((id, _)) if *id == record.id => Ok(()),
        _ => Err(format!("Waiting for the first frame of {name}…")),
    }
}

fn fps(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}
