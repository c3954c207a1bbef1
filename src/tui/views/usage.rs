//! The Usage tab: what the selected sandbox's project has used (tokens by type, cost,
//! sessions), and the current 5-hour block over every project, from local Claude logs.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::format::human_duration;
use crate::sandbox::SandboxRecord;
use crate::tui::live::{count, usd};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::usage::blocks::ESTIMATE_NOTE;

const LABEL_WIDTH: usize = 12;

pub fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    state: &State,
    record: &SandboxRecord,
    theme: &Theme,
) {
    let Some(usage) = &state.live.usage else {
        let text = Line::styled("reading the Claude logs…", theme.fg(theme.muted));
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let label = |text: &str| Span::styled(format!("{text:>LABEL_WIDTH$} "), theme.fg(theme.muted));
    let row = |key: &str, value: String| {
        Line::from(vec![label(key), Span::styled(value, theme.fg(theme.text))])
    };
    let heading = |text: String| Line::styled(text, theme.title());
    let project = usage.for_project(record.project_dir.as_path());
    let t = &project.totals;
    let mut lines = vec![heading("This project, all time".into())];
    if t.entries == 0 {
        lines.push(Line::styled(
            "  none logged for this project yet",
            theme.fg(theme.muted),
        ));
    } else {
        lines.extend([
            row("input", tokens(t.input_tokens)),
            row("output", tokens(t.output_tokens)),
            row("cache write", tokens(t.cache_creation_tokens)),
            row("cache read", tokens(t.cache_read_tokens)),
            row("cost", usd(t.cost_usd)),
            row(
                "sessions",
                match project.last_seen {
                    Some(last) => format!("{} (last {})", project.sessions, at(last, state.now)),
                    None => project.sessions.to_string(),
                },
            ),
        ]);
    }
    lines.push(Line::raw(""));
    lines.push(heading("5-hour block, all projects".into()));
    lines.push(Line::styled(
        format!("  {ESTIMATE_NOTE}"),
        theme.fg(theme.muted),
    ));
    match &usage.block {
        None => lines.push(Line::styled("  no active block", theme.fg(theme.muted))),
        Some(b) => {
            let left = b.end - state.now;
            lines.push(row(
                "block",
                format!(
                    "{}–{} UTC, {} left",
                    b.start.format("%H:%M"),
                    b.end.format("%H:%M"),
                    human_duration(left)
                ),
            ));
            lines.push(row(
                "so far",
                format!(
                    "{} tokens, {}",
                    count(b.totals.total_tokens),
                    usd(b.totals.cost_usd)
                ),
            ));
            if let Some(rate) = &b.burn_rate {
                lines.push(row(
                    "burn rate",
                    format!(
                        "{} tokens/min, {}/h",
                        count(rate.tokens_per_minute.round() as u64),
                        usd(rate.cost_usd_per_minute * 60.0)
                    ),
                ));
            }
            if let Some(p) = &b.projection {
                lines.push(row(
                    "projected",
                    format!(
                        "{} tokens, {} by {}",
                        count(p.total_tokens),
                        usd(p.cost_usd),
                        b.end.format("%H:%M")
                    ),
                ));
            }
        }
    }
    if let Some(reset) = usage.limit_resets_at.filter(|r| *r > state.now) {
        lines.push(row("limit resets", at(reset, state.now)));
    }
    lines.push(Line::raw(""));
    lines.push(row(
        "today",
        format!(
            "{} tokens, {} (all projects)",
            count(usage.today.total_tokens),
            usd(usage.today.cost_usd)
        ),
    ));
    if usage.skipped_files > 0 {
        lines.push(row(
            "skipped",
            format!(
                "{} file(s) not read (`sandbox-deck usage` names them)",
                usage.skipped_files
            ),
        ));
    }
    // A narrow pane wraps what does not fit rather than cutting it.
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// `1,234,567`: exact, as the CLI's report has them.
fn tokens(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The time on the day of `now`, the date on any other.
fn at(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}
