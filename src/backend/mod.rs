//! How a sandbox is launched (D1): one backend a file, each turning a backend-neutral
//! [`Launch`] into the argv and environment of its runtime.

pub mod bubblewrap;
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

pub use exposure::{Exposure, Options};

/// The sandbox's own X display, as the backend exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxDisplay {
    pub number: u32,
    pub xauthority: PathBuf,
}

/// A project's persistent state, outside the project: `projects/<name>-<hash>/` under the
/// state dir. It survives the sandbox, so the browser profile and installed tools persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectState {
    pub dir: PathBuf,
}

impl ProjectState {
    /// The per-sandbox copy of `~/.claude.json` (a bind of the host file would race with
    /// Claude's atomic renames).
    pub fn claude_json(&self) -> PathBuf {
        self.dir.join("claude.json")
    }
    pub fn chromium(&self) -> PathBuf {
        self.dir.join("chromium")
    }
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    /// `~/.local/{bin,lib,share}`.
    pub fn local(&self, part: &str) -> PathBuf {
        self.dir.join("local").join(part)
    }
    pub const LOCAL_PARTS: [&'static str; 3] = ["bin", "lib", "share"];
}

/// Everything a backend needs to start one sandbox; built by the engine, read by the backend.
#[derive(Debug, Clone)]
pub struct Launch {
    pub hostname: String,
    pub project: PathBuf,
    /// The host user's home path: the sandbox gets a fresh home at the same path.
    pub home: PathBuf,
    pub network: bool,
    pub display: Option<SandboxDisplay>,
    /// The payload's argv, first element an absolute path or a name on the sandbox PATH.
    pub command: Vec<OsString>,
    /// Extra host paths the payload needs read-only (e.g. where `claude` is installed).
    pub extra_ro: Vec<PathBuf>,
    pub state: Option<ProjectState>,
    pub exposure: Exposure,
    /// The complete environment inside: nothing else crosses.
    pub env: Vec<(String, String)>,
    /// Variables handed over through a file descriptor: never on a command line (`ps` shows
    /// argv to every user) nor in the environment of the sandbox's pid 1.
    pub secrets: Vec<(String, String)>,
    /// A Chromium managed-policy JSON, when the profile forces extensions.
    pub chromium_policy: Option<String>,
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

/// Names of caller variables that may cross into a sandbox as they are.
pub fn is_passthrough_var(key: &str) -> bool {
    matches!(key, "TERM" | "COLORTERM" | "LANG" | "LANGUAGE" | "TZ") || key.starts_with("LC_")
}

/// What the payload runs as argv: the resolved agent (with `--continue` on resume) or a shell.
pub struct ResolvedPayload {
    pub command: Vec<OsString>,
    pub extra_ro: Vec<PathBuf>,
    pub extra_path: Vec<PathBuf>,
}

pub fn claude_install_hint() -> String {
    "install Claude Code (`npm install -g @anthropic-ai/claude-code`, or its native installer) \
     so that `claude` is on PATH, set `sandbox.agent` in config.toml, or use --shell"
        .into()
}

/// Resolves the payload against the host. The agent must exist on the host PATH; its install
/// directory is exposed read-only so a per-user install (`~/.local/bin`, nvm) works inside.
pub fn resolve_payload(
    payload: &Payload,
    agent: &str,
    resume: bool,
    notice: &str,
) -> Result<ResolvedPayload> {
    match payload {
        Payload::Shell { command } if command.is_empty() => Ok(ResolvedPayload {
            command: vec!["bash".into()],
            extra_ro: vec![],
            extra_path: vec![],
        }),
        Payload::Shell { command } => Ok(ResolvedPayload {
            command: command.iter().map(OsString::from).collect(),
            extra_ro: vec![],
            extra_path: vec![],
        }),
        Payload::Agent { args } => {
            let found = which(agent).ok_or_else(|| DeckError::MissingBinary {
                binary: agent.to_owned(),
                install: claude_install_hint(),
            })?;
            let real = found.canonicalize().unwrap_or_else(|_| found.clone());
            let mut extra_ro = Vec::new();
            let mut extra_path = Vec::new();
            for dir in [found.parent(), real.parent()].into_iter().flatten() {
                if !dir.starts_with("/usr") && !extra_ro.iter().any(|d| d == dir) {
                    extra_ro.push(dir.to_owned());
                }
            }
            if let Some(dir) = found.parent().filter(|d| !d.starts_with("/usr")) {
                extra_path.push(dir.to_owned());
            }
            let mut command: Vec<OsString> = vec![found.into_os_string()];
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
                extra_ro,
                extra_path,
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
    pub extra_path: &'a [PathBuf],
    pub display: Option<&'a SandboxDisplay>,
    /// Variable names from config `bubblewrap.pass_env`, passed as they are.
    pub pass_env: &'a [String],
    /// What the exposure adds (sockets asked for).
    pub exposure_env: &'a [(String, String)],
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
    let path = profile
        .path
        .iter()
        .chain(extra_path)
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
        ("CLAUDE_SANDBOX_BACKEND".into(), backend.as_str().into()),
    ]);
    if !env.iter().any(|(k, _)| k == "TERM") {
        env.push(("TERM".into(), "xterm-256color".into()));
    }
    if let Some(display) = display {
        env.push(("DISPLAY".into(), format!(":{}", display.number)));
        env.push((
            "XAUTHORITY".into(),
            home.join(".Xauthority").display().to_string(),
        ));
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
        assert_eq!(resumed.extra_ro, vec![dir.path().canonicalize().unwrap()]);
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
