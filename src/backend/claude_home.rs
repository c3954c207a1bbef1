//! The `~/.claude` a sandbox sees: a private directory in the project's state, with a few
//! host entries bound into it by an allowlist. Whatever is not listed here (other projects'
//! transcripts, `history.jsonl`, `.config.json`, `local/`, `ide/`, and anything a future
//! Claude adds) is either absent or private to the sandbox, because the view starts empty.
//!
//! What Claude Code 2.1.197 does with its credentials, read from the binary: it keeps them in
//! `<storage dir>/.credentials.json` (`~/.claude` unless `CLAUDE_SECURESTORAGE_CONFIG_DIR` is
//! set), re-reads the file when its mtime changes, and writes a refreshed token by writing
//! `.credentials.json.tmp.<hex>` and renaming it over the file; when the rename fails with
//! EBUSY (the file is a mount point) it copies the new content into the file instead. So a
//! bind of that one host file keeps refresh working in both directions, and the sandbox can
//! replace no other host file. Its refresh locks (`~/.claude/.oauth_refresh.lock`,
//! `~/.claude.lock`) stay private: host and sandbox do not share them.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{IoContext, Result};

/// Host entries of `~/.claude` that shape the agent: bound read-only when the host has them.
/// `hooks/` and `plugins/` are here because `settings.json` names them (hook scripts, enabled
/// plugins): without them the user's agent would behave differently inside, and read-only
/// they can't become something the host's Claude runs.
pub const PREFERENCES: &[&str] = &[
    "settings.json",
    "settings.local.json",
    "CLAUDE.md",
    "commands",
    "agents",
    "skills",
    "rules",
    "output-styles",
    "keybindings.json",
    "hooks",
    "plugins",
];

/// The login file, bound read-write (token refresh writes into it).
pub const CREDENTIALS: &str = ".credentials.json";

/// Top-level keys of `~/.claude.json` that cross into a sandbox's copy: the user's
/// preferences (Claude Code's own `GLOBAL_CONFIG_KEYS`) and the onboarding and login state.
/// Everything else stays on the host: other projects, user-scope `mcpServers` (their `env`
/// holds tokens meant for the host, and their commands point at host paths), caches and
/// `githubRepoPaths` (a list of the user's other checkouts).
pub const GLOBAL_KEYS: &[&str] = &[
    // Login and onboarding.
    "hasCompletedOnboarding",
    "lastOnboardingVersion",
    "lastReleaseNotesSeen",
    "oauthAccount",
    "primaryApiKey",
    "customApiKeyResponses",
    "userID",
    "bypassPermissionsModeAccepted",
    "hasAcknowledgedCostThreshold",
    // Preferences.
    "apiKeyHelper",
    "installMethod",
    "autoUpdates",
    "theme",
    "verbose",
    "preferredNotifChannel",
    "shiftEnterKeyBindingInstalled",
    "editorMode",
    "hasUsedBackslashReturn",
    "autoCompactEnabled",
    "autoScrollEnabled",
    "showTurnDuration",
    "showMessageTimestamps",
    "diffTool",
    "env",
    "tipsHistory",
    "todoFeatureEnabled",
    "showExpandedTodos",
    "messageIdleNotifThresholdMs",
    "fileCheckpointingEnabled",
    "terminalProgressBarEnabled",
    "respectGitignore",
    "copyFullResponse",
    "copyOnSelect",
];

/// One sandbox's `~/.claude`: host paths and where they go inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeView {
    /// The sandbox's own `~/.claude` (in the project state), bound read-write.
    pub private_dir: PathBuf,
    /// Host `~/.claude/projects/<encoded project>`, bound read-write at the same path.
    pub transcripts: PathBuf,
    /// Host preference entries, bound read-only at the same path.
    pub preferences: Vec<PathBuf>,
    /// Host `~/.claude/.credentials.json`, bound read-write, when the host has one.
    pub credentials: Option<PathBuf>,
}

impl ClaudeView {
    /// Looks at the host: creates the project's transcript dir (the only thing written into
    /// the user's `~/.claude`) and prepares the mount points in `private_dir`.
    pub fn resolve(home: &Path, project: &Path, private_dir: &Path) -> Result<ClaudeView> {
        let host = home.join(".claude");
        let transcripts = host
            .join("projects")
            .join(crate::usage::encode_project_dir(project));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&transcripts)
            .context_io(|| format!("creating {}", transcripts.display()))?;
        let preferences: Vec<PathBuf> = PREFERENCES
            .iter()
            .map(|name| host.join(name))
            .filter(|path| path.exists())
            .collect();
        let credentials = Some(host.join(CREDENTIALS)).filter(|p| p.is_file());
        let view = ClaudeView {
            private_dir: private_dir.to_owned(),
            transcripts,
            preferences,
            credentials,
        };
        for (host_path, rel) in view.entries(&host) {
            prepare_mount_point(private_dir, &rel, host_path.is_dir())?;
        }
        Ok(view)
    }

    /// Each host path bound into the view, with its place relative to `~/.claude`.
    fn entries(&self, host_dir: &Path) -> Vec<(PathBuf, PathBuf)> {
        std::iter::once(&self.transcripts)
            .chain(&self.preferences)
            .chain(&self.credentials)
            .filter_map(|p| Some((p.clone(), p.strip_prefix(host_dir).ok()?.to_owned())))
            .collect()
    }
}

/// Makes `root/rel` a plain directory or file (as `dir` says) reached through plain
/// directories only. The private dir is the sandbox's to write: a symlink it planted where
/// bwrap later creates a mount point would make bwrap create that mount point elsewhere on
/// the host. Whatever is in the way is moved aside (never followed, never deleted).
fn prepare_mount_point(root: &Path, rel: &Path, dir: bool) -> Result<()> {
    let mut at = root.to_owned();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let last = i + 1 == parts.len();
        let want_dir = !last || dir;
        if let Ok(meta) = std::fs::symlink_metadata(&at) {
            let fits = if want_dir {
                meta.is_dir()
            } else {
                meta.is_file()
            };
            if fits {
                continue;
            }
            let aside = at.with_file_name(format!(
                "{}.moved-by-sandbox-deck-{}",
                part.as_os_str().to_string_lossy(),
                std::process::id()
            ));
            std::fs::rename(&at, &aside).context_io(|| format!("moving {} aside", at.display()))?;
        }
        if want_dir {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&at)
                .context_io(|| format!("creating {}", at.display()))?;
        } else {
            std::fs::write(&at, b"").context_io(|| format!("creating {}", at.display()))?;
        }
    }
    Ok(())
}

/// The sandbox's `~/.claude.json`: the allowlisted global keys of the host's, and of its
/// `projects` map only this project's entry.
pub fn filtered_claude_json(host: &Value, project: &Path) -> Value {
    let mut out = Map::new();
    let Some(host) = host.as_object() else {
        return Value::Object(out);
    };
    for key in GLOBAL_KEYS {
        if let Some(value) = host.get(*key) {
            out.insert((*key).to_owned(), value.clone());
        }
    }
    let key = project.to_string_lossy();
    if let Some(entry) = host.get("projects").and_then(|p| p.get(key.as_ref())) {
        let mut projects = Map::new();
        projects.insert(key.into_owned(), entry.clone());
        out.insert("projects".into(), Value::Object(projects));
    }
    Value::Object(out)
}

/// Writes the filtered copy of the host's `~/.claude.json` to `copy` (an unreadable or
/// missing host file gives `{}`: the agent then onboards inside, privately).
pub fn seed_claude_json(home: &Path, project: &Path, copy: &Path) -> Result<()> {
    let host: Value = std::fs::read(home.join(".claude.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let mut text = serde_json::to_string_pretty(&filtered_claude_json(&host, project))
        .unwrap_or_else(|_| "{}".into());
    text.push('\n');
    std::fs::write(copy, text).context_io(|| format!("seeding {}", copy.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_copy_keeps_this_project_and_the_global_preferences_only() {
        let host = json!({
            "theme": "light",
            "hasCompletedOnboarding": true,
            "oauthAccount": {"emailAddress": "a@example.org"},
            "mcpServers": {"user": {"command": "x", "env": {"TOKEN": "user-secret"}}},
            "githubRepoPaths": {"o/r": ["/home/dev/other"]},
            "someFutureKey": 1,
            "projects": {
                "/home/dev/code/api": {"hasTrustDialogAccepted": true,
                                        "mcpServers": {"own": {"env": {"K": "own"}}}},
                "/home/dev/code/other": {"mcpServers": {"o": {"env": {"K": "other-secret"}}}}
            }
        });
        let copy = filtered_claude_json(&host, Path::new("/home/dev/code/api"));
        let text = copy.to_string();
        assert_eq!(copy["theme"], "light");
        assert_eq!(copy["hasCompletedOnboarding"], true);
        assert_eq!(
            copy["projects"]["/home/dev/code/api"]["hasTrustDialogAccepted"],
            true
        );
        assert!(text.contains("own"), "this project's own servers stay");
        for gone in [
            "other-secret",
            "user-secret",
            "/home/dev/code/other",
            "githubRepoPaths",
            "someFutureKey",
        ] {
            assert!(!text.contains(gone), "{gone} crossed: {text}");
        }
        assert_eq!(
            filtered_claude_json(&json!([1]), Path::new("/x")),
            json!({})
        );
    }

    #[test]
    fn only_the_projects_transcripts_are_created_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let private = dir.path().join("private");
        std::fs::create_dir_all(home.join(".claude/skills")).unwrap();
        std::fs::write(home.join(".claude/settings.json"), "{}").unwrap();
        std::fs::create_dir_all(&private).unwrap();
        let view = ClaudeView::resolve(&home, Path::new("/w/my.app"), &private).unwrap();
        assert_eq!(
            view.transcripts,
            home.join(".claude/projects/-w-my-app"),
            "Claude's encoding"
        );
        assert!(view.transcripts.is_dir());
        let mut host: Vec<String> = std::fs::read_dir(home.join(".claude"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        host.sort();
        assert_eq!(host, ["projects", "settings.json", "skills"]);
        assert_eq!(
            view.preferences,
            [
                home.join(".claude/settings.json"),
                home.join(".claude/skills")
            ]
        );
        assert_eq!(view.credentials, None);
        assert!(private.join("projects/-w-my-app").is_dir());
        assert!(private.join("settings.json").is_file());
        assert!(private.join("skills").is_dir());
    }

    #[test]
    fn a_planted_symlink_at_a_mount_point_is_moved_aside_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        let victim = dir.path().join("victim");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::create_dir_all(&victim).unwrap();
        std::os::unix::fs::symlink(&victim, private.join("projects")).unwrap();
        std::os::unix::fs::symlink(&victim, private.join("settings.json")).unwrap();
        prepare_mount_point(&private, Path::new("projects/-p"), true).unwrap();
        prepare_mount_point(&private, Path::new("settings.json"), false).unwrap();
        assert!(std::fs::read_dir(&victim).unwrap().next().is_none());
        let meta = std::fs::symlink_metadata(private.join("projects")).unwrap();
        assert!(meta.is_dir() && private.join("projects/-p").is_dir());
        assert!(
            std::fs::symlink_metadata(private.join("settings.json"))
                .unwrap()
                .is_file()
        );
    }
}
