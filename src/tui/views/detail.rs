//! The detail pane of the selected sandbox: the Agent tab (a live view of its pane), the
//! Screen tab (its display) and the Info tab (the record, paths, ids and the command that runs).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Paragraph, Tabs};

use crate::backend::Options;
use crate::format::wrap;
use crate::sandbox::{SandboxRecord, SandboxState};
use crate::tui::command::Command;
use crate::tui::keymap::Context;
use crate::tui::state::{Focus, State, Tab};
use crate::tui::theme::{ColorSupport, Theme};
use crate::tui::widgets::preview;

use super::screen;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let border = if state.focus == Focus::Detail {
        theme.fg(theme.accent)
    } else {
        theme.fg(theme.muted)
    };
    let record = state.selected_record();
    let title = record.map_or(" Detail ".to_owned(), |r| format!(" {} ", r.name));
    let block = Block::bordered()
        .border_style(border)
        .title(Line::styled(title, theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [tabs_area, _] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    let body = crate::tui::layout::detail_body(area);
    let index = Tab::ALL.iter().position(|t| *t == state.tab).unwrap_or(0);
    let tabs = Tabs::new(Tab::ALL.iter().map(|t| t.title()))
        .select(index)
        .style(theme.fg(theme.muted))
        .highlight_style(
            theme
                .fg(theme.accent)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        );
    frame.render_widget(tabs, tabs_area);
    let Some(record) = record else {
        let hint = Line::styled("No sandbox selected.", theme.fg(theme.muted));
        frame.render_widget(Paragraph::new(hint), body);
        return;
    };
    match state.tab {
        Tab::Agent => agent(frame, body, state, record, theme),
        Tab::Screen => screen::pane(frame, body, state, record, theme),
        Tab::Usage => super::usage::draw(frame, body, state, record, theme),
        Tab::Info => info(frame, body, state, record, theme),
    }
}

fn agent(frame: &mut Frame<'_>, area: Rect, state: &State, record: &SandboxRecord, theme: &Theme) {
    let name = record.name.as_str();
    let has_session =
        record.managed && matches!(record.state, SandboxState::Running | SandboxState::Exited);
    if !has_session {
        let start = state
            .keymap
            .key_for(Context::List, Command::Start)
            .map_or("start".to_owned(), |k| k.to_string());
        let text = match record.state {
            SandboxState::Starting => format!("{name} is starting…"),
            _ if !record.managed => format!("{name} runs in the terminal that launched it."),
            other => format!("{name} is {other}: press {start} to start it."),
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, theme.fg(theme.muted))),
            area,
        );
        return;
    }
    let text: Text<'_> = match state.preview.as_ref().filter(|p| p.id == record.id) {
        Some(p) => match &p.screen {
            Ok(screen) => {
                let colour = theme.support != ColorSupport::None;
                let lines = preview::wrapped(screen, area.width, colour);
                scrolled(lines, usize::from(area.height), state, theme)
            }
            Err(e) => {
                Line::styled(format!("cannot read the pane: {e}"), theme.fg(theme.error)).into()
            }
        },
        None => Line::styled("…", theme.fg(theme.muted)).into(),
    };
    frame.render_widget(Paragraph::new(text), area);
}

/// The preview's window at the current scroll; when scrolled back, the last row says how
/// much is below and how to get there.
fn scrolled(
    lines: Vec<Line<'static>>,
    height: usize,
    state: &State,
    theme: &Theme,
) -> Text<'static> {
    let scroll = state
        .preview_scroll
        .min(preview::max_scroll(lines.len(), height));
    if scroll == 0 {
        return Text::from(preview::window(&lines, height, 0));
    }
    let mut shown = preview::window(&lines, height.saturating_sub(1), scroll);
    let key = state
        .keymap
        .key_for(Context::List, Command::ScrollDown)
        .map_or("scroll_down".to_owned(), |k| k.to_string());
    shown.push(Line::styled(
        format!("↓ {scroll} more lines ({key})"),
        theme.fg(theme.muted).add_modifier(Modifier::REVERSED),
    ));
    Text::from(shown)
}

fn info(frame: &mut Frame<'_>, area: Rect, state: &State, r: &SandboxRecord, theme: &Theme) {
    let paths = &state.settings.paths;
    let mut status = r.state.to_string();
    if let Some(code) = r.exit_status {
        status.push_str(&format!(" (status {code})"));
    }
    if let Some(reason) = &r.reason {
        status.push_str(&format!(": {reason}"));
    }
    let mut rows: Vec<(&str, String)> = vec![
        ("state", status),
        ("id", r.id.to_string()),
        ("backend", r.backend.to_string()),
        ("project", r.project_dir.as_path().display().to_string()),
        ("start runs", start_command(r, state)),
        ("display", r.display.map_or("-".into(), |d| format!(":{d}"))),
        ("tmux", r.tmux_session.clone().unwrap_or("-".into())),
        ("network", r.network.to_string()),
        ("gh token", on_off(r.gh_token)),
        (
            "managed",
            if r.managed {
                "yes".into()
            } else {
                "no (launched by hand)".into()
            },
        ),
        (
            "created",
            r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        (
            "started",
            r.started_at.map_or("-".into(), |t| {
                t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            }),
        ),
        ("opt-ins", opt_ins(&r.options)),
        (
            "runtime",
            paths.sandbox_of(r).runtime_dir().display().to_string(),
        ),
    ];
    if let Some(held) = held_text(state, r) {
        let after_network = rows
            .iter()
            .position(|(key, _)| *key == "network")
            .map_or(rows.len(), |i| i + 1);
        rows.insert(after_network, ("held", held));
    }
    // Long values (paths) wrap under themselves, not under the labels.
    let width = usize::from(area.width)
        .saturating_sub(LABEL_WIDTH + 1)
        .max(10);
    let mut lines: Vec<Line<'_>> = Vec::new();
    for (key, value) in rows {
        for (i, part) in wrap_long(&value, width).into_iter().enumerate() {
            let label = if i == 0 { key } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{label:>LABEL_WIDTH$} "), theme.fg(theme.muted)),
                Span::styled(part, theme.fg(theme.text)),
            ]));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

const LABEL_WIDTH: usize = 10;

/// Words wrapped at spaces, then anything still too long (a path) cut into pieces.
fn wrap_long(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in wrap(text, width) {
        let chars: Vec<char> = line.chars().collect();
        out.extend(chars.chunks(width).map(|c| c.iter().collect::<String>()));
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// What the sandbox may see beyond the defaults.
fn opt_ins(options: &Options) -> String {
    let chosen: Vec<&str> = [
        (options.host_display, "host display"),
        (options.dbus, "D-Bus"),
        (options.ssh_agent, "SSH agent"),
        (options.audio, "audio"),
        (options.gpu, "GPU"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if chosen.is_empty() {
        "none".into()
    } else {
        chosen.join(", ")
    }
}

fn on_off(value: bool) -> String {
    if value { "on" } else { "off" }.into()
}

/// The exact command `start` would run inside the sandbox (with `--continue` only when the
/// project has a conversation to resume), as the engine computed it on the last refresh.
fn start_command(r: &SandboxRecord, state: &State) -> String {
    if !r.managed {
        return "- (launched by hand)".into();
    }
    state
        .start_commands
        .get(&r.id)
        .cloned()
        .unwrap_or_else(|| "…".into())
}

/// The connections held for an answer, oldest first, with since when; None if none.
fn held_text(state: &State, r: &SandboxRecord) -> Option<String> {
    let held = state.live.held_of(r);
    if held.is_empty() {
        return None;
    }
    let text = held
        .iter()
        .map(|h| {
            format!(
                "{} ({}, since {})",
                h.target(),
                h.kind,
                h.since.format("%H:%M:%S")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(text)
}
