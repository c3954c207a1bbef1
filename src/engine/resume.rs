//! Whether `start` resumes the agent's last conversation or starts a fresh one.
//!
//! Claude Code refuses `--continue` in a project that has no conversation: it prints "No
//! conversation found to continue" and exits 1, which would leave a sandbox that can never
//! come back. So `--continue` is passed only when Claude's transcript dir for the project
//! holds at least one real message.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::usage::encode_project_dir;

/// How much of one transcript is read looking for a message: a real one comes within the
/// first lines, and a huge file must not stall `start` or a TUI refresh.
const SCAN_LIMIT: u64 = 4 * 1024 * 1024;

/// The config dirs Claude Code uses on this host: each entry of `CLAUDE_CONFIG_DIR` (a
/// comma-separated list, read as `usage` reads it), else `~/.claude`.
pub fn claude_config_dirs() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    config_dirs_from(
        var("CLAUDE_CONFIG_DIR").as_deref(),
        var("HOME").as_deref().map(Path::new),
    )
}

fn config_dirs_from(
    claude_config_dir: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    match claude_config_dir.and_then(|l| l.to_str()) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        None => home.map(|h| h.join(".claude")).into_iter().collect(),
    }
}

/// Whether the project at `project` has a conversation `claude --continue` can resume.
pub fn has_conversation(project: &Path) -> bool {
    has_conversation_in(&claude_config_dirs(), project)
}

pub fn has_conversation_in(config_dirs: &[PathBuf], project: &Path) -> bool {
    let encoded = encode_project_dir(project);
    config_dirs
        .iter()
        .map(|dir| dir.join("projects").join(&encoded))
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        // The dir is the sandbox's to write: bounded, and a link is never followed (the
        // entry's own type, not its target's).
        .flat_map(|entries| entries.filter_map(Result::ok).take(MAX_TRANSCRIPTS))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .any(|path| transcript_has_message(&path))
}

/// How many entries of a transcript dir are looked at.
const MAX_TRANSCRIPTS: usize = 10_000;

/// The fields of a transcript line that tell a conversation message from bookkeeping
/// (file-history snapshots, summaries).
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "isSidechain", default)]
    is_sidechain: bool,
}

fn transcript_has_message(path: &Path) -> bool {
    // A sandbox may swap the file for a symlink or a FIFO after the listing: opened without
    // following or blocking, a regular file checked on the descriptor.
    let Ok((file, _)) = crate::untrusted::open_regular(path) else {
        return false;
    };
    let mut reader = BufReader::new(file.take(SCAN_LIMIT));
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if is_message(&line) {
            return true;
        }
    }
}

fn is_message(line: &[u8]) -> bool {
    // Cheap test first: most bookkeeping lines name neither role.
    let text = String::from_utf8_lossy(line);
    if !text.contains("\"user\"") && !text.contains("\"assistant\"") {
        return false;
    }
    serde_json::from_str::<Line>(&text)
        .is_ok_and(|l| !l.is_sidechain && matches!(l.kind.as_deref(), Some("user" | "assistant")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = r#"{"parentUuid":null,"isSidechain":false,"type":"user","message":{"role":"user","content":"hi"},"uuid":"u1","sessionId":"s1"}"#;
    const SNAPSHOT: &str = r#"{"type":"file-history-snapshot","messageId":"m1","snapshot":{"messageId":"m1","trackedFileBackups":{}},"isSnapshotUpdate":false}"#;
    const SIDECHAIN: &str =
        r#"{"isSidechain":true,"type":"user","message":{"role":"user","content":"task"}}"#;

    fn project_dir(root: &Path, project: &Path) -> PathBuf {
        let dir = root.join("projects").join(encode_project_dir(project));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_a_transcript_with_a_real_message_is_a_conversation() {
        let root = tempfile::tempdir().unwrap();
        let project = Path::new("/src/my app");
        let roots = [root.path().to_owned()];
        assert!(!has_conversation_in(&roots, project), "no dir at all");
        let dir = project_dir(root.path(), project);
        assert!(!has_conversation_in(&roots, project), "an empty dir");
        std::fs::write(dir.join("a.jsonl"), format!("{SNAPSHOT}\n{SIDECHAIN}\n")).unwrap();
        std::fs::write(dir.join("notes.txt"), USER).unwrap();
        assert!(!has_conversation_in(&roots, project), "bookkeeping only");
        assert!(
            !has_conversation_in(&roots, Path::new("/src/other")),
            "another project"
        );
        std::fs::write(dir.join("b.jsonl"), format!("{SNAPSHOT}\n{USER}\n")).unwrap();
        assert!(has_conversation_in(&roots, project));
    }

    #[test]
    fn a_link_or_fifo_a_sandbox_planted_is_never_read() {
        let root = tempfile::tempdir().unwrap();
        let project = Path::new("/src/app");
        let roots = [root.path().to_owned()];
        let dir = project_dir(root.path(), project);
        // A host file the sandbox cannot see, holding a message line.
        let host_file = root.path().join("host-only");
        std::fs::write(&host_file, format!("{USER}\n")).unwrap();
        std::os::unix::fs::symlink(&host_file, dir.join("link.jsonl")).unwrap();
        nix::unistd::mkfifo(&dir.join("fifo.jsonl"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!has_conversation_in(&roots, project), "read through a link");
        // The direct open refuses both too (the listing can be raced).
        assert!(!transcript_has_message(&dir.join("link.jsonl")));
        assert!(
            !transcript_has_message(&dir.join("fifo.jsonl")),
            "blocked or read a FIFO"
        );
        // Control: following the link reaches the host file's message.
        let through = std::fs::read_to_string(dir.join("link.jsonl")).unwrap();
        assert!(is_message(through.trim_end().as_bytes()));
    }

    #[test]
    fn claude_config_dir_replaces_the_home_default() {
        let home = Path::new("/home/u");
        assert_eq!(config_dirs_from(None, Some(home)), [home.join(".claude")]);
        assert_eq!(
            config_dirs_from(Some("/a, /b/".as_ref()), Some(home)),
            [PathBuf::from("/a"), PathBuf::from("/b/")]
        );
    }
}
