//! Key bindings as data (`assets/keymap.toml`, the user's file merged over it). The same
//! table drives dispatch, the bottom-bar hints, the help overlay and the palette.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::command::Command;

pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

/// Where keys go: the part of the screen that has the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Context {
    List,
    Detail,
    /// The fullscreen screen view (z).
    Screen,
    Filter,
    Form,
    Confirm,
    Palette,
    Help,
}

impl Context {
    pub const ALL: [Context; 8] = [
        Context::List,
        Context::Detail,
        Context::Screen,
        Context::Filter,
        Context::Form,
        Context::Confirm,
        Context::Palette,
        Context::Help,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Context::List => "list",
            Context::Detail => "detail",
            Context::Screen => "screen",
            Context::Filter => "filter",
            Context::Form => "form",
            Context::Confirm => "confirm",
            Context::Palette => "palette",
            Context::Help => "help",
        }
    }
}

/// One key as the keymap names it. Shift is folded into the character (`G`, not `S-g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn char(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: false,
            alt: false,
        }
    }

    pub fn code(code: KeyCode) -> Key {
        Key {
            code,
            ctrl: false,
            alt: false,
        }
    }

    pub fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: true,
            alt: false,
        }
    }

    pub fn from_event(event: &KeyEvent) -> Key {
        Key {
            code: event.code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        }
    }

    pub fn parse(text: &str) -> Option<Key> {
        let mut chars = text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Some(Key::char(c));
        }
        let inner = text.strip_prefix('<')?.strip_suffix('>')?;
        let (mut ctrl, mut alt, mut shift) = (false, false, false);
        let mut name = inner;
        while let Some((prefix, rest)) = name
            .split_once('-')
            .filter(|(p, r)| p.len() == 1 && !r.is_empty())
        {
            match prefix {
                "C" => ctrl = true,
                "A" | "M" => alt = true,
                "S" => shift = true,
                _ => return None,
            }
            name = rest;
        }
        let code = match name {
            "Enter" => KeyCode::Enter,
            "Esc" => KeyCode::Esc,
            "Tab" if shift => KeyCode::BackTab,
            "Tab" => KeyCode::Tab,
            "Backspace" => KeyCode::Backspace,
            "Delete" => KeyCode::Delete,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            "Home" => KeyCode::Home,
            "End" => KeyCode::End,
            "PageUp" => KeyCode::PageUp,
            "PageDown" => KeyCode::PageDown,
            "Space" => KeyCode::Char(' '),
            single => {
                let mut chars = single.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        KeyCode::Char(if shift { c.to_ascii_uppercase() } else { c })
                    }
                    _ => return None,
                }
            }
        };
        Some(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("C-")?;
        }
        if self.alt {
            f.write_str("A-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Backspace => f.write_str("Bksp"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub command: Command,
    pub desc: String,
    pub hint: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Keymap {
    contexts: BTreeMap<Context, Vec<Binding>>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("keymap {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("keymap {origin} cannot be read: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    on: OneOrMany,
    run: String,
    desc: String,
    #[serde(default = "yes")]
    hint: bool,
}

fn yes() -> bool {
    true
}

type RawKeymap = BTreeMap<String, Vec<RawBinding>>;

impl Keymap {
    pub fn defaults() -> Keymap {
        Keymap::from_layers(None).expect("the embedded keymap is valid")
    }

    /// The defaults with `path` merged over them when it exists.
    pub fn load(path: &Path) -> Result<Keymap, KeymapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Keymap::from_layers(Some((&text, &path.display().to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Keymap::from_layers(None),
            Err(source) => Err(KeymapError::Read {
                origin: path.display().to_string(),
                source,
            }),
        }
    }

    /// The user's entries (text, where it came from) go first, so they win over the defaults.
    pub fn from_layers(user: Option<(&str, &str)>) -> Result<Keymap, KeymapError> {
        let mut keymap = Keymap::default();
        if let Some((text, origin)) = user {
            keymap.append(text, origin)?;
        }
        keymap.append(DEFAULT_KEYMAP, "defaults")?;
        Ok(keymap)
    }

    fn append(&mut self, text: &str, origin: &str) -> Result<(), KeymapError> {
        let invalid = |message: String| KeymapError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let raw: RawKeymap = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        for (context_name, entries) in raw {
            let context = Context::ALL
                .into_iter()
                .find(|c| c.as_str() == context_name)
                .ok_or_else(|| invalid(format!("unknown context [[{context_name}]]")))?;
            for (index, entry) in entries.into_iter().enumerate() {
                let at = format!("[[{context_name}]] entry {}", index + 1);
                let names = match entry.on {
                    OneOrMany::One(key) => vec![key],
                    OneOrMany::Many(keys) => keys,
                };
                let keys = names
                    .iter()
                    .map(|k| {
                        Key::parse(k).ok_or_else(|| invalid(format!("{at}: unknown key {k:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let command = entry
                    .run
                    .parse()
                    .map_err(|e| invalid(format!("{at}: {e}")))?;
                self.contexts.entry(context).or_default().push(Binding {
                    keys,
                    command,
                    desc: entry.desc,
                    hint: entry.hint,
                });
            }
        }
        Ok(())
    }

    /// The command `key` runs in `context`; the first binding naming the key wins.
    pub fn command(&self, context: Context, key: Key) -> Option<Command> {
        self.bindings(context)
            .iter()
            .find(|b| b.keys.contains(&key))
            .map(|b| b.command)
    }

    pub fn bindings(&self, context: Context) -> &[Binding] {
        self.contexts.get(&context).map_or(&[], Vec::as_slice)
    }

    /// The bindings that still do something, each with the keys no earlier entry took.
    pub fn effective(&self, context: Context) -> Vec<(Vec<Key>, &Binding)> {
        let mut taken: Vec<Key> = Vec::new();
        let mut out = Vec::new();
        for binding in self.bindings(context) {
            let keys: Vec<Key> = binding
                .keys
                .iter()
                .copied()
                .filter(|k| !taken.contains(k))
                .collect();
            taken.extend(binding.keys.iter().copied());
            if !keys.is_empty() && binding.command != Command::Noop {
                out.push((keys, binding));
            }
        }
        out
    }

    /// The bottom bar's hints for `context`: (first key, description). Neighbouring
    /// tab keys read as one hint, `1-4 tabs`, to leave room for the others.
    pub fn hints(&self, context: Context) -> Vec<(String, String)> {
        let mut hints: Vec<(String, String)> = Vec::new();
        let mut tab_run: Option<(String, usize)> = None;
        for (keys, binding) in self.effective(context).into_iter().filter(|(_, b)| b.hint) {
            let key = keys[0].to_string();
            if !matches!(binding.command, Command::ShowTab(_)) {
                tab_run = None;
                hints.push((key, binding.desc.clone()));
                continue;
            }
            match &tab_run {
                Some((first, at)) => {
                    hints[*at] = (format!("{first}-{key}"), "tabs".into());
                }
                None => {
                    tab_run = Some((key.clone(), hints.len()));
                    hints.push((key, binding.desc.clone()));
                }
            }
        }
        hints
    }

    /// The first key bound to `command` in `context`, for messages like "press S to start".
    pub fn key_for(&self, context: Context, command: Command) -> Option<Key> {
        self.effective(context)
            .into_iter()
            .find(|(_, b)| b.command == command)
            .map(|(keys, _)| keys[0])
    }
}

/// Keys joined for display: `j/↓`.
pub fn join_keys(keys: &[Key]) -> String {
    keys.iter()
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_documented() {
        assert_eq!(Key::parse("j"), Some(Key::char('j')));
        assert_eq!(Key::parse("G"), Some(Key::char('G')));
        assert_eq!(Key::parse("<C-k>"), Some(Key::ctrl('k')));
        assert_eq!(Key::parse("<S-Tab>"), Some(Key::code(KeyCode::BackTab)));
        assert_eq!(Key::parse("<Space>"), Some(Key::char(' ')));
        assert_eq!(Key::parse("<Enter>"), Some(Key::code(KeyCode::Enter)));
        assert_eq!(Key::parse("<Bogus>"), None);
        assert_eq!(Key::parse("jj"), None);
    }

    #[test]
    fn the_default_keymap_binds_every_documented_key() {
        let keymap = Keymap::defaults();
        let list = |k: &str| keymap.command(Context::List, Key::parse(k).unwrap());
        assert_eq!(list("j"), Some(Command::Down));
        assert_eq!(list("<Down>"), Some(Command::Down));
        assert_eq!(list("k"), Some(Command::Up));
        assert_eq!(list("g"), Some(Command::Top));
        assert_eq!(list("G"), Some(Command::Bottom));
        assert_eq!(list("<Enter>"), Some(Command::Attach));
        assert_eq!(list("a"), Some(Command::Attach));
        assert_eq!(list("n"), Some(Command::New));
        assert_eq!(list("s"), Some(Command::Stop));
        assert_eq!(list("S"), Some(Command::Start));
        assert_eq!(list("r"), Some(Command::Restart));
        assert_eq!(list("d"), Some(Command::Delete));
        assert_eq!(list("/"), Some(Command::Filter));
        assert_eq!(list("<Tab>"), Some(Command::FocusNext));
        assert_eq!(list("<S-Tab>"), Some(Command::FocusPrev));
        assert_eq!(list("["), Some(Command::TabPrev));
        assert_eq!(list("]"), Some(Command::TabNext));
        assert_eq!(list("y"), Some(Command::CopyName));
        assert_eq!(list("q"), Some(Command::Quit));
        assert_eq!(list("<Esc>"), Some(Command::Back));
        assert_eq!(list("?"), Some(Command::Help));
        assert_eq!(list(":"), Some(Command::Palette));
        assert_eq!(list("<C-k>"), Some(Command::Palette));
        assert_eq!(list("o"), Some(Command::SortPicker));
        assert_eq!(list("z"), Some(Command::Fullscreen));
        assert_eq!(
            list("1"),
            Some(Command::ShowTab(crate::tui::state::Tab::Agent))
        );
        assert_eq!(
            list("4"),
            Some(Command::ShowTab(crate::tui::state::Tab::Info))
        );
        assert_eq!(
            list("C"),
            Some(Command::Sort(crate::tui::sort::SortColumn::Cpu))
        );
        assert_eq!(
            list("M"),
            Some(Command::Sort(crate::tui::sort::SortColumn::Mem))
        );
        assert_eq!(list("<PageUp>"), Some(Command::ScrollUp));
        assert_eq!(list("<PageDown>"), Some(Command::ScrollDown));
        let hints = keymap.hints(Context::List);
        assert!(hints.contains(&("1-4".into(), "tabs".into())), "{hints:?}");
        assert!(
            hints.contains(&("z".into(), "fullscreen".into())),
            "{hints:?}"
        );
        let screen = |k: &str| keymap.command(Context::Screen, Key::parse(k).unwrap());
        assert_eq!(screen("<Esc>"), Some(Command::Back));
        assert_eq!(screen("z"), Some(Command::Back));
    }

    #[test]
    fn a_user_binding_wins_and_the_hint_follows_it() {
        let user = "[[list]]\non = \"x\"\nrun = \"stop\"\ndesc = \"halt\"\n[[list]]\non = \"s\"\nrun = \"noop\"\ndesc = \"\"\n";
        let keymap = Keymap::from_layers(Some((user, "user.toml"))).unwrap();
        assert_eq!(
            keymap.command(Context::List, Key::char('x')),
            Some(Command::Stop)
        );
        assert_eq!(
            keymap.command(Context::List, Key::char('s')),
            Some(Command::Noop)
        );
        let hints = keymap.hints(Context::List);
        assert!(hints.contains(&("x".into(), "halt".into())), "{hints:?}");
        assert!(!hints.iter().any(|(k, _)| k == "s"), "{hints:?}");
    }

    #[test]
    fn a_bad_user_keymap_names_the_problem() {
        let err = Keymap::from_layers(Some((
            "[[list]]\non = \"x\"\nrun = \"explode\"\ndesc = \"\"\n",
            "u.toml",
        )))
        .unwrap_err()
        .to_string();
        assert!(err.contains("u.toml") && err.contains("explode"), "{err}");
        let err = Keymap::from_layers(Some((
            "[[lst]]\non = \"x\"\nrun = \"stop\"\ndesc = \"\"\n",
            "u.toml",
        )))
        .unwrap_err()
        .to_string();
        assert!(err.contains("lst"), "{err}");
        let err = Keymap::from_layers(Some((
            "[[list]]\non = \"<Nope>\"\nrun = \"stop\"\ndesc = \"\"\n",
            "u.toml",
        )))
        .unwrap_err()
        .to_string();
        assert!(err.contains("<Nope>"), "{err}");
    }
}
