//! Files only this user may read: the runtime and state dirs, cookies, tokens. Checked, not
//! trusted: a dir someone else owns or can write to is refused.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{DeckError, IoContext, Result};

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
