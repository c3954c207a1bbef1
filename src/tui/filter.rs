//! The table filter: words that must all match. Plain text matches the name or project,
//! `state:running`, `backend:bubblewrap` and `host:NAME` (a mirror of several hosts) match a
//! field, and `!` in front inverts a word.

use crate::sandbox::SandboxRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Text(String),
    State(String),
    Backend(String),
    Host(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    terms: Vec<(bool, Term)>,
}

impl Filter {
    pub fn parse(text: &str) -> Filter {
        let terms = text
            .split_whitespace()
            .filter_map(|word| {
                let (negated, word) = match word.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, word),
                };
                let word = word.to_lowercase();
                let term = if let Some(v) = word.strip_prefix("state:") {
                    Term::State(v.to_owned())
                } else if let Some(v) = word.strip_prefix("backend:") {
                    Term::Backend(v.to_owned())
                } else if let Some(v) = word.strip_prefix("host:") {
                    Term::Host(v.to_owned())
                } else {
                    Term::Text(word)
                };
                // A lone `!` or `state:` is still being typed: it filters nothing yet.
                let empty = matches!(&term, Term::Text(v) | Term::State(v) | Term::Backend(v) | Term::Host(v) if v.is_empty());
                (!empty).then_some((negated, term))
            })
            .collect();
        Filter { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, record: &SandboxRecord) -> bool {
        self.terms
            .iter()
            .all(|(negated, term)| term_matches(term, record) != *negated)
    }
}

fn term_matches(term: &Term, record: &SandboxRecord) -> bool {
    match term {
        Term::Text(text) => {
            record.name.bare().contains(text.as_str())
                || record
                    .project_dir
                    .as_path()
                    .to_string_lossy()
                    .to_lowercase()
                    .contains(text.as_str())
        }
        // A prefix is enough: `state:run` while typing already narrows the table.
        Term::State(state) => record.state.as_str().starts_with(state.as_str()),
        Term::Backend(backend) => record.backend.as_str().starts_with(backend.as_str()),
        // A host's sandboxes are named `name@host` (see `remote::fleet`); one host's none.
        Term::Host(host) => record
            .name
            .split_host()
            .1
            .is_some_and(|h| h.to_lowercase().starts_with(host.as_str())),
    }
}
