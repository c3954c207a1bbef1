//! What runs on the host for a sandbox, and the host's facts: its X display (`xvfb`), our
//! private tmux server (`tmux`), processes as the kernel lists them (`process`, the one reader
//! of `/proc/<pid>/stat`), the caller's terminal job (`job`), and joining a running sandbox
//! (`namespace`, with `capabilities` for what the joined process gives up); files only this
//! user may read (`fs`).

pub mod capabilities;
pub mod fs;
pub mod job;
pub mod namespace;
pub mod placement;
pub mod process;
pub mod tmux;
pub mod tmux_control;
pub mod xvfb;

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a long-lived host process we start (Xvfb, the tmux server, notify helpers) may
/// inherit from whoever started sandbox-deck: by allowlist, so tokens and agent sockets in
/// the caller's environment (GH_TOKEN, SSH_AUTH_SOCK...) never sit in its environ.
pub const HOST_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
];

/// Clears `command`'s environment and passes on only [`HOST_ENV`] and `extra`.
pub fn allowlisted_env(command: &mut Command, extra: &[&str]) {
    command.env_clear();
    for key in HOST_ENV.iter().chain(extra) {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
}

/// Finds `binary` on `PATH` (or returns it when it already names a file).
pub fn which(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        let path = Path::new(binary);
        return is_executable(path).then(|| path.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
