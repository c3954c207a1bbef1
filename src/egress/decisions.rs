//! The proxy's decision log: one JSON object a line per connection (host, port, allowed or
//! denied and why, bytes each way), in the sandbox's state dir. Never headers, never
//! bodies. Size-capped: past `max_bytes` it becomes `egress.log.1` (one old file kept).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub time: chrono::DateTime<chrono::Utc>,
    /// `connect` or `http`.
    pub kind: String,
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    /// Why it was denied, or what failed after it was allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The address connected to, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default)]
    pub bytes_up: u64,
    #[serde(default)]
    pub bytes_down: u64,
    /// The user's answer that let an unlisted host through (see `held`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<super::held::Scope>,
}

impl Decision {
    /// A decision about `target`, denied until said otherwise.
    pub fn new(kind: &str, target: &super::rules::Target) -> Decision {
        Decision {
            time: chrono::Utc::now(),
            kind: kind.into(),
            host: target.host.to_string(),
            port: target.port,
            allowed: false,
            reason: None,
            address: None,
            bytes_up: 0,
            bytes_down: 0,
            approved: None,
        }
    }
}

#[derive(Debug)]
pub struct DecisionLog {
    path: PathBuf,
    max_bytes: u64,
    lock: Mutex<()>,
}

impl DecisionLog {
    pub fn new(path: PathBuf, max_bytes: u64) -> DecisionLog {
        DecisionLog {
            path,
            max_bytes,
            lock: Mutex::new(()),
        }
    }

    /// Appends one decision. Best effort: a full disk must not stop the proxy.
    pub fn record(&self, decision: &Decision) {
        if self.max_bytes == 0 {
            return;
        }
        let Ok(mut line) = serde_json::to_string(decision) else {
            return;
        };
        line.push('\n');
        let _held = self
            .lock
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if size + line.len() as u64 > self.max_bytes
            && let Err(e) = std::fs::rename(&self.path, self.path.with_extension("log.1"))
        {
            tracing::warn!("rotating the decision log {}: {e}", self.path.display());
        }
        // The proxy decides the same with or without its log: a decision it could not write
        // is in our log instead.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode_private()
            .open(&self.path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("writing the decision log {}: {e}", self.path.display());
        }
    }
}

trait ModePrivate {
    fn mode_private(&mut self) -> &mut Self;
}

impl ModePrivate for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// The decisions in a log file, oldest first (the rotated file's before the current's).
pub fn read(path: &std::path::Path) -> Vec<Decision> {
    let old = path.with_extension("log.1");
    [old, path.to_owned()]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect::<Vec<Decision>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(host: &str) -> Decision {
        Decision {
            time: chrono::Utc::now(),
            kind: "connect".into(),
            host: host.into(),
            port: 443,
            allowed: false,
            reason: Some("not on the allowlist".into()),
            address: None,
            bytes_up: 0,
            bytes_down: 0,
            approved: None,
        }
    }

    #[test]
    fn the_log_stays_under_its_cap_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("egress.log");
        let log = DecisionLog::new(path.clone(), 1000);
        for i in 0..100 {
            log.record(&decision(&format!("host{i}.example")));
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 1000);
        assert!(
            std::fs::metadata(path.with_extension("log.1"))
                .unwrap()
                .len()
                <= 1000
        );
        let all = read(&path);
        assert_eq!(all.last().unwrap().host, "host99.example");
        assert!(all.len() < 100, "old decisions were dropped");
    }
}
