//! Claude usage and cost from Claude Code's JSONL logs (D11, `USAGE-LOGS.md`).
//!
//! [`UsageIndex`] scans every root, reads only the bytes appended since the last refresh
//! (offsets, inode and a fingerprint of each file kept in a cache under the state dir),
//! deduplicates responses across files, and answers [`Query`]s with a [`Report`]:
//! totals per project, session, model, day or 5-hour block.

pub mod blocks;
pub mod jsonl;
pub mod pricing;
pub mod report;
pub mod store;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use blocks::Block;
pub use pricing::Pricing;
pub use report::{CostMode, GroupBy, Query, Report, Row};
pub use store::{RefreshStats, UsageIndex};

/// The tokens of one response, cache writes split by lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

impl Tokens {
    pub fn cache_creation(&self) -> u64 {
        self.cache_write_5m + self.cache_write_1h
    }

    /// What the model read: the quantity the above-200k price tier is about.
    pub fn prompt(&self) -> u64 {
        self.input + self.cache_creation() + self.cache_read
    }

    pub fn total(&self) -> u64 {
        self.prompt() + self.output
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cache_read_tokens: u64,
    pub total_tokens: u64,
    pub cost_usd: f64,
    /// Deduplicated responses.
    pub entries: u64,
    /// Lines that could not be used: malformed, or without what counting needs.
    pub skipped_lines: u64,
}

impl Totals {
    pub fn add(&mut self, t: &Tokens, cost: f64) {
        self.input_tokens += t.input;
        self.output_tokens += t.output;
        self.cache_creation_tokens += t.cache_creation();
        self.cache_read_tokens += t.cache_read;
        self.total_tokens += t.total();
        self.cost_usd += cost;
        self.entries += 1;
    }
}

/// Sums of sums: a project's totals over its sessions, the deck's over its projects.
impl std::ops::AddAssign<&Totals> for Totals {
    fn add_assign(&mut self, t: &Totals) {
        self.input_tokens += t.input_tokens;
        self.output_tokens += t.output_tokens;
        self.cache_creation_tokens += t.cache_creation_tokens;
        self.cache_read_tokens += t.cache_read_tokens;
        self.total_tokens += t.total_tokens;
        self.cost_usd += t.cost_usd;
        self.entries += t.entries;
        self.skipped_lines += t.skipped_lines;
    }
}

/// The `projects/` directories to scan: each entry of `CLAUDE_CONFIG_DIR` (a comma-separated
/// list of config dirs or their `projects/`), otherwise both `${XDG_CONFIG_HOME:-~/.config}/claude`
/// and `~/.claude`. Duplicates (one a symlink of the other) are dropped.
pub fn roots_from_env() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    roots_from(
        var("CLAUDE_CONFIG_DIR").as_deref(),
        var("XDG_CONFIG_HOME").as_deref(),
        var("HOME").as_deref(),
    )
}

pub fn roots_from(
    claude_config_dir: Option<&std::ffi::OsStr>,
    xdg_config_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(list) = claude_config_dir.and_then(|l| l.to_str()) {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let dir = PathBuf::from(item);
            let projects = if dir.file_name().is_some_and(|n| n == "projects")
                && !dir.join("projects").is_dir()
            {
                dir
            } else {
                dir.join("projects")
            };
            roots.push(projects);
        }
    } else {
        let home = home.map(PathBuf::from);
        let config = xdg_config_home
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")));
        roots.extend(config.map(|c| c.join("claude/projects")));
        roots.extend(home.map(|h| h.join(".claude/projects")));
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    roots.retain(|r| {
        let canonical = r.canonicalize().unwrap_or_else(|_| r.clone());
        if seen.contains(&canonical) {
            false
        } else {
            seen.push(canonical);
            true
        }
    });
    roots
}

/// The directory name Claude Code gives a project: the absolute cwd with every character
/// outside `[A-Za-z0-9]` replaced by `-` (one per UTF-16 unit, as JavaScript counts).
pub fn encode_project_dir(cwd: &Path) -> String {
    cwd.to_string_lossy()
        .chars()
        .flat_map(|c| {
            let n = if c.is_ascii_alphanumeric() {
                0
            } else {
                c.len_utf16()
            };
            let keep = (n == 0).then_some(c);
            keep.into_iter().chain(std::iter::repeat_n('-', n))
        })
        .collect()
}

/// Whether a line's `cwd` belongs to the project at `project` (itself or below it).
pub fn cwd_in_project(cwd: &str, project: &Path) -> bool {
    let Some(project) = project.to_str() else {
        return false;
    };
    let project = project.trim_end_matches('/');
    cwd == project
        || cwd
            .strip_prefix(project)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_dirs_are_encoded_like_claude_code_does() {
        assert_eq!(
            encode_project_dir(Path::new("/home/dev/my_app.v2")),
            "-home-dev-my-app-v2"
        );
        assert_eq!(
            encode_project_dir(Path::new("/srv/a b/c.d_e")),
            "-srv-a-b-c-d-e"
        );
        assert_eq!(encode_project_dir(Path::new("/x/é😀")), "-x----");
    }

    #[test]
    fn roots_follow_claude_config_dir_then_both_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b/projects");
        std::fs::create_dir_all(&b).unwrap();
        let list = format!("{}, {} ,", a.display(), b.display());
        let roots = roots_from(Some(list.as_ref()), None, Some("/h".as_ref()));
        assert_eq!(roots, vec![a.join("projects"), b.clone()]);
        let roots = roots_from(None, None, Some("/h".as_ref()));
        assert_eq!(
            roots,
            vec![
                PathBuf::from("/h/.config/claude/projects"),
                PathBuf::from("/h/.claude/projects")
            ]
        );
        let roots = roots_from(None, Some("/x".as_ref()), Some("/h".as_ref()));
        assert_eq!(roots[0], PathBuf::from("/x/claude/projects"));
    }

    #[test]
    fn the_index_can_live_on_a_worker_thread() {
        fn send<T: Send + 'static>() {}
        send::<UsageIndex>();
        send::<crate::metrics::MetricsSampler>();
    }

    #[test]
    fn a_cwd_belongs_to_its_project_and_not_to_a_sibling() {
        let p = Path::new("/src/api");
        assert!(cwd_in_project("/src/api", p));
        assert!(cwd_in_project("/src/api/sub", p));
        assert!(!cwd_in_project("/src/api-v2", p));
        assert!(!cwd_in_project("/src", p));
    }
}
