//! The top line: the host, its CPU and memory, how many sandboxes are in each state (and
//! how many agents wait), and today's Claude usage.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::engine::LinkState;
use crate::engine::status::AgentState;
use crate::format::printable_line;
use crate::sandbox::SandboxState;
use crate::tui::live::{count, host_figures, usd};
use crate::tui::state::State;
use crate::tui::theme::{Theme, agent_glyph, state_glyph};

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let mut spans = vec![Span::styled(" sandbox-deck ", theme.title())];
    if state.is_fleet() {
        spans.extend(host_links(state, theme));
    } else if let Some([hostname, figures]) = host_figures(state.host.as_ref(), state.cpu_percent) {
        spans.push(Span::styled(
            hostname,
            theme.fg(theme.text).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(figures, theme.fg(theme.muted)));
    }
    spans.push(Span::raw("   "));
    let counts = state.state_counts();
    if counts.is_empty() && state.loaded {
        spans.push(Span::styled("no sandboxes", theme.fg(theme.muted)));
    }
    let today = today(state, theme);
    let room = usize::from(area.width).saturating_sub(today.width());
    let waiting = state
        .records
        .iter()
        .filter(|r| state.live.is_waiting(r))
        .count();
    // Narrow screens get the glyphs without the words.
    let with_words = |words: bool| {
        let mut spans = spans.clone();
        if waiting > 0 {
            let text = if words {
                format!("{} {waiting} waiting", agent_glyph(AgentState::Waiting))
            } else {
                format!("{}{waiting}", agent_glyph(AgentState::Waiting))
            };
            spans.push(Span::styled(text, theme.agent(AgentState::Waiting)));
            spans.push(Span::raw(if words { "  " } else { " " }));
        }
        for (s, n) in &counts {
            let text = if words {
                format!("{} {n} {s}  ", state_glyph(*s))
            } else {
                format!("{}{n} ", state_glyph(*s))
            };
            spans.push(Span::styled(text, theme.state(*s)));
        }
        Line::from(spans)
    };
    let mut line = with_words(true);
    if line.width() > room {
        line = with_words(false);
    }
    let [left, right] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(today.width() as u16),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(line), left);
    frame.render_widget(Paragraph::new(today), right);
}

/// Each host of a mirror of several: its name, how many sandboxes it has, and how it is
/// reached unless it is up (`b ✕ 3 down (connection refused), again in 4s`).
fn host_links(state: &State, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (link, count) in state.host_counts() {
        spans.push(Span::styled(
            link.host.clone(),
            theme.fg(theme.text).add_modifier(Modifier::BOLD),
        ));
        let (glyph, style) = match &link.state {
            LinkState::Up => ("●", theme.state(SandboxState::Running)),
            LinkState::Down { .. } => ("✕", theme.state(SandboxState::Dead)),
            LinkState::Connecting | LinkState::Reconnecting { .. } => {
                ("…", theme.state(SandboxState::Starting))
            }
        };
        spans.push(Span::styled(format!(" {glyph} {count}"), style));
        if !link.state.is_up() {
            spans.push(Span::styled(format!(" {}", link_text(&link.state)), style));
        }
        spans.push(Span::raw("  "));
    }
    spans
}

/// The longest reason a down host gets in the header: the other hosts follow on its line.
const REASON_WIDTH: usize = 32;

/// How a host is reached, its reason (ssh's words, the other host's) made printable and
/// cut short.
fn link_text(state: &LinkState) -> String {
    let LinkState::Down {
        reason,
        retry_in_secs,
    } = state
    else {
        return state.to_string();
    };
    let reason = printable_line(reason);
    let short: String = if reason.chars().count() > REASON_WIDTH {
        let kept: String = reason.chars().take(REASON_WIDTH - 1).collect();
        format!("{kept}…")
    } else {
        reason.into_owned()
    };
    LinkState::Down {
        reason: short,
        retry_in_secs: *retry_in_secs,
    }
    .to_string()
}

/// Today's Claude usage over every project, on the right: `today $4.27 1.2M tok`.
/// The host's name, and its CPU and memory as the header writes them.
fn today(state: &State, theme: &Theme) -> Line<'static> {
    let Some(usage) = &state.live.usage else {
        return Line::default();
    };
    let t = &usage.today;
    Line::from(vec![
        Span::styled("today ", theme.fg(theme.muted)),
        Span::styled(
            usd(t.cost_usd),
            theme.fg(theme.text).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" {} tok ", count(t.total_tokens)),
            theme.fg(theme.muted),
        ),
    ])
}
