//! The Usage tab: what the selected sandbox's project has used (tokens by type, cost,
//! sessions), and the current 5-hour block over every project, from local Claude logs.

use crate::remote::fleet_usage::record_project_key;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::format::human_duration;
use crate::sandbox::SandboxRecord;
use crate::tui::live::{ProjectUsage, UsageSummary, count, usd};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::usage::Block;
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
    let style = Style(theme);
    let mut lines = project(
        &style,
        &usage.for_project(&record_project_key(record)),
        state.now,
    );
    lines.push(Line::raw(""));
    lines.extend(block(&style, usage.block.as_ref(), state.now));
    lines.extend(account(&style, usage, state.now));
    // A narrow pane wraps what does not fit rather than cutting it.
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// How the tab's lines look: headings, notes and labelled rows.
struct Style<'a>(&'a Theme);

impl Style<'_> {
    fn heading(&self, text: &str) -> Line<'static> {
        Line::styled(text.to_owned(), self.0.title())
    }

    fn note(&self, text: String) -> Line<'static> {
        Line::styled(text, self.0.fg(self.0.muted))
    }

    fn row(&self, key: &str, value: String) -> Line<'static> {
        Line::from(vec![
            Span::styled(format!("{key:>LABEL_WIDTH$} "), self.0.fg(self.0.muted)),
            Span::styled(value, self.0.fg(self.0.text)),
        ])
    }
}

/// The selected sandbox's project, all time.
fn project(style: &Style<'_>, project: &ProjectUsage, now: DateTime<Utc>) -> Vec<Line<'static>> {
    let t = &project.totals;
    let mut lines = vec![style.heading("This project, all time")];
    if t.entries == 0 {
        lines.push(style.note("  none logged for this project yet".into()));
        return lines;
    }
    let sessions = match project.last_seen {
        Some(last) => format!("{} (last {})", project.sessions, at(last, now)),
        None => project.sessions.to_string(),
    };
    lines.extend([
        style.row("input", tokens(t.input_tokens)),
        style.row("output", tokens(t.output_tokens)),
        style.row("cache write", tokens(t.cache_creation_tokens)),
        style.row("cache read", tokens(t.cache_read_tokens)),
        style.row("cost", usd(t.cost_usd)),
        style.row("sessions", sessions),
    ]);
    lines
}

/// The active 5-hour block over every project.
fn block(style: &Style<'_>, block: Option<&Block>, now: DateTime<Utc>) -> Vec<Line<'static>> {
    let mut lines = vec![
        style.heading("5-hour block, all projects"),
        style.note(format!("  {ESTIMATE_NOTE}")),
    ];
    let Some(b) = block else {
        lines.push(style.note("  no active block".into()));
        return lines;
    };
    let (start, end) = (b.start.format("%H:%M"), b.end.format("%H:%M"));
    let left = human_duration(b.end - now);
    lines.push(style.row("block", format!("{start}–{end} UTC, {left} left")));
    let (tokens_so_far, cost) = (count(b.totals.total_tokens), usd(b.totals.cost_usd));
    lines.push(style.row("so far", format!("{tokens_so_far} tokens, {cost}")));
    if let Some(rate) = &b.burn_rate {
        let per_minute = count(rate.tokens_per_minute.round() as u64);
        let per_hour = usd(rate.cost_usd_per_minute * 60.0);
        lines.push(style.row(
            "burn rate",
            format!("{per_minute} tokens/min, {per_hour}/h"),
        ));
    }
    if let Some(p) = &b.projection {
        let (total, cost) = (count(p.total_tokens), usd(p.cost_usd));
        lines.push(style.row("projected", format!("{total} tokens, {cost} by {end}")));
    }
    lines
}

/// What is per account rather than per project: the limit's reset, today, skipped files.
fn account(style: &Style<'_>, usage: &UsageSummary, now: DateTime<Utc>) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(reset) = usage.limit_resets_at.filter(|r| *r > now) {
        lines.push(style.row("limit resets", at(reset, now)));
    }
    lines.push(Line::raw(""));
    let (total, cost) = (count(usage.today.total_tokens), usd(usage.today.cost_usd));
    lines.push(style.row("today", format!("{total} tokens, {cost} (all projects)")));
    if usage.skipped_files > 0 {
        lines.push(style.row(
            "skipped",
            format!(
                "{} file(s) not read (`sandbox-deck usage` names them)",
                usage.skipped_files
            ),
        ));
    }
    lines
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
