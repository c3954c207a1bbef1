//! The project's git dir by allowlist (issue 9 point 2).
//!
//! The host runs git in the project after the sandbox wrote to it, and git runs code named by
//! files in its git dir (`config`, `config.worktree`, `commondir`, `hooks/`, the `.git` file
//! of a linked worktree, `modules/*/config`). So the sandbox never writes the host's git dir
//! directly. It sees a *view*: a private directory in the project's state, mounted where the
//! git dir is, holding
//! - the host's `objects/`, `refs/` and `logs/` bound read-write (what commits write),
//! - every other host entry bound read-only over a mount point (mount points cannot be
//!   renamed or replaced, so `config`, `hooks/`, `info/`, `modules/` ... stay the host's),
//! - private copies of the few state files git replaces by renaming `X.lock` onto `X` (a bind
//!   mount cannot be a rename target): HEAD, index, ORIG_HEAD, packed-refs, shallow. A host
//!   process ([`sync_round`], run by the `git-sync` helper) carries them to the host's git dir
//!   and back, validated, and only those names ever cross.
//!
//! Anything else the sandbox creates in the view (a `commondir`, `config.worktree`,
//! `worktrees/`, rebase and merge state) stays in the private dir: the host never reads it.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{DeckError, IoContext, Result};

/// Host git dir entries bound read-write: git writes new files in them and renames inside
/// them (loose objects, packs, loose refs), never onto the directory itself. A symlink the
/// sandbox leaves in them is removed by [`remove_planted_links`]. Not `logs/`: git appends
/// to a reflog through a symlink (a `logs/HEAD` pointing at `~/.bashrc` would get the host's
/// next "checkout: moving from <branch name>" line), so reflogs are private to the view.
const WRITABLE_DIRS: &[&str] = &["objects", "refs"];

/// Where `refused.log` stops growing.
const MAX_REFUSED_LOG: u64 = 1 << 20;

/// The most entries [`remove_planted_links`] looks at in one round.
const MAX_SWEPT_ENTRIES: usize = 200_000;

/// State files of a worktree's own git dir (the main one or a linked worktree's).
const WORKTREE_STATE: &[&str] = &["HEAD", "index", "ORIG_HEAD"];
/// State files of the common dir (shared by all worktrees of a repository).
const COMMON_STATE: &[&str] = &["packed-refs", "shallow"];

/// What git writes for an operation in progress or as scratch (found by tracing `git commit`,
/// `merge`, `rebase`, `cherry-pick`, `stash`, `fetch`, `gc`): private to the view, never
/// bound from the host nor carried back. The host's own copies stay the host's.
const PRIVATE_STATE: &[&str] = &[
    "COMMIT_EDITMSG",
    "FETCH_HEAD",
    "MERGE_HEAD",
    "MERGE_MSG",
    "MERGE_MODE",
    "MERGE_RR",
    "AUTO_MERGE",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "REBASE_HEAD",
    "SQUASH_MSG",
    "TAG_EDITMSG",
    "BISECT_LOG",
    "BISECT_START",
    "BISECT_TERMS",
    "BISECT_NAMES",
    "BISECT_EXPECTED_REV",
    "BISECT_ANCESTORS_OK",
    "BISECT_RUN",
    "NOTES_MERGE_PARTIAL",
    "NOTES_MERGE_REF",
    "rebase-merge",
    "rebase-apply",
    "sequencer",
    "rr-cache",
    "logs",
    "gc.pid",
    "gc.log",
];

/// Whether git writes `name` as private scratch (see [`PRIVATE_STATE`]), including the
/// numbered temporary index of `git stash` and split-index shards.
fn is_private_state(name: &str) -> bool {
    PRIVATE_STATE.contains(&name)
        || name.starts_with("index.stash.")
        || name.starts_with("sharedindex.")
}

/// The largest state file carried across (an index of a very large repository fits).
const MAX_STATE_FILE: u64 = 256 << 20;

/// One read-only or read-write bind of the view, in mount order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitMount {
    pub host: PathBuf,
    pub inside: PathBuf,
    pub writable: bool,
}

/// A host git dir and the private dir that stands for it inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedDir {
    pub host: PathBuf,
    pub private: PathBuf,
    /// The content last agreed on by both sides, to tell who changed a file.
    pub baseline: PathBuf,
    pub names: Vec<String>,
}

/// What the helper needs to keep the views and the host in step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSpec {
    pub dirs: Vec<SyncedDir>,
    /// The host git dir the index is checked against (gitlinks, paths).
    pub index_git_dir: Option<PathBuf>,
    /// Gitlink (submodule) paths the host's index had at launch: the only ones a synced index
    /// may hold (a new gitlink to a repository the sandbox made runs its config on the host's
    /// next `git status`).
    pub gitlinks: BTreeSet<String>,
    /// Project paths the host runs code from (a `core.hooksPath` in the project, the
    /// `bubblewrap.protect` paths), relative to the project: a synced index may hold entries at, above or below them only
    /// as the host's index had them at launch (`git restore .` on the host would write them).
    #[serde(default)]
    pub protected_paths: Vec<String>,
    /// The host index's entries at or below [`SyncSpec::protected_paths`] at launch, as
    /// `MODE OID STAGE\tPATH`.
    #[serde(default)]
    pub protected_entries: BTreeSet<String>,
    /// Where the helper writes what it refused.
    pub log: PathBuf,
}

/// The view of a project's git dir: mounts for the backend, and what to keep in step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitView {
    /// In mount order: pinned project dirs, then the views, then read-only project paths.
    pub mounts: Vec<GitMount>,
    pub spec: SyncSpec,
    /// Project dirs bound over themselves (a mount point cannot be renamed): mounted first,
    /// parents before children, so none of them can cover a view mounted below it.
    pins: BTreeSet<PathBuf>,
    /// Project paths the host's git reads: bound read-only over themselves, last.
    read_only: Vec<PathBuf>,
}

/// What the project root holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// No `.git`: a private one is mounted, so a repository made inside stays inside.
    Absent,
    /// `.git` is the git dir.
    Dir(PathBuf),
    /// `.git` is a file naming the git dir (a linked worktree or a submodule checkout).
    File {
        dot_git: PathBuf,
        git_dir: PathBuf,
        common_dir: PathBuf,
    },
}

fn layout(project: &Path) -> Result<Layout> {
    let dot_git = project.join(".git");
    let refuse = |why: String| DeckError::InvalidProjectDir {
        path: project.to_owned(),
        why,
    };
    let meta = match std::fs::symlink_metadata(&dot_git) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Layout::Absent),
        Err(e) => return Err(DeckError::io(format!("reading {}", dot_git.display()), e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(
            "its .git is a symlink, which a sandbox could not be kept from replacing; \
             use a `gitdir: PATH` file instead"
                .into(),
        ));
    }
    if meta.is_dir() {
        // An empty one is the mount point an earlier sandbox left: still no repository.
        let empty = std::fs::read_dir(&dot_git)
            .context_io(|| format!("listing {}", dot_git.display()))?
            .next()
            .is_none();
        return Ok(if empty {
            Layout::Absent
        } else {
            Layout::Dir(dot_git)
        });
    }
    let text = std::fs::read_to_string(&dot_git)
        .context_io(|| format!("reading {}", dot_git.display()))?;
    let named = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("gitdir: "))
        .ok_or_else(|| refuse("its .git file does not start with `gitdir: `".into()))?;
    let git_dir = project
        .join(named.trim_end())
        .canonicalize()
        .map_err(|e| refuse(format!("its .git file names {named:?}: {e}")))?;
    let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir
            .join(rel.trim_end())
            .canonicalize()
            .map_err(|e| refuse(format!("{}/commondir: {e}", git_dir.display())))?,
        Err(_) => git_dir.clone(),
    };
    Ok(Layout::File {
        dot_git,
        git_dir,
        common_dir,
    })
}

/// Builds the view for `project` in `state` (the project's state dir): private dirs made and
/// brought in step with the host, mount list and sync spec returned. `protected` are the
/// project paths the host runs or loads (`bubblewrap.protect`): the synced index may not
/// change them either.
pub fn prepare(project: &Path, state: &Path, protected: &[PathBuf]) -> Result<GitView> {
    let root = view_root(state);
    crate::host::fs::make_private_dir(&root)?;
    let mut view = GitView {
        spec: SyncSpec {
            log: root.join("refused.log"),
            ..SyncSpec::default()
        },
        ..GitView::default()
    };
    add_layout_views(&mut view, project, &root, layout(project)?)?;
    if let Some(git_dir) = &view.spec.index_git_dir {
        let host_index = git_dir.join("index");
        // Without a working host git (none installed, an index it cannot read) no gitlink
        // is known: then no synced index may hold one, and the host runs no submodule either.
        if host_index.exists() {
            view.spec.gitlinks = index_entries(git_dir, &host_index)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.gitlink)
                .map(|e| e.path)
                .collect();
        }
        protect_submodule_checkouts(&mut view, project);
    }
    protect_hooks_in_project(&mut view, project)?;
    for path in protected {
        if let Ok(rel) = path.strip_prefix(project)
            && let Some(rel) = rel.to_str()
        {
            protect_index_paths(&mut view.spec, rel);
        }
    }
    finish_mounts(&mut view);
    sync_round(&view.spec, &mut SyncMemory::default());
    let spec = spec_path(state);
    std::fs::write(
        &spec,
        serde_json::to_vec_pretty(&view.spec).unwrap_or_default(),
    )
    .context_io(|| format!("writing {}", spec.display()))?;
    Ok(view)
}

/// The views (private dirs under `root`) the project's git layout needs, and the host git
/// dir its index is checked against.
fn add_layout_views(view: &mut GitView, project: &Path, root: &Path, layout: Layout) -> Result<()> {
    match layout {
        Layout::Absent => {
            let private = root.join("absent");
            crate::host::fs::make_private_dir(&private)?;
            let dot_git = project.join(".git");
            // bwrap needs a mount point. It stays after the sandbox (removing it while another
            // sandbox of the project runs would drop that one's mount): an empty `.git` is
            // no repository to the host's git, and `git init` fills it.
            match std::fs::create_dir(&dot_git) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(DeckError::io(
                        format!("creating the mount point {}", dot_git.display()),
                        e,
                    ));
                }
                _ => {}
            }
            view.mounts.push(GitMount {
                host: private,
                inside: dot_git,
                writable: true,
            });
        }
        Layout::Dir(git_dir) => {
            let names = [WORKTREE_STATE, COMMON_STATE].concat();
            add_dir_view(view, project, &root.join("main"), &git_dir, &names)?;
            view.spec.index_git_dir = Some(git_dir);
        }
        Layout::File {
            dot_git,
            git_dir,
            common_dir,
        } => {
            if common_dir != git_dir {
                add_dir_view(
                    view,
                    project,
                    &root.join("common"),
                    &common_dir,
                    COMMON_STATE,
                )?;
                add_dir_view(
                    view,
                    project,
                    &root.join("worktree"),
                    &git_dir,
                    WORKTREE_STATE,
                )?;
            } else {
                let names = [WORKTREE_STATE, COMMON_STATE].concat();
                add_dir_view(view, project, &root.join("main"), &git_dir, &names)?;
            }
            view.mounts.push(GitMount {
                host: dot_git.clone(),
                inside: dot_git,
                writable: false,
            });
            view.spec.index_git_dir = Some(git_dir);
        }
    }
    Ok(())
}

/// A hooks dir in the project (see [`hooks_path_in_project`]): created when missing,
/// read-only inside, and out of reach of the synced index.
fn protect_hooks_in_project(view: &mut GitView, project: &Path) -> Result<()> {
    let Some(hooks) = hooks_path_in_project(project)? else {
        return Ok(());
    };
    if std::fs::symlink_metadata(&hooks).is_err() {
        std::fs::create_dir_all(&hooks).context_io(|| format!("creating {}", hooks.display()))?;
    }
    protect_in_project(view, project, &hooks);
    if let Ok(rel) = hooks.strip_prefix(project)
        && let Some(rel) = rel.to_str()
    {
        protect_index_paths(&mut view.spec, rel);
    }
    Ok(())
}

/// Records `rel` as a path the synced index may not change, with the host index's entries
/// there now.
fn protect_index_paths(spec: &mut SyncSpec, rel: &str) {
    let rel = rel.trim_end_matches('/').to_owned();
    if let Some(git_dir) = &spec.index_git_dir {
        let host_index = git_dir.join("index");
        if host_index.exists() {
            let entries = index_entries(git_dir, &host_index).unwrap_or_default();
            spec.protected_entries.extend(
                entries
                    .into_iter()
                    .filter(|e| touches(&e.path, &rel))
                    .map(|e| e.record),
            );
        }
    }
    spec.protected_paths.push(rel);
}

/// Whether `path` is `protected`, inside it, or one of its parents.
fn touches(path: &str, protected: &str) -> bool {
    let below = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
    path == protected || below(path, protected) || below(protected, path)
}

/// A submodule checkout's own `.git` names the git dir that the host's `git status` runs in
/// it: read-only, its directories pinned so the checkout cannot be moved aside and replaced.
/// A gitlink with no checkout (cloned without `--recurse-submodules`, or removed) is as
/// dangerous: the host's `git status` runs `git status` in whatever `<path>/.git` it finds
/// there later, so the sandbox must not make one. Its directory is made empty when missing
/// (what `git clone` leaves; git shows no change for it) and bound read-only.
/// The same holds for the gitlinks of a populated submodule's own index (the host's
/// `git status` in the submodule looks into them), down to [`MAX_SUBMODULE_DEPTH`].
fn protect_submodule_checkouts(view: &mut GitView, project: &Path) {
    let mut todo: Vec<(String, usize)> =
        view.spec.gitlinks.iter().map(|p| (p.clone(), 1)).collect();
    while let Some((path, depth)) = todo.pop() {
        if !is_safe_worktree_path(&path) {
            continue;
        }
        let checkout = project.join(&path);
        let dot_git = checkout.join(".git");
        if std::fs::symlink_metadata(&dot_git).is_ok() {
            protect_in_project(view, project, &dot_git);
            if depth < MAX_SUBMODULE_DEPTH {
                let nested = submodule_gitlinks(&checkout).into_iter();
                todo.extend(nested.map(|inner| (format!("{path}/{inner}"), depth + 1)));
            }
        } else if make_plain_dirs(project, &checkout) {
            protect_in_project(view, project, &checkout);
        }
    }
}

/// How deep submodules inside submodules are followed.
const MAX_SUBMODULE_DEPTH: usize = 8;

/// The gitlink paths in the index of the submodule checked out at `checkout` (its `.git` a
/// directory or a `gitdir:` file), read with the host's git that runs nothing.
fn submodule_gitlinks(checkout: &Path) -> Vec<String> {
    let dot_git = checkout.join(".git");
    let git_dir = match std::fs::read_to_string(&dot_git) {
        Ok(text) => match text.lines().next().and_then(|l| l.strip_prefix("gitdir: ")) {
            Some(named) => checkout.join(named.trim_end()),
            None => return Vec::new(),
        },
        Err(_) => dot_git,
    };
    let index = git_dir.join("index");
    if !index.is_file() {
        return Vec::new();
    }
    index_entries(&git_dir, &index)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.gitlink)
        .map(|e| e.path)
        .collect()
}

/// Makes the directories from `project` down to `dir` that are missing, and says whether all
/// of them are now plain directories. Never follows a symlink on the way (a sandbox may have
/// left one, pointing anywhere on the host).
fn make_plain_dirs(project: &Path, dir: &Path) -> bool {
    let Ok(rest) = dir.strip_prefix(project) else {
        return false;
    };
    let mut at = project.to_owned();
    for part in rest.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::create_dir(&at).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// `path` (in the project) read-only inside, and the directories between it and the project
/// pinned. Skipped when one of them is a symlink: git never looks beyond one, and binding it
/// would expose where it points.
fn protect_in_project(view: &mut GitView, project: &Path, path: &Path) {
    let parents: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .take_while(|dir| *dir != project)
        .collect();
    let plain = parents
        .iter()
        .all(|dir| std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()));
    if !plain || !path.starts_with(project) || std::fs::symlink_metadata(path).is_err() {
        return;
    }
    view.pins.extend(parents.into_iter().map(Path::to_owned));
    view.read_only.push(path.to_owned());
}

/// The final mount list: pins first (parents before children: BTreeSet order), then the
/// views in the order they were added, then the read-only project paths.
fn finish_mounts(view: &mut GitView) {
    let views = std::mem::take(&mut view.mounts);
    let pin = |dir: &PathBuf| GitMount {
        host: dir.clone(),
        inside: dir.clone(),
        writable: true,
    };
    let fixed = |path: &PathBuf| GitMount {
        host: path.clone(),
        inside: path.clone(),
        writable: false,
    };
    view.mounts = view.pins.iter().map(pin).collect();
    view.mounts.extend(views);
    view.mounts.extend(view.read_only.iter().map(fixed));
}

/// Where the helper finds the spec `prepare` wrote.
pub fn spec_path(state: &Path) -> PathBuf {
    view_root(state).join("sync.json")
}

/// This module's part of a project's state dir: the views, the spec, the refusal log.
fn view_root(state: &Path) -> PathBuf {
    state.join("git")
}

/// The view of one host git dir: a private dir mounted over it, each host entry bound back
/// (read-write for [`WRITABLE_DIRS`], read-only otherwise) except the synced `names`.
fn add_dir_view(
    view: &mut GitView,
    project: &Path,
    root: &Path,
    host: &Path,
    names: &[&str],
) -> Result<()> {
    let private = root.join("view");
    let baseline = root.join("synced");
    for dir in [root, &private, &baseline] {
        crate::host::fs::make_private_dir(dir)?;
    }
    view.mounts.push(GitMount {
        host: private.clone(),
        inside: host.to_owned(),
        writable: true,
    });
    let entries = std::fs::read_dir(host).context_io(|| format!("listing {}", host.display()))?;
    let mut bound: Vec<(String, bool)> = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // A lock is a git process's own, and synced names are private copies.
        if names.contains(&name.as_str()) || is_private_state(&name) || name.ends_with(".lock") {
            continue;
        }
        // Sockets and FIFOs (the fsmonitor daemon's `fsmonitor--daemon.ipc`) are the host's
        // to talk to: not bound, so absent inside.
        let Ok(target) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if !target.is_dir() && !target.is_file() {
            continue;
        }
        let is_dir = target.is_dir();
        let writable = is_dir && WRITABLE_DIRS.contains(&name.as_str());
        // A host entry that is a symlink into the project (`hooks -> ../.githooks`) is bound
        // as its target, and the target itself must not be writable through the project.
        if entry.file_type().is_ok_and(|t| t.is_symlink())
            && let Ok(target) = entry.path().canonicalize()
            && !writable
        {
            protect_in_project(view, project, &target);
        }
        make_mount_point(&private.join(&name), is_dir)?;
        bound.push((name, writable));
    }
    bound.sort();
    clear_leftovers(&private, names, &bound)?;
    for (name, writable) in bound {
        view.mounts.push(GitMount {
            host: host.join(&name),
            inside: host.join(&name),
            writable,
        });
        if writable && name == "objects" {
            protect_alternates(view, &host.join("objects/info"))?;
        }
        if writable {
            pin_host_subdirs(view, &host.join(&name));
        }
    }
    view.spec.dirs.push(SyncedDir {
        host: host.to_owned(),
        private,
        baseline,
        names: names.iter().map(|n| n.to_string()).collect(),
    });
    Ok(())
}

/// Removes from a view what an earlier sandbox made there and git did not need to keep (a
/// planted `commondir` or `config.worktree` would only break git inside, but a view starts
/// clean): everything but the synced files, git's in-progress state and today's mount points.
fn clear_leftovers(private: &Path, names: &[&str], bound: &[(String, bool)]) -> Result<()> {
    let entries =
        std::fs::read_dir(private).context_io(|| format!("listing {}", private.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep = names.contains(&name.as_ref())
            || is_private_state(&name)
            || bound.iter().any(|(b, _)| *b == name);
        if keep {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .context_io(|| format!("clearing {}", path.display()))?;
    }
    Ok(())
}

/// `objects/info/alternates` makes the host's git read objects from anywhere (another
/// repository's, then packed into this one): read-only, made empty if missing (as good as no
/// file to git), and `objects/info` pinned so it cannot be moved aside and made again. The
/// rest of `objects/info` (commit-graph, packs list) stays writable for `git gc`.
fn protect_alternates(view: &mut GitView, info: &Path) -> Result<()> {
    let alternates = info.join("alternates");
    if std::fs::symlink_metadata(info).is_err() {
        std::fs::create_dir(info).context_io(|| format!("creating {}", info.display()))?;
    }
    if std::fs::symlink_metadata(&alternates).is_err() {
        std::fs::write(&alternates, b"")
            .context_io(|| format!("creating {}", alternates.display()))?;
    }
    for (path, writable) in [(info, true), (alternates.as_path(), false)] {
        view.mounts.push(GitMount {
            host: path.to_owned(),
            inside: path.to_owned(),
            writable,
        });
    }
    Ok(())
}

/// The most directories below `refs/` and `objects/` pinned by [`pin_host_subdirs`].
const MAX_PINNED_SUBDIRS: usize = 128;

/// Binds the directories below a read-write host dir over themselves (parents first), so a
/// running sandbox cannot replace one with a symlink: the host's git writes refs, tags,
/// remote-tracking refs and packs through them while the sandbox runs, between two of the
/// helper's sweeps (`git_12_…`). Loose-object fan-out dirs are left out (256 mounts, and git
/// names what it writes there). A directory the sandbox creates later is only swept.
fn pin_host_subdirs(view: &mut GitView, root: &Path) {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let is_fanout =
                dir == root && root.ends_with("objects") && entry.file_name().len() == 2;
            // `info` is pinned with its alternates by protect_alternates.
            let is_info = dir == root && root.ends_with("objects") && entry.file_name() == "info";
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !is_fanout && !is_info {
                if found.len() >= MAX_PINNED_SUBDIRS {
                    break;
                }
                found.push(entry.path());
                stack.push(entry.path());
            }
        }
    }
    // Parents before children: a child's bind must not be covered by its parent's.
    found.sort_by_key(|p| p.components().count());
    view.mounts.extend(found.into_iter().map(|dir| GitMount {
        host: dir.clone(),
        inside: dir,
        writable: true,
    }));
}

/// A fresh empty file or dir at `path` in a private dir, whatever a sandbox left there.
fn make_mount_point(path: &Path, is_dir: bool) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let fits = if is_dir {
            meta.is_dir()
        } else {
            meta.is_file()
        };
        if fits && !meta.file_type().is_symlink() {
            return Ok(());
        }
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.context_io(|| format!("clearing {}", path.display()))?;
    }
    if is_dir {
        std::fs::create_dir(path)
    } else {
        std::fs::write(path, b"")
    }
    .context_io(|| format!("creating the mount point {}", path.display()))
}

/// What the helper remembers between rounds: metadata seen (to skip unchanged files) and
/// content it refused (to say so once).
#[derive(Debug, Default)]
pub struct SyncMemory {
    seen: HashMap<PathBuf, Option<(i64, i64, u64, u64)>>,
    refused: HashMap<PathBuf, Vec<u8>>,
}

fn stamp(path: &Path) -> Option<(i64, i64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.mtime(), m.mtime_nsec(), m.size(), m.ino()))
}

/// One pass over every synced file: a side that changed since the baseline wins (the host
/// when both did); what comes from the sandbox is validated first. Returns what was refused.
pub fn sync_round(spec: &SyncSpec, memory: &mut SyncMemory) -> Vec<String> {
    let mut refused = Vec::new();
    for dir in &spec.dirs {
        for name in WRITABLE_DIRS {
            refused.extend(remove_planted_links(&dir.host.join(name)));
        }
        for name in &dir.names {
            let (host, private) = (dir.host.join(name), dir.private.join(name));
            let stamps = (stamp(&host), stamp(&private));
            let key_h = host.clone();
            let key_p = private.clone();
            if memory.seen.get(&key_h) == Some(&stamps.0)
                && memory.seen.get(&key_p) == Some(&stamps.1)
            {
                continue;
            }
            if let Err(why) = sync_file(spec, dir, name, memory) {
                refused.push(format!("{}: {why}", private.display()));
            }
            memory.seen.insert(key_h, stamp(&host));
            memory.seen.insert(key_p, stamp(&private));
        }
    }
    // The sandbox decides how often this happens: the log stops growing at a fixed size.
    let log_full = std::fs::metadata(&spec.log).is_ok_and(|m| m.len() > MAX_REFUSED_LOG);
    if !refused.is_empty()
        && !log_full
        && let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
    {
        for line in &refused {
            if let Err(e) = writeln!(log, "{line}") {
                tracing::debug!("writing the git view's refusals failed: {e}");
                break;
            }
        }
    }
    refused
}

fn sync_file(
    spec: &SyncSpec,
    dir: &SyncedDir,
    name: &str,
    memory: &mut SyncMemory,
) -> std::result::Result<(), String> {
    let host = dir.host.join(name);
    let private = dir.private.join(name);
    let baseline = dir.baseline.join(name);
    let on_host = read_regular(&host)?;
    let base = read_regular(&baseline)?;
    let inside = match read_regular(&private) {
        Ok(content) => content,
        // Not a regular file (a symlink, a FIFO): the host's copy replaces it.
        Err(_) => {
            replace_private(&private, on_host.as_deref())?;
            return Ok(());
        }
    };
    if on_host != base {
        replace_private(&private, on_host.as_deref())?;
        return write_baseline(&baseline, on_host.as_deref());
    }
    if inside == base {
        return Ok(());
    }
    if memory.refused.get(&private) == inside.as_ref() && inside.is_some() {
        return Err("still refused".into());
    }
    if let Err(why) = validate(spec, name, inside.as_deref()) {
        if let Some(content) = &inside {
            memory.refused.insert(private.clone(), content.clone());
        }
        return Err(why);
    }
    write_host(&dir.host, name, inside.as_deref())?;
    write_baseline(&baseline, inside.as_deref())
}

/// Removes what is neither a directory nor a regular file (symlinks, FIFOs, sockets) below a
/// read-write host dir. The host's git writes refs by renaming a lock into the ref's directory
/// and deletes through it, and writes objects into `objects/xx/`: a symlinked directory there
/// would carry those writes and deletions elsewhere on the host. Never follows a symlink.
fn remove_planted_links(root: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let mut stack = vec![root.to_owned()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_SWEPT_ENTRIES {
                return removed;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                // Loose objects are files two levels down: no need to list 256 dirs of them.
                let is_loose_fanout =
                    dir == root && root.ends_with("objects") && entry.file_name().len() == 2;
                if !is_loose_fanout {
                    stack.push(entry.path());
                }
            } else if !kind.is_file() {
                // Held open as a writer until the name is gone: a reader that opens it in
                // between does not block, and sees the end of the file once it is closed.
                let _writer = kind.is_fifo().then(|| hold_fifo_open(&entry.path()));
                if std::fs::remove_file(entry.path()).is_err() {
                    continue;
                }
                removed.push(format!(
                    "{}: removed a planted link",
                    entry.path().display()
                ));
            }
        }
    }
    removed
}

/// A host git that opened a FIFO planted as a loose ref (`refs/heads/main`) blocks in
/// `open` until a writer comes, and removing the name does not wake it. Opening it read-write
/// never blocks (Linux), wakes every waiting reader and keeps new ones from waiting; closing
/// it then gives them an empty ref (an error) instead of a hang. The sandbox's seccomp filter
/// refuses `mkfifo`: this is for a FIFO made some other way (before the filter, by the host).
fn hold_fifo_open(path: &Path) -> Option<std::fs::File> {
    // Failing is harmless: the name is removed either way.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .ok()
}

/// A regular file's content (None when absent), never following a symlink, never blocking
/// on a FIFO, never more than [`MAX_STATE_FILE`].
fn read_regular(path: &Path) -> std::result::Result<Option<Vec<u8>>, String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_STATE_FILE {
        return Err(format!("larger than {MAX_STATE_FILE} bytes"));
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_STATE_FILE + 1)
        .read_to_end(&mut content)
        .map_err(|e| e.to_string())?;
    Ok(Some(content))
}

/// Replaces (or removes) a file by writing a temporary next to it and renaming it over.
fn replace_at(dir: &Path, name: &str, temp: &str, content: Option<&[u8]>) -> std::io::Result<()> {
    let target = dir.join(name);
    match content {
        None => match std::fs::remove_file(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Some(bytes) => {
            let temp = dir.join(temp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o644)
                .open(&temp)?;
            let written = file.write_all(bytes).and_then(|_| file.sync_all());
            if let Err(e) = written.and_then(|_| std::fs::rename(&temp, &target)) {
                // `e` is the error to report; a temp left here is cleared the next round.
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
            Ok(())
        }
    }
}

fn replace_private(private: &Path, content: Option<&[u8]>) -> std::result::Result<(), String> {
    let (Some(dir), Some(name)) = (
        private.parent(),
        private.file_name().and_then(|n| n.to_str()),
    ) else {
        return Err("bad path".into());
    };
    // The private dir is the sandbox's: clear whatever it put at the temporary name.
    let temp = format!(".{name}.host-sync");
    // Usually absent; if it stays, creating the temp fails and says so.
    let _ = std::fs::remove_file(dir.join(&temp));
    replace_at(dir, name, &temp, content).map_err(|e| e.to_string())
}

fn write_baseline(path: &Path, content: Option<&[u8]>) -> std::result::Result<(), String> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err("bad path".into());
    };
    let temp = format!(".{name}.tmp");
    // Usually absent; if it stays, creating the temp fails and says so.
    let _ = std::fs::remove_file(dir.join(&temp));
    replace_at(dir, name, &temp, content).map_err(|e| e.to_string())
}

/// Writes the host's git dir the way git does: `NAME.lock` created exclusively (so a host git
/// at work makes us wait for the next round), then renamed over `NAME`.
fn write_host(dir: &Path, name: &str, content: Option<&[u8]>) -> std::result::Result<(), String> {
    let lock = dir.join(format!("{name}.lock"));
    let held = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(&lock);
    let mut file = held.map_err(|e| format!("{} is busy: {e}", lock.display()))?;
    let result = match content {
        Some(bytes) => file
            .write_all(bytes)
            .and_then(|_| file.sync_all())
            .and_then(|_| std::fs::rename(&lock, dir.join(name))),
        None => match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    // After a rename there is no lock left (NotFound); otherwise it goes now.
    if let Err(e) = std::fs::remove_file(&lock)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(
            "removing {} failed, the host's git will wait: {e}",
            lock.display()
        );
    }
    result.map_err(|e| e.to_string())
}

/// What a sandbox may put in a synced file: only what git itself writes there.
fn validate(
    spec: &SyncSpec,
    name: &str,
    content: Option<&[u8]>,
) -> std::result::Result<(), String> {
    let Some(bytes) = content else {
        return match name {
            "HEAD" => Err("HEAD may not be removed".into()),
            _ => Ok(()),
        };
    };
    let text = || std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string());
    match name {
        "HEAD" => {
            let line = text()?.strip_suffix('\n').unwrap_or(text()?);
            let ok = match line.strip_prefix("ref: ") {
                Some(refname) => is_ref_name(refname),
                None => is_object_id(line),
            };
            ok.then_some(())
                .ok_or_else(|| format!("not a ref or an object id: {line:?}"))
        }
        "ORIG_HEAD" | "shallow" => lines_all(text()?, is_object_id),
        "packed-refs" => lines_all(text()?, |line| {
            line.starts_with("# pack-refs with:")
                || line.strip_prefix('^').is_some_and(is_object_id)
                || line
                    .split_once(' ')
                    .is_some_and(|(id, name)| is_object_id(id) && is_ref_name(name))
        }),
        "index" => validate_index(spec, bytes),
        _ => Err("not a synced name".into()),
    }
}

fn lines_all(text: &str, ok: impl Fn(&str) -> bool) -> std::result::Result<(), String> {
    match text.lines().find(|l| !ok(l)) {
        Some(bad) => Err(format!("unexpected line {bad:?}")),
        None => Ok(()),
    }
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A ref under `refs/` (or a pseudo-ref git writes) made of safe characters and components.
fn is_ref_name(name: &str) -> bool {
    name.starts_with("refs/")
        && name.len() < 1024
        && name.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'\\' | b'~' | b'^' | b':' | b'?' | b'*' | b'[')
        })
        && name
            .split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
}

/// The index is read by the host's git, which may check it out: its entries must be paths git
/// itself would write, and it may only hold the gitlinks the host's index had at launch.
fn validate_index(spec: &SyncSpec, bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 12 || &bytes[..4] != b"DIRC" || !(2..=4).contains(&bytes[7]) {
        return Err("not a git index (version 2 to 4)".into());
    }
    let Some(git_dir) = &spec.index_git_dir else {
        return Err("no host git dir to check the index against".into());
    };
    let check = spec.log.with_file_name("index-check");
    std::fs::write(&check, bytes).map_err(|e| e.to_string())?;
    let entries = index_entries(git_dir, &check).map_err(|e| e.to_string());
    if let Err(e) = std::fs::remove_file(&check) {
        tracing::debug!("removing {} failed: {e}", check.display());
    }
    for entry in entries? {
        if !is_safe_worktree_path(&entry.path) {
            return Err(format!("an entry has the path {:?}", entry.path));
        }
        let protected = spec.protected_paths.iter().any(|p| touches(&entry.path, p));
        if protected && !spec.protected_entries.contains(&entry.record) {
            return Err(format!(
                "an entry at {:?}, where the host's git runs hooks from",
                entry.path
            ));
        }
        if entry.gitlink && !spec.gitlinks.contains(&entry.path) {
            return Err(format!("a new gitlink (submodule) at {:?}", entry.path));
        }
    }
    Ok(())
}

fn is_safe_worktree_path(path: &str) -> bool {
    path.split('/').all(|part| {
        !part.is_empty() && part != "." && part != ".." && !part.eq_ignore_ascii_case(".git")
    })
}

struct IndexEntry {
    path: String,
    gitlink: bool,
    /// The whole `ls-files --stage` record, `MODE OID STAGE\tPATH`.
    record: String,
}

/// The entries of an index file, read by the host's git with nothing that runs code
/// (no fsmonitor, no hooks; `ls-files` never refreshes or recurses).
fn index_entries(git_dir: &Path, index: &Path) -> Result<Vec<IndexEntry>> {
    let out = host_git(git_dir)
        .env("GIT_INDEX_FILE", index)
        .args(["ls-files", "--stage", "-z"])
        .output()
        .map_err(|e| DeckError::io("running git ls-files", e))?;
    if !out.status.success() {
        return Err(DeckError::git_view(
            "reading a git index",
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|r| !r.is_empty())
        .filter_map(|record| {
            let record = std::str::from_utf8(record).ok()?;
            let (meta, path) = record.split_once('\t')?;
            Some(IndexEntry {
                path: path.to_owned(),
                gitlink: meta.starts_with("160000 "),
                record: record.to_owned(),
            })
        })
        .collect())
}

/// The host's git on a host git dir, with a cleared environment and nothing that runs code.
fn host_git(git_dir: &Path) -> Command {
    let mut git = Command::new("git");
    git.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_DIR", git_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"])
        .args(["-c", "core.hooksPath=/dev/null"]);
    if let Some(home) = std::env::var_os("HOME") {
        git.env("HOME", home);
    }
    git
}

/// The hooks dir the host's git uses for `project` when `core.hooksPath` points into the
/// project outside its git dir (husky's `.husky/_`, a `.githooks`): it must be read-only
/// inside (and is created empty when missing, so the sandbox cannot create it either). The
/// project root itself cannot be made read-only, so a hooks path there is refused.
fn hooks_path_in_project(project: &Path) -> Result<Option<PathBuf>> {
    let out = Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .current_dir(project)
        // The owner's hooks path even when the deck runs as another user (root): git would
        // otherwise refuse the repository for its "dubious ownership" and print nothing.
        .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"])
        .args(["config", "--path", "--get", "core.hooksPath"])
        .output();
    // No git on the host: nothing there runs hooks.
    let Ok(out) = out else { return Ok(None) };
    let value = String::from_utf8_lossy(&out.stdout);
    let value = value.trim_end_matches('\n');
    if !out.status.success() || value.is_empty() {
        return Ok(None);
    }
    // Relative hook paths are taken from the top of the worktree, which is the project; a
    // symlink on the way (`~/code` -> `/srv/code`) is resolved as far as the path exists.
    let path = resolve_existing_prefix(&normalise(&project.join(value)));
    if path == project {
        return Err(DeckError::InvalidProjectDir {
            path: project.to_owned(),
            why: "git's core.hooksPath is the project directory itself, which a sandbox \
                  writes; point it at a subdirectory (e.g. .githooks)"
                .into(),
        });
    }
    if !path.starts_with(project) || path.starts_with(project.join(".git")) {
        return Ok(None);
    }
    Ok(Some(path))
}

/// Refuses, before anything starts, a project whose git setup cannot be protected (a
/// symlinked `.git`, a `.git` file that names nothing, hooks in the project root).
pub fn check_project(project: &Path) -> Result<()> {
    layout(project)?;
    hooks_path_in_project(project)?;
    Ok(())
}

/// `path` with its longest existing prefix canonicalised and the rest appended.
fn resolve_existing_prefix(path: &Path) -> PathBuf {
    for base in path.ancestors() {
        if let Ok(real) = base.canonicalize() {
            let rest = path.strip_prefix(base).unwrap_or(Path::new(""));
            return if rest.as_os_str().is_empty() {
                real
            } else {
                real.join(rest)
            };
        }
    }
    path.to_owned()
}

/// `a/./b/../c` as `a/c`, without touching the filesystem.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Runs in the detached helper: keeps the views in step while `watched` runs, and once more
/// after it ended.
pub fn run_sync_helper(spec_path: &Path, watched: crate::host::process::ProcRef) -> Result<()> {
    let text =
        std::fs::read(spec_path).context_io(|| format!("reading {}", spec_path.display()))?;
    let spec: SyncSpec = serde_json::from_slice(&text)
        .map_err(|e| DeckError::json("reading the git sync spec", e))?;
    let mut memory = SyncMemory::default();
    while watched.is_alive() {
        sync_round(&spec, &mut memory);
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    sync_round(&spec, &mut SyncMemory::default());
    Ok(())
}

/// Starts the helper for the process that will run the sandbox (this one, which `exec`s
/// bwrap, or the launcher that waits for it). Detached (own session, reparented to init), so
/// neither a pane's hangup nor `stop`'s kill of the sandbox tree cuts the last round short.
pub fn spawn_sync_helper(spec_path: &Path) -> Result<()> {
    let exe = std::env::current_exe().context_io(|| "finding our own binary".to_string())?;
    let me = crate::host::process::ProcRef::of(std::process::id())
        .ok_or_else(|| DeckError::host("reading /proc/self", "no such process"))?;
    let mut command = Command::new(exe);
    command
        .current_dir("/")
        .args(["git-sync", "--spec"])
        .arg(spec_path)
        .args([
            "--pid",
            &me.pid.to_string(),
            "--start-time",
            &me.start_time.to_string(),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // The first child only starts the real helper and exits: the helper is then nobody's
    // child but init's (or a subreaper's).
    command.arg("--detach");
    let status = command
        .status()
        .context_io(|| "starting the git sync helper".to_string())?;
    if !status.success() {
        return Err(DeckError::git_view(
            "starting the git sync helper",
            status.to_string(),
        ));
    }
    Ok(())
}

/// The `--detach` step: start the helper itself in a new session and return at once.
pub fn detach(args: &[std::ffi::OsString]) -> Result<()> {
    crate::host::job::own_binary_detached(args)?
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context_io(|| "starting the git sync helper".to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced_dir(root: &Path) -> SyncSpec {
        let dir = SyncedDir {
            host: root.join("host"),
            private: root.join("view"),
            baseline: root.join("synced"),
            names: vec!["HEAD".into(), "ORIG_HEAD".into()],
        };
        for d in [&dir.host, &dir.private, &dir.baseline] {
            std::fs::create_dir_all(d).unwrap();
        }
        SyncSpec {
            dirs: vec![dir],
            log: root.join("refused.log"),
            ..SyncSpec::default()
        }
    }

    #[test]
    fn a_reader_blocked_on_a_planted_fifo_is_released_when_it_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let heads = root.path().join("refs/heads");
        std::fs::create_dir_all(&heads).unwrap();
        let fifo = heads.join("main");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let reader_path = fifo.clone();
        std::thread::spawn(move || {
            // What the host's git does: a plain blocking open, then a read.
            let content = std::fs::read(&reader_path).map(|c| c.len());
            let _ = done_tx.send(content);
        });
        // Control: the reader is stuck while the FIFO stands.
        let waiting = done_rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(waiting.is_err(), "the reader did not block: {waiting:?}");
        let removed = remove_planted_links(&root.path().join("refs"));
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(!fifo.exists(), "the FIFO is still there");
        let read = done_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the reader is still blocked after the sweep");
        assert_eq!(read.unwrap(), 0, "the released reader reads an empty ref");
    }

    #[test]
    fn the_side_that_changed_wins_and_the_host_wins_a_tie_and_bad_content_never_crosses() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = synced_dir(tmp.path());
        let (host, view) = (&spec.dirs[0].host, &spec.dirs[0].private);
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        std::fs::write(host.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        sync_round(&spec, &mut SyncMemory::default());
        assert_eq!(
            read(view.join("HEAD")),
            "ref: refs/heads/main\n",
            "host to view"
        );
        std::fs::write(view.join("HEAD"), "ref: refs/heads/topic\n").unwrap();
        sync_round(&spec, &mut SyncMemory::default());
        assert_eq!(
            read(host.join("HEAD")),
            "ref: refs/heads/topic\n",
            "view to host"
        );
        assert!(!host.join("HEAD.lock").exists());
        std::fs::write(view.join("HEAD"), "ref: ../../config\n").unwrap();
        let refused = sync_round(&spec, &mut SyncMemory::default());
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(
            read(host.join("HEAD")),
            "ref: refs/heads/topic\n",
            "refused"
        );
        assert!(read(spec.log.clone()).contains("not a ref"));
        std::fs::write(host.join("HEAD"), "ref: refs/heads/host\n").unwrap();
        sync_round(&spec, &mut SyncMemory::default());
        assert_eq!(
            read(view.join("HEAD")),
            "ref: refs/heads/host\n",
            "the host wins a tie"
        );
        // A symlink planted in the view is replaced, never followed.
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "secret").unwrap();
        std::fs::remove_file(view.join("ORIG_HEAD")).ok();
        std::os::unix::fs::symlink(&outside, view.join("ORIG_HEAD")).unwrap();
        sync_round(&spec, &mut SyncMemory::default());
        assert!(!host.join("ORIG_HEAD").exists());
        assert_eq!(read(outside), "secret");
    }

    #[test]
    fn a_symlinked_git_is_refused_and_an_empty_one_is_no_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("p");
        std::fs::create_dir_all(&project).unwrap();
        assert_eq!(layout(&project).unwrap(), Layout::Absent);
        std::fs::create_dir(project.join(".git")).unwrap();
        assert_eq!(
            layout(&project).unwrap(),
            Layout::Absent,
            "empty mount point"
        );
        std::fs::write(project.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(layout(&project).unwrap(), Layout::Dir(project.join(".git")));
        std::fs::remove_dir_all(project.join(".git")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), project.join(".git")).unwrap();
        let err = layout(&project).unwrap_err();
        assert_eq!(err.kind(), "invalid_project_dir");
        assert!(err.to_string().contains("symlink"), "{err}");
        std::fs::remove_file(project.join(".git")).unwrap();
        std::fs::write(project.join(".git"), "not a pointer\n").unwrap();
        assert!(layout(&project).unwrap_err().to_string().contains("gitdir"));
    }

    #[test]
    fn head_must_be_a_ref_under_refs_or_an_object_id() {
        let spec = SyncSpec::default();
        let ok = |t: &str| validate(&spec, "HEAD", Some(t.as_bytes())).is_ok();
        assert!(ok("ref: refs/heads/main\n"));
        assert!(ok(&format!("{}\n", "a".repeat(40))));
        assert!(ok(&"b".repeat(64)));
        for bad in [
            "ref: ../../config\n",
            "ref: refs/../config\n",
            "ref: /etc/passwd\n",
            "gitdir: /tmp/x\n",
            "ref: refs/heads/a\n[core]\n\tfsmonitor = x\n",
            "",
        ] {
            assert!(!ok(bad), "{bad:?} accepted");
        }
        assert!(validate(&spec, "HEAD", None).is_err());
        assert!(validate(&spec, "config", Some(b"")).is_err());
    }

    #[test]
    fn packed_refs_and_shallow_hold_only_ids_and_ref_names() {
        let spec = SyncSpec::default();
        let id = "c".repeat(40);
        let packed =
            format!("# pack-refs with: peeled fully-peeled sorted \n{id} refs/heads/main\n^{id}\n");
        assert!(validate(&spec, "packed-refs", Some(packed.as_bytes())).is_ok());
        assert!(validate(&spec, "packed-refs", Some(b"[core]\n\tfsmonitor = x\n")).is_err());
        assert!(validate(&spec, "shallow", Some(format!("{id}\n").as_bytes())).is_ok());
        assert!(validate(&spec, "ORIG_HEAD", Some(b"ref: refs/heads/x\n")).is_err());
    }

    #[test]
    fn worktree_paths_never_name_a_git_dir_or_leave_the_tree() {
        for ok in ["a", "src/main.rs", ".github/x", ".gitignore"] {
            assert!(is_safe_worktree_path(ok), "{ok}");
        }
        for bad in [
            ".git/config",
            "a/.GIT/hooks/x",
            "../x",
            "/etc/x",
            "a/./b",
            "",
        ] {
            assert!(!is_safe_worktree_path(bad), "{bad}");
        }
    }

    #[test]
    fn a_protected_path_is_touched_at_above_and_below_it_only() {
        for (path, hit) in [
            (".husky/_", true),
            (".husky/_/pre-commit", true),
            (".husky", true),
            (".husky/pre-commit", false),
            (".husky/_x", false),
            (".hus", false),
        ] {
            assert_eq!(touches(path, ".husky/_"), hit, "{path}");
        }
    }

    #[test]
    fn a_relative_hooks_path_is_normalised_lexically() {
        assert_eq!(
            normalise(Path::new("/p/./.husky/../.husky/_")),
            PathBuf::from("/p/.husky/_")
        );
        assert_eq!(normalise(Path::new("/p/../q")), PathBuf::from("/q"));
    }
}
