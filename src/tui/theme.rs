//! Colours from the config, adapted to what the terminal can show: none under `NO_COLOR`,
//! the nearest of 256 without truecolor.

use ratatui::style::{Color, Modifier, Style};

use crate::config::ThemeConfig;
use crate::engine::status::AgentState;
use crate::sandbox::SandboxState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorSupport {
    None,
    Indexed,
    TrueColor,
}

impl ColorSupport {
    /// From the environment: `NO_COLOR` (any non-empty value) wins, then `COLORTERM`.
    pub fn detect() -> ColorSupport {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return ColorSupport::None;
        }
        match std::env::var("COLORTERM").as_deref() {
            Ok("truecolor" | "24bit") => ColorSupport::TrueColor,
            _ => ColorSupport::Indexed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub accent: Color,
    pub text: Color,
    pub muted: Color,
    pub selection: Color,
    pub running: Color,
    pub starting: Color,
    pub stopped: Color,
    pub exited: Color,
    pub dead: Color,
    pub error: Color,
    pub support: ColorSupport,
}

impl Theme {
    pub fn new(config: &ThemeConfig, support: ColorSupport) -> Theme {
        let pick = |value: &str| adapt(value.parse().unwrap_or(Color::Reset), support);
        Theme {
            accent: pick(&config.accent),
            text: pick(&config.text),
            muted: pick(&config.muted),
            selection: pick(&config.selection),
            running: pick(&config.running),
            starting: pick(&config.starting),
            stopped: pick(&config.stopped),
            exited: pick(&config.exited),
            dead: pick(&config.dead),
            error: pick(&config.error),
            support,
        }
    }

    pub fn fg(&self, color: Color) -> Style {
        Style::default().fg(color)
    }

    pub fn state(&self, state: SandboxState) -> Style {
        let color = match state {
            SandboxState::Running => self.running,
            SandboxState::Starting => self.starting,
            SandboxState::Stopped => self.stopped,
            SandboxState::Exited => self.exited,
            SandboxState::Dead => self.dead,
        };
        self.fg(color)
    }

    /// An agent's state. Waiting is meant to be impossible to miss: bold on a strong
    /// background, and reversed video where there is no colour.
    pub fn agent(&self, state: AgentState) -> Style {
        match state {
            AgentState::Starting => self.fg(self.starting),
            AgentState::Working => self.fg(self.running),
            AgentState::Waiting => self
                .fg(self.starting)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            AgentState::Idle => self.fg(self.muted),
            AgentState::Exited => self.fg(self.exited),
            AgentState::Dead => self.fg(self.dead),
        }
    }

    /// The selected row: a background where there is colour, reversed video where not.
    pub fn selected(&self) -> Style {
        match self.support {
            ColorSupport::None => Style::default().add_modifier(Modifier::REVERSED),
            _ => Style::default()
                .bg(self.selection)
                .add_modifier(Modifier::BOLD),
        }
    }

    pub fn title(&self) -> Style {
        self.fg(self.accent).add_modifier(Modifier::BOLD)
    }

    pub fn key(&self) -> Style {
        self.fg(self.accent).add_modifier(Modifier::BOLD)
    }
}

pub fn state_glyph(state: SandboxState) -> &'static str {
    match state {
        SandboxState::Running => "●",
        SandboxState::Starting => "◐",
        SandboxState::Stopped => "○",
        SandboxState::Exited => "◍",
        SandboxState::Dead => "✖",
    }
}

pub fn agent_glyph(state: AgentState) -> &'static str {
    match state {
        AgentState::Starting => "◌",
        AgentState::Working => "▶",
        AgentState::Waiting => "!",
        AgentState::Idle => "·",
        AgentState::Exited => "■",
        AgentState::Dead => "✖",
    }
}

fn adapt(color: Color, support: ColorSupport) -> Color {
    match (support, color) {
        (ColorSupport::None, _) => Color::Reset,
        (ColorSupport::Indexed, Color::Rgb(r, g, b)) => Color::Indexed(nearest_256(r, g, b)),
        (_, color) => color,
    }
}

/// The nearest xterm-256 colour: the 6x6x6 cube or the grey ramp, whichever is closer.
pub fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let level = |v: u8| {
        LEVELS
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| (i32::from(**l) - i32::from(v)).abs())
            .map_or(0, |(i, _)| i as u8)
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = (
        LEVELS[ri as usize],
        LEVELS[gi as usize],
        LEVELS[bi as usize],
    );
    let avg = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let grey_index = ((avg.saturating_sub(8)) / 10).min(23) as u8;
    let grey = 8 + 10 * grey_index;
    let dist = |(x, y, z): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(x, r) + d(y, g) + d(z, b)
    };
    if dist((grey, grey, grey)) < dist(cube) {
        232 + grey_index
    } else {
        16 + 36 * ri + 6 * gi + bi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truecolor_falls_back_to_the_nearest_of_256() {
        assert_eq!(nearest_256(255, 0, 0), 196);
        assert_eq!(nearest_256(0, 0, 0), 16);
        assert_eq!(nearest_256(0x8a, 0x8a, 0x8a), 245);
        assert_eq!(nearest_256(0x5f, 0xaf, 0xff), 75);
    }

    #[test]
    fn no_color_means_no_colour() {
        let config = crate::config::Config::defaults().ui.theme;
        let theme = Theme::new(&config, ColorSupport::None);
        assert_eq!(theme.accent, Color::Reset);
        assert_eq!(theme.selected().add_modifier, Modifier::REVERSED);
    }

    #[test]
    fn the_readme_shows_the_glyphs_the_table_draws() {
        let readme = include_str!("../../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| AGENT |"))
            .expect("the README's AGENT row");
        // What the AGENT column can show: a running sandbox's agent (dead is a sandbox
        // state, shown by STATE) or `-`.
        for state in [
            AgentState::Waiting,
            AgentState::Working,
            AgentState::Idle,
            AgentState::Starting,
            AgentState::Exited,
        ] {
            let cell = format!("`{} {state}`", agent_glyph(state));
            assert!(row.contains(&cell), "the README lacks {cell}: {row}");
        }
        assert!(row.contains("`-`"), "{row}");
        assert!(!row.contains(agent_glyph(AgentState::Dead)), "{row}");
    }
}
