//! Tests of the TUI without a terminal: the reducer (key → action → state and effects)
//! and TestBackend snapshots of the screens.

mod app;
mod live;
mod reducer;
mod snapshots;
mod window;

pub use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Target;
use super::action::{Action, Effect};
use super::keymap::{Key, Keymap};
use super::state::{Settings, State};
use super::update::update;
use crate::paths::Paths;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};

pub fn now() -> DateTime<Utc> {
    "2026-01-01T12:00:00Z".parse().expect("a fixed time")
}

/// A valid sandbox name.
pub fn named(name: &str) -> SandboxName {
    SandboxName::parse(name).expect("a valid test name")
}

/// The id [`record`] gives the sandbox of this name.
pub fn id(name: &str) -> SandboxId {
    serde_json::from_value(serde_json::json!(format!(
        "{:016x}",
        name.len() * 0x1111_1111 + name.as_bytes()[0] as usize
    )))
    .expect("a valid id")
}

/// The sandbox of this name as [`record`] makes it, as effects name it.
pub fn target(name: &str) -> Target {
    Target {
        id: id(name),
        name: named(name),
    }
}

/// A record as the registry would hold it (built from JSON, so no directory must exist).
pub fn record(name: &str, state: &str, up_minutes: Option<i64>) -> SandboxRecord {
    let started = up_minutes.map(|m| (now() - TimeDelta::minutes(m)).to_rfc3339());
    let running = state == "running";
    serde_json::from_value(serde_json::json!({
        "name": name,
        "id": id(name),
        "backend": "bubblewrap",
        "state": state,
        "project_dir": format!("/home/dev/src/{name}"),
        "display": if running { Some(10 + name.len()) } else { None },
        "tmux_session": name,
        "network": name != "web",
        "managed": true,
        "created_at": "2026-01-01T09:30:00Z",
        "exit_status": if state == "exited" { Some(1) } else { None },
        "reason": if state == "dead" { Some("Xvfb vanished") } else { None },
        "payload": { "kind": "agent", "args": [] },
        "started_at": started,
        "agent_ran": running,
    }))
    .expect("a valid record")
}

/// Five sandboxes, one in each state.
pub fn records() -> Vec<SandboxRecord> {
    vec![
        record("api", "running", Some(95)),
        record("web", "stopped", None),
        record("worker", "exited", None),
        record("legacy", "dead", None),
        record("ci", "starting", None),
    ]
}

pub fn state_sized(width: u16, height: u16) -> State {
    let settings = Settings {
        agent: "claude".into(),
        default_network: crate::sandbox::Network::Proxy,
        paths: Paths {
            state_dir: "/home/dev/.local/state/sandbox-deck".into(),
            config_dir: "/home/dev/.config/sandbox-deck".into(),
            runtime_dir: "/run/user/1000/sandbox-deck".into(),
        },
        start_dir: "/home/dev/src".into(),
        home: Some("/home/dev".into()),
        default_options: Default::default(),
        bell: true,
        confirm: true,
        screen_fps: 1.0,
        screen_fullscreen_fps: 4.0,
        images: super::graphics::ImageSupport::halfblocks(),
    };
    let mut state = State::new(Keymap::defaults(), settings, now(), (width, height));
    update(&mut state, Action::Loaded(Ok(records())));
    state
}

pub fn state() -> State {
    state_sized(120, 30)
}

/// Presses one key as the keymap writes it (`j`, `<Enter>`, `<C-k>`).
pub fn press(state: &mut State, key: &str) -> Vec<Effect> {
    let key = Key::parse(key).unwrap_or_else(|| panic!("{key} is not a key"));
    let mut modifiers = KeyModifiers::NONE;
    if key.ctrl {
        modifiers |= KeyModifiers::CONTROL;
    }
    if matches!(key.code, KeyCode::Char(c) if c.is_ascii_uppercase())
        || key.code == KeyCode::BackTab
    {
        modifiers |= KeyModifiers::SHIFT;
    }
    update(state, Action::Key(KeyEvent::new(key.code, modifiers)))
}

/// Types text, one key per character.
pub fn type_text(state: &mut State, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| {
            let key = if c == ' ' {
                "<Space>".to_string()
            } else {
                c.to_string()
            };
            press(state, &key)
        })
        .collect()
}
