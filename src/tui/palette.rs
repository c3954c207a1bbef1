//! The command palette: every binding of the table's context and every sandbox by name,
//! fuzzy-matched on what is typed (`:api` jumps to api, as in k9s).

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};

use super::command::Command;
use super::keymap::{Context, Keymap, join_keys};
use crate::sandbox::{SandboxName, SandboxRecord};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Palette {
    pub query: String,
    pub selected: usize,
}

/// What a line of the palette does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Command(Command),
    /// Selects this sandbox.
    Sandbox(SandboxName),
}

/// One line of the palette: what it does, the text matched, and what is shown on its right
/// (the keys of a command, the state of a sandbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub target: Target,
    pub desc: String,
    pub keys: String,
}

impl AsRef<str> for Entry {
    fn as_ref(&self) -> &str {
        &self.desc
    }
}

/// The entries matching `query`, best first; when it is empty, the commands in keymap order,
/// then the sandboxes as the table lists them.
pub fn entries(keymap: &Keymap, sandboxes: &[&SandboxRecord], query: &str) -> Vec<Entry> {
    let mut all: Vec<Entry> = keymap
        .effective(Context::List)
        .into_iter()
        .filter(|(_, b)| {
            !matches!(
                b.command,
                Command::Palette | Command::SortPicker | Command::Back
            )
        })
        .map(|(keys, b)| Entry {
            target: Target::Command(b.command),
            desc: b.desc.clone(),
            keys: join_keys(&keys),
        })
        .collect();
    all.extend(sandboxes.iter().map(|r| Entry {
        target: Target::Sandbox(r.name.clone()),
        desc: r.name.to_string(),
        keys: format!("sandbox, {}", r.state),
    }));
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
        let found = entries(&keymap, &[], "stp");
        assert_eq!(
            found.first().map(|e| &e.target),
            Some(&Target::Command(Command::Stop))
        );
        let sorts = entries(&keymap, &[], "sort");
        assert!(sorts.len() >= 5, "{sorts:?}");
        assert!(entries(&keymap, &[], "").len() > 10);
        assert!(entries(&keymap, &[], "zzzzqqq").is_empty());
    }
}
