//! Where sandbox-deck keeps its files. Everything honours the XDG variables, so two
//! processes with different XDG dirs never see each other's sandboxes.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

use crate::error::{DeckError, IoContext, Result};
use crate::sandbox::{SandboxId, SandboxRecord};

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

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
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

    /// Per-sandbox runtime files: the X cookie, the Xvfb log, secrets handed to the launcher.
    pub fn sandbox_runtime_dir(&self, id: &SandboxId) -> PathBuf {
        sandbox_runtime_dir_in(&self.runtime_dir, id)
    }

    /// The runtime dir a sandbox was made under: the recorded one, else (an older record) ours.
    pub fn runtime_dir_of<'a>(&'a self, record: &'a SandboxRecord) -> &'a Path {
        record.runtime_dir.as_deref().unwrap_or(&self.runtime_dir)
    }

    /// [`Paths::sandbox_runtime_dir`] under the runtime dir the sandbox was made under.
    pub fn sandbox_runtime_dir_of(&self, record: &SandboxRecord) -> PathBuf {
        sandbox_runtime_dir_in(self.runtime_dir_of(record), &record.id)
    }

    /// Per-sandbox files kept on disk rather than in the runtime tmpfs: the status dir its
    /// hooks write to.
    pub fn sandbox_state_dir(&self, id: &SandboxId) -> PathBuf {
        self.state_dir.join("sandboxes").join(id.as_str())
    }

    /// A sandbox's own browser profile: it outlives stop and start (unlike the runtime dir)
    /// and goes with `rm`. One per sandbox, not per project, so two sandboxes of a project
    /// never share a Chromium.
    pub fn sandbox_browser_profile(&self, id: &SandboxId) -> PathBuf {
        self.sandbox_state_dir(id).join("chromium")
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

fn sandbox_runtime_dir_in(runtime_dir: &Path, id: &SandboxId) -> PathBuf {
    runtime_dir.join("sandboxes").join(id.as_str())
}

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

/// Creates `dir` (and parents) with mode 0700, or checks that an existing one is a directory
/// owned by us that nobody else can write to.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .context_io(|| format!("creating {}", dir.display()))?;
    }
    let meta = fs::symlink_metadata(dir).context_io(|| format!("checking {}", dir.display()))?;
    let uid = nix::unistd::getuid().as_raw();
    let unsafe_dir = |why: &str| {
        DeckError::host(
            format!("using {}", dir.display()),
            format!("{why}; refusing to keep private files there"),
        )
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a directory"));
    }
    if meta.uid() != uid {
        return Err(unsafe_dir("it belongs to another user"));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(unsafe_dir("others can write to it"));
    }
    Ok(())
}

/// Writes `bytes` to `path`, created (or truncated) with mode 0600: cookies, tokens.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .context_io(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .context_io(|| format!("writing {}", path.display()))
}

/// Creates `dir` with mode 0700, tightening the mode if it already exists.
pub fn make_private_dir(dir: &Path) -> Result<()> {
    ensure_private_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .context_io(|| format!("setting the mode of {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_writable_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure_private_dir(&open).is_err());
        let fresh = dir.path().join("a/b");
        ensure_private_dir(&fresh).unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
