//! A sandbox's egress from outside: what its proxy decided, and its own allowlist rules
//! changed while it runs (`sandbox-deck net`).

use super::Deck;
use crate::egress::decisions::{self, Decision};
use crate::egress::held::{self, Answer, Held, Scope};
use crate::egress::{Spec, rules::Rule};
use crate::error::{DeckError, Result};
use crate::sandbox::{Network, SandboxRecord};

impl Deck {
    /// The decisions of a sandbox's proxy, oldest first, the last `limit` of them.
    pub fn egress_decisions(&self, name: &str, limit: usize) -> Result<Vec<Decision>> {
        let record = self.show(name)?;
        let all = decisions::read(&self.paths.sandbox_of(&record).egress_log());
        let skip = all.len().saturating_sub(limit);
        Ok(all.into_iter().skip(skip).collect())
    }

    /// The connections of a sandbox's proxy waiting for the user's answer, oldest first.
    pub fn egress_held(&self, name: &str) -> Result<Vec<Held>> {
        let record = self.show(name)?;
        Ok(self.held_of(&record))
    }

    /// The held connections of a record (none unless its proxy runs and holds some).
    pub fn held_of(&self, record: &SandboxRecord) -> Vec<Held> {
        if record.network != Network::Proxy {
            return Vec::new();
        }
        held::list(&self.paths.sandbox_of(record).egress_held())
    }

    /// The user's answer for a host: `allow` with a scope (`None`: deny). `Always` and deny
    /// change the sandbox's own list as `egress_rule` does; then every connection held now
    /// that `rule` matches gets the answer. `Once` and `Session` need one held.
    pub fn egress_answer(
        &self,
        name: &str,
        rule: &str,
        allow: Option<Scope>,
    ) -> Result<EgressAnswer> {
        let parsed = Rule::parse(rule).map_err(|e| DeckError::Config {
            path: "net".into(),
            message: e,
        })?;
        let record = self.show(name)?;
        let dir = self.paths.sandbox_of(&record).egress_held();
        let matching: Vec<Held> = self
            .held_of(&record)
            .into_iter()
            .filter(|h| {
                crate::egress::rules::parse_target(&h.target(), h.port)
                    .is_ok_and(|target| parsed.allows(&target))
            })
            .collect();
        if matches!(allow, Some(Scope::Once | Scope::Session)) && matching.is_empty() {
            return Err(DeckError::NotFound {
                name: format!("a connection of {} held for {rule}", record.name),
            });
        }
        let answer = Answer {
            allow,
            rule: parsed.to_string(),
        };
        // Answered before the list changes, so the log says it was the user's answer. One
        // may have ended meanwhile (timed out): the others are still answered.
        let answered = matching
            .into_iter()
            .filter(|h| held::answer(&dir, &h.id, &answer).is_ok())
            .collect();
        let record = match allow {
            Some(Scope::Always) => self.egress_rule(name, rule, true)?,
            None => self.egress_rule(name, rule, false)?,
            Some(_) => record,
        };
        Ok(EgressAnswer { record, answered })
    }

    /// Adds a rule to (or with `allow` false, removes it from) a sandbox's own allowlist: in
    /// its record for every later start, and for a running proxy at once (it re-reads its
    /// spec when the file changes).
    pub fn egress_rule(&self, name: &str, rule: &str, allow: bool) -> Result<SandboxRecord> {
        let parsed = Rule::parse(rule).map_err(|e| DeckError::Config {
            path: "net".into(),
            message: e,
        })?;
        let spelled = parsed.to_string();
        let record = self.show(name)?;
        if record.network != Network::Proxy {
            return Err(DeckError::WrongState {
                name: record.name.to_string(),
                state: format!("network {}", record.network),
                hint: "only a --network proxy sandbox has an allowlist".into(),
            });
        }
        let updated = self.registry.update(|records| {
            let found = records
                .iter_mut()
                .find(|r| r.id == record.id)
                .ok_or_else(|| DeckError::NotFound {
                    name: name.to_string(),
                })?;
            found
                .allow
                .retain(|r| Rule::parse(r).map(|r| r.to_string()).as_ref() != Ok(&spelled));
            if allow {
                found.allow.push(spelled.clone());
            }
            Ok(found.clone())
        })?;
        let files = self.paths.sandbox_of(&updated);
        let spec_path = files.egress_spec();
        if let Ok(running) = Spec::read(&spec_path) {
            let rebuilt = Spec::build(
                &updated.name,
                &self.config.egress,
                &updated.allow,
                running.log.clone(),
            )?;
            let spec = Spec {
                rules: rebuilt.rules,
                ..running
            };
            // Written aside and renamed: the proxy never reads half a file.
            let aside = spec_path.with_extension("json.new");
            spec.write(&aside)?;
            std::fs::rename(&aside, &spec_path)
                .map_err(|e| DeckError::io(format!("replacing {}", spec_path.display()), e))?;
        }
        Ok(updated)
    }
}

/// What an answer did: the sandbox (its own rules as they are now) and the held
/// connections it answered.
#[derive(Debug, Clone)]
pub struct EgressAnswer {
    pub record: SandboxRecord,
    pub answered: Vec<Held>,
}
