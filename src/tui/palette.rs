//! The command palette: every binding of the table's context, fuzzy-matched on what is typed.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};

use super::command::Command;
use super::keymap::{Context, Keymap, join_keys};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Palette {
    pub query: String,
    pub selected: usize,
}

/// One line of the palette.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub command: Command,
    pub desc: String,
    pub keys: String,
}

impl AsRef<str> for Entry {
    fn as_ref(&self) -> &str {
        &self.desc
    }
}

/// The entries matching `query`, best first; all of them in keymap order when it is empty.
pub fn entries(keymap: &Keymap, query: &str) -> Vec<Entry> {
    let all: Vec<Entry> = keymap
        .effective(Context::List)
        .into_iter()
        .filter(|(_, b)| {
            !matches!(
                b.command,
                Command::Palette | Command::SortPicker | Command::Back
            )
        })
        .map(|(keys, b)| Entry {
            command: b.command,
            desc: b.desc.clone(),
            keys: join_keys(&keys),
        })
        .collect();
    if query.trim().is_empty() {
        return all;
    }
    let mut matcher = Matcher::new(Config::DEFAULT);
    let pattern = Pattern::parse(query, CaseMatching::Ignore, Normalization::Smart);
    pattern
        .match_list(all, &mut matcher)
        .into_iter()
        .map(|(entry, _score)| entry)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_matching_finds_commands_by_their_description() {
        let keymap = Keymap::defaults();
        let found = entries(&keymap, "stp");
        assert_eq!(found.first().map(|e| e.command), Some(Command::Stop));
        let sorts = entries(&keymap, "sort");
        assert!(sorts.len() >= 5, "{sorts:?}");
        assert!(entries(&keymap, "").len() > 10);
        assert!(entries(&keymap, "zzzzqqq").is_empty());
    }
}
