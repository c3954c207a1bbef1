//! The `?` overlay: every binding of every context, straight from the keymap.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::keymap::{Context, join_keys};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::popup;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, scroll: u16, theme: &Theme) {
    let width = if area.width >= 110 { 108 } else { 72 };
    let outer = popup::centered(area, width, area.height.saturating_sub(2));
    let inner = popup::open(frame, outer, "Keys (Esc closes)", theme);
    // Wide screens show the table's keys beside the rest.
    if inner.width >= 100 {
        let [left, right] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
        let mut table = section_lines(state, &[Context::List], theme);
        table.extend(legend(theme));
        let rest = section_lines(state, &Context::ALL[1..], theme);
        frame.render_widget(Paragraph::new(table).scroll((scroll, 0)), left);
        frame.render_widget(Paragraph::new(rest).scroll((scroll, 0)), right);
    } else {
        let mut all = section_lines(state, &[Context::List], theme);
        all.extend(legend(theme));
        all.push(Line::raw(""));
        all.extend(section_lines(state, &Context::ALL[1..], theme));
        frame.render_widget(Paragraph::new(all).scroll((scroll, 0)), inner);
    }
}

fn section_lines(state: &State, contexts: &[Context], theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for &context in contexts {
        let bindings = state.keymap.effective(context);
        if bindings.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(heading(context), theme.title()));
        for (keys, binding) in bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", join_keys(&keys)), theme.key()),
                Span::styled(binding.desc.clone(), theme.fg(theme.text)),
            ]));
        }
    }
    lines
}

/// What the table's columns mean, where it is not obvious.
const LEGEND: [(&str, &str); 5] = [
    ("AGENT", "! waiting (needs you) ▶ working · idle"),
    ("CPU", "% of one core: 200% is two cores busy"),
    ("MEM", "resident memory of its processes"),
    ("COST", "USD, the project's all time (local logs)"),
    ("order", "waiting agents first, then by name"),
];

fn legend(theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw(""), Line::styled("Columns", theme.title())];
    for (name, meaning) in LEGEND {
        lines.push(Line::from(vec![
            Span::styled(format!("  {name:<8}"), theme.fg(theme.accent)),
            Span::styled(meaning, theme.fg(theme.text)),
        ]));
    }
    lines
}

/// How many lines the help has in one column: the most it can usefully scroll.
pub fn line_count(state: &State) -> usize {
    let bindings: usize = Context::ALL
        .iter()
        .map(|c| state.keymap.effective(*c).len())
        .filter(|n| *n > 0)
        .map(|n| n + 2)
        .sum();
    bindings + LEGEND.len() + 2
}

fn heading(context: Context) -> &'static str {
    match context {
        Context::List => "Sandbox table",
        Context::Detail => "Detail pane (and the table's keys)",
        Context::Screen => "Fullscreen screen (and the table's keys)",
        Context::Filter => "Filter: text, state:X, backend:X, !not",
        Context::Form => "New sandbox",
        Context::Confirm => "Questions",
        Context::Palette => "Command palette",
        Context::Help => "This help",
    }
}
