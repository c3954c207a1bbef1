//! The per-project state dirs (`projects/<name>-<hash>/` under the state dir: browser
//! profile, `~/.local`, tmp, the copy of `~/.claude.json`) outlive their sandboxes on
//! purpose; `rm --purge` and `gc` remove the ones no sandbox uses any more.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Deck;
use crate::error::{IoContext, Result};
use crate::paths::ProjectState;
use crate::sandbox::{ProjectDir, SandboxRecord};

/// What `rm --purge` did with the project's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Purge {
    /// `--purge` was not given.
    NotAsked,
    Removed {
        dir: PathBuf,
    },
    /// Other sandboxes of the project still use it.
    KeptInUse {
        dir: PathBuf,
        by: Vec<String>,
    },
    /// The project never had state.
    NoState {
        dir: PathBuf,
    },
}

impl Purge {
    /// A line for people, when there is something to say.
    pub fn describe(&self) -> Option<String> {
        match self {
            Purge::NotAsked => None,
            Purge::Removed { dir } => Some(format!("removed the project state {}", dir.display())),
            Purge::KeptInUse { dir, by } => Some(format!(
                "kept the project state {}: {} still use(s) it",
                dir.display(),
                by.join(", ")
            )),
            Purge::NoState { .. } => Some("the project had no state to remove".into()),
        }
    }
}

/// A project state dir that no sandbox uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanState {
    pub dir: PathBuf,
    /// The project it was made for (from its `path` file), when that can be read.
    pub project: Option<PathBuf>,
    pub bytes: u64,
}

impl Deck {
    /// Removes the project's state dir unless another sandbox uses the project. Decided
    /// under the registry lock, so a sandbox created meanwhile cannot lose its state.
    pub fn purge_project_state(&self, project: &ProjectDir) -> Result<Purge> {
        let dir = self.paths.project_state(project)?.dir;
        self.registry.update(|records| {
            let by: Vec<String> = users_of(records, project.as_path())
                .map(|r| r.name.to_string())
                .collect();
            if !by.is_empty() {
                return Ok(Purge::KeptInUse {
                    dir: dir.clone(),
                    by,
                });
            }
            if !dir.exists() {
                return Ok(Purge::NoState { dir: dir.clone() });
            }
            std::fs::remove_dir_all(&dir).context_io(|| format!("removing {}", dir.display()))?;
            Ok(Purge::Removed { dir: dir.clone() })
        })
    }

    /// Every project state dir whose project has no sandbox.
    pub fn orphaned_project_states(&self) -> Result<Vec<OrphanState>> {
        let records = self.registry.load()?;
        let root = self.paths.projects_dir();
        let Ok(entries) = std::fs::read_dir(&root) else {
            return Ok(Vec::new());
        };
        let mut orphans: Vec<OrphanState> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|dir| dir.is_dir() && !dir.is_symlink())
            .filter_map(|dir| {
                let project = recorded_project(&dir);
                let used = project
                    .as_deref()
                    .is_some_and(|p| users_of(&records, p).next().is_some());
                (!used).then(|| OrphanState {
                    bytes: size_of(&dir),
                    project,
                    dir,
                })
            })
            .collect();
        orphans.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(orphans)
    }

    /// Removes the given orphans that are still orphans (checked again under the registry
    /// lock). Returns the dirs removed.
    pub fn remove_project_states(&self, orphans: &[OrphanState]) -> Result<Vec<PathBuf>> {
        let root = self.paths.projects_dir();
        self.registry.update(|records| {
            let mut removed = Vec::new();
            for orphan in orphans {
                // Only our own dirs, never a path from elsewhere.
                if orphan.dir.parent() != Some(root.as_path()) {
                    continue;
                }
                let in_use = recorded_project(&orphan.dir)
                    .is_some_and(|p| users_of(records, &p).next().is_some());
                if in_use {
                    continue;
                }
                std::fs::remove_dir_all(&orphan.dir)
                    .context_io(|| format!("removing {}", orphan.dir.display()))?;
                removed.push(orphan.dir.clone());
            }
            Ok(removed)
        })
    }
}

fn users_of<'a>(
    records: &'a [SandboxRecord],
    project: &'a Path,
) -> impl Iterator<Item = &'a SandboxRecord> {
    records
        .iter()
        .filter(move |r| r.project_dir.as_path() == project)
}

/// The project a state dir belongs to, from the `path` file written when it was made.
fn recorded_project(dir: &Path) -> Option<PathBuf> {
    let marker = ProjectState {
        dir: dir.to_owned(),
    }
    .marker();
    let text = std::fs::read_to_string(marker).ok()?;
    let path = text.trim_end_matches('\n');
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// The bytes of the files under `dir`, symlinks not followed.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
