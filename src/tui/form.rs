//! The new-sandbox form: its fields and the pure rules for editing them.

use std::path::Path;

use crate::backend::Options;
use crate::engine::CreateRequest;
use crate::sandbox::{Payload, SandboxName};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Dir,
    Name,
    Backend,
    Network,
    GhToken,
    Payload,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::Dir,
        Field::Name,
        Field::Backend,
        Field::Network,
        Field::GhToken,
        Field::Payload,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Dir => "Project dir",
            Field::Name => "Name",
            Field::Backend => "Backend",
            Field::Network => "Network",
            Field::GhToken => "GitHub token",
            Field::Payload => "Runs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub field: Field,
    pub dir: String,
    pub name: String,
    /// Once the user typed a name, a new dir no longer replaces it.
    pub name_edited: bool,
    pub network: crate::sandbox::Network,
    pub gh_token: bool,
    pub shell: bool,
    /// The engine's own message, shown under the field it is about.
    pub error: Option<(Field, String)>,
    /// Directories matching what was typed, when Tab found more than one.
    pub completions: Vec<String>,
    /// The dir as the last Tab left it: Tab again, with nothing typed since, moves on.
    pub completed_dir: Option<String>,
    pub submitting: bool,
}

impl Form {
    pub fn new(dir: String, network: crate::sandbox::Network) -> Form {
        let mut form = Form {
            field: Field::Dir,
            dir,
            name: String::new(),
            name_edited: false,
            network,
            gh_token: false,
            shell: false,
            error: None,
            completions: Vec::new(),
            completed_dir: None,
            submitting: false,
        };
        form.default_name();
        form
    }

    pub fn move_field(&mut self, step: isize) {
        let index = Field::ALL
            .iter()
            .position(|f| *f == self.field)
            .unwrap_or(0) as isize;
        let len = Field::ALL.len() as isize;
        self.field = Field::ALL[(index + step).rem_euclid(len) as usize];
        self.completions.clear();
    }

    pub fn type_char(&mut self, c: char) {
        match self.field {
            Field::Dir => {
                self.dir.push(c);
                self.dir_changed();
            }
            Field::Name => {
                self.name.push(c);
                self.name_changed();
            }
            _ if c == ' ' => self.toggle(),
            _ => {}
        }
    }

    pub fn backspace(&mut self) {
        match self.field {
            Field::Dir => {
                self.dir.pop();
                self.dir_changed();
            }
            Field::Name => {
                self.name.pop();
                self.name_changed();
            }
            _ => {}
        }
    }

    /// Empties the text field with the focus (the dir starts filled in).
    pub fn clear_field(&mut self) {
        match self.field {
            Field::Dir => {
                self.dir.clear();
                self.dir_changed();
            }
            Field::Name => {
                self.name.clear();
                self.name_changed();
            }
            _ => {}
        }
    }

    /// Space on a switch flips it; on a text field it is just a space.
    pub fn toggle(&mut self) {
        match self.field {
            Field::Network => self.network = self.network.next(),
            Field::GhToken => self.gh_token = !self.gh_token,
            Field::Payload => self.shell = !self.shell,
            Field::Dir | Field::Name => self.type_char(' '),
            // Only bubblewrap exists so far: nothing to switch to.
            Field::Backend => {}
        }
    }

    /// Puts the engine's message under the field it is about.
    pub fn engine_error(&mut self, message: String) {
        let lower = message.to_lowercase();
        let field = if lower.contains("sandbox name") || lower.contains("already exists") {
            Field::Name
        } else if lower.contains("project directory") {
            Field::Dir
        } else if lower.contains("token") {
            Field::GhToken
        } else {
            Field::Payload
        };
        self.field = field;
        self.error = Some((field, message));
    }

    /// Whether Tab in the dir field moves on rather than completing: the last Tab left the
    /// path as it is now.
    pub fn dir_settled(&self) -> bool {
        self.completed_dir.as_deref() == Some(self.dir.as_str())
    }

    /// Applies what Tab found for `input`: one match completes it, several extend it to
    /// their common prefix and are listed; none means there is nothing left to complete, so
    /// Tab moves on to the next field (a folder that does not exist yet is offered at submit).
    pub fn complete(&mut self, input: &str, candidates: Vec<String>) {
        if self.dir != input {
            return; // the user typed on meanwhile
        }
        match candidates.as_slice() {
            [] => {
                self.move_field(1);
                return;
            }
            [only] => {
                self.dir = format!("{only}/");
                self.completions.clear();
                self.dir_changed();
            }
            many => {
                let prefix = common_prefix(many);
                if prefix.len() > self.dir.len() {
                    self.dir = prefix;
                    self.dir_changed();
                }
                self.completions = candidates;
            }
        }
        self.completed_dir = Some(self.dir.clone());
    }

    fn dir_changed(&mut self) {
        if matches!(self.error, Some((Field::Dir, _))) {
            self.error = None;
        }
        self.default_name();
    }

    fn default_name(&mut self) {
        if !self.name_edited {
            let dir = self.dir.trim();
            self.name = if dir.is_empty() {
                String::new()
            } else {
                SandboxName::from_dir(Path::new(dir)).to_string()
            };
        }
    }

    /// Checks the name as the engine will, so a bad one shows before submitting.
    fn name_changed(&mut self) {
        self.name_edited = true;
        self.error = match SandboxName::parse(&self.name) {
            Err(e) if !self.name.is_empty() => Some((Field::Name, e.to_string())),
            _ => None,
        };
    }

    /// The request to submit (with the config's opt-ins), or the field to fix first.
    pub fn request(&self, options: Options) -> Result<CreateRequest, (Field, String)> {
        // Only the check made while typing blocks; the engine's last answer may be stale.
        if let Some(error) = self.error.as_ref().filter(|(f, _)| *f == Field::Name) {
            return Err(error.clone());
        }
        let dir = self.dir.trim();
        if dir.is_empty() {
            return Err((
                Field::Dir,
                "enter the project directory (Tab completes)".into(),
            ));
        }
        Ok(CreateRequest {
            project_dir: dir.into(),
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            payload: Payload::new(self.shell, Vec::new()),
            network: Some(self.network),
            allow: Vec::new(),
            gh_token: self.gh_token,
            profile: None,
            options,
        })
    }
}

fn common_prefix(items: &[String]) -> String {
    let Some(first) = items.first() else {
        return String::new();
    };
    let mut len = first.len();
    for item in &items[1..] {
        len = first
            .char_indices()
            .zip(item.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(len);
    }
    first[..len].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_follows_the_dir_until_typed() {
        let mut form = Form::new(String::new(), crate::sandbox::Network::Proxy);
        for c in "/src/My_App".chars() {
            form.type_char(c);
        }
        assert_eq!(form.name, "my-app");
        form.field = Field::Name;
        form.type_char('x');
        form.field = Field::Dir;
        form.type_char('2');
        assert_eq!(form.name, "my-appx");
    }

    #[test]
    fn a_bad_name_shows_the_engines_message() {
        let mut form = Form::new("/src/api".into(), crate::sandbox::Network::Proxy);
        form.field = Field::Name;
        form.type_char('_');
        let (field, message) = form.error.clone().unwrap();
        assert_eq!(field, Field::Name);
        assert!(message.contains("invalid sandbox name"), "{message}");
        assert!(form.request(Options::default()).is_err());
    }

    #[test]
    fn completion_extends_to_the_common_prefix() {
        let mut form = Form::new("/src/a".into(), crate::sandbox::Network::Proxy);
        form.complete("/src/a", vec!["/src/alpha".into(), "/src/alps".into()]);
        assert_eq!(form.dir, "/src/alp");
        assert_eq!(form.completions.len(), 2);
        form.complete("/src/alp", vec!["/src/alpha".into()]);
        assert_eq!(form.dir, "/src/alpha/");
        assert!(form.completions.is_empty());
        form.complete("stale", vec!["/x".into()]);
        assert_eq!(form.dir, "/src/alpha/");
        assert!(form.dir_settled(), "Tab again moves on");
        form.type_char('x');
        assert!(!form.dir_settled(), "typing asks for completion again");
        form.complete("/src/alpha/x", vec![]);
        assert_eq!(
            form.field,
            Field::Name,
            "nothing to complete: on to the next field"
        );
    }
}
