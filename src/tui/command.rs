//! The commands a key, a click or the palette can run: the `run` field of the keymap.

use std::fmt;
use std::str::FromStr;

use super::layout::Tab;
use super::sort::SortColumn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    Back,
    Down,
    Up,
    Top,
    Bottom,
    Attach,
    New,
    Stop,
    Start,
    /// Start without resuming the agent's conversation.
    StartFresh,
    Restart,
    Delete,
    Filter,
    FocusNext,
    FocusPrev,
    TabNext,
    TabPrev,
    /// One tab of the detail pane, by name (`tab:screen`); the number keys run these.
    ShowTab(Tab),
    /// Scrolls the Agent preview back (up) or forward (down), half a pane at a time.
    ScrollUp,
    ScrollDown,
    /// The selected sandbox's screen over the whole terminal.
    Fullscreen,
    CopyName,
    SortPicker,
    Sort(SortColumn),
    Help,
    Palette,
    Submit,
    Cancel,
    Complete,
    FieldNext,
    FieldPrev,
    Toggle,
    /// Empties the text being typed.
    Clear,
    /// Answers the selected sandbox's oldest held connection (`egress::held`).
    AllowOnce,
    AllowSession,
    AllowAlways,
    DenyHeld,
    /// Unbinds a key in a user keymap.
    Noop,
}

const SIMPLE: &[(&str, Command)] = &[
    ("quit", Command::Quit),
    ("back", Command::Back),
    ("down", Command::Down),
    ("up", Command::Up),
    ("top", Command::Top),
    ("bottom", Command::Bottom),
    ("attach", Command::Attach),
    ("new", Command::New),
    ("stop", Command::Stop),
    ("start", Command::Start),
    ("start_fresh", Command::StartFresh),
    ("restart", Command::Restart),
    ("delete", Command::Delete),
    ("filter", Command::Filter),
    ("focus_next", Command::FocusNext),
    ("focus_prev", Command::FocusPrev),
    ("tab_next", Command::TabNext),
    ("tab_prev", Command::TabPrev),
    ("scroll_up", Command::ScrollUp),
    ("scroll_down", Command::ScrollDown),
    ("fullscreen", Command::Fullscreen),
    ("copy_name", Command::CopyName),
    ("sort_picker", Command::SortPicker),
    ("help", Command::Help),
    ("palette", Command::Palette),
    ("submit", Command::Submit),
    ("cancel", Command::Cancel),
    ("complete", Command::Complete),
    ("field_next", Command::FieldNext),
    ("field_prev", Command::FieldPrev),
    ("toggle", Command::Toggle),
    ("clear", Command::Clear),
    ("allow_once", Command::AllowOnce),
    ("allow_session", Command::AllowSession),
    ("allow_always", Command::AllowAlways),
    ("deny_held", Command::DenyHeld),
    ("noop", Command::Noop),
];

#[derive(Debug, thiserror::Error)]
#[error("unknown command {0:?} (the default keymap.toml lists them at the top)")]
pub struct UnknownCommand(String);

impl FromStr for Command {
    type Err = UnknownCommand;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(column) = s.strip_prefix("sort:") {
            return column
                .parse()
                .map(Command::Sort)
                .map_err(|_| UnknownCommand(s.to_owned()));
        }
        if let Some(name) = s.strip_prefix("tab:") {
            return Tab::ALL
                .into_iter()
                .find(|t| t.as_str() == name)
                .map(Command::ShowTab)
                .ok_or_else(|| UnknownCommand(s.to_owned()));
        }
        SIMPLE
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, c)| *c)
            .ok_or_else(|| UnknownCommand(s.to_owned()))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Sort(column) => return write!(f, "sort:{column}"),
            Command::ShowTab(tab) => return write!(f, "tab:{}", tab.as_str()),
            _ => {}
        }
        let name = SIMPLE
            .iter()
            .find(|(_, c)| c == self)
            .map_or("?", |(name, _)| name);
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_name_that_parses_back() {
        for (name, command) in SIMPLE {
            assert_eq!(name.parse::<Command>().ok(), Some(*command));
            assert_eq!(command.to_string(), *name);
        }
        for column in SortColumn::ALL {
            let command = Command::Sort(column);
            assert_eq!(command.to_string().parse::<Command>().ok(), Some(command));
        }
        for tab in Tab::ALL {
            let command = Command::ShowTab(tab);
            assert_eq!(command.to_string().parse::<Command>().ok(), Some(command));
        }
        assert!("sort:colour".parse::<Command>().is_err());
        assert!("tab:nowhere".parse::<Command>().is_err());
    }

    #[test]
    fn the_keymap_comment_lists_every_command() {
        let header: String = super::super::keymap::DEFAULT_KEYMAP
            .lines()
            .take_while(|l| l.starts_with('#') || l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        for (name, _) in SIMPLE {
            assert!(header.contains(name), "{name} is not listed");
        }
    }
}
