//! The audit log of mutating commands: one JSON line each, who (uid, connection), what
//! (the command as it was parsed) and the result (`ok` or the error kind), appended to
//! [`crate::paths::Paths::api_audit_log`] (0600, in the 0700 state dir).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};

use super::protocol::Command;

pub struct AuditLog {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    lock: Mutex<()>,
}

impl AuditLog {
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Records one command. A log that cannot be written is said in the log file; the
    /// command has already happened either way.
    /// `who` is the peer's uid and connection; `started` when the command began to run (the
    /// line is written when it ended), so overlapping commands would show.
    pub fn record(
        &self,
        (uid, connection): (u32, u64),
        command: &Command,
        started: DateTime<Utc>,
        result: &str,
    ) {
        let line = serde_json::json!({
            "started": started.to_rfc3339_opts(SecondsFormat::Micros, true),
            "at": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            "uid": uid,
            "connection": connection,
            "command": command,
            "result": result,
        });
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = self.append(&line.to_string()) {
            tracing::warn!("writing the API audit log {}: {e}", self.path.display());
        }
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)?;
        writeln!(file, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_is_one_private_json_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = AuditLog::new(dir.path().join("audit.log"));
        let stop = Command::Stop { name: "api".into() };
        log.record((1000, 3), &stop, Utc::now(), "ok");
        log.record((1000, 4), &stop, Utc::now(), "not_found");
        let text = std::fs::read_to_string(dir.path().join("audit.log")).expect("the log");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["command"]["cmd"], "stop");
        assert_eq!(lines[1]["result"], "not_found");
        assert_eq!(lines[1]["connection"], 4);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.log"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
