//! Typed configuration: the embedded defaults with the user's `config.toml` merged over them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{DeckError, Result};
use crate::sandbox::BackendKind;
use crate::usage::CostMode;
use crate::usage::pricing::PriceOverride;

pub const DEFAULT_CONFIG: &str = include_str!("../assets/default-config.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sandbox: SandboxConfig,
    pub display: DisplayConfig,
    pub tmux: TmuxConfig,
    pub monitor: MonitorConfig,
    pub ui: UiConfig,
    pub bubblewrap: BubblewrapConfig,
    pub usage: UsageConfig,
    pub status: StatusConfig,
    pub notify: NotifyConfig,
    pub metrics: MetricsConfig,
    pub serve: ServeConfig,
    pub logs: LogsConfig,
    pub egress: crate::egress::EgressConfig,
    pub mirror: MirrorConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BubblewrapConfig {
    pub hardening: bool,
    /// `chromium` inside when the host has one; its sandbox needs a nested user namespace.
    pub browser: bool,
    pub dbus: bool,
    pub ssh_agent: bool,
    pub audio: bool,
    pub gpu: bool,
    pub host_display: bool,
    pub pass_env: Vec<String>,
    pub secret_env: Vec<String>,
    pub protect: Vec<String>,
}

impl BubblewrapConfig {
    /// The opt-ins the config turns on (flags can add more).
    pub fn options(&self) -> crate::sandbox::Options {
        crate::sandbox::Options {
            host_display: self.host_display,
            dbus: self.dbus,
            ssh_agent: self.ssh_agent,
            audio: self.audio,
            gpu: self.gpu,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    pub backend: BackendKind,
    pub network: crate::sandbox::Network,
    pub agent: String,
    pub stop_timeout_ms: u64,
    /// How long `create`/`start` watch a new sandbox for an early death (0: not at all).
    pub start_settle_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayConfig {
    pub first_number: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmuxConfig {
    pub width: u16,
    pub height: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    pub mouse: bool,
    /// Stop and restart ask first, naming the sandbox (delete always asks).
    pub confirm: bool,
    pub preview_interval_ms: u64,
    pub screen_fps: f64,
    pub screen_fullscreen_fps: f64,
    pub image_protocol: ImageProtocol,
    pub theme: ThemeConfig,
}

/// How the TUI draws a sandbox's screen: asked of the terminal (`auto`) or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImageProtocol {
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    Halfblocks,
}

impl ImageProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageProtocol::Auto => "auto",
            ImageProtocol::Kitty => "kitty",
            ImageProtocol::Sixel => "sixel",
            ImageProtocol::Iterm2 => "iterm2",
            ImageProtocol::Halfblocks => "halfblocks",
        }
    }
}

/// Colours as ratatui reads them: a name (`green`), an index (`42`) or `#rrggbb`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeConfig {
    pub accent: String,
    pub text: String,
    pub muted: String,
    pub selection: String,
    pub running: String,
    pub starting: String,
    pub stopped: String,
    pub exited: String,
    pub dead: String,
    pub error: String,
}

impl ThemeConfig {
    /// Every colour with its key, for validation and for the TUI's theme.
    pub fn entries(&self) -> [(&'static str, &str); 10] {
        [
            ("accent", &self.accent),
            ("text", &self.text),
            ("muted", &self.muted),
            ("selection", &self.selection),
            ("running", &self.running),
            ("starting", &self.starting),
            ("stopped", &self.stopped),
            ("exited", &self.exited),
            ("dead", &self.dead),
            ("error", &self.error),
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    pub cost_mode: CostMode,
    /// Price overrides per model (USD per million tokens), merged over assets/pricing.toml.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// A working agent reads idle only after two idle samples at least this far apart.
    pub idle_debounce_ms: u64,
    /// A transcript written this recently counts as the agent working.
    pub transcript_fresh_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Ring the terminal bell when a sandbox starts waiting (or exits, or dies).
    pub bell: bool,
    /// A command (argv, no shell) run then, with SANDBOX_NAME, SANDBOX_STATE,
    /// SANDBOX_REASON and SANDBOX_PROJECT in its environment. Empty: none.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// How often per-sandbox CPU and memory are sampled (milliseconds).
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// The size a sandbox's pane log may reach before it is rotated (one old file kept);
    /// 0 turns pane logs off.
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// An engine started by a client (`serve --auto`) ends after this many seconds with no
    /// client connected and no sandbox running; 0: it never does. `serve` typed by hand
    /// (or run by a unit) always stays.
    pub idle_exit_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The ssh command `mirror` and `--host` start, split like shell words.
    pub ssh_command: String,
    /// How long connecting may take, ssh and the engine's greeting included.
    pub connect_timeout_secs: u64,
}

impl Config {
    /// The defaults merged with `path` when it exists.
    pub fn load(path: &Path) -> Result<Config> {
        let user = read_optional(path)?;
        Config::from_layers(user.as_deref(), &path.display().to_string())
    }

    /// The defaults, then the system-wide file (written by the NixOS module), then the user's
    /// file, each merged over what came before. A bad key is reported with the file it is in.
    pub fn load_system_and_user(system: &Path, user: &Path) -> Result<Config> {
        let system_text = read_optional(system)?;
        let user_text = read_optional(user)?;
        let Some(system_text) = system_text else {
            return Config::from_layers(user_text.as_deref(), &user.display().to_string());
        };
        Config::from_layers(Some(&system_text), &system.display().to_string())?;
        let Some(user_text) = user_text else {
            return Config::from_layers(Some(&system_text), &system.display().to_string());
        };
        Config::from_layers(Some(&user_text), &user.display().to_string())?;
        let parse = |text: &str, origin: &Path| {
            text.parse::<toml::Table>().map_err(|e| DeckError::Config {
                path: origin.display().to_string(),
                message: format!("is not valid TOML: {}", e.message()),
            })
        };
        let mut layered = parse(&system_text, system)?;
        merge(&mut layered, parse(&user_text, user)?);
        let text = toml::to_string(&layered).map_err(|e| DeckError::Config {
            path: user.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_layers(Some(&text), &user.display().to_string())
    }

    pub fn defaults() -> Config {
        Config::from_layers(None, "defaults").expect("the embedded default config is valid")
    }

    /// Merges `user` (named `origin` in errors) over the defaults, then checks every value.
    pub fn from_layers(user: Option<&str>, origin: &str) -> Result<Config> {
        let config_error = |message: String| DeckError::Config {
            path: origin.to_owned(),
            message,
        };
        let mut merged: toml::Table = DEFAULT_CONFIG
            .parse()
            .map_err(|e| config_error(format!("embedded defaults: {e}")))?;
        if let Some(text) = user {
            let overlay: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                config_error(format!("is not valid TOML: {}", e.message()))
            })?;
            merge(&mut merged, overlay);
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                config_error(format!("key `{key}`: {}", inner.message()))
            })?;
        config.validate().map_err(config_error)?;
        Ok(config)
    }

    /// Checks every value the types cannot, section by section (the first bad key is
    /// reported).
    fn validate(&self) -> std::result::Result<(), String> {
        self.validate_sizes()?;
        self.validate_sandbox()?;
        self.validate_bubblewrap()?;
        self.validate_timing()?;
        self.validate_prices()
    }

    /// `display` and `tmux`.
    fn validate_sizes(&self) -> std::result::Result<(), String> {
        check(
            (64..=8192).contains(&self.display.width),
            "display.width",
            "must be between 64 and 8192",
        )?;
        check(
            (64..=8192).contains(&self.display.height),
            "display.height",
            "must be between 64 and 8192",
        )?;
        check(
            (1..=30000).contains(&self.display.first_number),
            "display.first_number",
            "must be between 1 and 30000",
        )?;
        check(
            matches!(self.display.depth, 8 | 16 | 24 | 32),
            "display.depth",
            "must be 8, 16, 24 or 32",
        )?;
        check(
            (10..=1000).contains(&self.tmux.width),
            "tmux.width",
            "must be between 10 and 1000",
        )?;
        check(
            (5..=1000).contains(&self.tmux.height),
            "tmux.height",
            "must be between 5 and 1000",
        )
    }

    fn validate_sandbox(&self) -> std::result::Result<(), String> {
        check(
            !self.sandbox.agent.is_empty() && !self.sandbox.agent.contains(char::is_whitespace),
            "sandbox.agent",
            "must be a command name or path without spaces",
        )?;
        check(
            self.sandbox.stop_timeout_ms <= 600_000,
            "sandbox.stop_timeout_ms",
            "must be at most 600000",
        )?;
        check(
            self.sandbox.start_settle_ms <= 60_000,
            "sandbox.start_settle_ms",
            "must be at most 60000",
        )
    }

    fn validate_bubblewrap(&self) -> std::result::Result<(), String> {
        let bw = &self.bubblewrap;
        for (key, names) in [
            ("bubblewrap.pass_env", &bw.pass_env),
            ("bubblewrap.secret_env", &bw.secret_env),
        ] {
            for name in names {
                check(
                    is_var_name(name),
                    key,
                    &format!("{name:?} is not a variable name"),
                )?;
            }
        }
        for rel in &bw.protect {
            check(
                crate::backend::exposure::is_inside_relative(rel),
                "bubblewrap.protect",
                &format!("{rel:?} must be a path inside the project (relative, no `..`)"),
            )?;
        }
        Ok(())
    }

    /// The intervals and rates of `monitor`, `ui`, `metrics` and `status`, the theme and
    /// `notify`.
    fn validate_timing(&self) -> std::result::Result<(), String> {
        check(
            (100..=3_600_000).contains(&self.monitor.interval_ms),
            "monitor.interval_ms",
            "must be between 100 and 3600000",
        )?;
        check(
            (50..=10_000).contains(&self.ui.preview_interval_ms),
            "ui.preview_interval_ms",
            "must be between 50 and 10000",
        )?;
        for (key, fps) in [
            ("ui.screen_fps", self.ui.screen_fps),
            ("ui.screen_fullscreen_fps", self.ui.screen_fullscreen_fps),
        ] {
            check(
                (0.05..=30.0).contains(&fps),
                key,
                "must be between 0.05 and 30 (frames per second)",
            )?;
        }
        for (key, value) in self.ui.theme.entries() {
            check(
                value.parse::<ratatui::style::Color>().is_ok(),
                &format!("ui.theme.{key}"),
                "must be a colour name, an index 0-255 or #rrggbb",
            )?;
        }
        check(
            (100..=3_600_000).contains(&self.metrics.interval_ms),
            "metrics.interval_ms",
            "must be between 100 and 3600000",
        )?;
        check(
            self.status.idle_debounce_ms <= 60_000,
            "status.idle_debounce_ms",
            "must be at most 60000",
        )?;
        check(
            self.notify.command.first().is_none_or(|c| !c.is_empty()),
            "notify.command",
            "must be empty or start with a program name",
        )?;
        check(
            (1..=600).contains(&self.mirror.connect_timeout_secs),
            "mirror.connect_timeout_secs",
            "must be between 1 and 600",
        )?;
        // The rule `remote::SshCommand::parse` splits by; named here so the config stays
        // below `remote` (which uses the API, which uses the config).
        check(
            shlex::split(&self.mirror.ssh_command).is_some_and(|words| !words.is_empty()),
            "mirror.ssh_command",
            "must split into words (like a shell, without unclosed quotes) and not be empty",
        )
    }

    fn validate_prices(&self) -> std::result::Result<(), String> {
        for (model, price) in &self.usage.prices {
            let values = [
                price.input,
                price.output,
                price.cache_write_5m,
                price.cache_write_1h,
                price.cache_read,
            ];
            check(
                values.iter().flatten().all(|v| v.is_finite() && *v >= 0.0),
                &format!("usage.prices.\"{model}\""),
                "prices must be numbers of at least 0",
            )?;
        }
        crate::usage::Pricing::with_overrides(&self.usage.prices)
            .map(drop)
            .map_err(|e| match e {
                DeckError::Config { message, .. } => message,
                other => other.to_string(),
            })
    }
}

/// `Err("key `KEY`: WHY")` unless `ok`.
fn check(ok: bool, key: &str, why: &str) -> std::result::Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("key `{key}`: {why}"))
    }
}

fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A config file's text, or None when there is no such file.
fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DeckError::Config {
            path: path.display().to_string(),
            message: format!("cannot be read: {e}"),
        }),
    }
}

/// Deep-merges `overlay` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_file_lies_under_the_users_and_bad_keys_name_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let user = dir.path().join("user.toml");
        let missing = dir.path().join("missing.toml");
        std::fs::write(&system, "[sandbox]\nnetwork = false\n[ui]\nmouse = true\n").unwrap();
        std::fs::write(&user, "[ui]\nmouse = false\n").unwrap();
        let both = Config::load_system_and_user(&system, &user).unwrap();
        assert_eq!(
            both.sandbox.network,
            crate::sandbox::Network::None,
            "the system file applies, its old bool read"
        );
        assert!(!both.ui.mouse, "the user's file wins");
        let system_only = Config::load_system_and_user(&system, &missing).unwrap();
        assert!(system_only.ui.mouse);
        let neither = Config::load_system_and_user(&missing, &missing).unwrap();
        assert_eq!(neither.sandbox.network, crate::sandbox::Network::Proxy);
        std::fs::write(&system, "[ui]\nmouse = \"yes\"\n").unwrap();
        let err = Config::load_system_and_user(&system, &user)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("system.toml") && err.contains("ui.mouse"),
            "{err}"
        );
    }

    #[test]
    fn defaults_load() {
        let config = Config::defaults();
        assert_eq!(config.display.width, 1280);
        assert_eq!(config.sandbox.backend, BackendKind::Bubblewrap);
    }

    #[test]
    fn user_values_merge_over_defaults() {
        let config = Config::from_layers(Some("[display]\nwidth = 800\n"), "test").unwrap();
        assert_eq!(config.display.width, 800);
        assert_eq!(config.display.height, 800);
        assert_eq!(config.sandbox.network, crate::sandbox::Network::Proxy);
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = Config::from_layers(Some("[display]\nwidht = 800\n"), "test").unwrap_err();
        assert!(err.to_string().contains("widht"), "{err}");
        let err = Config::from_layers(Some("colour = 1\n"), "test").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn the_serve_section_sets_the_idle_exit_and_names_a_typo() {
        assert_eq!(Config::defaults().serve.idle_exit_secs, 600);
        let config = Config::from_layers(Some("[serve]\nidle_exit_secs = 0\n"), "test").unwrap();
        assert_eq!(config.serve.idle_exit_secs, 0);
        let err = Config::from_layers(Some("[serve]\nidle_exit = 5\n"), "test").unwrap_err();
        assert!(err.to_string().contains("idle_exit"), "{err}");
        let err = Config::from_layers(Some("[serve]\nidle_exit_secs = -1\n"), "test").unwrap_err();
        assert!(err.to_string().contains("idle_exit_secs"), "{err}");
    }

    #[test]
    fn the_mirror_section_takes_an_ssh_command_that_splits_and_a_bounded_timeout() {
        let defaults = Config::defaults();
        assert_eq!(defaults.mirror.ssh_command, "ssh");
        assert_eq!(defaults.mirror.connect_timeout_secs, 20);
        let config = Config::from_layers(
            Some("[mirror]\nssh_command = \"ssh -p 2222 -o 'ProxyJump a b'\"\n"),
            "test",
        )
        .unwrap();
        assert_eq!(config.mirror.ssh_command, "ssh -p 2222 -o 'ProxyJump a b'");
        for bad in [
            "[mirror]\nssh_command = \"ssh 'open\"\n",
            "[mirror]\nssh_command = \"  \"\n",
            "[mirror]\nconnect_timeout_secs = 0\n",
        ] {
            let err = Config::from_layers(Some(bad), "test").unwrap_err();
            assert!(err.to_string().contains("mirror."), "{bad}: {err}");
        }
    }

    #[test]
    fn usage_notify_and_metrics_sections_are_checked() {
        let config = Config::defaults();
        assert_eq!(config.usage.cost_mode, CostMode::Calculate);
        assert!(config.notify.command.is_empty());
        assert_eq!(config.metrics.interval_ms, 2000);
        let config = Config::from_layers(
            Some(
                "[usage]\ncost_mode = \"auto\"\n[usage.prices.\"claude-opus-4-1\"]\ninput = 1.0\n",
            ),
            "test",
        )
        .unwrap();
        assert_eq!(config.usage.cost_mode, CostMode::Auto);
        let err =
            Config::from_layers(Some("[usage]\ncost_mode = \"guess\"\n"), "test").unwrap_err();
        assert!(err.to_string().contains("usage.cost_mode"), "{err}");
        let err = Config::from_layers(
            Some("[usage.prices.\"claude-opus-4-1\"]\ninptu = 1.0\n"),
            "test",
        )
        .unwrap_err();
        assert!(err.to_string().contains("inptu"), "{err}");
        let err = Config::from_layers(Some("[usage.prices.\"new-model\"]\ninput = 1.0\n"), "test")
            .unwrap_err();
        assert!(err.to_string().contains("new-model"), "{err}");
        let err = Config::from_layers(Some("[notify]\ncommand = \"notify-send hi\"\n"), "test")
            .unwrap_err();
        assert!(err.to_string().contains("notify.command"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Config::from_layers(Some("[display]\nwidth = \"wide\"\n"), "test").unwrap_err();
        assert!(err.to_string().contains("display.width"), "{err}");
        let err = Config::from_layers(Some("[display]\ndepth = 7\n"), "test").unwrap_err();
        assert!(err.to_string().contains("display.depth"), "{err}");
        let err =
            Config::from_layers(Some("[sandbox]\nbackend = \"docker\"\n"), "test").unwrap_err();
        assert!(err.to_string().contains("sandbox.backend"), "{err}");
        let err =
            Config::from_layers(Some("[ui.theme]\naccent = \"blurple\"\n"), "test").unwrap_err();
        assert!(err.to_string().contains("ui.theme.accent"), "{err}");
        let err = Config::from_layers(Some("[ui]\nscreen_fps = 0\n"), "test").unwrap_err();
        assert!(err.to_string().contains("ui.screen_fps"), "{err}");
        let err =
            Config::from_layers(Some("[ui]\nimage_protocol = \"kity\"\n"), "test").unwrap_err();
        assert!(err.to_string().contains("ui.image_protocol"), "{err}");
        let err = Config::from_layers(Some("[ui]\nmosue = true\n"), "test").unwrap_err();
        assert!(err.to_string().contains("mosue"), "{err}");
        let err =
            Config::from_layers(Some("[bubblewrap]\nprotect = [\"../x\"]\n"), "test").unwrap_err();
        assert!(err.to_string().contains("bubblewrap.protect"), "{err}");
        let err = Config::from_layers(Some("[bubblewrap]\nsecret_env = [\"A=B\"]\n"), "test")
            .unwrap_err();
        assert!(err.to_string().contains("bubblewrap.secret_env"), "{err}");
        let err = Config::from_layers(Some("not toml ="), "test").unwrap_err();
        assert_eq!(err.kind(), "config");
    }
}
