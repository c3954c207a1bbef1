//! What runs on the host for a sandbox: its X display, our private tmux server, processes.

pub mod namespace;
pub mod process;
pub mod tmux;
pub mod xvfb;

use std::path::{Path, PathBuf};

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
