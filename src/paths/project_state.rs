//! A project's persistent state dir: its files ([`ProjectState`]) and its name,
//! `projects/<name>-<suffix>/` under the state dir, `<name>` the project's sandbox name and
//! `<suffix>` 12 hex digits of the xxh3 hash of its path. Earlier versions took the suffix
//! from SHA-256; such a dir is found by the project its `path` file records (every state dir
//! has one from its first use) and used where it is: renaming it could pull it from under a
//! sandbox an older version started, whose git sync helper holds its absolute paths.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::sandbox::SandboxName;

/// A project's persistent state, outside the project: `projects/<name>-<suffix>/` under the
/// state dir. It survives the sandbox, so installed tools persist (the browser profile is
/// per sandbox: see [`super::SandboxFiles::browser_profile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectState {
    pub dir: PathBuf,
}

impl ProjectState {
    /// Records which project the dir belongs to, so two projects can never share one.
    pub fn marker(&self) -> PathBuf {
        self.dir.join(PATH_FILE)
    }
    /// What [`ProjectState::marker`] holds for `project` (a newline after it).
    pub fn recorded_text(project: &Path) -> String {
        path_text(project)
    }
    /// The project's `~/.claude.json`: a filtered copy of the host's (a bind of the host
    /// file would race with Claude's atomic renames, and it holds every other project).
    pub fn claude_json(&self) -> PathBuf {
        self.dir.join("claude-view.json")
    }
    /// Before the allowlist, a whole copy of the host's `~/.claude.json` (other projects'
    /// MCP secrets included) was kept here: removed when found.
    pub fn legacy_claude_json(&self) -> PathBuf {
        self.dir.join("claude.json")
    }
    /// The project's own `~/.claude`, where everything not bound from the host is kept.
    pub fn claude_dir(&self) -> PathBuf {
        self.dir.join("claude")
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

/// The hex digits of the suffix.
const SUFFIX_LEN: usize = 12;

/// The file in a state dir that records its project's path.
const PATH_FILE: &str = "path";

/// The project's path as its `path` file records it.
fn path_text(project: &Path) -> String {
    project.display().to_string()
}

/// The state dir's name for `project`.
fn dir_name(project: &Path) -> String {
    let hash = xxhash_rust::xxh3::xxh3_64(path_text(project).as_bytes());
    let suffix = format!("{hash:016x}");
    let name = SandboxName::from_dir(project);
    format!("{name}-{}", &suffix[..SUFFIX_LEN])
}

/// The project's state dir under `root` (the `projects` dir), whether or not it exists yet:
/// the current name, or the dir an earlier version made for the project, left in place.
pub(crate) fn state_dir(root: &Path, project: &Path) -> Result<PathBuf> {
    let dir = root.join(dir_name(project));
    if std::fs::symlink_metadata(&dir).is_ok() {
        return Ok(dir);
    }
    Ok(older_dir(root, project).unwrap_or(dir))
}

/// A state dir of the same project under another suffix: a real dir named `<name>-<12 hex
/// digits>` whose `path` file records `project`. The first by name if there were several.
fn older_dir(root: &Path, project: &Path) -> Option<PathBuf> {
    let prefix = format!("{}-", SandboxName::from_dir(project));
    let recorded = path_text(project);
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let suffix = name.strip_prefix(&prefix)?;
            let is_suffix =
                suffix.len() == SUFFIX_LEN && suffix.bytes().all(|b| b.is_ascii_hexdigit());
            (is_suffix && entry.file_type().ok()?.is_dir()).then(|| entry.path())
        })
        .filter(|dir| {
            std::fs::read_to_string(dir.join(PATH_FILE))
                .is_ok_and(|text| text.trim_end_matches('\n') == recorded)
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state dir as earlier versions made it: the suffix is the first 6 bytes of
    /// SHA-256("/srv/code/api"), computed once outside.
    fn old_scheme_dir(root: &Path) -> PathBuf {
        let old = root.join("api-052d9d456b01");
        std::fs::create_dir_all(old.join("local/bin")).unwrap();
        std::fs::write(old.join(PATH_FILE), "/srv/code/api\n").unwrap();
        std::fs::write(old.join("local/bin/tool"), "kept").unwrap();
        old
    }

    #[test]
    fn the_suffix_is_twelve_hex_digits_of_the_path_and_the_name_the_sandbox_name() {
        let name = dir_name(Path::new("/srv/code/My API"));
        let (stem, suffix) = name.rsplit_once('-').unwrap();
        assert_eq!(stem, "my-api");
        assert_eq!(suffix.len(), SUFFIX_LEN);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(name, dir_name(Path::new("/srv/other/My API")));
        assert_eq!(name, dir_name(Path::new("/srv/code/My API")));
    }

    #[test]
    fn a_state_dir_of_the_old_scheme_is_used_where_it_is_with_everything_in_it() {
        let root = tempfile::tempdir().unwrap();
        let old = old_scheme_dir(root.path());
        let project = Path::new("/srv/code/api");
        let dir = state_dir(root.path(), project).unwrap();
        assert_eq!(dir, old);
        assert_ne!(dir, root.path().join(dir_name(project)));
        assert_eq!(
            std::fs::read_to_string(dir.join("local/bin/tool")).unwrap(),
            "kept"
        );
        // The lookup is stable and moves nothing.
        assert_eq!(state_dir(root.path(), project).unwrap(), dir);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_a_dir_that_records_the_project_is_taken_and_a_current_one_wins() {
        let root = tempfile::tempdir().unwrap();
        let old = old_scheme_dir(root.path());
        // Another project of the same name, and a name that is no state dir.
        let other = root.path().join("api-0123456789ab");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(PATH_FILE), "/elsewhere/api\n").unwrap();
        let odd = root.path().join("api-backup");
        std::fs::create_dir(&odd).unwrap();
        std::fs::write(odd.join(PATH_FILE), "/srv/code/api\n").unwrap();
        let project = Path::new("/srv/code/api");
        let current = root.path().join(dir_name(project));
        std::fs::create_dir(&current).unwrap();
        assert_eq!(state_dir(root.path(), project).unwrap(), current);
        assert!(old.exists(), "a current dir is used as it is");
        std::fs::remove_dir(&current).unwrap();
        assert_eq!(state_dir(root.path(), project).unwrap(), old);
        assert!(other.exists() && odd.exists());
        // A project with no state dir yet gets its name, and nothing is created.
        let fresh = state_dir(root.path(), Path::new("/srv/code/new")).unwrap();
        assert!(!fresh.exists());
        assert!(
            fresh
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("new-")
        );
    }
}
