//! The credential that never enters a sandbox. The user hands it to sandbox-deck once
//! (`sandbox-deck auth --set`, on stdin: never argv, never the environment); it is kept
//! 0600 on the host. A `--network proxy` sandbox gets a placeholder of its own instead, and
//! `ANTHROPIC_BASE_URL=http://api.anthropic.com`: its API requests reach its proxy in the
//! clear, which checks the placeholder (constant time), puts the real credential in its
//! place and forwards over TLS with certificate verification (see `inject`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DeckError, IoContext, Result};

/// What kind of credential: which variable carries the placeholder inside, and which header
/// carries the real one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A long-lived OAuth token from `claude setup-token` (`Authorization: Bearer`).
    OauthToken,
    /// An API key from the console (`x-api-key`).
    ApiKey,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub kind: Kind,
    pub token: String,
}

/// Never shows the token.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credential({:?}, <{} bytes>)",
            self.kind,
            self.token.len()
        )
    }
}

/// The API's host name as the agent inside uses it (first-party features depend on it).
pub const API_HOST: &str = "api.anthropic.com";

impl Credential {
    /// Checks what the user handed over: one line of visible ASCII, no spaces.
    pub fn new(kind: Kind, text: &str) -> Result<Credential> {
        let token = text.trim();
        if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DeckError::host(
                "reading the credential",
                "expected one line with the token (printable ASCII, no spaces)",
            ));
        }
        Ok(Credential {
            kind,
            token: token.to_string(),
        })
    }

    /// Writes it 0600 (its dir 0700), replacing any earlier one.
    pub fn store(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            crate::host::fs::make_private_dir(dir)?;
        }
        let text =
            serde_json::to_vec(self).map_err(|e| DeckError::json("writing the credential", e))?;
        // A mode is given only to a new file: the old one (if any, whatever its mode) goes.
        let _ = std::fs::remove_file(path);
        crate::host::fs::write_private(path, &text)
    }

    /// The stored credential, or None when the user has handed over none.
    pub fn load(path: &Path) -> Result<Option<Credential>> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DeckError::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| DeckError::json(format!("reading {}", path.display()), e))
    }

    pub fn remove(path: &Path) -> Result<bool> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).context_io(|| format!("removing {}", path.display())),
        }
    }
}

/// A new placeholder: random, and shaped like the real thing so the agent takes it.
pub fn placeholder(kind: Kind) -> Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| DeckError::randomness("making a placeholder", e))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(match kind {
        Kind::OauthToken => format!("sk-ant-oat01-sandbox-deck-placeholder-{hex}"),
        Kind::ApiKey => format!("sk-ant-api03-sandbox-deck-placeholder-{hex}"),
    })
}

/// The variables the agent inside gets: the placeholder and the API over plain HTTP (so its
/// requests reach the proxy in the clear).
pub fn inside_env(kind: Kind, placeholder: &str) -> Vec<(String, String)> {
    let variable = match kind {
        // Not ANTHROPIC_AUTH_TOKEN: with it Claude Code drops the OAuth beta header.
        Kind::OauthToken => "CLAUDE_CODE_OAUTH_TOKEN",
        Kind::ApiKey => "ANTHROPIC_API_KEY",
    };
    vec![
        (variable.into(), placeholder.into()),
        ("ANTHROPIC_BASE_URL".into(), format!("http://{API_HOST}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_credential_is_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/credential.json");
        assert_eq!(Credential::load(&path).unwrap(), None);
        let credential = Credential::new(Kind::OauthToken, "sk-ant-oat01-abc\n").unwrap();
        credential.store(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Credential::load(&path).unwrap(), Some(credential.clone()));
        assert!(
            !format!("{credential:?}").contains("abc"),
            "Debug never shows it"
        );
        assert!(Credential::new(Kind::ApiKey, "two words").is_err());
        assert!(Credential::new(Kind::ApiKey, "").is_err());
    }

    #[test]
    fn placeholders_differ_and_never_look_like_each_other() {
        let a = placeholder(Kind::OauthToken).unwrap();
        let b = placeholder(Kind::OauthToken).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-ant-oat01-"));
    }
}
