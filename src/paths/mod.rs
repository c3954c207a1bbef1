//! Where sandbox-deck keeps its files. Everything honours the XDG variables, so two
//! processes with different XDG dirs never see each other's sandboxes.
//!
//! The one owner of the layout: every file name under the config, state and runtime dirs,
//! a sandbox's own ([`SandboxFiles`]) and a project's ([`ProjectState`]), is spelled here and
//! nowhere else (`backend::git_view` lays out its own subdir of a project's state).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

use crate::error::{DeckError, Result};
use crate::host::fs::ensure_private_dir;
use crate::sandbox::{ProjectDir, SandboxId, SandboxRecord};

pub mod project_state;

pub use project_state::ProjectState;

#[derive(Debug, Clone)]
pub struct Paths {
    /// Registry and per-project persistent state (`$XDG_STATE_HOME/sandbox-deck`).
    pub state_dir: PathBuf,
    /// `config.toml` and user keymaps (`$XDG_CONFIG_HOME/sandbox-deck`).
    pub config_dir: PathBuf,
    /// Sockets, cookies and logs that die with the login (`$XDG_RUNTIME_DIR/sandbox-deck`).
    pub runtime_dir: PathBuf,
}

impl Paths {
    /// Resolves the directories from the environment. Nothing is created yet.
    pub fn from_env() -> Result<Paths> {
        let dirs = ProjectDirs::from("", "", "sandbox-deck").ok_or_else(|| {
            DeckError::host("finding the home directory", "HOME is not set".to_string())
        })?;
        let state_dir = dirs
            .state_dir()
            .map(Path::to_owned)
            .unwrap_or_else(|| dirs.data_local_dir().to_owned());
        let runtime_dir = match dirs.runtime_dir() {
            Some(dir) => dir.to_owned(),
            None => fallback_runtime_dir(nix::unistd::getuid().as_raw()),
        };
        Ok(Paths {
            state_dir,
            config_dir: dirs.config_dir().to_owned(),
            runtime_dir,
        })
    }

    pub fn registry_file(&self) -> PathBuf {
        self.state_dir.join("registry.json")
    }

    pub fn registry_lock(&self) -> PathBuf {
        self.state_dir.join("registry.lock")
    }

    /// The usage index's cache (offsets and sums per log file), rebuilt when missing.
    pub fn usage_cache(&self) -> PathBuf {
        self.state_dir.join("usage-cache.json")
    }

    /// The credential the user handed over for proxy-mode agents (0600; see
    /// `egress::credential`).
    pub fn credential_file(&self) -> PathBuf {
        self.state_dir.join("credential").join("anthropic.json")
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// The user's keymap, merged over the shipped one.
    pub fn keymap_file(&self) -> PathBuf {
        self.config_dir.join("keymap.toml")
    }

    /// The system-wide config under every user's own (the NixOS module writes it);
    /// `SANDBOX_DECK_SYSTEM_CONFIG` names another file.
    pub fn system_config_file() -> PathBuf {
        std::env::var_os("SANDBOX_DECK_SYSTEM_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/sandbox-deck/config.toml"))
    }

    pub fn tmux_socket(&self) -> PathBuf {
        tmux_socket_in(&self.runtime_dir)
    }

    pub fn tmux_conf(&self) -> PathBuf {
        tmux_conf_in(&self.runtime_dir)
    }

    /// One JSON line per mutating API command: who (uid, connection), what, and the result.
    pub fn api_audit_log(&self) -> PathBuf {
        self.state_dir.join("api-audit.log")
    }

    /// The runtime dir a sandbox was made under: the recorded one, else (an older record) ours.
    pub fn runtime_dir_of<'a>(&'a self, record: &'a SandboxRecord) -> &'a Path {
        record.runtime_dir.as_deref().unwrap_or(&self.runtime_dir)
    }

    /// A sandbox's files, its runtime part under our runtime dir.
    pub fn sandbox(&self, id: &SandboxId) -> SandboxFiles {
        SandboxFiles::new(&self.runtime_dir, &self.state_dir, id)
    }

    /// A sandbox's files, its runtime part under the runtime dir it was made under.
    pub fn sandbox_of(&self, record: &SandboxRecord) -> SandboxFiles {
        SandboxFiles::new(self.runtime_dir_of(record), &self.state_dir, &record.id)
    }

    /// Where every project's persistent state lives (see [`ProjectState`]).
    pub fn projects_dir(&self) -> PathBuf {
        self.state_dir.join("projects")
    }

    /// A project's persistent state (`projects/<name>-<suffix>/`, or the dir an earlier
    /// naming gave it: see [`project_state`]), whether or not it exists yet.
    pub fn project_state(&self, project: &ProjectDir) -> Result<ProjectState> {
        let dir = project_state::state_dir(&self.projects_dir(), project.as_path())?;
        Ok(ProjectState { dir })
    }

    pub fn ensure_state_dir(&self) -> Result<()> {
        ensure_private_dir(&self.state_dir)
    }

    pub fn ensure_runtime_dir(&self) -> Result<()> {
        ensure_private_dir(&self.runtime_dir)
    }
}

/// Our tmux server's socket and config under a runtime dir.
pub fn tmux_socket_in(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("tmux.sock")
}

pub fn tmux_conf_in(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("tmux.conf")
}

/// One sandbox's own files. Secrets, sockets and what dies with a run are in its runtime dir
/// (`<runtime>/sandboxes/<id>/`, never mounted inside, usually a tmpfs gone at logout); what
/// outlives a run or may grow is on disk in its state dir (`<state>/sandboxes/<id>/`). Both
/// go with `rm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxFiles {
    runtime: PathBuf,
    state: PathBuf,
}

impl SandboxFiles {
    fn new(runtime_dir: &Path, state_dir: &Path, id: &SandboxId) -> SandboxFiles {
        // The same layout under both: `sandboxes/<id>/`.
        let own = Path::new("sandboxes").join(id.as_str());
        SandboxFiles {
            runtime: runtime_dir.join(&own),
            state: state_dir.join(own),
        }
    }

    /// The runtime dir: the X cookie, the Xvfb log, secrets handed to the launcher.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }

    /// The state dir: the status dir and the browser profile.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The cookie of its Xvfb display.
    pub fn xauthority(&self) -> PathBuf {
        self.runtime.join("Xauthority")
    }

    pub fn xvfb_log(&self) -> PathBuf {
        self.runtime.join("xvfb.log")
    }

    /// The GitHub token of a `--gh-token` sandbox, for its pane to hand over.
    pub fn gh_token(&self) -> PathBuf {
        self.runtime.join("gh-token")
    }

    /// The environment its payload got, which a join (`enter`) takes again.
    pub fn join_env(&self) -> PathBuf {
        self.runtime.join("join-env.json")
    }

    /// The identities of its init's namespaces, which a join checks.
    pub fn init_namespaces(&self) -> PathBuf {
        self.runtime.join("init-namespaces.json")
    }

    /// The generated `claude --settings` file with the status hooks (bound read-only).
    pub fn hook_settings(&self) -> PathBuf {
        self.runtime.join("hook-settings.json")
    }

    /// A VM's QMP socket, and where its screen dumps go.
    pub fn qmp_socket(&self) -> PathBuf {
        self.runtime.join("qmp.sock")
    }

    pub fn screendump(&self) -> PathBuf {
        self.runtime.join("screendump")
    }

    /// The directory its hooks write to (bound read-write). On disk, not in the runtime dir:
    /// that is a small tmpfs the user's login needs, which a sandbox must not be able to fill.
    pub fn status_dir(&self) -> PathBuf {
        self.state.join("status")
    }

    /// The events its hooks append, in [`SandboxFiles::status_dir`].
    pub fn status_events(&self) -> PathBuf {
        self.status_dir().join(STATUS_EVENTS)
    }

    /// Its pane's output as tmux reported it to a watching control client (raw bytes, may
    /// hold secrets the agent printed), and `pane.log.1` after rotation. In the state dir
    /// itself, which no sandbox sees (only its subdirs are bound in).
    pub fn pane_log(&self) -> PathBuf {
        self.state.join("pane.log")
    }

    /// What its egress proxy enforces (the allowlist and how to resolve), written at launch.
    pub fn egress_spec(&self) -> PathBuf {
        self.runtime.join("egress.json")
    }

    /// Its egress proxy's decisions, one JSON object a line, and `egress.log.1` after
    /// rotation. In the state dir itself, which no sandbox sees.
    pub fn egress_log(&self) -> PathBuf {
        self.state.join("egress.log")
    }

    /// Its egress proxy's connections waiting for the user's answer (see `egress::held`).
    /// In the state dir itself, which no sandbox sees.
    pub fn egress_held(&self) -> PathBuf {
        self.state.join("egress-held")
    }

    /// Its own browser profile: it outlives stop and start (unlike the runtime dir) and goes
    /// with `rm`. One per sandbox, not per project, so two sandboxes of a project never share
    /// a Chromium.
    pub fn browser_profile(&self) -> PathBuf {
        self.state.join("chromium")
    }
}

/// The name of the hooks' events file in the status dir, also as the sandbox sees it.
pub const STATUS_EVENTS: &str = "events.jsonl";

/// The runtime dir when `XDG_RUNTIME_DIR` is unset (`su - user`, `sudo -iu user`, cron):
/// the one a login session of this user gets, `/run/user/<uid>/sandbox-deck`, when the login
/// manager made `/run/user/<uid>` for us, so every session finds the same tmux server; else
/// a per-user dir in the temp dir. `ensure_private_dir` refuses either unless it is ours and
/// nobody else can write to it.
fn fallback_runtime_dir(uid: u32) -> PathBuf {
    let login = PathBuf::from(format!("/run/user/{uid}"));
    let ours = fs::symlink_metadata(&login)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
    if ours {
        login.join("sandbox-deck")
    } else {
        std::env::temp_dir().join(format!("sandbox-deck-{uid}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_keeps_its_runtime_files_where_it_was_made_and_its_state_in_ours() {
        let paths = Paths {
            state_dir: "/state".into(),
            config_dir: "/config".into(),
            runtime_dir: "/run/ours".into(),
        };
        let record = SandboxRecord {
            runtime_dir: Some("/run/theirs".into()),
            ..SandboxRecord::example("api", Path::new("/src/api"))
        };
        let id = record.id.as_str();
        let files = paths.sandbox_of(&record);
        assert_eq!(
            files.xauthority(),
            Path::new("/run/theirs/sandboxes")
                .join(id)
                .join("Xauthority")
        );
        assert_eq!(
            files.status_events(),
            Path::new("/state/sandboxes")
                .join(id)
                .join("status/events.jsonl")
        );
        let ours = paths.sandbox(&record.id);
        assert_eq!(
            ours.runtime_dir(),
            Path::new("/run/ours/sandboxes").join(id)
        );
        assert_eq!(ours.state_dir(), files.state_dir());
        let runtime = [
            files.xauthority(),
            files.xvfb_log(),
            files.gh_token(),
            files.join_env(),
            files.init_namespaces(),
            files.hook_settings(),
            files.qmp_socket(),
            files.screendump(),
        ];
        for (i, a) in runtime.iter().enumerate() {
            assert_eq!(a.parent(), Some(files.runtime_dir()), "{}", a.display());
            assert!(runtime[i + 1..].iter().all(|b| a != b), "{}", a.display());
        }
    }
}
