//! Completing a project dir as it is typed: the dirs under the typed parent that start with
//! the typed rest, written the way the user wrote the parent (`~/sr` completes to `~/src`).
//! Run where the files are: in the front end on the engine's host, or by the engine for a
//! mirror on another host (the API's `complete_dir`).

use std::path::{Path, PathBuf};

/// Directory completions offered at most.
const MAX_COMPLETIONS: usize = 200;

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `~/x` → `$HOME/x`; anything else unchanged.
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), home()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

/// The directories that complete `input`, written the way the user wrote the parent
/// (so `~/sr` completes to `~/src`). Hidden ones only when asked for with a dot.
pub fn complete_dir(input: &str) -> Vec<String> {
    let (parent, prefix) = match input.rfind('/') {
        Some(i) => (&input[..=i], &input[i + 1..]),
        None => ("./", input),
    };
    let Ok(entries) = std::fs::read_dir(expand_home(Path::new(parent))) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && (prefix.starts_with('.') || !n.starts_with('.')))
        .map(|n| {
            if input.contains('/') {
                format!("{parent}{n}")
            } else {
                n
            }
        })
        .take(MAX_COMPLETIONS)
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_complete_and_files_do_not() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["alpha", "alps", ".hidden"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("alfile"), "").unwrap();
        let base = format!("{}/", root.path().display());
        assert_eq!(
            complete_dir(&format!("{base}al")),
            [format!("{base}alpha"), format!("{base}alps")]
        );
        assert_eq!(
            complete_dir(&format!("{base}.h")),
            [format!("{base}.hidden")]
        );
        assert_eq!(complete_dir(&base).len(), 2);
        assert!(complete_dir(&format!("{base}missing/x")).is_empty());
    }
}
