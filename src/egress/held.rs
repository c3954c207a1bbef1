//! Connections to unlisted hosts, held for the user's answer instead of refused at once.
//!
//! The proxy and whoever answers share only files, in the sandbox's state dir (never bound
//! into the sandbox), so the proxy stays independent of the engine and the TUI:
//! - `egress-held/ID.json` (0600), written by the proxy while a connection waits: its id,
//!   kind, `host`, `port` and `since`. Gone once answered, timed out, or the proxy restarts.
//! - `egress-held/ID.answer` (0600), written by `sandbox-deck net` (or the engine): `once`,
//!   `session` (with the rule to remember while the proxy lives), `always` (the rule was
//!   put in the sandbox's list as well) or `deny`.
//!
//! The proxy looks for an answer every [`POLL`] while it holds; a held connection also goes
//! on when the allowlist comes to let it through meanwhile. Bounded: at most `max` held at
//! once (the rest refused at once), each for at most `timeout` (then refused).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rules::{Allowlist, Target};
use crate::error::{DeckError, IoContext, Result};

/// How often a held connection looks for its answer.
const POLL: Duration = Duration::from_millis(200);

/// A connection waiting for the user, as its file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub id: String,
    /// `connect` or `http`.
    pub kind: String,
    pub host: String,
    pub port: u16,
    pub since: chrono::DateTime<chrono::Utc>,
}

impl Held {
    /// `host:port` (the host as the proxy spells it, IPv6 literals bracketed).
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The user's answer to a held connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This connection only; the next one is held again.
    Once,
    /// Every connection the rule matches while the proxy lives.
    Session,
    /// Written to the sandbox's own list, for now and every later start.
    Always,
}

/// An answer as the API and the TUI name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Once,
    Session,
    Always,
    Deny,
}

impl Reply {
    /// The scope it allows for; `None`: denied.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Reply::Once => Some(Scope::Once),
            Reply::Session => Some(Scope::Session),
            Reply::Always => Some(Scope::Always),
            Reply::Deny => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reply::Once => "allowed once",
            Reply::Session => "allowed for the session",
            Reply::Always => "allowed always",
            Reply::Deny => "denied",
        }
    }
}

/// What an answer file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// `None`: denied.
    pub allow: Option<Scope>,
    /// The rule the user answered with (remembered for `session`).
    pub rule: String,
}

/// The held connections of a proxy: its own side.
#[derive(Debug)]
pub struct Holds {
    dir: PathBuf,
    timeout: Duration,
    max: usize,
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Rules allowed `--session`: in force until the proxy ends.
    session: std::sync::RwLock<Allowlist>,
}

/// How a held connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Let through: by the user's answer, or by the allowlist meanwhile (`None`).
    Allowed(Option<Scope>),
    Denied(String),
}

impl Holds {
    /// Holds in `dir`, emptied of whatever an earlier proxy left there.
    pub fn new(dir: PathBuf, timeout: Duration, max: usize) -> Result<Holds> {
        crate::host::fs::make_private_dir(&dir)?;
        let entries =
            std::fs::read_dir(&dir).context_io(|| format!("reading {}", dir.display()))?;
        for entry in entries.flatten() {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(
                    "removing a stale held connection {}: {e}",
                    entry.path().display()
                );
            }
        }
        Ok(Holds {
            dir,
            timeout,
            max,
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            session: std::sync::RwLock::new(Allowlist::default()),
        })
    }

    /// Whether a rule allowed for the session lets `target` through.
    pub fn session_allows(&self, target: &Target) -> bool {
        self.session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .allows(target)
    }

    /// Holds a connection until the user answers, `listed` turns true, or the time is up.
    pub async fn hold(&self, kind: &str, target: &Target, listed: impl Fn() -> bool) -> Outcome {
        if self.count.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return Outcome::Denied(format!(
                "{target} is not on this sandbox's allowlist, and {} connections already wait for an answer",
                self.max
            ));
        }
        let id = format!("h{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        let slot = Slot {
            holds: self,
            id: id.clone(),
        };
        let held = Held {
            id,
            kind: kind.into(),
            host: target.host.to_string(),
            port: target.port,
            since: chrono::Utc::now(),
        };
        if slot.publish(&held).is_err() {
            return Outcome::Denied(format!("{target} is not on this sandbox's allowlist"));
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(answer) = slot.answer() {
                return match answer.allow {
                    Some(scope) => {
                        if scope == Scope::Session {
                            self.remember(&answer.rule);
                        }
                        Outcome::Allowed(Some(scope))
                    }
                    None => Outcome::Denied(format!("{target}: denied by the user")),
                };
            }
            if listed() {
                return Outcome::Allowed(None);
            }
            if tokio::time::Instant::now() >= deadline {
                return Outcome::Denied(format!(
                    "{target} is not on this sandbox's allowlist (nobody answered within {} s)",
                    self.timeout.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn remember(&self, rule: &str) {
        let mut session = self.session.write().unwrap_or_else(|p| p.into_inner());
        // The answer's rule was parsed when the answer was written (`net allow`, the TUI):
        // one that no longer parses only means no later connection is let through with it.
        if let Err(e) = session.extend_from(std::iter::once(rule)) {
            tracing::warn!("remembering {rule:?} for this session: {e}");
        }
    }
}

/// One held connection's place: its files go, and the count goes down, when it ends however.
struct Slot<'h> {
    holds: &'h Holds,
    id: String,
}

impl Slot<'_> {
    fn path(&self, extension: &str) -> PathBuf {
        self.holds.dir.join(format!("{}.{extension}", self.id))
    }

    /// Written aside and renamed: a reader never sees half a file.
    fn publish(&self, held: &Held) -> Result<()> {
        let text = serde_json::to_vec(held)
            .map_err(|e| DeckError::json("writing a held connection", e))?;
        let aside = self.path("json.new");
        crate::host::fs::write_private(&aside, &text)?;
        std::fs::rename(&aside, self.path("json")).context_io(|| format!("publishing {}", self.id))
    }

    fn answer(&self) -> Option<Answer> {
        let text = std::fs::read(self.path("answer")).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // Either may never have been written (no answer came): nothing to remove then.
        let _ = std::fs::remove_file(self.path("json"));
        let _ = std::fs::remove_file(self.path("answer"));
        self.holds.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connections held in `dir` now, oldest first. A missing dir holds none.
pub fn list(dir: &Path) -> Vec<Held> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut held: Vec<Held> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|text| serde_json::from_slice(&text).ok())
        .collect();
    held.sort_by_key(|h| h.since);
    held
}

/// Answers the held connection `id` in `dir`. An id no longer held is an error (it was
/// answered, timed out, or its proxy ended).
pub fn answer(dir: &Path, id: &str, answer: &Answer) -> Result<()> {
    let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid || !dir.join(format!("{id}.json")).exists() {
        return Err(DeckError::NotFound {
            name: format!("held connection {id}"),
        });
    }
    let text = serde_json::to_vec(answer).map_err(|e| DeckError::json("writing an answer", e))?;
    let aside = dir.join(format!("{id}.answer.new"));
    crate::host::fs::write_private(&aside, &text)?;
    std::fs::rename(&aside, dir.join(format!("{id}.answer")))
        .context_io(|| format!("answering {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::rules::parse_target;

    fn holds(dir: &Path, max: usize, timeout_ms: u64) -> Holds {
        Holds::new(dir.join("held"), Duration::from_millis(timeout_ms), max).unwrap()
    }

    #[tokio::test]
    async fn an_answer_ends_the_hold_and_its_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let holds = holds(dir.path(), 4, 10_000);
        let target = parse_target("unlisted.example", 443).unwrap();
        let held_dir = dir.path().join("held");
        let answering = async {
            loop {
                if let Some(h) = list(&held_dir).first() {
                    assert_eq!(h.target(), "unlisted.example:443");
                    let allow = Some(Scope::Session);
                    let rule = "unlisted.example".to_string();
                    answer(&held_dir, &h.id, &Answer { allow, rule }).unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let (outcome, ()) = tokio::join!(holds.hold("connect", &target, || false), answering);
        assert_eq!(outcome, Outcome::Allowed(Some(Scope::Session)));
        assert!(list(&held_dir).is_empty());
        assert_eq!(std::fs::read_dir(&held_dir).unwrap().count(), 0);
        assert!(holds.session_allows(&target));
    }

    #[tokio::test]
    async fn the_timeout_denies_and_the_cap_refuses_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let holds = holds(dir.path(), 1, 300);
        let target = parse_target("unlisted.example", 443).unwrap();
        let (first, second) = tokio::join!(holds.hold("connect", &target, || false), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            holds.hold("connect", &target, || false).await
        });
        assert!(matches!(first, Outcome::Denied(ref why) if why.contains("nobody answered")));
        assert!(matches!(second, Outcome::Denied(ref why) if why.contains("already wait")));
        assert_eq!(holds.count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn answering_what_is_not_held_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let allow = Some(Scope::Once);
        let a = Answer {
            allow,
            rule: "x".into(),
        };
        assert!(answer(dir.path(), "h1", &a).is_err());
        assert!(answer(dir.path(), "../h1", &a).is_err());
    }
}
