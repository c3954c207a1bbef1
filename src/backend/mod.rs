//! How a sandbox is launched (D1): one backend a file, each turning a backend-neutral
//! [`Launch`] into the argv and environment of its runtime.

pub mod agent;
pub mod bubblewrap;
pub mod claude_home;
pub mod exposure;
pub mod git_view;
pub mod landlock;
pub mod seccomp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{DeckError, Result};
use crate::host::which;
use crate::sandbox::{BackendKind, Payload};
use crate::spec::Profile;

pub use crate::paths::ProjectState;
pub use crate::sandbox::Options;
pub use agent::AgentInstall;
pub use claude_home::ClaudeView;
pub use exposure::Exposure;

/// The sandbox's own X display, as the backend exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxDisplay {
    pub number: u32,
    pub xauthority: PathBuf,
    /// The screen size in pixels, when known (a managed sandbox's Xvfb): the browser's
    /// window is sized to it, as there is no window manager to maximize it.
    pub size: Option<(u32, u32)>,
}

/// The browser a sandbox gets when the host has one: `chromium` on PATH inside runs the
/// wrapper at [`BROWSER_WRAPPER`], which runs the host's browser with this sandbox's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Browser {
    /// The host's `chromium` (visible inside at the same path, under a read-only system path).
    pub binary: PathBuf,
    /// This sandbox's own profile dir (host path), bound at `~/.config/chromium`: two
    /// sandboxes never share a browser, so one's tab never opens in the other's window.
    pub profile: PathBuf,
    /// The managed-policy JSON, when the profile forces extensions.
    pub policy: Option<String>,
}

/// Where the browser wrapper appears inside; its directory comes first on PATH.
pub const BROWSER_BIN_DIR: &str = "/run/sandbox-deck/bin";
pub const BROWSER_WRAPPER: &str = "/run/sandbox-deck/bin/chromium";
/// The wrapper's text: constant, the caller's arguments pass through as "$@".
pub const BROWSER_WRAPPER_SCRIPT: &str = include_str!("../../assets/chromium-wrapper.sh");

/// The host's Chromium, when it is installed where a sandbox sees it (under one of the
/// profile's read-only paths: a browser under the user's home would not be visible).
pub fn find_browser(profile: &Profile) -> Option<PathBuf> {
    let found = which("chromium")?;
    let real = found.canonicalize().ok()?;
    profile
        .ro_paths
        .iter()
        .any(|root| found.starts_with(root) && real.starts_with(root))
        .then_some(found)
}

pub fn browser_install_hint() -> &'static str {
    "sudo apt-get install chromium (then every sandbox gets `chromium` on PATH)"
}

/// Everything a backend needs to start one sandbox; built by the engine, read by the backend.
#[derive(Debug, Clone)]
pub struct Launch {
    pub hostname: String,
    pub project: PathBuf,
    /// The host user's home path: the sandbox gets a fresh home at the same path.
    pub home: PathBuf,
    pub network: crate::sandbox::Network,
    pub display: Option<SandboxDisplay>,
    /// The payload's argv, first element an absolute path or a name on the sandbox PATH.
    pub command: Vec<OsString>,
    /// The agent's install, bound read-only after the home (None for a shell).
    pub agent: Option<AgentInstall>,
    pub state: Option<ProjectState>,
    /// The sandbox's `~/.claude` (with `state`).
    pub claude: Option<ClaudeView>,
    pub exposure: Exposure,
    /// The complete environment inside: nothing else crosses.
    pub env: Vec<(String, String)>,
    /// Variables handed over through a file descriptor: never on a command line (`ps` shows
    /// argv to every user) nor in the environment of the sandbox's pid 1.
    pub secrets: Vec<(String, String)>,
    /// The browser, when the host has one.
    pub browser: Option<Browser>,
    /// Namespaces, seccomp, Landlock, read-only root. Off only for benchmarks and debugging.
    pub hardening: bool,
    /// Where the agent's status hooks append their events (host path): bound read-write at
    /// [`STATUS_DIR`].
    pub status_dir: Option<PathBuf>,
    /// The generated `claude --settings` file with those hooks (host path): bound read-only
    /// at [`AGENT_SETTINGS`].
    pub agent_settings: Option<PathBuf>,
}

/// Where a sandbox sees its status dir and its hook settings. Fixed paths, so that nothing
/// of the host's layout (the runtime dir, `/run/user`) shows inside.
pub const STATUS_DIR: &str = "/run/sandbox-deck/status";
pub const AGENT_SETTINGS: &str = "/run/sandbox-deck/hook-settings.json";

/// X's default cookie file in a home: where a sandbox sees its display's cookie (and where
/// the host user's is when `XAUTHORITY` is unset).
pub const XAUTHORITY_IN_HOME: &str = ".Xauthority";

/// Names of caller variables that may cross into a sandbox as they are.
pub fn is_passthrough_var(key: &str) -> bool {
    matches!(key, "TERM" | "COLORTERM" | "LANG" | "LANGUAGE" | "TZ") || key.starts_with("LC_")
}

/// What the payload runs as argv: the resolved agent (with `--continue` on resume) or a shell.
pub struct ResolvedPayload {
    pub command: Vec<OsString>,
    /// The agent's host path (first of `command`), for [`agent::resolve`]; None for a shell.
    pub agent: Option<PathBuf>,
}

pub fn claude_install_hint() -> String {
    "install Claude Code (`npm install -g @anthropic-ai/claude-code`, or its native installer) \
     so that `claude` is on PATH, set `sandbox.agent` in config.toml, or use --shell"
        .into()
}

/// Resolves the payload against the host. The agent must exist on the host PATH; where it is
/// installed is resolved by [`agent::resolve`], so a per-user install works inside.
pub fn resolve_payload(
    payload: &Payload,
    agent: &str,
    resume: bool,
    notice: &str,
) -> Result<ResolvedPayload> {
    match payload {
        Payload::Shell { command } if command.is_empty() => Ok(ResolvedPayload {
            command: vec!["bash".into()],
            agent: None,
        }),
        Payload::Shell { command } => Ok(ResolvedPayload {
            command: command.iter().map(OsString::from).collect(),
            agent: None,
        }),
        Payload::Agent { args } => {
            let found = which(agent).ok_or_else(|| DeckError::MissingBinary {
                binary: agent.to_owned(),
                install: claude_install_hint(),
            })?;
            let mut command: Vec<OsString> = vec![found.clone().into_os_string()];
            if !notice.is_empty() {
                command.push("--append-system-prompt".into());
                command.push(notice.into());
            }
            if resume
                && !args
                    .iter()
                    .any(|a| a == "--continue" || a == "-c" || a == "--resume" || a == "-r")
            {
                command.push("--continue".into());
            }
            command.extend(args.iter().map(OsString::from));
            Ok(ResolvedPayload {
                command,
                agent: Some(found),
            })
        }
    }
}

/// The environment inside a sandbox: an allowlist of the caller's variables plus what we set.
pub struct EnvInput<'a> {
    pub backend: BackendKind,
    pub profile: &'a Profile,
    pub caller: &'a [(String, String)],
    pub home: &'a Path,
    /// Directories before the profile's PATH (the agent's, see [`AgentInstall::path`]).
    pub extra_path: &'a [PathBuf],
    pub display: Option<&'a SandboxDisplay>,
    /// Variable names from config `bubblewrap.pass_env`, passed as they are.
    pub pass_env: &'a [String],
    /// What the exposure adds (sockets asked for).
    pub exposure_env: &'a [(String, String)],
    /// The host's browser, when the sandbox gets one (see [`Browser`]).
    pub browser: Option<&'a Path>,
}

/// The environment inside a sandbox: an allowlist of the caller's variables plus what we set.
/// Secrets are not here: they travel by file descriptor (see [`Launch::secrets`]).
pub fn sandbox_env(input: &EnvInput<'_>) -> Vec<(String, String)> {
    let EnvInput {
        backend,
        profile,
        caller,
        home,
        extra_path,
        display,
        pass_env,
        exposure_env,
        browser,
    } = *input;
    let mut env: Vec<(String, String)> = caller
        .iter()
        .filter(|(k, _)| is_passthrough_var(k) || pass_env.contains(k))
        .cloned()
        .collect();
    let user = caller
        .iter()
        .find(|(k, _)| k == "USER" || k == "LOGNAME")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "user".into());
    // The browser wrapper and the agent's link share /run/sandbox-deck/bin: listed once.
    let wrapper_dir = browser.map(|_| PathBuf::from(BROWSER_BIN_DIR));
    let mut dirs: Vec<&PathBuf> = Vec::new();
    for dir in wrapper_dir.iter().chain(extra_path).chain(&profile.path) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let path = dirs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    env.extend([
        ("HOME".into(), home.display().to_string()),
        ("USER".into(), user.clone()),
        ("LOGNAME".into(), user),
        ("PATH".into(), path),
        ("SHELL".into(), "/bin/bash".into()),
        ("CLAUDE_SANDBOX".into(), "1".into()),
        // The agent's install is read-only inside: its updater could only fail, and its
        // install check would ask for a `claude install` into the sandbox's own ~/.local.
        ("DISABLE_AUTOUPDATER".into(), "1".into()),
        ("DISABLE_INSTALLATION_CHECKS".into(), "1".into()),
        ("CLAUDE_SANDBOX_BACKEND".into(), backend.as_str().into()),
    ]);
    if !env.iter().any(|(k, _)| k == "TERM") {
        env.push(("TERM".into(), "xterm-256color".into()));
    }
    if let Some(display) = display {
        env.push(("DISPLAY".into(), format!(":{}", display.number)));
        env.push((
            "XAUTHORITY".into(),
            home.join(XAUTHORITY_IN_HOME).display().to_string(),
        ));
    }
    if let Some(binary) = browser {
        env.push(("SANDBOX_DECK_BROWSER".into(), binary.display().to_string()));
        if let Some((width, height)) = display.and_then(|d| d.size) {
            env.push(("SANDBOX_DECK_SCREEN".into(), format!("{width}x{height}")));
        }
    }
    for (k, v) in profile
        .env
        .iter()
        .chain(exposure_env.iter().map(|(k, v)| (k, v)))
    {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// The secrets a sandbox gets: the GitHub token when asked for, and the variables named in
/// config `bubblewrap.secret_env` that the caller has.
pub fn sandbox_secrets(
    caller: &[(String, String)],
    secret_env: &[String],
    gh_token: Option<&str>,
) -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> = caller
        .iter()
        .filter(|(k, v)| secret_env.contains(k) && !v.is_empty())
        .cloned()
        .collect();
    if let Some(token) = gh_token {
        secrets.push(("GH_TOKEN".into(), token.into()));
        secrets.push(("GITHUB_TOKEN".into(), token.into()));
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Vec<(String, String)> {
        [
            ("TERM", "xterm-kitty"),
            ("LANG", "en_US.UTF-8"),
            ("LC_TIME", "C"),
            ("USER", "dev"),
            ("GH_TOKEN", "ghp_secret"),
            ("ANTHROPIC_API_KEY", "sk-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("SSH_AUTH_SOCK", "/run/ssh.sock"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/bus"),
            ("XAUTHORITY", "/home/dev/.Xauthority"),
            ("DISPLAY", ":0"),
            ("LD_PRELOAD", "/evil.so"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn no_secret_of_the_caller_crosses_without_opt_in() {
        let caller = caller();
        let env = sandbox_env(&EnvInput {
            backend: BackendKind::Bubblewrap,
            profile: &Profile::host(),
            caller: &caller,
            home: "/home/dev".as_ref(),
            extra_path: &[],
            display: None,
            pass_env: &[],
            exposure_env: &[],
            browser: None,
        });
        assert!(sandbox_secrets(&caller, &[], None).is_empty());
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        for secret in [
            "GH_TOKEN",
            "GITHUB_TOKEN",
            "ANTHROPIC_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "SSH_AUTH_SOCK",
            "DBUS_SESSION_BUS_ADDRESS",
            "XAUTHORITY",
            "DISPLAY",
            "LD_PRELOAD",
        ] {
            assert!(!keys.contains(&secret), "{secret} leaked");
        }
        assert!(env.iter().all(|(_, v)| !v.contains("secret")));
        assert!(env.contains(&("TERM".into(), "xterm-kitty".into())));
        assert!(env.contains(&("LC_TIME".into(), "C".into())));
        assert!(env.contains(&("CLAUDE_SANDBOX".into(), "1".into())));
        assert!(env.contains(&("CLAUDE_SANDBOX_BACKEND".into(), "bubblewrap".into())));
    }

    #[test]
    fn the_token_and_display_cross_only_when_given() {
        let display = SandboxDisplay {
            number: 12,
            xauthority: "/run/x/auth".into(),
            size: Some((1280, 800)),
        };
        let caller = caller();
        let env = sandbox_env(&EnvInput {
            backend: BackendKind::Bubblewrap,
            profile: &Profile::host(),
            caller: &caller,
            home: "/home/dev".as_ref(),
            extra_path: &[],
            display: Some(&display),
            pass_env: &["ANTHROPIC_API_KEY".to_string()],
            exposure_env: &[],
            browser: None,
        });
        let secrets = sandbox_secrets(
            &caller,
            &["AWS_SECRET_ACCESS_KEY".into()],
            Some("ghp_given"),
        );
        assert!(secrets.contains(&("GH_TOKEN".into(), "ghp_given".into())));
        assert!(secrets.contains(&("AWS_SECRET_ACCESS_KEY".into(), "aws-secret".into())));
        assert!(
            !env.iter().any(|(k, _)| k == "GH_TOKEN"),
            "tokens travel by fd, not env"
        );
        assert!(
            env.contains(&("ANTHROPIC_API_KEY".into(), "sk-secret".into())),
            "pass_env"
        );
        assert!(env.contains(&("DISPLAY".into(), ":12".into())));
        assert!(env.contains(&("XAUTHORITY".into(), "/home/dev/.Xauthority".into())));
    }

    #[test]
    fn a_browser_puts_its_wrapper_first_on_path_with_the_screen_size() {
        let display = SandboxDisplay {
            number: 3,
            xauthority: "/run/x/auth".into(),
            size: Some((1920, 1080)),
        };
        let env = sandbox_env(&EnvInput {
            backend: BackendKind::Bubblewrap,
            profile: &Profile::host(),
            caller: &caller(),
            home: "/home/dev".as_ref(),
            extra_path: &[],
            display: Some(&display),
            pass_env: &[],
            exposure_env: &[],
            browser: Some("/usr/bin/chromium".as_ref()),
        });
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert!(
            get("PATH")
                .unwrap()
                .starts_with("/run/sandbox-deck/bin:/usr/local/bin:")
        );
        assert_eq!(get("SANDBOX_DECK_BROWSER"), Some("/usr/bin/chromium"));
        assert_eq!(get("SANDBOX_DECK_SCREEN"), Some("1920x1080"));
        assert_eq!(get("DBUS_SESSION_BUS_ADDRESS"), None);
    }

    /// The wrapper adds its flags and passes the caller's arguments through untouched.
    #[test]
    fn the_browser_wrapper_passes_arguments_verbatim() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("browser");
        std::fs::write(&fake, "#!/bin/sh\necho \"dbus=${DBUS_SESSION_BUS_ADDRESS-unset}\"\nfor a; do printf '%s\\n' \"$a\"; done\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                BROWSER_WRAPPER_SCRIPT,
                "chromium",
                "$(id)",
                "a b",
                "--x=;y",
            ])
            .env_clear()
            .env("SANDBOX_DECK_BROWSER", &fake)
            .env("SANDBOX_DECK_SCREEN", "1280x800")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/bus")
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let args: Vec<&str> = text.lines().collect();
        assert_eq!(
            args,
            [
                "dbus=unset",
                "--no-first-run",
                "--no-default-browser-check",
                "--start-maximized",
                "--window-position=0,0",
                "--window-size=1280,800",
                "$(id)",
                "a b",
                "--x=;y"
            ]
        );
    }

    #[test]
    fn the_browser_wrapper_names_the_sandboxs_proxy() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("browser");
        std::fs::write(&fake, "#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = |proxy: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", BROWSER_WRAPPER_SCRIPT, "chromium", "page"])
                .env_clear()
                .env("SANDBOX_DECK_BROWSER", &fake)
                .env("SANDBOX_DECK_PROXY", proxy)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let url = crate::egress::proxy_url();
        let named = run(&url);
        let flag = format!("--proxy-server={url}");
        assert!(named.lines().any(|a| a == flag), "{named}");
        assert_eq!(named.lines().last(), Some("page"));
        // Control: without it (host or no network), no proxy flag.
        assert!(!run("").contains("--proxy-server"));
    }

    #[test]
    fn a_shell_payload_runs_the_given_argv_verbatim() {
        let p = Payload::Shell {
            command: vec!["sh".into(), "-c".into(), "exit 7; $(id)".into()],
        };
        let resolved = resolve_payload(&p, "claude", false, "").unwrap();
        assert_eq!(resolved.command, vec!["sh", "-c", "exit 7; $(id)"]);
        let bare =
            resolve_payload(&Payload::Shell { command: vec![] }, "claude", false, "").unwrap();
        assert_eq!(bare.command, vec!["bash"]);
    }

    #[test]
    fn a_missing_agent_says_how_to_install_it() {
        let p = Payload::Agent { args: vec![] };
        let err = resolve_payload(&p, "surely-not-installed-agent", false, "")
            .err()
            .unwrap();
        assert_eq!(err.kind(), "missing_binary");
        assert!(err.to_string().contains("npm install"));
    }

    #[test]
    fn resuming_adds_continue_once() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent");
        std::fs::write(&agent, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let agent = agent.to_str().unwrap();
        let p = Payload::Agent {
            args: vec!["--model".into(), "opus".into()],
        };
        let resumed = resolve_payload(&p, agent, true, "in a sandbox").unwrap();
        assert_eq!(
            resumed.command[1..],
            [
                "--append-system-prompt",
                "in a sandbox",
                "--continue",
                "--model",
                "opus"
            ]
        );
        assert_eq!(resumed.agent.as_deref(), Some(Path::new(agent)));
        let p = Payload::Agent {
            args: vec!["--resume".into()],
        };
        assert!(
            !resolve_payload(&p, agent, true, "")
                .unwrap()
                .command
                .iter()
                .any(|a| a == "--continue")
        );
    }
}
