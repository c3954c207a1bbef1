//! `[user@]host` as the user typed it for `--host` or `mirror`: handed to ssh as one
//! argument after `--`, so it can never be read as an option, and refused when it could
//! not be a destination at all (empty, a leading `-`, spaces or control characters).

use std::fmt;

use crate::error::{DeckError, Result};

/// Where ssh goes: whatever ssh makes of it (an alias of the user's ssh config, a name, an
/// address, `user@host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination(String);

impl Destination {
    pub fn parse(text: &str) -> Result<Destination> {
        let why = if text.is_empty() {
            Some("it is empty")
        } else if text.starts_with('-') {
            Some("it starts with '-' (ssh would read an option)")
        } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains spaces or control characters")
        } else if text.len() > 255 {
            Some("it is longer than 255 characters")
        } else {
            None
        };
        match why {
            Some(why) => Err(DeckError::InvalidArgument {
                what: format!("the host {text:?}"),
                why: format!("{why}; give [user@]host as ssh takes it"),
            }),
            None => Ok(Destination(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host part, as a HOST column shows it.
    pub fn host(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(_, host)| host)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Destination {
    type Err = DeckError;
    fn from_str(text: &str) -> Result<Destination> {
        Destination::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_users_pass_and_option_shaped_or_spaced_text_does_not() {
        for ok in [
            "box",
            "me@box",
            "box.example.org",
            "10.0.0.2",
            "me@[::1]",
            "deck-a",
        ] {
            assert_eq!(Destination::parse(ok).expect(ok).as_str(), ok);
        }
        assert_eq!(Destination::parse("me@box").unwrap().host(), "box");
        for bad in ["", "-oProxyCommand=sh", "a b", "box\n", "a\u{1b}b"] {
            let err = Destination::parse(bad).expect_err(bad);
            assert_eq!(err.kind(), "invalid_argument", "{bad:?}");
        }
    }
}
