//! What several subcommands print: JSON for programs, a sandbox record and its state for
//! people.

use std::io::Write;

use serde::Serialize;

use crate::engine::launch::LaunchNotice;
use crate::sandbox::SandboxRecord;

/// JSON for programs. serde escapes C0 controls in strings but leaves DEL and the C1
/// controls (U+0080..U+009F) raw, and a terminal may act on C1 (CSI, OSC): those are
/// escaped too. Outside strings JSON is ASCII, so a plain replacement keeps it valid.
pub(super) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", escape_json_controls(&text))?;
    Ok(())
}

pub(super) fn escape_json_controls(json: &str) -> std::borrow::Cow<'_, str> {
    let raw = |c: char| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c);
    if !json.chars().any(raw) {
        return json.into();
    }
    json.chars()
        .map(|c| {
            if raw(c) {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// A record as `show` and `create` print it: one `key value` line per field.
pub(super) fn print_record(record: &SandboxRecord, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(record);
    }
    let display = record.display.map_or("-".into(), |d| format!(":{d}"));
    let rows = [
        ("name", record.name.to_string()),
        ("id", record.id.to_string()),
        ("state", state_text(record)),
        ("backend", record.backend.to_string()),
        (
            "project",
            record.project_dir.as_path().display().to_string(),
        ),
        ("display", display),
        (
            "tmux session",
            record.tmux_session.clone().unwrap_or("-".into()),
        ),
        ("network", network_text(record)),
        (
            "managed",
            if record.managed {
                "yes"
            } else {
                "no (launched by hand)"
            }
            .into(),
        ),
        ("created", record.created_at.to_rfc3339()),
    ];
    for (key, value) in rows {
        say!("{key:13} {value}");
    }
    Ok(())
}

/// The mode, and a proxy-mode sandbox's own rules when it has any.
fn network_text(record: &SandboxRecord) -> String {
    if record.allow.is_empty() {
        record.network.to_string()
    } else {
        format!(
            "{} (also allows {})",
            record.network,
            record.allow.join(", ")
        )
    }
}

fn state_text(record: &SandboxRecord) -> String {
    let mut text = record.state.to_string();
    if let Some(status) = record.exit_status {
        text.push_str(&format!(" (status {status})"));
    }
    if let Some(reason) = &record.reason {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(why) = &record.unreachable {
        text.push_str(&format!(" (unreachable: {why})"));
    }
    text
}

/// What `start`, `stop` and `restart` print: the state the sandbox is in now.
pub(super) fn print_state(record: &SandboxRecord, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(record)
    } else {
        say!("{} is {}", record.name, record.state);
        Ok(())
    }
}

/// What a launch had to say, on stderr, before what it runs takes the terminal.
pub(super) fn show_notices(notices: &[LaunchNotice]) {
    for notice in notices {
        tell!("sandbox-deck: {notice}");
    }
}
